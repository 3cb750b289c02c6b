"""The YAML dialect's loader: built once per process, it must read exactly what ruamel.yaml's
own `load` reads with the same settings, for every kind of scalar and collection."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.resolver import VersionedResolver

from bottlegen import yamlfull, yamltext

TEXTS = [
    "a: 1\nb: 0o17\nc: 017\nd: 0x1F\ne: 1.5e3\nf: .inf\ng: -.nan\n",
    "yes: no\non: off\ntrue: FALSE\nnull: ~\nempty:\nlist: [True, false, Yes]\n",
    "when: 2001-12-14t21:59:43.10-05:00\nday: 2002-12-14\n",
    "list: [1, 'two', \"three\", {four: 4}]\nblock:\n  - x\n  - - y\n",
    "%YAML 1.1\n---\nold: yes\noctal: 017\n",
    "anchors: &a {k: v}\nagain: *a\nmerged: {<<: *a, k2: v2}\n",
    "text: |\n  line one\n  line two\nfolded: >-\n  a\n  b\n",
    "!!str 12: !!int '7'\nquoted: \"\\u00e9\\t$$\"\n",
    "",
    "# only a comment\n",
    "- top\n- level\n- list\n",
]


class _StockResolver(yamlfull.PinnedResolver):
    resolve = VersionedResolver.resolve  # ruamel.yaml's own, without bottlegen's shared tags


def _ruamel(text: str):
    """ruamel.yaml's own load, as YAML(typ="safe") builds it, with bottlegen's settings."""
    yaml = YAML(typ="safe")
    yaml.Constructor = yamlfull.yaml_loader().Constructor
    yaml.Resolver = _StockResolver
    yaml.allow_duplicate_keys = False
    return yaml.load(text)


@pytest.mark.parametrize("text", TEXTS)
def test_the_loader_reads_what_ruamel_reads(text):
    assert yamlfull.load_yaml(text) == _ruamel(text)


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.sampled_from(["yes", "No", "0o7", "07", "1_000", "0x1f", "1e3", "~", "null", ".NaN"]),
)
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(documents, st.sampled_from(["plain", "json"]))
def test_the_loader_reads_any_document_as_ruamel_does(data, style):
    import json

    if style == "json":
        text = json.dumps(data, ensure_ascii=False)
    else:
        import io

        out = io.StringIO()
        YAML(typ="safe", pure=True).dump(data, out)
        text = out.getvalue()
    assert _outcome(yamlfull.load_yaml, text) == _outcome(_ruamel, text)


def _outcome(read, text):
    """What reading text gives: its data's repr (1 == True would hide a difference), or the error."""
    try:
        return repr(read(text))
    except Exception as e:  # the same refusal, word for word
        return type(e).__name__, str(e)


def test_a_bad_document_fails_as_ruamel_fails():
    from ruamel.yaml.error import MarkedYAMLError

    for text in ("a: [1, 2\n", "a: 1\na: 2\n", "a: *missing\n"):
        with pytest.raises(MarkedYAMLError) as ours:
            yamlfull.load_yaml(text)
        with pytest.raises(MarkedYAMLError) as theirs:
            _ruamel(text)
        assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize("version", [(1, 1), (1, 2)])
def test_the_copied_resolver_rules_are_ruamels(version):
    """yamltext keeps a copy of ruamel.yaml's implicit resolvers, so that the render path need
    not import ruamel.yaml: rule for rule, first character for first character, the same."""

    class Stock(VersionedResolver):
        processing_version = version

    theirs = {
        first: [(str(tag), rule.pattern, rule.flags & re.X) for tag, rule in rules]
        for first, rules in Stock().versioned_resolver.items()
    }
    ours = {
        first: [(tag, rule.pattern, rule.flags & re.X) for tag, rule in rules]
        for first, rules in yamltext.RESOLVERS[version].items()
    }
    assert ours == theirs


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=8), st.from_regex(r"[-+.0-9a-zA-Z_:~<=]{1,10}", fullmatch=True)))
def test_a_plain_scalar_resolves_as_ruamel_resolves_it(text):
    for version in ((1, 1), (1, 2)):

        class Stock(VersionedResolver):
            processing_version = version

        assert yamltext.resolve_plain(text, version) == str(Stock().resolve(ScalarNode, text, (True, False)))
