"""Stage 1b: a plan made of layers, as Helm merges values files: the plan, then each `-f
FILE` in order, then each assignment in the order given: `--set key.path=value` (the value
read as YAML), `--set-string key.path=value` (the value as written, always a string) and
`--set-file key.path=FILE` (the file's text). Maps merge key by key; lists, scalars and
null replace what is under them; an index one past a list's end appends to it
(`--set forwarded_env[2]=NAME` on a list of two), as Helm's does. The merged plan is
validated as one, and each problem is reported at the layer that gave the value
(`team.yml:3::$.proxy.yaml_path: ...`, `--set slug::$.slug: ...`), with advice that fits it.

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
from typing import Any, NamedTuple

from .. import host, resources
from ..errors import PlanError, Problem, UsageError
from ..paths import parts_of, shorten
from ..schemas import QUOTE_IT
from ..yamlsubset import load_data
from ..yamltext import ShapeError, check_shape
from .resolve import rebase_host_paths

SET, SET_STRING, SET_FILE = "--set", "--set-string", "--set-file"
ASSIGNMENTS = (SET, SET_STRING, SET_FILE)


class Assignment(NamedTuple):
    """One `--set`, `--set-string` or `--set-file`, as given: KEY.PATH=VALUE (or =FILE)."""

    flag: str
    text: str

    @classmethod
    def of(cls, given: str | tuple[str, str]) -> Assignment:
        return cls(*given) if isinstance(given, tuple) else cls(SET, given)

    @property
    def key(self) -> str:
        return self.text.partition("=")[0]

    @property
    def label(self) -> str:
        """How messages name the layer: `--set slug`."""
        return f"{self.flag} {self.key}"


@dataclass
class Layered:
    """The merged plan, and for each key path the layer that gave it."""

    data: Any
    label: str  # how messages name the whole: "plans/base.yml + plans/team.yml + --set"
    name: str  # how the file's header names it: "base.yml + team.yml + --set"
    origins: dict[tuple[Any, ...], str] = field(default_factory=dict)
    written: dict[str, str] = field(default_factory=dict)  # each --set's label -> its value as written

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


def parse_set(assignment: str | tuple[str, str]) -> tuple[tuple[Any, ...], Any]:
    """`a.b[0].c=value` as ((a, b, 0, c), the value: read as YAML for --set, as written for
    --set-string, the file's text for --set-file); a UsageError when malformed."""
    given = Assignment.of(assignment)
    key, sep, text = given.text.partition("=")
    parts = _KEY.findall(key)
    if not sep or not key or "".join(p if p.startswith("[") else f".{p}" for p in parts).lstrip(".") != key:
        example = {SET: "settings.ports.egress=8081", SET_STRING: "runtime_image=0123", SET_FILE: "env_file=agent.env"}
        raise UsageError(
            f"{given.flag} {given.text!r}: write KEY.PATH={'FILE' if given.flag == SET_FILE else 'VALUE'}, "
            f"for example {given.flag} {example[given.flag]}"
        )
    path = tuple(int(p[1:-1]) if p.startswith("[") else p for p in parts)
    if given.flag == SET_STRING:
        return path, text
    if given.flag == SET_FILE:
        from .load import read_text_file

        data = read_text_file(Path(text), f"file of {SET_FILE} {key}", UsageError)
        try:
            return path, data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise UsageError(
                f"{SET_FILE} {key}={text}: the file is not UTF-8 text ({e.reason} at byte {e.start})"
            ) from None
    try:
        value = load_data(text) if text.strip() else ""
        check_shape(value)
    except ShapeError as e:
        raise PlanError(f"{SET} {key}: {e.problem}") from None
    except Exception as e:  # the YAML reader's own errors
        raise PlanError(
            f"{SET} {key}: the value is not YAML: {str(e).splitlines()[0]} ({SET_STRING} {key}=... gives it as written)"
        ) from None
    return path, value


def _at(data: Any, path: tuple[Any, ...], value: Any, assignment: str) -> Any:
    """data with value at path; maps are made where missing, lists must have the index."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(head, int):
        items_now = data if isinstance(data, list) else [] if data is None else None
        if items_now is not None and head == len(items_now):  # one past the end: appended, as Helm does
            return [*items_now, _at(None, rest, value, assignment)]
        if items_now is None or not -len(items_now) <= head < len(items_now):
            there = f"a list of {len(items_now)}" if items_now is not None else f"not a list but {shorten(data)}"
            raise PlanError(
                f"{assignment}: there is no item [{head}] to set ({there})"
                + (f"; [{len(items_now)}] appends one" if items_now is not None else "")
            )
        items = list(data)
        items[head] = _at(items[head], rest, value, assignment)
        return items
    mapping = dict(data) if isinstance(data, dict) else {}
    mapping[head] = _at(mapping.get(head), rest, value, assignment)
    return mapping


def _held(data: Any, path: tuple[Any, ...]) -> int:
    """How many leading steps of path data already holds."""
    for depth, step in enumerate(path):
        if isinstance(step, int) and isinstance(data, list) and -len(data) <= step < len(data):  # noqa: SIM114
            data = data[step]
        elif isinstance(step, str) and isinstance(data, dict) and step in data:
            data = data[step]
        else:
            return depth
    return len(path)


def layered(
    base: Any,
    base_source: str,
    base_dir: Path,
    files: Sequence[tuple[str, Any, Path]],
    sets: Sequence[str | tuple[str, str]],
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
    written: dict[str, str] = {}
    for given in map(Assignment.of, sets):
        path, value = parse_set(given)
        held = _held(data, path)
        data = _at(data, path, value, given.label)
        _replace(origins, path[: held + 1], given.label)  # and the maps and lists it made on the way
        written[given.label] = given.text.partition("=")[2]
    label = " + ".join([base_source, *(s for s, _, _ in files), *([SET] if sets else [])])
    name = " + ".join([Path(base_source).name, *(Path(s).name for s, _, _ in files), *([SET] if sets else [])])
    return Layered(data, label, name, origins, written)


def attribute(error: PlanError, plan: Layered) -> PlanError:
    """The error, each problem at a key path of the merged plan naming the layer that gave
    the value instead (read from the problem's record: its file and key path)."""

    def blamed(problem: Problem) -> Problem:
        if problem.file != plan.label or problem.path is None:
            return problem
        parts = _parts(problem)
        origin = plan.origin(parts)
        if origin in plan.written:
            return problem._replace(file=origin, message=_for_assignment(problem.message, origin, plan.written[origin]))
        return in_file(problem._replace(file=origin), parts, texts)

    texts: dict[str, str | None] = {}  # each plan file read once, whatever the number of its problems
    error.problems = [blamed(problem) for problem in error.problems]
    if error.headline is not None:
        error.headline = blamed(error.headline)
        error.message = str(error.headline)
        error.args = (error.message,)
    elif any(p.file in plan.written for p in error.problems):
        error.message = error.message.replace("fix the plan file", "fix each layer named")
        error.args = (error.message,)
    return error


def _for_assignment(message: str, origin: str, written: str) -> str:
    """A problem of a --set's value, said with the value as the user wrote it and what
    fits a command line (a type the YAML reading gave it: --set-string keeps it as written)."""
    if message.endswith(QUOTE_IT) and origin.startswith(f"{SET} "):
        read = message[: -len(QUOTE_IT)].split(" is ", 1)[-1]
        key = origin.removeprefix(f"{SET} ")
        return f"{written} is read as YAML ({read}): {SET_STRING} {key}={written} gives it as written"
    return message


def _parts(problem: Problem) -> tuple[Any, ...]:
    """The key path a problem is about: an unknown key's own (it is reported at its mapping)."""
    parts = parts_of(problem.path or "$")
    unknown = _UNKNOWN.match(problem.message)
    if unknown:
        try:
            parts = (*parts, json.loads(f'"{unknown[1]}"'))
        except ValueError:  # a key shown escaped beyond JSON's escapes: the mapping's
            pass
    return parts


def in_file(problem: Problem, parts: tuple[Any, ...] | None, texts: dict[str, str | None]) -> Problem:
    """A problem of a plan file's value at the line the file writes it, its value shown as
    written there (`0123`, not the 123 YAML read). The file is read again (an error path),
    once: texts keeps what was read."""
    if problem.file is None or problem.path is None:
        return problem
    if problem.file not in texts:
        try:
            texts[problem.file] = host.read_bytes(problem.file).decode("utf-8")
        except (OSError, UnicodeDecodeError):
            texts[problem.file] = None
    text = texts[problem.file]
    if text is None:
        return problem
    from ..yamlfull import line_of

    line = line_of(text, parts if parts is not None else _parts(problem))
    if line is None:
        return problem
    message = problem.message
    if message.endswith(QUOTE_IT):
        written = text.splitlines()[line - 1].split(":", 1)[-1].split(" #", 1)[0].strip().rstrip(",").strip()
        shown, _, rest = message.partition(" is ")
        if written and written != shown and rest and _reads_as(written, shown):
            message = f"{written} is {rest}"
    return problem._replace(line=line, message=message)


def _reads_as(written: str, shown: str) -> bool:
    """Whether the text written in the file is the value the message shows (as YAML reads it)."""
    try:
        return shorten(load_data(written)) == shown
    except Exception:  # not a value of its own (a flow collection's piece): the message stays
        return False


def in_files(error: PlanError) -> PlanError:
    """in_file of each problem."""
    texts: dict[str, str | None] = {}
    error.problems = [in_file(p, None, texts) for p in error.problems]
    return error


_UNKNOWN = re.compile(r'unknown key "((?:[^"\\]|\\.)*)"')
