"""No template shape lets a plan value add a key: the property, against generated templates.

Hypothesis builds a template around one `{{ v }}`: text glued before or after it, block tags
(`if`, `for`, `filter`, `set` blocks) between the text and the value, whitespace control on
either side, and the place in the YAML (a mapping value, a list item, in a flow collection,
a key, a comment). The value carries what would break out of a naive template (`", KEY: v`,
newlines, `}`, `]`, `#`). Whatever the shape, either bottlegen refuses the template (a
TemplateError, exit 4) or the document has exactly the keys the same template makes from a
harmless value, and the value is in it whole.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bottlegen import TemplateError
from bottlegen.stages.merge import Fragment, parse_fragment
from bottlegen.stages.templating import Root, make_environment, render_fragment

HOSTILE = ['", KEY: v, Z: "', "x\nKEY: v", "x}\nKEY: v", "x]\nKEY: v", "x # c\nKEY: v", "'\nKEY: v", "{a: b}", "- KEY"]

# Empty glue is drawn most often, so that many shapes are accepted and their documents checked.
glue = st.sampled_from([""] * 10 + ["NAME=", "/root", "a ", "'", '"', "x:", "-", "#", "[", "{"])
after = st.sampled_from([""] * 10 + ["x", " # c", ":", ": 1", ",", "]", "}", '"'])
wrap = st.sampled_from(
    [
        "{v}",
        "{{% if true %}}{v}{{% endif %}}",
        "{{% for _ in [1] %}}{v}{{% endfor %}}",
        "{{% for _ in [1, 2] %}}{v}{{% endfor %}}",
        "{{% filter replace('\"', '') %}}{v}{{% endfilter %}}",
        "{{% filter upper %}}{v}{{% endfilter %}}",
        "{{% set s %}}{v}{{% endset %}}{{{{ s | raw }}}}",
    ]
)
expression = st.sampled_from(["{{ v }}", "{{- v }}", "{{ v -}}", "{{- v -}}"])
place = st.sampled_from(
    [
        "key: {x}\nother: 1\n",
        "key:\n  {x}\nother: 1\n",
        "list:\n  - {x}\n  - 2\n",
        "flow: [{x}, 2]\n",
        "map: {{k: {x}}}\n",
        "{x}: 1\nother: 2\n",
        "# {x}\nkey: 1\n",
        "block: |\n  {x}\nother: 1\n",
    ]
)


@st.composite
def templates(draw: Any) -> str:
    inner = draw(glue) + draw(wrap).format(v=draw(expression)) + draw(after)
    return draw(place).format(x=inner)


def key_paths(value: Any, written: str, prefix: tuple = ()) -> set[tuple]:
    """Every key path; a key that is the value itself is written `<v>`."""
    out = set()
    if isinstance(value, dict):
        for k, v in value.items():
            here = (*prefix, "<v>" if k == written else k)
            out |= {here} | key_paths(v, written, here)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out |= {(*prefix, i)} | key_paths(v, written, (*prefix, i))
    return out


def strings(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {s for v in value.values() for s in strings(v)}
    if isinstance(value, list):
        return {s for v in value for s in strings(v)}
    return {value} if isinstance(value, str) else set()


def render(template: str, value: str) -> Any:
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "t.yaml.j2").write_text(template)
        env = make_environment([Root(Path(tmp), "override test")])
        env.bytecode_cache = None
        return parse_fragment(Fragment("t.yaml.j2", *render_fragment(env, "t.yaml.j2", {"v": value})))


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(template=templates(), value=st.sampled_from(HOSTILE) | st.text(alphabet="ab:, #{}[]\"'\n-", max_size=12))
@example(template="key: /root{% if true %}{{ v }}{% endif %}\n", value='", KEY: v, Z: "')
@example(template="key:\n  {{- v }}\n", value="x\nKEY: v")
@example(template="list:\n  - {% filter replace('\"', '') %}{{ v }}{% endfilter %}\n", value="x, KEY: v")
@example(template="{% for _ in [1, 2] %}{{ v }}{% endfor %}: 1\n", value="a")
def test_no_template_shape_lets_a_value_add_a_key(template, value):
    try:
        doc = render(template, value)
    except TemplateError:
        return  # refused: the operator fixes the template
    harmless = render(template, "X")  # what every filter here leaves as it is
    assert key_paths(doc, value) == key_paths(harmless, "X"), f"the value changed the document's keys:\n{template}"
    assert value in strings(doc), f"the value is not in the document whole:\n{template}"
