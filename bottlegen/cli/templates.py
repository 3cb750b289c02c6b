"""The templates commands: list, eject, and shell completion."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .. import resources
from ..errors import ExitCode, OutputError, TemplateError, UsageError
from ..stages.templating import iter_origins
from ..write import write_atomic

if TYPE_CHECKING:
    pass
from .options import renderer_of, target_of


def cmd_templates_list(args: argparse.Namespace) -> int:
    renderer = renderer_of(args)
    rows = list(iter_origins(renderer.env))
    if args.format == "json":
        print(json.dumps([{"name": n, "origin": o, "path": str(p)} for n, o, p in rows], indent=2))
        return ExitCode.OK
    name_width = max(len(name) for name, _, _ in rows)
    origin_width = max(len(origin) for _, origin, _ in rows)
    for name, origin, path in rows:
        print(f"{name:<{name_width}}  {origin:<{origin_width}}  {path}")
    return ExitCode.OK


def cmd_completion(args: argparse.Namespace) -> int:
    from .. import completion

    packaged = resources.templates_dir()
    names = sorted(p.relative_to(packaged).as_posix() for p in packaged.rglob("*.j2"))
    sys.stdout.write(completion.script(args.root_parser, args.shell, [*names, "manifest.yaml"]))
    return ExitCode.OK


def cmd_templates_eject(args: argparse.Namespace) -> int:
    packaged = resources.templates_dir(target_of(args))
    available = sorted(
        p.relative_to(packaged).as_posix() for p in packaged.rglob("*") if p.is_file() and "__pycache__" not in p.parts
    )
    # README.md (the operators' guide) can be ejected too, to keep beside the copies.
    target = Path(args.to)
    names = available if args.all else args.names
    if not names:
        raise UsageError("name the templates to eject (see `bottlegen templates list`), or pass --all")
    for name in names:
        if name not in available:
            raise TemplateError(f"{name!r} is not a packaged template; packaged: {', '.join(available)}")
    clashes = [n for n in names if (target / n).exists()]
    if clashes and not args.force:
        raise OutputError(f"{', '.join(str(target / n) for n in clashes)} already exist(s); pass --force to overwrite")
    for name in names:
        write_atomic(target / name, (packaged / name).read_text(encoding="utf-8"))
        print(f"ejected {name} -> {target / name}")
    return ExitCode.OK
