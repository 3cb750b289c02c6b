"""The YAML writer: any plain data reads back the same, in YAML 1.2 and 1.1 readers."""

from __future__ import annotations

import yaml as pyyaml
from helpers import HOSTILE, parse_yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from bottlegen.stages.emit import emit
from bottlegen.yamltext import dump_plain

EXAMPLES = settings().max_examples * 2  # cheap: twice the profile's

text = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=20))
scalars = st.one_of(
    text,
    st.integers(min_value=-(2**63), max_value=2**63),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False),
)
plain_data = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4), max_leaves=25
)


@settings(max_examples=EXAMPLES, deadline=None)
@given(plain_data)
def test_any_plain_data_reads_back_the_same(data):
    written = dump_plain(data)
    assert parse_yaml(written) == data
    assert pyyaml.safe_load(written) == data  # YAML 1.1: no string turns into a bool, number or date
    keyed = dump_plain({data if isinstance(data, str) else "k": data})  # strings as keys at column 0 too
    assert parse_yaml(keyed) == pyyaml.safe_load(keyed)


@settings(max_examples=EXAMPLES // 2, deadline=None)
@given(st.dictionaries(text, plain_data, max_size=4), st.text(max_size=30))
def test_documents_read_back_the_same_with_comments(services, source):
    document = {"networks": {"n": None}, "services": services, "name": "x"}
    written = emit(document, {name: source.replace("\n", " ") for name in services}, "plan.yml")
    assert parse_yaml(written) == document
    assert list(parse_yaml(written)) == ["name", "services", "networks"]  # compose's order, services empty or not


def test_the_style():
    assert dump_plain({"a": {"b": [1, {"c": None, "d": [True, "yes"]}, [], {}, ["x", ["y"]]]}}) == (
        "a:\n"
        "  b:\n"
        "    - 1\n"
        "    - c: null\n"
        "      d:\n"
        "        - true\n"
        '        - "yes"\n'
        "    - []\n"
        "    - {}\n"
        "    - - x\n"
        '      - - "y"\n'  # y is a YAML 1.1 boolean
    )


def test_strings_a_yaml_1_1_reader_would_misread_are_quoted():
    for word in [
        "yes",
        "No",
        "on",
        "OFF",
        "y",
        "~",
        "null",
        "0440",
        "0x1F",
        "1.10",
        "1e3",
        "22:22",
        "2001-12-14",
        ".nan",
        "<<",
        "=",
        "...",
        "---",
        "--- x",
        "...x",
    ]:
        assert dump_plain([word]) == f'- "{word}"\n', word
    for word in [
        "--config",
        "0.0.0.0:8888",
        "claude-bottle/agent:latest",
        "sleep",
        "a=b",
        "/etc/x.pem",
        "git.example:10.0.0.1",
    ]:
        assert dump_plain([word]) == f"- {word}\n", word
