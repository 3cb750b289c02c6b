"""`bottlegen init`: a new operator repository: a project file, a starter plan and its golden.

The starter plan is generated from the plan schema, so it never drifts from what is checked:
every key, in the schema's order, with its one-line description; the required keys set to a
value that renders, every optional one commented out with its default. Its first line points
editors at the plan schema where this bottlegen keeps it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from . import resources
from .errors import OutputError
from .explain import first_sentence, plain, sample
from .write import write_atomic
from .yamltext import dump_plain

# What the required keys are set to (the rest is the schema's default, commented out).
STARTER = {
    "runtime_image": "claude-bottle/agent:latest",
    "proxy": {
        "yaml_path": "files/pipelock.yaml",
        "ca_cert_host_path": "files/pipelock-ca.pem",
        "ca_key_host_path": "files/pipelock-ca-key.pem",
    },
}
PROJECT_FILE = """# bottlegen's project file: every command and both pre-commit hooks read it
# (`bottlegen config` shows what is in effect, and from where).
plans = "plans"
goldens = "goldens"
# templates = ["templates"]         # folders of your templates, looked in before the packaged ones
# state_dir = "/var/lib/bottles"    # where `up` keeps each bottle's state (<state_dir>/<project>)
"""


def slug_of(folder: Path) -> str:
    """A bottle name from a folder's name: lowercase letters, digits, - and _."""
    slug = re.sub(r"[^a-z0-9_-]+", "-", folder.resolve().name.lower()).strip("-_") or "bottle"
    return slug[:63]


def starter_plan(slug: str, schema_path: str) -> str:
    """The starter plan's text (see the module's docstring)."""
    schema = resources.load_schema(resources.PLAN_SCHEMA)
    lines = [
        f"# yaml-language-server: $schema={schema_path}",
        "# A starter plan: the required keys set, every other key commented out with its default.",
        "# `bottlegen explain KEY` says more of any key; `bottlegen render` turns the plan into the",
        "# bottle's compose file.",
    ]
    values = {"slug": slug, **STARTER}
    _keys(schema, values, 0, lines, commented=False)
    return "\n".join(lines) + "\n"


def _keys(schema: dict[str, Any], values: dict[str, Any], depth: int, lines: list[str], commented: bool) -> None:
    required = set(schema.get("required") or [])
    for name, sub in (schema.get("properties") or {}).items():
        if name == "$schema":
            continue
        sub = plain(sub)
        pad = "  " * depth
        note = first_sentence(sub) + (" (required)" if name in required and not commented else "")
        lines.append(f"{pad}# {name}: {note}")
        given = name in values
        off = commented or not given
        mark = "# " if off else ""
        if sub.get("type") == "object" and sub.get("properties") and isinstance(values.get(name, {}), dict):
            lines.append(f"{pad}{mark}{name}:")
            _keys(sub, values.get(name) or {}, depth + 1, lines, commented=off)
            continue
        items = plain(sub["items"]) if isinstance(sub.get("items"), dict) else {}
        if not given and items.get("properties"):  # a list of objects: one item, each key with its note
            lines.append(f"{pad}# {name}:")
            for n, (key, spec) in enumerate(items["properties"].items()):
                spec = plain(spec)
                shown = dump_plain({key: sample(spec)}).rstrip("\n").splitlines()[0]
                lines.append(f"{pad}#   {'- ' if n == 0 else '  '}{shown}  # {first_sentence(spec)}")
            continue
        value = values[name] if given else sample(sub)
        text = dump_plain({name: value}).rstrip("\n").splitlines()
        lines += [f"{pad}{mark}{line}" for line in text]


def init(folder: Path) -> list[Path]:
    """Write folder/bottlegen.toml and plans/<slug>.yml, and make goldens/ (the goldens are
    `bottlegen render`'s to write, run from the repository's root, as every later render
    is); an OutputError (exit 7) naming the first that exists, before anything is written."""
    slug = slug_of(folder)
    project, plan, goldens = folder / "bottlegen.toml", folder / "plans" / f"{slug}.yml", folder / "goldens"
    for path in (project, plan):
        if os.path.lexists(path):
            raise OutputError(f"{path} exists; init writes only new files: move it, or init another folder")
    if os.path.lexists(goldens) and not goldens.is_dir():
        raise OutputError(f"{goldens} exists and is not a folder; init makes goldens/ there")
    schema_file = resources.schema_dir() / resources.PLAN_SCHEMA
    where = os.path.relpath(schema_file, os.path.abspath(plan.parent))
    write_atomic(project, PROJECT_FILE)
    write_atomic(plan, starter_plan(slug, where))
    goldens.mkdir(parents=True, exist_ok=True)
    return [project, plan, goldens]


def schema_line(text: str) -> str | None:
    """The schema a plan's first line points editors at."""
    first = text.splitlines()[0] if text else ""
    return first.split("$schema=", 1)[1].strip() if "$schema=" in first else None
