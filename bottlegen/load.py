"""Stage 1: read a plan file (YAML or JSON) into plain data.

Plain data only: dicts, lists, str, int, float, bool, None. A YAML date or timestamp stays
the string it was written as, so that it fails a string check with its own text, never as
a Python object.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.constructor import SafeConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.resolver import VersionedResolver

from .errors import OutputError, PlanError


class _PlainConstructor(SafeConstructor):
    """The safe constructor, except that timestamps stay strings."""


class PinnedResolver(VersionedResolver):
    """Resolves for one YAML version: 1.2, compose's dialect, unless a subclass says.

    A %YAML directive does not change it. ruamel.yaml otherwise looks the version up again
    for every scalar: a third of a load.
    """

    version: tuple[int, int] = (1, 2)

    @property
    def processing_version(self) -> tuple[int, int]:
        return self.version


_PlainConstructor.add_constructor("tag:yaml.org,2002:timestamp", SafeConstructor.construct_yaml_str)


@cache
def yaml_loader() -> YAML:
    """The safe, plain-data YAML 1.2 loader (the C extension when it is installed).

    One per process: the plan, the manifest, every fragment and a bottle's compose file are
    read with it. Its settings are never changed after this.
    """
    yaml = YAML(typ="safe")
    yaml.Constructor = _PlainConstructor
    yaml.Resolver = PinnedResolver
    yaml.allow_duplicate_keys = False
    return yaml


def parse_plan_text(text: str, source: str) -> Any:
    """Parse a plan's text; `source` (its path) names it in messages and chooses JSON by suffix."""
    if source.endswith(".json"):
        def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
            seen: dict[str, Any] = {}
            for key, value in pairs:
                if key in seen:
                    raise PlanError(f"{source}: duplicate key {key!r}: each key may appear once per object")
                seen[key] = value
            return seen

        try:
            return json.loads(text, object_pairs_hook=no_duplicates)
        except json.JSONDecodeError as e:
            raise PlanError(f"{source}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}") from None
    try:
        return yaml_loader().load(text)
    except MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = " ".join(p for p in (e.context, e.problem) if p)
        raise PlanError(f"{where}: invalid YAML: {problem}") from None
    except YAMLError as e:
        raise PlanError(f"{source}: invalid YAML: {e}") from None


def read_plan(path: Path) -> Any:
    """Read and parse a plan file; the result still has to be validated."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise PlanError(f"{path}: no such plan file") from None
    except UnicodeDecodeError as e:
        raise PlanError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise OutputError(f"{path}: cannot read the plan: {e.strerror}") from None
    return parse_plan_text(text, str(path))
