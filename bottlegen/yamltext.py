"""The YAML dialect bottlegen reads and writes, in one leaf module every stage may use.

Reading: YAML 1.2 (compose's dialect), safe, plain data only: dicts with string keys, lists,
str, int, float, bool, None; a timestamp stays the string it was written as. What a plain
scalar means is decided here (`resolve_plain`, ruamel.yaml's rules copied); the readers are
yamlsubset (fast, for the subset bottlegen writes) and yamlfull (ruamel.yaml, for the rest).
Text from outside is bounded in nesting before the C parser sees it
(`yamlsubset.nesting_depth_over`: its composer recurses on the C stack), and what the full
reader builds is checked by `check_shape` (cycles from recursive aliases, alias bombs, sets,
binary, non-string keys, NaN, numbers beyond 64 bits, lone surrogates).

Writing: mapping indent 2, sequences indented with the dash 2 further, no line folding,
`null` written out, and strings that a YAML 1.1 or 1.2 reader would take for something else
(yes, on, 0440, 1.10, 22:22, ~) double-quoted, as is anything beyond printable ASCII
(escaped, so a reviewer sees every character). Whether a string may be plain is decided by
ruamel.yaml's resolver rules for YAML 1.1 and 1.2. The writer is small because the data is
plain; it replaced ruamel.yaml's round-trip dumper, which cost ~10 ms of a 17 ms render, and
keeps its output byte for byte (the goldens prove it).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

# --- what a plain scalar means ------------------------------------------------------------

STR = "tag:yaml.org,2002:str"

EMPTY = "\x00"  # in _IMPLICIT's first characters: the rule applies to the empty scalar too
# ruamel.yaml's implicit resolvers (ruamel/yaml/resolver.py, `implicit_resolvers`, 0.19),
# copied so that reading and writing plain data need not import ruamel.yaml (~25 ms of a
# launch); tests/test_yaml_dialect.py holds them to ruamel.yaml's own tables. For each:
# the YAML versions, the tag, the pattern, the first characters it can start with, its flags.
_IMPLICIT: list[tuple[tuple[tuple[int, int], ...], str, str, str, int]] = [
    (((1, 2),), "bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF", re.X),
    (
        ((1, 1),),
        "bool",
        r"""^(?:y|Y|yes|Yes|YES|n|N|no|No|NO
        |true|True|TRUE|false|False|FALSE
        |on|On|ON|off|Off|OFF)$""",
        "yYnNtTfFoO",
        re.X,
    ),
    (
        ((1, 2),),
        "float",
        r"""^(?:
         [-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |[-+]?\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        "-+0123456789.",
        re.X,
    ),
    (
        ((1, 1),),
        "float",
        r"""^(?:
         [-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*  # sexagesimal float
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        "-+0123456789.",
        re.X,
    ),
    (
        ((1, 2),),
        "int",
        r"""^(?:[-+]?0b[0-1_]+
        |[-+]?0o?[0-7_]+
        |[-+]?[0-9_]+
        |[-+]?0x[0-9a-fA-F_]+)$""",
        "-+0123456789",
        re.X,
    ),
    (
        ((1, 1),),
        "int",
        r"""^(?:[-+]?0b[0-1_]+
        |[-+]?0?[0-7_]+
        |[-+]?(?:0|[1-9][0-9_]*)
        |[-+]?0x[0-9a-fA-F_]+
        |[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$""",
        "-+0123456789",
        re.X,
    ),
    (((1, 2), (1, 1)), "merge", r"^(?:<<)$", "<", 0),
    (
        ((1, 2), (1, 1)),
        "null",
        r"""^(?: ~
        |null|Null|NULL
        | )$""",
        "~nN" + EMPTY,
        re.X,
    ),
    (
        ((1, 2), (1, 1)),
        "timestamp",
        r"""^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]
        |[0-9][0-9][0-9][0-9] -[0-9][0-9]? -[0-9][0-9]?
        (?:[Tt]|[ \t]+)[0-9][0-9]?
        :[0-9][0-9] :[0-9][0-9] (?:\.[0-9]*)?
        (?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$""",
        "0123456789",
        re.X,
    ),
    (((1, 2), (1, 1)), "value", r"^(?:=)$", "=", 0),
    (((1, 2), (1, 1)), "yaml", r"^(?:!|&|\*)$", "!&*", 0),
]


def _resolvers(version: tuple[int, int]) -> dict[str, list[tuple[str, re.Pattern[str]]]]:
    """First character -> the (tag, pattern) rules to try, in ruamel.yaml's order ("" is
    the empty scalar)."""
    table: dict[str, list[tuple[str, re.Pattern[str]]]] = {}
    for versions, tag, pattern, first, flags in _IMPLICIT:
        if version in versions:
            compiled = re.compile(pattern, flags)
            for char in [*first.replace(EMPTY, ""), *([""] if EMPTY in first else [])]:
                table.setdefault(char, []).append((f"tag:yaml.org,2002:{tag}", compiled))
    return table


RESOLVERS = {version: _resolvers(version) for version in ((1, 1), (1, 2))}
_TYPED_FIRST = frozenset(RESOLVERS[(1, 1)]) | frozenset(RESOLVERS[(1, 2)])


def resolve_plain(text: str, version: tuple[int, int] = (1, 2)) -> str:
    """The tag a YAML reader of that version gives a plain scalar: STR unless it is a
    number, a boolean, null, a timestamp... (ruamel.yaml's rules)."""
    for tag, pattern in RESOLVERS[version].get(text[:1], ()):
        if pattern.match(text):
            return tag
    return STR


class YAMLSyntaxError(Exception):
    """The full reader refused a text: its whole message; for a syntax error (`marked`), the
    problem and where (1-based line and column) when it knows."""

    def __init__(self, message: str, marked: bool, problem: str, line: int | None, column: int | None):
        super().__init__(message)
        self.marked, self.problem, self.line, self.column = marked, problem, line, column


# --- reading -------------------------------------------------------------------------------

MAX_DEPTH = 64  # plans nest six levels deep, compose files eight
MAX_NODES = 200_000  # values in the data once aliases are expanded
_INT_RANGE = (-(2**63), 2**64)
_SURROGATE = re.compile("[\ud800-\udfff]")


def copy_plain(value: Any) -> Any:
    """A copy of plain data (dicts, lists, scalars), as copy.deepcopy makes it, but faster:
    nothing of it is shared."""
    kind = type(value)
    if kind is dict:
        return {k: copy_plain(v) for k, v in value.items()}
    if kind is list:
        return [copy_plain(v) for v in value]
    return value


def plain_string(text: str) -> bool:
    """Whether a string is plain data: it holds no lone surrogate."""
    return text.isascii() or _SURROGATE.search(text) is None


class ShapeError(ValueError):
    """Data that is not plain data; `path` is where (key path parts), `problem` what."""

    def __init__(self, path: tuple[Any, ...], problem: str):
        super().__init__(problem)
        self.path = path
        self.problem = problem


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


# --- writing -------------------------------------------------------------------------------

_PLAIN = re.compile(r"(?:[A-Za-z0-9_./]|-(?=[^ ]))[A-Za-z0-9 _./@%+=,:~-]*")
_IMPLICIT_KEY_LIMIT = 1000  # YAML allows 1024 characters, ':' included
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\0": "\\0"}


def double_quoted(text: str) -> str:
    """A YAML double-quoted scalar holding exactly text; all but printable ASCII escaped."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'  # nothing to escape: most values
    out = ['"']
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif " " <= ch <= "~":
            out.append(ch)
        elif ord(ch) <= 0xFF:
            out.append(f"\\x{ord(ch):02X}")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(f"\\U{ord(ch):08X}")
    out.append('"')
    return "".join(out)


@lru_cache(maxsize=4096)
def _string(text: str) -> str:
    if (
        _PLAIN.fullmatch(text)
        and not text.startswith(("---", "..."))  # document markers at the start of a line
        and not text.endswith((" ", ":"))
        and ": " not in text
        and (text[:1] not in _TYPED_FIRST or all(resolve_plain(text, version) == STR for version in ((1, 1), (1, 2))))
    ):
        return text
    return double_quoted(text)


def comment_text(text: str) -> str:
    """Comment text on one line of printable ASCII (a folder name may hold anything)."""
    return "".join(ch if " " <= ch <= "~" else ch.encode("unicode_escape").decode("ascii") for ch in text)


def scalar(value: Any) -> str:
    """One value as a YAML scalar (or an empty flow collection)."""
    if isinstance(value, str):
        return _string(value)
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TypeError(f"cannot write the number {value!r} into a compose file")
        text = repr(value)
        if "e" in text and "." not in text:  # YAML 1.1 wants a dot in a float: 1e-05 -> 1.0e-05
            mantissa, exponent = text.split("e")
            text = f"{mantissa}.0e{exponent}"
        return text
    if isinstance(value, Mapping) and not value:
        return "{}"
    if isinstance(value, list | tuple) and not value:
        return "[]"
    raise TypeError(f"cannot write a {type(value).__name__} into a compose file; use plain data")


def _block(value: Any) -> bool:
    return isinstance(value, Mapping | list | tuple) and len(value) > 0


def write_mapping(data: Mapping[str, Any], col: int, out: list[str], comments: Mapping[str, str] | None = None) -> None:
    pad = " " * col
    for key, value in data.items():
        if comments and key in comments:
            out.append(f"{pad}# {comment_text(comments[key])}")
        head = f"{pad}{scalar(key)}:"
        if len(head) - col > _IMPLICIT_KEY_LIMIT:  # YAML caps implicit keys: write it explicitly
            out.append(f"{pad}? {scalar(key)}")
            head = f"{pad}:"
        if isinstance(value, Mapping) and value:
            out.append(head)
            write_mapping(value, col + 2, out)
        elif _block(value):
            out.append(head)
            write_sequence(value, col + 2, out)
        else:
            out.append(f"{head} {scalar(value)}")


def write_sequence(items: Any, dash: int, out: list[str]) -> None:
    for item in items:
        if not _block(item):
            out.append(f"{' ' * dash}- {scalar(item)}")
            continue
        start = len(out)
        if isinstance(item, Mapping):
            write_mapping(item, dash + 2, out)
        else:
            write_sequence(item, dash + 2, out)
        out[start] = f"{' ' * dash}- {out[start][dash + 2 :]}"  # the first line shares the dash's line


def dump_plain(data: Any) -> str:
    """Any plain data as YAML in the same style, without comments (`bottlegen context`)."""
    out: list[str] = []
    if isinstance(data, Mapping) and data:
        write_mapping(data, 0, out)
    elif _block(data):
        write_sequence(data, 0, out)
    else:
        out.append(scalar(data))
    return "\n".join(out) + "\n"


# --- error locations -----------------------------------------------------------------------


def lines_around(text: str, line: int, before: int) -> list[str]:
    """Numbered lines of output around line (1-based), for a message."""
    lines = text.splitlines()
    return [f"{n:>4} | {lines[n - 1][:160]}" for n in range(max(1, line - before), min(len(lines), line + 1) + 1)]
