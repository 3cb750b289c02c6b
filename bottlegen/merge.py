"""Stage 5: parse the rendered fragments and merge them into one document.

Mappings merge key by key. Anything else (a scalar, a list) at the same place must be
equal in both fragments, or the merge fails naming the key path and both templates.
The merge remembers which template defined each mapping key, so that later stages can
say which template produced a bad value.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ruamel.yaml.error import MarkedYAMLError, YAMLError

from .errors import MergeConflictError, TemplateError
from .load import yaml_loader
from .paths import json_path

Path = tuple[Any, ...]


class Fragment(NamedTuple):
    """One template's output: `source` names the template (and its origin) in messages."""

    source: str
    text: str


class Merged:
    """The merged document, and which fragment's source defined each mapping key, by key path."""

    __slots__ = ("document", "provenance")

    def __init__(self) -> None:
        self.document: dict[str, Any] = {}
        self.provenance: dict[Path, str] = {}

    def where(self, path: Path) -> str:
        """The key path, and the template that produced it, for a message."""
        source = self.source_of(path)
        return json_path(path) + (f" in template {source}" if source else "")

    def source_of(self, path: Path) -> str | None:
        """The template that produced the value at path (its nearest recorded ancestor)."""
        for end in range(len(path), 0, -1):
            found = self.provenance.get(tuple(path[:end]))
            if found:
                return found
        return None


def parse_fragment(fragment: Fragment) -> dict[str, Any]:
    try:
        data = yaml_loader().load(fragment.text)
    except MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else 0
        problem = " ".join(p for p in (e.context, e.problem) if p)
        lines = fragment.text.splitlines()
        shown = [f"{n:>4} | {lines[n - 1][:160]}" for n in range(max(1, line - 2), min(len(lines), line + 1) + 1)]
        raise TemplateError(
            f"template {fragment.source}: what it rendered is not valid YAML at line {line} of the output: {problem}. "
            "The output around it (a `| raw` value, or a block tag that broke the indentation?):",
            shown,
        ) from None
    except YAMLError as e:
        raise TemplateError(f"template {fragment.source}: the rendered text is not valid YAML: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise TemplateError(f"template {fragment.source}: must render a YAML mapping (top-level keys), not a {type(data).__name__}")
    return data


def merge(fragments: list[Fragment]) -> Merged:
    merged = Merged()
    for fragment in fragments:
        _merge_into(merged, merged.document, parse_fragment(fragment), (), fragment.source)
    return merged


def _merge_into(merged: Merged, target: dict[str, Any], incoming: dict[str, Any], path: Path, source: str) -> None:
    for key, value in incoming.items():
        here = (*path, key)
        if key not in target:
            target[key] = value
            merged.provenance[here] = source  # and, through source_of, everything below it
        elif isinstance(target[key], dict) and isinstance(value, dict):
            _merge_into(merged, target[key], value, here, source)
        elif target[key] != value:
            first = merged.source_of(here)
            raise MergeConflictError(
                f"templates conflict at {json_path(here)}: templates {first} and {source} give it different values; "
                "a key may be defined by several templates only with the same value"
            )

