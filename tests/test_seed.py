"""bottlegen renders what the seed rendered: random plans through the packaged templates and
through a transcription of the seed's function (seed_reference.py), compared as documents.
Names that share prefixes (GIT_, GITHUB_, mixed case) are among the generated ones, so every
sort must order as the seed's does: by code point."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest
from helpers import FULL_PLAN, REPO, parse_yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from seed_reference import bottle_plan_to_compose, plan_of

from bottlegen import Renderer, host

PREFIXED = ["GIT_AUTHOR_NAME", "GITHUB_TOKEN", "GIT", "Git_x", "git_lower", "GITLAB_", "_GIT", "G1", "g1", "ZED", "zed"]
AGENT_FIXED = {"HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy", "NO_PROXY", "no_proxy"}
AGENT_FIXED |= {"NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"}
EGRESS_FIXED = {"EGRESS_UPSTREAM_PROXY", "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "EGRESS_UPSTREAM_CA"}

variable = st.one_of(st.sampled_from(PREFIXED), st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True))
hosts = st.dictionaries(
    st.from_regex(r"[a-z][a-z0-9]{0,5}(\.[a-z]{1,4})?", fullmatch=True),
    st.ip_addresses(v=4).map(str),
    max_size=3,
)
upstream_names = st.lists(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,6}", fullmatch=True), unique=True, max_size=3)


@st.composite
def plans(draw: st.DrawFn) -> dict:
    slug = draw(st.from_regex(r"[a-z0-9][a-z0-9_-]{0,10}", fullmatch=True))
    forwarded = draw(st.lists(variable.filter(lambda v: v not in AGENT_FIXED), unique=True, max_size=6))
    tokens = draw(
        st.lists(variable.filter(lambda v: v not in EGRESS_FIXED and v not in forwarded), unique=True, max_size=6)
    )
    names = draw(upstream_names)
    # one address per host across upstreams, as the plan requires
    shared = draw(hosts)
    upstreams = [
        {"name": n, "identity_file": f"/srv/keys/{i}", "extra_hosts": draw(st.sampled_from([{}, shared]))}
        for i, n in enumerate(names)
    ]
    plan = {
        "slug": slug,
        "runtime_image": draw(st.sampled_from(["agent:1", "registry.example/agent@sha256:" + "a" * 64])),
        "forwarded_env": forwarded,
        "use_runsc": draw(st.booleans()),
        # the host paths of helpers' FULL_PLAN; what varies is drawn
        "proxy": {**FULL_PLAN["proxy"], "internal_network": f"{slug}-in", "egress_network": f"{slug}-out"},
        "git_gate": {**FULL_PLAN["git_gate"], "upstreams": upstreams},
        "egress": {
            **{k: v for k, v in FULL_PLAN["egress"].items() if k.endswith("_path")},
            "routes": draw(st.sampled_from([[], [{"host": "api.example"}]])),
            "token_env_map": dict.fromkeys(tokens, "api.example"),
        },
    }
    if draw(st.booleans()):
        plan["supervise"] = dict(FULL_PLAN["supervise"])
    return plan


RENDERER = Renderer(view=host.lexical())  # the seed reads no host but the env file: neither does this


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=plans())
def test_bottlegen_renders_what_the_seed_rendered(plan):
    rendered = RENDERER.render_data(plan, "plan.yml", Path("/srv/plans"), "plan.yml")
    ours = without_extensions(parse_yaml(rendered.text))
    seed = bottle_plan_to_compose(*plan_of(rendered.context))
    assert list(ours["services"]) == list(seed["services"])  # the order too
    assert ours == seed


def without_extensions(value):
    """The document as compose reads it: `x-` keys (bottlegen's network roles) are ignored by
    compose and were not in the seed's dicts."""
    if isinstance(value, dict):
        return {k: without_extensions(v) for k, v in value.items() if not str(k).startswith("x-")}
    if isinstance(value, list):
        return [without_extensions(v) for v in value]
    return value


def test_names_that_share_a_prefix_sort_by_code_point():
    plan = {
        **plans_example(),
        "forwarded_env": ["GIT_AUTHOR_NAME", "GITHUB_TOKEN", "git_lower"],
    }
    doc = parse_yaml(RENDERER.render_data(plan, "plan.yml", Path("/srv/plans"), "plan.yml").text)
    assert doc["services"]["agent"]["environment"][-3:] == ["GITHUB_TOKEN", "GIT_AUTHOR_NAME", "git_lower"]


def plans_example() -> dict:
    return {
        "slug": "demo",
        "runtime_image": "agent:1",
        "proxy": {
            "internal_network": "d-in",
            "egress_network": "d-out",
            "yaml_path": "/srv/b/pipelock.yaml",
            "ca_cert_host_path": "/srv/b/ca.pem",
            "ca_key_host_path": "/srv/b/ca-key.pem",
        },
    }


# Filters whose Jinja default folds case: in a packaged template each must say case_sensitive=true.
CASE_FOLDING = ("sort", "dictsort", "unique", "min", "max")


@pytest.mark.parametrize("template", sorted(p.name for p in (REPO / "templates").glob("*.j2")))
def test_no_packaged_template_sorts_ignoring_case(template):
    env = jinja2.Environment()
    tree = env.parse((REPO / "templates" / template).read_text(encoding="utf-8"))
    for node in tree.find_all(jinja2.nodes.Filter):
        if node.name in CASE_FOLDING:
            given = {kw.key: kw.value for kw in node.kwargs}
            flag = given.get("case_sensitive")
            assert isinstance(flag, jinja2.nodes.Const) and flag.value is True, (
                f"{template}:{node.lineno}: `{node.name}` folds case (the seed sorts by code point): "
                "give it case_sensitive=true"
            )
