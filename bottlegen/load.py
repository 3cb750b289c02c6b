"""Stage 1: read a plan file (YAML or JSON) into plain data.

Plain data only: dicts with string keys, lists, str, int, float, bool, None. A YAML date or
timestamp stays the string it was written as, so that it fails a string check with its own
text, never as a Python object.

Whatever a file holds, reading it ends in plain data or a PlanError (exit 3) naming the file
and, where there is one, the key path: a file that is not a regular file is refused before it
is read (a FIFO would hang, /dev/zero never ends), nesting is bounded before the C parser sees
it (its composer recurses on the C stack), and what the loader builds is checked by
`check_shape` (cycles from recursive aliases, alias bombs, sets, binary, non-string keys,
NaN, numbers beyond 64 bits, lone surrogates).
"""

from __future__ import annotations

import json
import os
import re
import stat
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

from ruamel.yaml import YAML
from ruamel.yaml.constructor import SafeConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import CollectionEndEvent, CollectionStartEvent
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.resolver import VersionedResolver
from ruamel.yaml.tag import Tag

try:
    from ruamel.yaml.cyaml import CParser  # type: ignore[attr-defined]
except ImportError:  # no C extension: ruamel.yaml's pure-Python parser
    CParser = None

from .errors import OutputError, PlanError
from .paths import json_path

MAX_PLAN_BYTES = 4 * 1024 * 1024  # a plan is a few kilobytes
MAX_DEPTH = 64  # plans nest six levels deep, compose files eight
MAX_NODES = 200_000  # values in the data once aliases are expanded
_INT_RANGE = (-(2**63), 2**64)
_SURROGATE = re.compile("[\ud800-\udfff]")


class _PlainConstructor(SafeConstructor):
    """The safe constructor, except that timestamps stay strings."""


class PinnedResolver(VersionedResolver):
    """Resolves for one YAML version: 1.2, compose's dialect, unless a subclass says.

    A %YAML directive does not change it. ruamel.yaml otherwise looks the version up again
    for every scalar: a third of a load.
    """

    version: tuple[int, int] = (1, 2)
    _tags: ClassVar[dict[str, Tag]] = {}

    @property
    def processing_version(self) -> tuple[int, int]:
        return self.version

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        """VersionedResolver.resolve for a plain scalar, with one Tag per tag: a Tag caches
        its text, which the constructor asks for several times per node."""
        if kind is ScalarNode and implicit[0]:
            table = self.versioned_resolver
            for suffix, regexp in table.get(value[:1], []) + table.get(None, []):
                if regexp.match(value):
                    tag = self._tags.get(suffix)
                    if tag is None:
                        tag = self._tags[suffix] = Tag(suffix=suffix)
                    return tag
            if not self.yaml_path_resolvers:
                return self.DEFAULT_SCALAR_TAG
        return super().resolve(kind, value, implicit)


_PlainConstructor.add_constructor("tag:yaml.org,2002:timestamp", SafeConstructor.construct_yaml_str)


@cache
def yaml_loader() -> YAML:
    """The safe, plain-data YAML 1.2 loader (the C extension when it is installed).

    One per process: the plan, the manifest, every fragment and a bottle's compose file are
    read with it. Its settings are never changed after this. Text from outside goes through
    `guard_depth` first.
    """
    yaml = YAML(typ="safe")
    yaml.Constructor = _PlainConstructor
    yaml.Resolver = PinnedResolver
    yaml.allow_duplicate_keys = False
    return yaml


if CParser is not None:

    class _Loader(CParser, _PlainConstructor, PinnedResolver):  # type: ignore[misc]
        """What yaml_loader().load builds for each text (the C parser, the constructor and the
        resolver in one object), as a class made once: ruamel.yaml makes the class again for
        every load."""

        def __init__(self, text: str) -> None:
            CParser.__init__(self, text)
            self._parser = self._composer = self
            _PlainConstructor.__init__(self, loader=self)
            self.allow_duplicate_keys = False
            PinnedResolver.__init__(self, loadumper=self)


def constructor_parser(text: str) -> tuple[Any, Any]:
    """What YAML.get_constructor_parser gives for text: a constructor, whose composer gives
    the node tree (get_single_node) and which builds data from it (construct_document), and
    the parser to dispose() after use."""
    if CParser is None:
        pair: tuple[Any, Any] = yaml_loader().get_constructor_parser(text)
        return pair
    loader = _Loader(text)
    return loader, loader


def load_yaml(text: str) -> Any:
    """Text in the plain-data YAML dialect, as data (see yaml_loader)."""
    constructor, parser = constructor_parser(text)
    try:
        return constructor.get_single_data()
    finally:
        parser.dispose()


class ShapeError(ValueError):
    """Data that is not plain data; `path` is where (key path parts), `problem` what."""

    def __init__(self, path: tuple[Any, ...], problem: str):
        super().__init__(problem)
        self.path = path
        self.problem = problem


_LEADING = re.compile(r"^([ \t]*)((?:[-?][ \t]+)*)", re.M)


def _depth_may_exceed(text: str, limit: int) -> bool:
    """A cheap upper bound on the nesting of YAML text, checked against limit.

    Flow nesting is at most the number of `[` and `{`. A block level is indented deeper
    than its parent, but for a sequence under a mapping key, so there are at most two per
    column of indentation; on one line, compact `- ` and `? ` entries open one each, and a
    `key:` one more.
    """
    flow = text.count("[") + text.count("{")
    if flow > limit:
        return True
    if flow + text.count("-") + text.count("?") + text.count(":") <= limit:
        return False  # each block level needs an indicator of its own
    indent = compact = 0
    for spaces, run in _LEADING.findall(text):
        indent = max(indent, len(spaces))
        compact = max(compact, len(run))
    return flow + 2 * (indent + 1) + compact + 1 > limit


def nesting_depth_over(text: str, limit: int = MAX_DEPTH) -> int | None:
    """The line where YAML text nests deeper than limit, or None.

    The C parser's event stream is iterative, so this is safe on any input; it is run only
    when the cheap bound says the text might nest that deep.
    """
    if not _depth_may_exceed(text, limit):
        return None
    depth = 0
    try:
        for event in yaml_loader().parse(text):
            if isinstance(event, CollectionStartEvent):
                depth += 1
                if depth > limit:
                    line: int = event.start_mark.line + 1
                    return line
            elif isinstance(event, CollectionEndEvent):
                depth -= 1
    except YAMLError:
        return None  # the load reports the syntax error properly
    return None


def _plain(value: Any, depth: int, surrogates: bool) -> bool:
    """The fast check of check_shape, for data without aliases: True when it holds."""
    kind = type(value)
    if kind is str:
        return not (surrogates and _SURROGATE.search(value) is not None)
    if kind is dict:
        return depth < MAX_DEPTH and all(
            type(k) is str
            and not (surrogates and _SURROGATE.search(k) is not None)
            and _plain(v, depth + 1, surrogates)
            for k, v in value.items()
        )
    if kind is list:
        return depth < MAX_DEPTH and all(_plain(v, depth + 1, surrogates) for v in value)
    if kind is int:
        return bool(_INT_RANGE[0] <= value < _INT_RANGE[1])
    if kind is float:
        return bool(value - value == 0.0)  # false for NaN and the infinities
    return value is None or kind is bool


def check_text_shape(data: Any, text: str) -> None:
    """check_shape, taking the fast way where the text shows it may.

    Without a `*` the text has no alias, so the data is a tree and a plain recursive walk
    (depth bounded) is safe; without a `\\u` escape it holds no surrogate. Where the fast
    walk finds a problem, check_shape says which and where.
    """
    if "*" in text or not _plain(data, 0, "\\u" in text or "\\U" in text):
        check_shape(data)


def check_shape(data: Any, max_depth: int = MAX_DEPTH, max_nodes: int = MAX_NODES) -> None:
    """Raise ShapeError unless data is a tree of plain data within the limits.

    Iterative, and each shared object (a YAML alias) is counted with its expanded size, so
    neither a recursive alias nor an alias bomb costs more than a walk of what was parsed.
    """
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    # (value, path, children iterator or None); sizes are summed as children finish.
    stack: list[list[Any]] = [[data, (), None, 1]]
    while stack:
        frame = stack[-1]
        value, path, children, _ = frame
        if children is None:
            _check_leaf(value, path)
            if not isinstance(value, (dict, list)):
                stack.pop()
                if stack:
                    stack[-1][3] += 1
                continue
            if id(value) in sizes:  # an alias of a collection seen already
                stack.pop()
                stack[-1][3] += sizes[id(value)]
                continue
            if id(value) in on_path:
                raise ShapeError(path, "a recursive alias (a value that contains itself)")
            if len(path) > max_depth:
                raise ShapeError(path, f"nested more than {max_depth} levels deep")
            on_path.add(id(value))
            frame[2] = iter(value.items()) if isinstance(value, dict) else iter(enumerate(value))
            continue
        item = next(children, None)
        if item is None:
            stack.pop()
            on_path.discard(id(value))
            sizes[id(value)] = frame[3]
            if frame[3] > max_nodes:
                raise ShapeError(path, f"more than {max_nodes} values once its aliases are expanded (an alias bomb?)")
            if stack:
                stack[-1][3] += frame[3]
            continue
        key, child = item
        if isinstance(value, dict):
            if not isinstance(key, str):
                raise ShapeError(
                    (*path, str(key)), f"the key {key!r} is a {type(key).__name__}, not a string: quote it"
                )
            _check_string(key, (*path, key))
        stack.append([child, (*path, key), None, 1])


def _check_leaf(value: Any, path: tuple[Any, ...]) -> None:
    if isinstance(value, str):
        _check_string(value, path)
    elif value is None or isinstance(value, (bool, dict, list)):
        pass
    elif isinstance(value, int):
        if not _INT_RANGE[0] <= value < _INT_RANGE[1]:
            raise ShapeError(path, "a number beyond 64 bits; no compose field takes one")
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ShapeError(path, f"{value!r} is not a number a compose file can hold")
    else:
        names: dict[type, str] = {set: "a set (!!set)", bytes: "binary data (!!binary)", tuple: "a tuple"}
        kind = names.get(type(value), type(value).__name__)
        raise ShapeError(
            path, f"{kind} is not plain data: use a mapping, a list, a string, a number, a boolean or null"
        )


def _check_string(value: str, path: tuple[Any, ...]) -> None:
    if _SURROGATE.search(value):
        raise ShapeError(path, "holds a lone surrogate (an unpaired \\ud800-\\udfff escape), which is not a character")


def parse_plan_text(text: str, source: str) -> Any:
    """Parse a plan's text into checked plain data; `source` (its path) names it in messages
    and chooses JSON by suffix."""
    data = _parse(text, source)
    try:
        check_text_shape(data, text)
    except ShapeError as e:
        raise PlanError(f"{source}::{json_path(e.path)}: {e.problem}") from None
    return data


def _parse(text: str, source: str) -> Any:
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
        except RecursionError:
            raise PlanError(f"{source}: invalid plan: nested too deeply (at most {MAX_DEPTH} levels)") from None
        except ValueError as e:  # an integer past Python's digit limit
            raise PlanError(f"{source}{_long_number_at(text)}: invalid JSON: {e}".split("; use")[0]) from None
    deep = nesting_depth_over(text)
    if deep is not None:
        raise PlanError(f"{source}:{deep}: invalid plan: nested more than {MAX_DEPTH} levels deep")
    try:
        return load_yaml(text)
    except MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = " ".join(p for p in (e.context, e.problem) if p)
        raise PlanError(f"{where}: invalid YAML: {problem}") from None
    except YAMLError as e:
        raise PlanError(f"{source}: invalid YAML: {e}") from None
    except (ValueError, OverflowError) as e:  # an integer past Python's digit limit
        raise PlanError(f"{source}{_long_number_at(text)}: invalid plan: {str(e).split('; use')[0]}") from None


def _long_number_at(text: str) -> str:
    match = re.search(r"\d{4000,}", text)
    return f":{text.count(chr(10), 0, match.start()) + 1}" if match else ""


def read_text_file(path: Path, what: str, error: type[Exception] = PlanError, limit: int = MAX_PLAN_BYTES) -> bytes:
    """The bytes of a regular file, read without blocking on a FIFO or a device.

    A missing file raises `error`; a file that is not regular, or is larger than limit, too;
    an unreadable one OutputError (exit 7).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise error(f"{path}: no such {what}") from None
    except IsADirectoryError:
        raise error(f"{path}: is a directory, not a {what}") from None
    except OSError as e:
        raise OutputError(f"{path}: cannot read the {what}: {e.strerror or e}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise error(f"{path}: is {_file_kind(info.st_mode)}, not a regular file: give the path of a {what}")
        if info.st_size > limit:
            raise error(f"{path}: is {info.st_size} bytes; a {what} is at most {limit} bytes")
        chunks = []
        size = 0
        while chunk := os.read(fd, 1 << 16):
            size += len(chunk)
            if size > limit:
                raise error(f"{path}: is larger than {limit} bytes, the most a {what} may be")
            chunks.append(chunk)
        return b"".join(chunks)
    except OutputError:
        raise
    except OSError as e:
        raise OutputError(f"{path}: cannot read the {what}: {e.strerror or e}") from None
    finally:
        os.close(fd)


def _file_kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def read_plan(path: Path) -> Any:
    """Read and parse a plan file; the result still has to be validated."""
    data = read_text_file(path, "plan file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise PlanError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    return parse_plan_text(text, str(path))
