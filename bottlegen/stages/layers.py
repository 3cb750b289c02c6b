"""Stage 1b: a plan made of layers, as Helm merges values files: the plan, then each `-f
FILE` in order, then each `--set key.path=value`. Maps merge key by key; lists, scalars and
null replace what is under them. The merged plan is validated as one, and each problem is
reported at the layer that gave the value (`team.yml::$.proxy.yaml_path: ...`).

A relative host path resolves against the folder of the file that gives it (a `--set`,
against the plan's folder, as if written in the plan): it is rewritten relative to the
plan's own folder, so the merged plan resolves as one file would.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import resources
from ..errors import PlanError, Problem, UsageError
from ..paths import json_path, parts_of
from ..yamlsubset import load_data
from ..yamltext import ShapeError, check_shape
from .resolve import rebase_host_paths

SET = "--set"


@dataclass
class Layered:
    """The merged plan, and for each key path the layer that gave it."""

    data: Any
    label: str  # how messages name the whole: "plans/base.yml + plans/team.yml + --set"
    name: str  # how the file's header names it: "base.yml + team.yml + --set"
    origins: dict[tuple[Any, ...], str] = field(default_factory=dict)

    @contextlib.contextmanager
    def blamed(self) -> Iterator[None]:
        """Each PlanError raised inside names the layer that gave the value at fault."""
        try:
            yield
        except PlanError as e:
            raise attribute(e, self) from None

    def origin(self, path: Sequence[Any]) -> str:
        """The layer that gave the value at path (the nearest layer that set it or above it)."""
        parts = tuple(path)
        while parts not in self.origins and parts:
            parts = parts[:-1]
        return self.origins.get(parts, self.label)


def merge(base: Any, overlay: Any, origin: str, origins: dict[tuple[Any, ...], str], at: tuple[Any, ...] = ()) -> Any:
    if isinstance(base, dict) and isinstance(overlay, dict):
        merged = dict(base)
        for key, value in overlay.items():
            merged[key] = merge(base[key], value, origin, origins, (*at, key)) if key in base else copy.deepcopy(value)
            if key not in base or not (isinstance(base.get(key), dict) and isinstance(value, dict)):
                _replace(origins, (*at, key), origin)
        return merged
    return copy.deepcopy(overlay)


def _replace(origins: dict[tuple[Any, ...], str], at: tuple[Any, ...], origin: str) -> None:
    """What is under at now comes from origin."""
    for path in [p for p in origins if p[: len(at)] == at]:
        del origins[path]
    origins[at] = origin


_KEY = re.compile(r"[^.\[\]]+|\[\d+\]")


def parse_set(assignment: str) -> tuple[tuple[Any, ...], Any]:
    """`a.b[0].c=value` as ((a, b, 0, c), value read as YAML); a UsageError when malformed."""
    key, sep, text = assignment.partition("=")
    parts = _KEY.findall(key)
    if not sep or not key or "".join(p if p.startswith("[") else f".{p}" for p in parts).lstrip(".") != key:
        raise UsageError(f"{SET} {assignment!r}: write KEY.PATH=VALUE, for example {SET} settings.ports.egress=8081")
    path = tuple(int(p[1:-1]) if p.startswith("[") else p for p in parts)
    try:
        value = load_data(text) if text.strip() else ""
        check_shape(value)
    except ShapeError as e:
        raise PlanError(f"{SET} {key}: {e.problem}") from None
    except Exception as e:  # the YAML reader's own errors
        raise PlanError(f"{SET} {key}: the value is not YAML: {str(e).splitlines()[0]}") from None
    return path, value


def _at(data: Any, path: tuple[Any, ...], value: Any, assignment: str) -> Any:
    """data with value at path; maps are made where missing, lists must have the index."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(head, int):
        if not isinstance(data, list) or not -len(data) <= head < len(data):
            raise PlanError(f"{SET} {assignment}: {json_path(path)} is not an item of a list here")
        items = list(data)
        items[head] = _at(items[head], rest, value, assignment)
        return items
    mapping = dict(data) if isinstance(data, dict) else {}
    mapping[head] = _at(mapping.get(head), rest, value, assignment)
    return mapping


def layered(
    base: Any,
    base_source: str,
    base_dir: Path,
    files: Sequence[tuple[str, Any, Path]],
    sets: Sequence[str],
    schema: dict[str, Any] | None = None,
) -> Layered:
    """The plan (base, from base_source in base_dir), each (source, data, folder) of files
    over it in order, then each --set; schema: the plan schema in effect."""
    schema = schema or resources.load_schema(resources.PLAN_SCHEMA)
    origins: dict[tuple[Any, ...], str] = {(): base_source}
    data = copy.deepcopy(base)
    for source, overlay, folder in files:
        if not isinstance(overlay, dict):
            raise PlanError(f"{source}: an overlay is a mapping of plan keys, not {type(overlay).__name__}")
        data = merge(data, rebase_host_paths(schema, overlay, folder, base_dir), source, origins)
    for assignment in sets:
        path, value = parse_set(assignment)
        key = assignment.partition("=")[0]
        data = _at(data, path, value, key)
        _replace(origins, path, f"{SET} {key}")
    label = " + ".join([base_source, *(s for s, _, _ in files), *([SET] if sets else [])])
    name = " + ".join([Path(base_source).name, *(Path(s).name for s, _, _ in files), *([SET] if sets else [])])
    return Layered(data, label, name, origins)


def attribute(error: PlanError, plan: Layered) -> PlanError:
    """The error, each problem at a key path of the merged plan naming the layer that gave
    the value instead (read from the problem's record: its file and key path)."""

    def blamed(problem: Problem) -> Problem:
        if problem.file != plan.label or problem.path is None:
            return problem
        parts = parts_of(problem.path)
        unknown = _UNKNOWN.match(problem.message)  # reported at the mapping; given by the layer that wrote the key
        if unknown:
            try:
                parts = (*parts, json.loads(f'"{unknown[1]}"'))
            except ValueError:  # a key shown escaped beyond JSON's escapes: the mapping's layer
                pass
        return problem._replace(file=plan.origin(parts))

    error.problems = [blamed(problem) for problem in error.problems]
    if error.headline is not None:
        error.headline = blamed(error.headline)
        error.message = str(error.headline)
        error.args = (error.message,)
    return error


_UNKNOWN = re.compile(r'unknown key "((?:[^"\\]|\\.)*)"')
