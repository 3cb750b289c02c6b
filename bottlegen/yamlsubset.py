"""A fast reader for the subset of YAML that bottlegen's templates and plans are written in.

The full reader (yamlfull: ruamel.yaml's C parser, then its Python composer, resolver and
constructor) costs about 20 us per line of a rendered fragment, most of it building node
objects that are thrown away, and ~25 ms to import. This reader covers what bottlegen's
writer and packaged templates produce, and what operators write by hand in a plan: block
mappings and sequences (compact `- key:` entries too), one-line flow collections, plain
scalars of ordinary characters, one-line single- and double-quoted scalars with the escapes
the writer uses, whole-line and trailing comments, and a leading `---`.

It is a fast path, never a second dialect. `load` declines ((False, None)) any text outside
that subset, or inside it but not plain data bottlegen accepts (a duplicate key, a key that
is not a string, a number beyond 64 bits, NaN, a lone surrogate), or holding a number in a
form it does not read at a glance (0x1F, 0o17, 1_000, 1e3); the caller then reads the text
with the full reader, which gives the data or the error it always gave. For every text it
does read, it gives exactly the data the full reader builds: plain scalars are typed by the
same rules (yamltext.RESOLVERS, a copy of ruamel.yaml's), and the differential tests in
tests/test_yamlsubset.py hold it to the full reader.

Given a `nodes` set it also adds the (start, end) offset of every scalar and flow collection
it read, where the full reader's node marks would put them: merge checks with them that each
`{{ }}` value stands as one whole node. Given `known` collections (what templating's finalize
wrote, by offset), it takes them as they are instead of reading their text.

It also holds the bound on how deep text from outside may nest (nesting_depth_over), which
every reader applies first.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .yamltext import MAX_DEPTH, RESOLVERS, STR, resolve_plain

Nodes = set[tuple[int, int]]
Known = Mapping[int, tuple[int, Any]]

_OUTSIDE = re.compile(r"[^\n -~]")  # anything but printable ASCII and newlines: the full reader
_KEY = re.compile(r"[A-Za-z0-9_./][A-Za-z0-9_./@+=~-]*")
# Plain scalars: a first character that is no indicator, then no comment, flow indicator, or
# ": " (in a flow collection, no ":" or "," at all).
_PLAIN_BLOCK = re.compile(r"(?:[A-Za-z0-9_./~$+]|-(?=[^ ]))(?:[^#:\[\]{}]|:(?=[^ ]))*")
_PLAIN_FLOW = re.compile(r"(?:[A-Za-z0-9_./~$+]|-(?=[^ ,\]}]))[^#:\[\]{},]*")
_DOUBLE = re.compile(r'"([^"\\]*(?:\\.[^"\\]*)*)"')
_SINGLE = re.compile(r"'((?:[^']|'')*)'")
_ESCAPES = re.compile(r'\\(?:x([0-9A-Fa-f]{2})|u([0-9A-Fa-f]{4})|U([0-9A-Fa-f]{8})|(["\\0nrt]))')
_ESCAPED_TEXT = re.compile(r'(?:[^\\]|\\(?:x[0-9A-Fa-f]{2}|u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|["\\0nrt]))*')
_ESCAPED = {'"': '"', "\\": "\\", "0": "\0", "n": "\n", "r": "\r", "t": "\t"}
_TAIL = re.compile(r" *(?: #.*)?")  # what may follow a value on its line
_SPACES = re.compile(r" *")

_KEY_LIMIT = 1000  # an implicit key is at most 1024 characters in YAML
_TYPED_FIRST = frozenset(RESOLVERS[(1, 2)])
# The typed scalars whose value is plain to see. Any other form of a number (0x1F, 0o17, 1_000,
# 1e3, .5, a leading zero, beyond 64 bits), and merge keys, go to the full reader, whose
# constructor gives them their meaning.
_DECIMAL = re.compile(r"[-+]?(?:0|[1-9][0-9]{0,17})")
_POINT = re.compile(r"[-+]?(?:0|[1-9][0-9]{0,17})\.[0-9]{1,17}")
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}


class _Outside(Exception):
    """The text is outside the subset: the full reader takes it."""


def _plain_value(text: str) -> Any:
    """A plain scalar typed as the full reader types it: the same rules say what it is."""
    if text[:1] not in _TYPED_FIRST:
        return text
    tag = resolve_plain(text)
    if tag == STR:
        return text
    kind = tag[len("tag:yaml.org,2002:") :]
    if kind == "bool":
        return _BOOLS[text]
    if kind == "null":
        return None
    if kind == "timestamp":
        return text  # the dialect keeps a timestamp as the text it was written as
    if kind == "int" and _DECIMAL.fullmatch(text):
        return int(text)
    if kind == "float" and _POINT.fullmatch(text):
        return float(text)
    raise _Outside


def _key_text(text: str) -> str:
    """A plain key, which must be a string to the resolver."""
    value = _plain_value(text)
    if type(value) is not str:
        raise _Outside
    return text


def _escape(match: re.Match[str]) -> str:
    hex8, hex4, hex2, simple = match.group(3), match.group(2), match.group(1), match.group(4)
    if simple is not None:
        return _ESCAPED[simple]
    point = int(hex8 or hex4 or hex2, 16)
    if point > 0x10FFFF or 0xD800 <= point <= 0xDFFF:
        raise _Outside
    return chr(point)


def _double(inner: str) -> str:
    if "\\" not in inner:
        return inner
    if _ESCAPED_TEXT.fullmatch(inner) is None:  # an escape the writer never uses
        raise _Outside
    return _ESCAPES.sub(_escape, inner)


# One line of block structure: indentation, an optional `- `, an optional `key:`.
_LINE = re.compile(
    r"( *)(-(?: +|$))?"
    r"""(?:([A-Za-z0-9_./][A-Za-z0-9_./@+=~-]*|"[^"\\]*(?:\\.[^"\\]*)*"|'(?:[^']|'')*'):(?: +|$))?"""
)
# One token of a flow collection, after any spaces: a double-quoted, single-quoted or plain
# scalar, or an indicator.
_TOKEN = re.compile(
    r""" *(?:"([^"\\]*(?:\\.[^"\\]*)*)"|'((?:[^']|'')*)'|([\[\]{},]|: )"""
    r"|((?:[A-Za-z0-9_./~$+]|-(?=[^ ,\]}]))[^#:\[\]{},]*))"
)
_EMPTY, _SCALAR, _FLOW = 0, 1, 2
# (indent, a dash?, key column, key, key end, value column, kind of value, the value when
# it is a scalar, value end)
Record = tuple[int, bool, int, "str | None", int, int, int, Any, int]
_records: dict[str, Record] = {}


def _record(line: str) -> Record:
    """What a line holds. Lines repeat across a fleet's fragments, so records are kept by
    text (a scalar value is immutable; a flow collection is read again each time)."""
    found = _records.get(line)
    if found is not None:
        return found
    match = _LINE.match(line)
    assert match is not None  # every part of the pattern is optional
    dash = match.group(2) is not None
    raw_key = match.group(3)
    key: str | None = None
    key_col = key_end = -1
    if raw_key is not None:
        key_col, key_end = match.start(3), match.end(3)
        if key_end - key_col > _KEY_LIMIT:
            raise _Outside
        if raw_key[0] == '"':
            key = _double(raw_key[1:-1])
        elif raw_key[0] == "'":
            key = raw_key[1:-1].replace("''", "'")
        else:
            key = _key_text(raw_key)
    elif not dash:
        raise _Outside  # neither an entry nor a key: a scalar on a line of its own
    col = match.end()
    kind, value, end = _EMPTY, None, col
    if col < len(line):
        first = line[col]
        if line[col - 1] != " ":
            raise _Outside  # `key:#...`
        if first == "#":
            pass
        elif first in "[{":
            kind = _FLOW
        elif first == "-" and (col + 1 == len(line) or line[col + 1] == " "):
            raise _Outside  # `- - x`: a compact sequence in a sequence
        else:
            kind = _SCALAR
            value, end = _scalar(line, col)
            if _TAIL.fullmatch(line, end) is None:
                raise _Outside
    found = (len(match.group(1)), dash, key_col, key, key_end, col, kind, value, end)
    if len(_records) > 8192:
        _records.clear()
    _records[line] = found
    return found


def _scalar(line: str, pos: int) -> tuple[Any, int]:
    """The block scalar (plain, or quoted on one line) at line[pos], and where it ends."""
    first = line[pos]
    if first == '"':
        match = _DOUBLE.match(line, pos)
        if match is None:
            raise _Outside  # it goes on to the next line
        return _double(match.group(1)), match.end()
    if first == "'":
        match = _SINGLE.match(line, pos)
        if match is None:
            raise _Outside
        return match.group(1).replace("''", "'"), match.end()
    match = _PLAIN_BLOCK.match(line, pos)
    if match is None:
        raise _Outside
    text = match.group().rstrip(" ")
    if text.startswith(("---", "...")):
        raise _Outside
    return _plain_value(text), pos + len(text)


class _Flow:
    """A flow collection on one line, read token by token."""

    __slots__ = ("base", "known", "line", "nodes")

    def __init__(self, line: str, base: int, nodes: Nodes | None, known: Known):
        self.line, self.base, self.nodes, self.known = line, base, nodes, known

    def token(self, pos: int) -> tuple[str, Any, int, int]:
        """(kind, value, start, end) of the token at pos: kind is an indicator, or "s" for a
        scalar."""
        match = _TOKEN.match(self.line, pos)
        if match is None:
            raise _Outside
        double, single, indicator, plain = match.groups()
        if indicator is not None:
            return indicator, None, match.start(3), match.end()
        if double is not None:
            return "s", _double(double), match.start(1) - 1, match.end()
        if single is not None:
            return "s", single.replace("''", "'"), match.start(2) - 1, match.end()
        if plain is None:
            raise _Outside  # nothing here: the line ended inside the collection
        text = plain.rstrip(" ")
        if text.startswith(("---", "...")):
            raise _Outside
        start = match.start(4)
        return "s", _plain_value(text), start, start + len(text)

    def node(self, pos: int, depth: int) -> tuple[Any, int]:
        """The node at pos (a scalar or a nested collection), and where it ends."""
        kind, value, start, end = self.token(pos)
        if kind == "[" or kind == "{":
            found = self.known.get(self.base + start)
            if found is not None:
                value, end = found[1], found[0] - self.base
            else:
                value, end = self.collection(start, kind, depth + 1)
        elif kind != "s":
            raise _Outside
        if self.nodes is not None:
            self.nodes.add((self.base + start, self.base + end))
        return value, end

    def collection(self, start: int, opening: str, depth: int) -> tuple[Any, int]:
        if depth > MAX_DEPTH:
            raise _Outside
        closing = "]" if opening == "[" else "}"
        kind, _, _, end = self.token(start + 1)
        if kind == closing:
            return ([] if opening == "[" else {}), end
        pos = start + 1
        if opening == "[":
            items: list[Any] = []
            while True:
                value, pos = self.node(pos, depth)
                items.append(value)
                kind, _, _, pos = self.token(pos)
                if kind == "]":
                    return items, pos
                if kind != ",":
                    raise _Outside  # a `key: value` pair in a sequence, or broken text
        mapping: dict[str, Any] = {}
        while True:
            key, pos = self.node(pos, depth)
            if type(key) is not str or key in mapping:
                raise _Outside  # a collection or a non-string as a key, or a duplicate
            kind, _, _, pos = self.token(pos)
            if kind != ": ":
                raise _Outside
            mapping[key], pos = self.node(pos, depth)
            kind, _, _, pos = self.token(pos)
            if kind == "}":
                return mapping, pos
            if kind != ",":
                raise _Outside


class _Reader:
    __slots__ = ("known", "lines", "nodes")

    def __init__(self, lines: list[tuple[Record, int, str]], nodes: Nodes | None, known: Known):
        self.lines = lines  # (record, offset of the line in the text, the line)
        self.nodes = nodes
        self.known = known

    def value(self, i: int, depth: int) -> Any:
        """The value on the rest of line i (after `key: ` or `- `), which ends its line."""
        record, base, line = self.lines[i]
        col = record[5]
        if record[6] == _SCALAR:
            if self.nodes is not None:
                self.nodes.add((base + col, base + record[8]))
            return record[7]
        found = self.known.get(base + col)
        if found is not None:
            value, end = found[1], found[0] - base
            if self.nodes is not None:
                self.nodes.add((base + col, found[0]))
        else:
            value, end = _Flow(line, base, self.nodes, self.known).node(col, depth)
        if _TAIL.fullmatch(line, end) is None:
            raise _Outside
        return value

    def block(self, i: int, depth: int) -> tuple[Any, int]:
        """The block collection that starts on line i."""
        if depth > MAX_DEPTH:
            raise _Outside
        record = self.lines[i][0]
        if record[1]:
            return self.sequence(i, record[0], depth)
        return self.mapping(i, record[0], depth)

    def sequence(self, i: int, indent: int, depth: int) -> tuple[list[Any], int]:
        items: list[Any] = []
        lines = self.lines
        while i < len(lines):
            record = lines[i][0]
            if record[0] != indent or not record[1]:
                break
            if record[3] is not None:  # `- key: ...`: a mapping at the key's column
                value, i = self.mapping(i, record[2], depth + 1)
            elif record[6] == _EMPTY:
                value, i = self.nested(i + 1, indent, depth, False)
            else:
                value = self.value(i, depth + 1)
                i = self.after_value(i + 1, indent)
            items.append(value)
        return items, i

    def mapping(self, i: int, indent: int, depth: int) -> tuple[dict[str, Any], int]:
        """A block mapping whose keys are at column indent; its first key is on line i (after
        a `- ` when it is a compact entry of a sequence)."""
        mapping: dict[str, Any] = {}
        lines = self.lines
        first = True
        while i < len(lines):
            record, base, _ = lines[i]
            if not first:
                if record[0] < indent:
                    break
                if record[0] > indent or record[1]:
                    raise _Outside  # deeper than its siblings, or `- ` under a mapping
            first = False
            key = record[3]
            if key is None or key in mapping:
                raise _Outside
            if self.nodes is not None:
                self.nodes.add((base + record[2], base + record[4]))
            if record[6] == _EMPTY:
                value, i = self.nested(i + 1, indent, depth, True)
            else:
                value = self.value(i, depth + 1)
                i = self.after_value(i + 1, indent)
            mapping[key] = value
        return mapping, i

    def nested(self, i: int, parent: int, depth: int, same_indent_sequence: bool) -> tuple[Any, int]:
        """What an empty `key:` or `-` holds: the block on the next lines, or null. A
        mapping's value may be a sequence at the key's own indent."""
        if i < len(self.lines):
            record = self.lines[i][0]
            if record[0] > parent or (same_indent_sequence and record[0] == parent and record[1]):
                return self.block(i, depth + 1)
        return None, i

    def after_value(self, i: int, indent: int) -> int:
        """A value that ended its line may not be followed by lines indented deeper: that
        would be a multi-line scalar (or broken text), which the full reader reads."""
        if i < len(self.lines) and self.lines[i][0][0] > indent:
            raise _Outside
        return i


def load(text: str, nodes: Nodes | None = None, known: Known | None = None) -> tuple[bool, Any]:
    """(True, data) when text is in the subset, else (False, None): read it in full.

    With a `nodes` set, the (start, end) offsets of the scalars and flow collections read are
    added to it. `known` gives flow collections that need not be read: by the offset each
    starts at, where it ends and its data (what templating's finalize wrote there).
    """
    if _OUTSIDE.search(text) is not None:
        return False, None
    lines: list[tuple[Record, int, str]] = []
    offset = 0
    try:
        for line in text.split("\n"):
            content = line.rstrip(" ")
            if content and content.lstrip(" ")[0] != "#":
                if content.startswith(("---", "...", "%")):
                    if lines or content != "---":
                        return False, None
                else:
                    lines.append((_record(content), offset, content))
            offset += len(line) + 1
        if not lines:
            return True, None
        data, end = _Reader(lines, nodes, known or {}).block(0, 0)
    except _Outside:
        return False, None
    if end != len(lines):
        return False, None
    return True, data


# --- how deep a text nests -----------------------------------------------------------------


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
    from .yamlfull import deepest_line

    return deepest_line(text, limit)


# --- reading ------------------------------------------------------------------------------


def load_data(text: str) -> Any:
    """Text in bottlegen's YAML dialect as data: the fast reader where it answers, else the
    full one, which raises yamltext.YAMLSyntaxError for a broken text. Bound the text's
    nesting first (yamltext.nesting_depth_over)."""
    read, data = load(text)
    if read:
        return data
    from .yamlfull import read as read_in_full

    return read_in_full(text)
