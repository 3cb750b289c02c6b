"""The fast reader (yamlsubset) against the full one (ruamel.yaml): never a second dialect.

For any text, the fast reader either declines it or gives exactly the data the full reader
builds (types compared too: 1, 1.0 and True differ), and for merge's whole-value check the
same node offsets the full reader's marks give. It declines every text the full reader
refuses. Texts are generated line by line from YAML's tricky pieces (indicators, quotes,
escapes, comments, indentation, flow collections, numbers, duplicates) and by mutating what
bottlegen's writer writes; and every fragment the packaged templates render for the examples,
and every golden, must take the fast path, or the render path loses its speed unseen.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from ruamel.yaml.error import YAMLError

from bottlegen import yamlsubset
from bottlegen.stages import merge
from bottlegen.stages.templating import read_back, to_yaml_value
from bottlegen.yamlfull import constructor_parser, load_yaml
from bottlegen.yamltext import ShapeError, check_shape, dump_plain

REPO = Path(__file__).resolve().parent.parent


def same(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def full_read(text: str) -> tuple[bool, Any, set[tuple[int, int]]]:
    """(read?, data, offsets of its scalar and flow nodes) by the full reader, with the
    shape check bottlegen applies; read is False where either refuses the text."""
    try:
        constructor, parser = constructor_parser(text)
        try:
            node = constructor.composer.get_single_node()
            nodes = set()
            stack = [node] if node is not None else []
            while stack:
                current = stack.pop()
                if isinstance(current.value, list):
                    for child in current.value:
                        stack += child if isinstance(child, tuple) else [child]
                    if current.flow_style:
                        nodes.add((current.start_mark.index, current.end_mark.index))
                elif current.start_mark.index != current.end_mark.index:  # an empty null is no value
                    nodes.add((current.start_mark.index, current.end_mark.index))
            data = constructor.construct_document(node) if node is not None else None
        finally:
            parser.dispose()
        check_shape(data)
    except (YAMLError, ShapeError, ValueError, OverflowError, RecursionError):
        return False, None, set()
    return True, data, nodes


def assert_agrees(text: str) -> bool:
    """The property; whether the fast reader took the text."""
    nodes: set[tuple[int, int]] = set()
    read, data = yamlsubset.load(text, nodes)
    if not read:
        return False
    ok, expected, expected_nodes = full_read(text)
    assert ok, f"the fast reader took a text the full reader refuses: {text!r}"
    assert same(data, expected), f"{text!r}: fast {data!r} != full {expected!r}"
    assert nodes == expected_nodes, f"{text!r}: node offsets differ: {sorted(nodes ^ expected_nodes)}"
    return True


# -- texts built line by line from YAML's tricky pieces ---------------------------------------

SCALARS = [
    "a",
    "b c",
    "x-y",
    "-x",
    "~/x",
    "~",
    "$x",
    "+x",
    "+",
    "--config",
    "0",
    "1",
    "-1",
    "+1",
    "007",
    "0o17",
    "0x1F",
    "1_000",
    "1.5",
    "1e3",
    ".5",
    "1.0e+16",
    ".inf",
    "-.inf",
    ".nan",
    "9223372036854775808",
    "18446744073709551616",
    "true",
    "True",
    "TRUE",
    "yes",
    "no",
    "on",
    "off",
    "y",
    "n",
    "null",
    "Null",
    "~",
    "2001-12-14",
    "12:30",
    "a:b",
    "a: b",
    "a:",
    "a #c",
    "a#b",
    "http://h:1/p?q=1&r",
    "a,b",
    "[x]",
    "{x}",
    "-",
    "- x",
    "? x",
    ": x",
    "&a x",
    "*a",
    "!t x",
    "!!str 1",
    "|",
    ">",
    "%x",
    "@x",
    "`x`",
    "'s'",
    "'it''s'",
    "'a",
    '"d"',
    '"a\\"b"',
    '"\\x41\\u00e9\\U0001F600"',
    '"\\ud800"',
    '"\\q"',
    '"\\e"',
    '"\\/"',
    '"\\U00110000"',
    '"a',
    '"$$"',
    "---",
    "...",
    "a ",
    "  a",
    "=",
    "<<",
    "a'b",
    'a"b',
    "[]",
    "{}",
    "[a, b]",
    "[a,b]",
    "[ a , b ]",
    "[a, b,]",
    "[a: b]",
    "[[a], {b: c}]",
    "{a: 1}",
    "{a: 1, a: 2}",
    "{a:1}",
    '{"a": [1, "two", null]}',
    "{a: }",
    "{[a]: b}",
    "{1: a}",
    "[a, [b, [c]]]",
    "[-1, -x]",
    "[- x]",
    "[a b, 'c d']",
    '["a" "b"]',
    "[a # c]",
    "{a: b} x",
    "[a]]",
]
# Leaves that mostly stand: what real plans and fragments hold.
ORDINARY = [
    "a",
    "b c",
    "--config",
    "0",
    "12",
    "-1",
    "1.5",
    "true",
    "false",
    "null",
    "~",
    "~/x",
    "yes",
    "2001-12-14",
    "a:b",
    "http://h:1/p",
    "a,b",
    "'s'",
    "'it''s'",
    '"d"',
    '"a\\"b"',
    '"\\x41\\u00e9"',
    '"$$"',
    "[]",
    "{}",
    "[a, b]",
    '[a, "b", 1, null]',
    "{a: 1}",
    '{"a": [1, "two", null], "b": {c: d}}',
    "[[a], {b: c}]",
]
KEYS = [
    "a",
    "b",
    "x-y",
    "com.example/k",
    "1",
    "true",
    "null",
    "~",
    "<<",
    "a b",
    '"q k"',
    "'s k'",
    '"a"',
    "a:b",
    "-k",
    "?k",
    "k#",
]
TAILS = ["", " ", "  # note", " #", "#x", " # a: b"]


@st.composite
def yamlish(draw: st.DrawFn) -> str:
    lines = []
    if draw(st.booleans()):
        lines.append(draw(st.sampled_from(["---", "--- # doc", "%YAML 1.2\n---", "# comment", ""])))
    for _ in range(draw(st.integers(1, 8))):
        indent = " " * draw(st.sampled_from([0, 0, 2, 2, 4, 1, 3, 6]))
        dash = draw(st.sampled_from(["", "", "- ", "-  ", "-"]))
        key = draw(st.sampled_from(["", *KEYS]))
        value = draw(st.sampled_from(["", *SCALARS]))
        sep = draw(st.sampled_from([": ", ": ", ":", ":  "]))
        body = f"{key}{sep}{value}" if key else value
        lines.append(indent + dash + body + draw(st.sampled_from(TAILS)))
    return "\n".join(lines) + draw(st.sampled_from(["\n", "", "\n\n", "\n..."]))


@st.composite
def block_yaml(draw: st.DrawFn) -> str:
    """A block document of tricky leaves, keys and indentation, mostly well formed."""
    out: list[str] = []
    budget = [draw(st.integers(1, 14))]

    def leaf() -> str:
        pool = SCALARS if draw(st.integers(0, 9)) == 0 else ORDINARY
        return draw(st.sampled_from(pool)) + draw(st.sampled_from(TAILS[:3]))

    def key() -> str:
        return draw(st.sampled_from(KEYS)) if draw(st.integers(0, 9)) == 0 else f"k{draw(st.integers(0, 30))}"

    def node(col: int, depth: int, head: str) -> None:
        """Write a node whose first line starts with head (`key:` or `-`) at column col."""
        budget[0] -= 1
        kind = draw(st.sampled_from(["leaf", "leaf", "map", "seq"])) if depth < 4 and budget[0] > 0 else "leaf"
        if kind == "leaf":
            out.append(" " * col + head + " " + leaf())
            return
        out.append(" " * col + head + draw(st.sampled_from(["", "", "  # c"])))
        step = draw(st.sampled_from([2, 2, 4, 1]))
        inner = col + step
        if kind == "seq" and head.endswith(":") and draw(st.booleans()):
            inner = col  # a sequence at its key's indent
        if draw(st.booleans()):
            out.append(draw(st.sampled_from(["", "# between", "   # indented comment"])))
        for _ in range(draw(st.integers(1, 3))):
            if kind == "map":
                node(inner, depth + 1, key() + ":")
            elif draw(st.booleans()) and budget[0] > 0:  # a compact `- key: value` entry
                key_text = key()
                out.append(" " * inner + "- " + key_text + ": " + leaf())
                if draw(st.booleans()):
                    out.append(" " * (inner + 2) + key() + ": " + leaf())
            else:
                node(inner, depth + 1, "-")

    for _ in range(draw(st.integers(1, 4))):
        node(0, 0, key() + ":")
    return "\n".join(out) + "\n"


@given(block_yaml())
def test_fast_reader_agrees_on_block_documents(text: str) -> None:
    assert_agrees(text)


@given(yamlish())
@example("a: 1\na: 2\n")
@example("a:\n- x\nb: y\n")
@example("- a: 1\n  b:\n  - x\n- c\n")
@example("a:\n  b\n")
@example("a: b\n  c\n")
@example("  a: 1\nb: 2\n")
def test_fast_reader_agrees_with_the_full_reader(text: str) -> None:
    assert_agrees(text)


# -- what bottlegen's writer writes, and mutations of it ------------------------------------

PLAIN = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text(max_size=12) | st.floats(allow_nan=True),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(st.text(max_size=10), PLAIN, min_size=1, max_size=5), st.data())
def test_what_the_writer_writes_reads_back_and_mutations_agree(data: dict[str, Any], draw: st.DataObject) -> None:
    try:
        text = dump_plain(data)
    except TypeError:  # NaN and the infinities cannot be written
        return
    assert_agrees(text)
    for _ in range(3):
        at = draw.draw(st.integers(0, len(text)))
        piece = draw.draw(
            st.sampled_from([" ", "  ", "-", ":", "#", "'", '"', "\\", "[", "]", "{", ",", "\n", "x", ""])
        )
        cut = draw.draw(st.integers(0, 2))
        assert_agrees(text[:at] + piece + text[at + cut :])


def test_the_writers_ordinary_output_takes_the_fast_path() -> None:
    data = {"services": {"a": {"image": "x:1", "command": ["run", "--flag", "a b"], "ports": [], "env": {"K": "v"}}}}
    assert assert_agrees(dump_plain(data))


# -- values finalize writes, read back without parsing ----------------------------------------


@given(PLAIN)
@example("a$b")
@example({"k": ["\ud800"]})
@example({"$": "$"})
def test_read_back_is_what_the_full_reader_reads_from_the_written_value(value: Any) -> None:
    try:
        text = to_yaml_value(value)
    except TypeError:
        return
    try:
        expected = read_back(value)
    except ValueError:
        return  # not exactly plain: merge parses the text instead
    ok, data, _ = full_read(f"v: {text}\n")
    assert ok and same(data["v"], expected), f"{value!r}: read back {expected!r}, full reader {data!r}"


def test_read_back_declines_what_it_cannot_vouch_for() -> None:
    for value in (1.5, 2**64, "\ud800", {1: "a"}, {"k": float("nan")}, object()):
        with pytest.raises(ValueError, match="not exactly plain"):
            read_back(value)
    assert read_back(("a", "$x")) == ["a", "$$x"]


# -- the render path takes the fast path ------------------------------------------------------


def test_every_examples_fragment_and_every_golden_take_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    from bottlegen import Renderer

    taken: list[tuple[str, bool]] = []
    real = yamlsubset.load

    def spy(text: str, nodes: Any = None, known: Any = None) -> tuple[bool, Any]:
        found = real(text, nodes, known)
        taken.append((text, found[0]))
        return found

    monkeypatch.setattr(yamlsubset, "load", spy)
    renderer = Renderer()
    plans = sorted(p for p in (REPO / "examples").glob("*.*") if p.suffix in (".yml", ".json"))
    assert plans
    for plan in plans:
        renderer.render(plan)
    missed = [text for text, read in taken if not read]
    assert not missed, f"outside the fast reader's subset:\n{missed[0]}"
    assert len(taken) >= 3 * len(plans)  # each plan and its fragments went through it
    # The compose goldens (the kubernetes ones are multi-document YAML: read by PyYAML in tests only).
    goldens = sorted(p for p in (REPO / "tests" / "__snapshots__").rglob("*.yml") if "test_kubernetes" not in p.parts)
    for golden in goldens:
        text = golden.read_text()
        read, data = real(text)
        assert read, f"{golden} is outside the fast reader's subset"
        assert same(data, load_yaml(text))


def test_a_value_that_does_not_stand_whole_still_fails_through_the_full_reader() -> None:
    text = 'a: x"b"\n'
    with pytest.raises(merge.ValueNotWhole):
        merge.parse_fragment(merge.Fragment("t.yaml.j2", text, ((4, 7),)))
