"""Hostile values can never change the document (property tests, hypothesis).

Every string field of a plan, settings included, gets a hostile string at once. For each
field, either the plan schema rejects the value with a message naming its key path (names,
slugs, variable names, hostnames, IPs: fields where such a value cannot be right), or the
rendered file, loaded by the real `docker compose config --format json`, holds exactly the
input value in exactly the expected place, and the document has the same keys as with
plain values. A YAML 1.1 reader (PyYAML) must read the same document: no string may turn
into another type.

Examples per run: the hypothesis profile's (conftest.py: 250 in `ci`) full plans, each with ~55 hostile
fields, each plan loaded by the real compose binary.
"""

from __future__ import annotations

import copy
import json
import tempfile
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml as pyyaml
from helpers import compose_config_run, full_plan, hostile_text, parse_yaml
from hypothesis import example, given
from hypothesis import strategies as st

from bottlegen import DocumentError, PlanError, Renderer, resources
from bottlegen.paths import json_path
from bottlegen.stages.resolve import host_path

BASE = Path("/srv/plans")


def at(*path: Any) -> Callable[[dict[str, Any]], Any]:
    def get(model: dict[str, Any]) -> Any:
        value: Any = model
        for part in path:
            value = value[part]
        return value

    return get


def env(service: str, name: str) -> Callable[[dict[str, Any]], Any]:
    return at("services", service, "environment", name)


def vol(service: str, index: int, key: str = "source") -> Callable[[dict[str, Any]], Any]:
    return at("services", service, "volumes", index, key)


def same(v: str) -> str:
    return v


def as_host_path(v: str) -> str:
    return host_path(v, BASE)


# field path in the plan -> (how to turn the hostile text into the field's value,
#                            what the compose model must then hold, and where)
FIELDS: dict[tuple[Any, ...], tuple[Callable[[str], str], Callable[[str], str], list[Callable]]] = {
    ("slug",): (same, same, [lambda m: m["name"]]),  # checked against the final prefix, below
    ("runtime_image",): (same, same, [at("services", "agent", "image")]),
    ("container_name",): (same, same, [at("services", "agent", "container_name")]),
    ("env_file",): (same, same, []),  # it does not exist, so it is never rendered
    ("forwarded_env", 0): (same, same, []),
    ("proxy", "internal_network"): (same, same, [at("networks", "internal", "name")]),
    ("proxy", "egress_network"): (same, same, [at("networks", "egress", "name")]),
    ("proxy", "yaml_path"): (same, as_host_path, [vol("pipelock", 0)]),
    ("proxy", "ca_cert_host_path"): (lambda v: "/" + v, as_host_path, [vol("pipelock", 1)]),
    ("proxy", "ca_key_host_path"): (same, as_host_path, [vol("pipelock", 2)]),
    ("git_gate", "entrypoint_script"): (lambda v: "/" + v, as_host_path, [vol("git-gate", 0)]),
    ("git_gate", "hook_script"): (same, as_host_path, [vol("git-gate", 1)]),
    ("git_gate", "access_hook_script"): (lambda v: "~/" + v, as_host_path, [vol("git-gate", 2)]),
    ("git_gate", "upstreams", 0, "identity_file"): (same, as_host_path, [vol("git-gate", 3)]),
    ("git_gate", "upstreams", 0, "name"): (
        same,
        same,
        [lambda m: vol("git-gate", 3, "target")(m).rsplit("/", 1)[1].removesuffix("-key")],
    ),
    ("egress", "pipelock_proxy_url"): (
        lambda v: "http://" + v,
        same,
        [env("egress", "EGRESS_UPSTREAM_PROXY"), env("egress", "HTTPS_PROXY"), env("egress", "HTTP_PROXY")],
    ),
    ("egress", "routes_path"): (same, as_host_path, [vol("egress", 0)]),
    ("egress", "mitmproxy_ca_host_path"): (lambda v: "/" + v, as_host_path, [vol("egress", 1)]),
    ("egress", "pipelock_ca_host_path"): (same, as_host_path, [vol("egress", 2)]),
    ("supervise", "queue_dir"): (same, as_host_path, [vol("supervise", 0)]),
    ("supervise", "current_config_dir"): (lambda v: "/" + v, as_host_path, [vol("agent", 0)]),
    ("settings", "project_prefix"): (same, same, []),
    ("settings", "container_name_pattern"): (lambda v: v + "{slug}{service}", same, []),
    ("settings", "build_context"): (
        lambda v: "/" + v,
        same,
        [at("services", s, "build", "context") for s in ("git-gate", "egress", "supervise")],
    ),
    **{
        ("settings", "images", s): (same, same, [at("services", s, "image")])
        for s in ("pipelock", "git-gate", "egress", "supervise")
    },
    **{
        ("settings", "dockerfiles", s): (same, same, [at("services", s, "build", "dockerfile")])
        for s in ("git-gate", "egress", "supervise")
    },
    ("settings", "hostnames", "egress"): (same, same, [at("services", "egress", "networks", "internal", "aliases", 0)]),
    ("settings", "hostnames", "supervise"): (
        same,
        same,
        [at("services", "supervise", "networks", "internal", "aliases", 0)],
    ),
    ("settings", "paths", "pipelock_config"): (
        lambda v: "/" + v,
        same,
        [vol("pipelock", 0, "target"), at("services", "pipelock", "command", 2)],
    ),
    ("settings", "paths", "pipelock_ca_cert"): (lambda v: "/" + v, same, [vol("pipelock", 1, "target")]),
    ("settings", "paths", "pipelock_ca_key"): (lambda v: "/" + v, same, [vol("pipelock", 2, "target")]),
    ("settings", "paths", "git_gate_entrypoint"): (lambda v: "/" + v, same, [vol("git-gate", 0, "target")]),
    ("settings", "paths", "git_gate_hook"): (lambda v: "/" + v, same, [vol("git-gate", 1, "target")]),
    ("settings", "paths", "git_gate_access_hook"): (lambda v: "/" + v, same, [vol("git-gate", 2, "target")]),
    ("settings", "paths", "git_gate_creds_dir"): (lambda v: "/" + v, same, []),
    ("settings", "paths", "egress_routes"): (lambda v: "/" + v, same, [vol("egress", 0, "target")]),
    ("settings", "paths", "egress_ca"): (lambda v: "/" + v, same, [vol("egress", 1, "target")]),
    ("settings", "paths", "egress_pipelock_ca"): (lambda v: "/" + v, same, [vol("egress", 2, "target")]),
    ("settings", "paths", "supervise_queue_dir"): (
        lambda v: "/" + v,
        same,
        [vol("supervise", 0, "target"), env("supervise", "SUPERVISE_QUEUE_DIR")],
    ),
    ("settings", "paths", "agent_current_config_dir"): (lambda v: "/" + v, same, [vol("agent", 0, "target")]),
    ("settings", "paths", "agent_ca_path"): (lambda v: "/" + v, same, [env("agent", "NODE_EXTRA_CA_CERTS")]),
    ("settings", "paths", "agent_ca_bundle"): (
        lambda v: "/" + v,
        same,
        [env("agent", "SSL_CERT_FILE"), env("agent", "REQUESTS_CA_BUNDLE")],
    ),
}
# Mapping keys: the hostile text replaces a key.
KEY_FIELDS = {
    ("egress", "token_env_map"): "ANTHROPIC_API_KEY",
    ("git_gate", "upstreams", 0, "extra_hosts"): "git.example",
}


def plain_plan() -> dict[str, Any]:
    plan = full_plan(env_file="agent.env")
    plan["settings"] = {"images": {}, "dockerfiles": {}, "hostnames": {}, "paths": {}}
    plan["egress"]["token_env_map"] = {"ANTHROPIC_API_KEY": "x"}
    plan["git_gate"]["upstreams"] = [
        {"name": "origin", "identity_file": "keys/origin", "extra_hosts": {"git.example": "10.0.0.1"}}
    ]
    return plan


def put(plan: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    target = plan
    for part in path[:-1]:
        target = target.setdefault(part, {}) if isinstance(part, str) else target[part]
    if isinstance(target, list) and path[-1] >= len(target):
        target.append(value)
    else:
        target[path[-1]] = value


def rename_key(plan: dict[str, Any], path: tuple[Any, ...], old: str, new: str) -> None:
    target = plan
    for part in path:
        target = target[part]
    target[new] = target.pop(old)


def key_paths(value: Any, prefix: tuple = ()) -> set[tuple]:
    """Every key path of a document, list positions included."""
    out = set()
    if isinstance(value, dict):
        for k, v in value.items():
            out.add((*prefix, k))
            out |= key_paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.add((*prefix, i))
            out |= key_paths(v, (*prefix, i))
    return out


@cache
def renderer() -> Renderer:
    return Renderer()  # on first use, not at import: collecting the tests renders nothing


def render_text(plan: dict[str, Any]) -> str:
    return renderer().render_data(plan, "plan.yml", BASE, "plan.yml").text


def model_of(text: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "docker-compose.yml"
        path.write_text(text, encoding="utf-8")
        proc = compose_config_run(path, env={})  # PATH only: nothing of this run reaches interpolation
    assert proc.returncode == 0, f"docker compose config rejected a rendered file:\n{proc.stderr}\n{text}"
    return json.loads(proc.stdout)


def unescape(value: Any) -> Any:
    """compose writes `$` back as `$$` in its output; the model's value is the unescaped one."""
    return value.replace("$$", "$") if isinstance(value, str) else value


def accepted_alone(path: tuple[Any, ...], value: Any, as_key: bool = False) -> bool:
    """Does the schema accept this one field's value, with every other field plain?"""
    plan = plain_plan()
    if as_key:
        rename_key(plan, path, KEY_FIELDS[path], value)
    else:
        put(plan, path, value)
    try:
        renderer().context_for(plan, "plan.yml", BASE)
    except PlanError as e:
        # A refusal names the field's full key path (a renamed key: the mapping's), or, for
        # the settings a container name is made of, the setting by its dotted name.
        where = f"plan.yml::{json_path(path)}"
        dotted = ".".join(str(p) for p in path)
        assert where in str(e) or (dotted in str(e) and "a DNS label" in str(e)), (  # noqa: PT017
            f"the refusal does not name {where}: {e}"
        )
        assert not (path in FREE_TEXT and 0 < len(value) <= 4096 and "\x00" not in value), (  # noqa: PT017
            f"{where} takes any text but NUL, yet {value!r} was refused: {e}"
        )
        return False
    return True


def _free_text_fields() -> frozenset[tuple[Any, ...]]:
    """The fields the plan schema marks as host paths: any text but NUL, up to 4096 characters."""
    schema = resources.load_schema(resources.PLAN_SCHEMA)

    def node_at(path: tuple[Any, ...]) -> dict[str, Any]:
        node: dict[str, Any] = schema
        for part in path:
            node = _concrete(schema, node)
            node = node["items"] if isinstance(part, int) else node["properties"][part]
        return _concrete(schema, node)

    return frozenset(path for path in FIELDS if node_at(path).get("x-host-path"))


def _concrete(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """node with its $ref followed and a nullable oneOf/anyOf reduced to its non-null branch."""
    while "$ref" in node:
        node = schema["$defs"][node["$ref"].rsplit("/", 1)[1]]
    for key in ("oneOf", "anyOf"):
        if key in node:
            branches = [_concrete(schema, b) for b in node[key]]
            node = next(b for b in branches if b.get("type") != "null")
    return node


FREE_TEXT = _free_text_fields()
assert FREE_TEXT, "the schema marks no field as a host path: the free-text check would check nothing"

ACROSS_FIELDS = (
    "also mounted by",
    "are the same; each may appear once",
    "would give the agent the host's",
    "is a host system tree",
    "a channel to the host",
    "kernel pseudo-filesystem",
    "is writable and in the host's",
    "is also a name of service",
    "two networks would be one",
    "a DNS label of",
)


@cache
def plain_text() -> str:
    return render_text(plain_plan())


@cache
def plain_keys() -> frozenset[tuple]:
    return frozenset(key_paths(parse_yaml(plain_text())))


@pytest.mark.compose
@given(values=st.fixed_dictionaries(dict.fromkeys([*FIELDS, *KEY_FIELDS], hostile_text)))
# Found by this property: an empty field of a nullable section was reported at the section
# ("is not of type 'null'"), not at the field.
@example(values={**dict.fromkeys([*FIELDS, *KEY_FIELDS], "ok"), ("supervise", "queue_dir"): ""})
def test_hostile_values_never_change_the_document(values):
    plan = plain_plan()
    expected: list[tuple[tuple, Callable, str]] = []
    for path, text in values.items():
        if path in KEY_FIELDS:
            if accepted_alone(path, text, as_key=True):
                rename_key(plan, path, KEY_FIELDS[path], text)
            continue
        shape, expect, places = FIELDS[path]
        value = shape(text)
        if accepted_alone(path, value):
            put(plan, path, value)
            expected += [(path, place, expect(value)) for place in places]
    try:
        text = render_text(plan)
    except (DocumentError, PlanError) as e:
        # Rules across fields (two settings give two mounts one target, two names one
        # service) and the sandbox's rules on a value (a bind of / into the agent).
        assert any(rule in str(e) for rule in ACROSS_FIELDS), e  # noqa: PT017 (only these refusals are allowed)
        return
    doc = parse_yaml(text)
    assert key_paths(doc) == plain_keys(), "a value changed the document's structure"
    assert pyyaml.safe_load(text) == doc, "a YAML 1.1 reader reads this file differently"
    model = model_of(text)
    prefix = plan["settings"].get("project_prefix", "claude-bottle")
    expected = [(p, place, f"{prefix}-{want}" if p == ("slug",) else want) for p, place, want in expected]
    for path, place, want in expected:
        assert unescape(place(model)) == want, f"{path}: compose read {place(model)!r}, the plan said {want!r}"
    assert sorted(model["services"]) == sorted(doc["services"])
    assert set(model["networks"]) == {"internal", "egress"}
    assert all("privileged" not in service for service in model["services"].values())


@pytest.mark.parametrize(
    "path",
    [
        p
        for p, (shape, _, _) in FIELDS.items()
        if (p[0] in ("slug", "forwarded_env", "proxy") and "network" in str(p))
        or p in (("slug",), ("forwarded_env", 0))
    ],
)
def test_names_refuse_structure_characters_with_the_key_path(path):
    for text in ["a\nb", "a: b", "x y", "${X}", "-x", "a#b"]:
        assert not accepted_alone(path, FIELDS[path][0](text))


def test_plain_values_render_and_compose_reads_them():
    model = model_of(plain_text())
    assert model["services"]["git-gate"]["volumes"][3]["source"] == "/srv/plans/keys/origin"


def test_a_hostile_value_that_looks_like_yaml_is_one_string():
    plan = plain_plan()
    plan["runtime_image"] = "img"
    plan["proxy"]["yaml_path"] = "/x\nprivileged: true\n  - y: {{ 1 }} ${HOME}"
    text = render_text(plan)
    assert key_paths(parse_yaml(text)) == plain_keys()
    model = model_of(text)
    assert unescape(model["services"]["pipelock"]["volumes"][0]["source"]) == plan["proxy"]["yaml_path"]
    assert "privileged" not in model["services"]["pipelock"]


def test_copying_the_plan_is_not_needed():
    plan = plain_plan()
    before = copy.deepcopy(plan)
    render_text(plan)
    assert plan == before


def test_a_refused_field_of_a_nullable_section_is_named_itself():
    plan = plain_plan()
    plan["supervise"]["queue_dir"] = ""
    with pytest.raises(PlanError) as caught:
        renderer().context_for(plan, "plan.yml", BASE)
    assert caught.value.details == ["plan.yml::$.supervise.queue_dir: '' should be non-empty"]
