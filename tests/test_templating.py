"""The one Jinja configuration: values as values, strict names, sandbox, rooted loader."""

from __future__ import annotations

import os
from pathlib import Path

import jinja2
import pytest
from helpers import full_plan, parse_yaml

from bottlegen import TemplateError
from bottlegen.resources import templates_dir
from bottlegen.stages.merge import Fragment, parse_fragment
from bottlegen.stages.templating import Root, make_environment, render_fragment, render_template, to_yaml_value


def env_with(tmp_path: Path, **templates: str) -> jinja2.Environment:
    for name, text in templates.items():
        path = tmp_path / name.replace("__", "/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return make_environment([Root(tmp_path, "override test"), Root(templates_dir(), "packaged")])


def render(tmp_path, text: str, **context) -> str:
    """Render one template and parse it as merge does, so its values are checked whole."""
    fragment = Fragment("t.yaml.j2", *render_fragment(env_with(tmp_path, **{"t.yaml.j2": text}), "t.yaml.j2", context))
    parse_fragment(fragment)
    return fragment.text


@pytest.mark.parametrize(
    "value",
    [
        "plain",
        "",
        "a: b",
        "x\ny",
        "- item",
        "# no comment",
        "'\"\\",
        "{{ 1 }}",
        "yes",
        "~",
        "0440",
        "\u202e\U0001f600\ufeff\x00\x1b",
        0,
        -5,
        True,
        False,
        None,
        ["a", 1, None],
        {"k": "v: w", "n": [1]},
    ],
)
def test_each_expression_is_exactly_one_value(tmp_path, value):
    out = render(tmp_path, "key: {{ v }}\nother: 1\n", v=value)
    assert parse_yaml(out) == {"key": value, "other": 1}


def test_dollar_is_doubled_so_compose_gives_the_value_back():
    assert to_yaml_value("a$b${C}$$") == '"a$$b$${C}$$$$"'


def test_text_around_an_expression_is_refused(tmp_path):
    with pytest.raises(TemplateError) as err:
        render(tmp_path, "env:\n  - NAME={{ v }}\n", v="x")
    message = str(err.value)
    assert "line 2 of the output" in message and "whole YAML value" in message and '{{ "NAME=" ~ value }}' in message
    assert '- NAME="x"' in message  # the output line is shown


def test_expression_inside_a_flow_collection_is_fine(tmp_path):
    assert parse_yaml(render(tmp_path, "k: [{{ a }}, {{ b }}]\nm: {x: {{ a }}}\n", a="1", b=2)) == {
        "k": ["1", 2],
        "m": {"x": "1"},
    }


def test_raw_is_the_one_opt_out(tmp_path):
    assert parse_yaml(render(tmp_path, "k: {{ v | raw }}\n", v="[1, 2]")) == {"k": [1, 2]}
    with pytest.raises(TemplateError, match="safe"):
        render(tmp_path, "k: {{ v | safe }}\n", v="[1, 2]")


def test_undefined_names_fail_with_file_and_line(tmp_path):
    with pytest.raises(TemplateError) as err:
        render(tmp_path, "a: 1\nb: {{ plan.nope }}\n", plan={"slug": "x"})
    assert "t.yaml.j2:2" in str(err.value) and "nope" in str(err.value)


def test_undefined_in_a_condition_fails_too(tmp_path):
    with pytest.raises(TemplateError, match="missing"):
        render(tmp_path, "{% if missing %}a: 1{% endif %}\n")


def test_sandbox_refuses_internals(tmp_path):
    with pytest.raises(TemplateError, match=r"SecurityError|unsafe|not safely"):
        render(tmp_path, "k: {{ v.__class__.__mro__ }}\n", v="x")


def test_the_context_cannot_be_changed_by_a_template(tmp_path):
    with pytest.raises(TemplateError):
        render(tmp_path, "{% set _ = items.append(1) %}k: {{ items }}\n", items=[])


def test_values_that_are_not_plain_data_are_refused(tmp_path):
    with pytest.raises(TemplateError, match="plain data"):
        render(tmp_path, "k: {{ v }}\n", v=Path("/x"))


def test_macros_are_inserted_as_yaml(tmp_path):
    out = render(tmp_path, "v:\n  - {{ m.bind('/a: b', '/t') }}\n")
    assert parse_yaml(out) == {"v": [{"type": "bind", "source": "/a: b", "target": "/t", "read_only": True}]}


def test_template_names_cannot_leave_their_roots(tmp_path):
    outside = tmp_path / "outside.yaml.j2"
    outside.write_text("k: 1\n")
    root = tmp_path / "root"
    root.mkdir()
    os.symlink(outside, root / "link.yaml.j2")
    env = make_environment([Root(root, "override")])
    for name in ("../outside.yaml.j2", "/etc/passwd", "link.yaml.j2", "a/../../outside.yaml.j2"):
        with pytest.raises(TemplateError, match=r"not found|outside|relative"):
            render_template(env, name, {})


def test_override_shadows_packaged_by_relative_path(tmp_path):
    env = env_with(tmp_path, **{"pipelock.yaml.j2": "services: {pipelock: {image: x}}\n"})
    assert render_template(env, "pipelock.yaml.j2", {}) == "services: {pipelock: {image: x}}\n"
    assert "agent" in render_template(env, "agent.yaml.j2", _agent_context())


def _agent_context():
    from bottlegen import Renderer

    r = Renderer()
    ctx = r.context_for(full_plan(), "p", Path("/"))
    return r.service_context(ctx, "agent")


def test_context_is_plain_data(renderer):
    def check(value, path="$"):
        assert type(value) in (dict, list, str, int, float, bool, type(None)), (path, type(value))
        if isinstance(value, dict):
            for k, v in value.items():
                assert type(k) is str
                check(v, f"{path}.{k}")
        elif isinstance(value, list):
            for i, v in enumerate(value):
                check(v, f"{path}[{i}]")

    check(renderer.context_for(full_plan(), "p", Path("/")))
