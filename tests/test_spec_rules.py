"""Each rule of docs/reference.md (the renderer bottlegen reproduces), pinned by a test that fails if it breaks.

The sections below follow the page's: the document, key order, networks, volumes, environment,
depends_on / runtime / env_file, extra_hosts, host paths.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from helpers import full_plan, minimal_plan, render_doc

from bottlegen import PlanError

SIDECARS = ["pipelock", "git-gate", "egress", "supervise"]


def services(doc):
    return list(doc["services"])


# --- the document -----------------------------------------------------------------------


def test_project_name_is_prefix_and_slug(renderer):
    assert render_doc(renderer, full_plan())["name"] == "claude-bottle-demo"


def test_all_services_in_spec_order(renderer):
    assert services(render_doc(renderer, full_plan())) == [*SIDECARS, "agent"]


@pytest.mark.parametrize(
    ("change", "absent"),
    [
        ({"git_gate": {"upstreams": []}}, "git-gate"),
        ({"git_gate": None}, "git-gate"),
        ({"egress": {"routes": []}}, "egress"),
        ({"egress": None}, "egress"),
        ({"supervise": None}, "supervise"),
    ],
    ids=["git-gate-no-upstreams", "git-gate-absent", "egress-no-routes", "egress-absent", "supervise-absent"],
)
def test_service_conditions(renderer, change, absent):
    plan = full_plan(**{k: v for k, v in change.items() if v is not None})
    for key, value in change.items():
        if value is None:
            plan.pop(key)
    doc = render_doc(renderer, plan)
    assert absent not in doc["services"]
    assert services(doc) == [s for s in [*SIDECARS, "agent"] if s != absent]
    assert absent not in doc["services"]["agent"]["depends_on"]


def test_supervise_null_means_no_service(renderer):
    assert "supervise" not in render_doc(renderer, full_plan(supervise=None) | {"supervise": None})["services"]


def test_minimal_plan_is_pipelock_and_agent(renderer):
    assert services(render_doc(renderer, minimal_plan())) == ["pipelock", "agent"]


def test_two_external_networks_and_nothing_else(renderer):
    doc = render_doc(renderer, full_plan())
    assert doc["networks"] == {
        "internal": {"name": "bn-internal", "external": True, "x-bottlegen": {"role": "internal"}},
        "egress": {"name": "bn-egress", "external": True, "x-bottlegen": {"role": "egress"}},
    }
    assert list(doc) == ["name", "services", "networks"]  # no named volumes
    assert not any("ports" in s for s in doc["services"].values())


# --- key order and shapes ---------------------------------------------------------------

KEY_ORDER = {
    "pipelock": ["image", "container_name", "command", "networks", "volumes"],
    "git-gate": ["image", "build", "container_name", "networks", "volumes", "extra_hosts"],
    "egress": ["image", "build", "container_name", "networks", "environment", "volumes", "depends_on"],
    "supervise": ["image", "build", "container_name", "networks", "environment", "volumes"],
    "agent": [
        "image",
        "container_name",
        "command",
        "networks",
        "environment",
        "runtime",
        "env_file",
        "volumes",
        "depends_on",
    ],
}


def test_key_order_inside_each_service(renderer, tmp_path):
    env_file = tmp_path / "agent.env"
    env_file.write_text("A=1\n")
    doc = render_doc(renderer, full_plan(use_runsc=True, env_file=str(env_file)))
    for name, order in KEY_ORDER.items():
        assert list(doc["services"][name]) == order, name


def test_pipelock_command_and_image(renderer):
    pipelock = render_doc(renderer, full_plan())["services"]["pipelock"]
    assert pipelock["image"] == "claude-bottle/pipelock:latest"
    assert pipelock["command"] == ["run", "--config", "/etc/pipelock.yaml", "--listen", "0.0.0.0:8888"]
    assert "build" not in pipelock


def test_built_sidecars_have_image_tag_and_build(renderer):
    doc = render_doc(renderer, full_plan())
    for name in ("git-gate", "egress", "supervise"):
        service = doc["services"][name]
        assert service["image"] == f"claude-bottle/{name}:latest"
        assert service["build"] == {"context": "/opt/claude-bottle", "dockerfile": f"Dockerfile.{name}"}


def test_container_names_follow_the_pattern(renderer):
    doc = render_doc(renderer, full_plan())
    for name in [*SIDECARS, "agent"]:
        assert doc["services"][name]["container_name"] == f"claude-bottle-demo-{name}"


def test_agent_container_name_from_plan(renderer):
    doc = render_doc(renderer, full_plan(container_name="my-agent"))
    assert doc["services"]["agent"]["container_name"] == "my-agent"


def test_container_name_pattern_setting(renderer):
    doc = render_doc(
        renderer, full_plan(settings={"project_prefix": "acme", "container_name_pattern": "{service}.{slug}.{prefix}"})
    )
    assert doc["name"] == "acme-demo"
    assert doc["services"]["egress"]["container_name"] == "egress.demo.acme"
    assert doc["services"]["agent"]["container_name"] == "agent.demo.acme"
    # The agent's default proxy, pipelock, is dialled by its container name.
    no_egress = render_doc(
        renderer, full_plan(egress={"routes": []}, settings={"container_name_pattern": "x-{service}-{slug}"})
    )
    assert no_egress["services"]["agent"]["environment"][0] == "HTTPS_PROXY=http://x-pipelock-demo:8888"


# --- networks and aliases ---------------------------------------------------------------


def test_aliases(renderer):
    doc = render_doc(renderer, full_plan())
    svc = doc["services"]
    assert svc["pipelock"]["networks"] == {"internal": {"aliases": ["claude-bottle-demo-pipelock"]}, "egress": None}
    assert svc["git-gate"]["networks"] == {"internal": {"aliases": ["claude-bottle-demo-git-gate"]}, "egress": None}
    assert svc["egress"]["networks"] == {"internal": {"aliases": ["egress"]}, "egress": None}
    assert svc["supervise"]["networks"] == {"internal": {"aliases": ["supervise"]}}
    assert svc["agent"]["networks"] == {"internal": None}


def test_hostname_settings_change_aliases(renderer):
    doc = render_doc(renderer, full_plan(settings={"hostnames": {"egress": "out", "supervise": "ask"}}))
    assert doc["services"]["egress"]["networks"]["internal"] == {"aliases": ["out"]}
    assert doc["services"]["supervise"]["networks"]["internal"] == {"aliases": ["ask"]}
    env = doc["services"]["agent"]["environment"]
    assert "HTTPS_PROXY=http://out:8080" in env
    assert "NO_PROXY=localhost,127.0.0.1,ask" in env


# --- volumes ----------------------------------------------------------------------------


def test_read_only_flags(renderer):
    doc = render_doc(renderer, full_plan())
    for name, service in doc["services"].items():
        for volume in service.get("volumes", []):
            assert volume["type"] == "bind"
            writable = name == "supervise" and volume["target"] == "/var/lib/supervise/queue"
            assert volume["read_only"] is (not writable), (name, volume)


def test_pipelock_mounts(renderer):
    volumes = render_doc(renderer, full_plan())["services"]["pipelock"]["volumes"]
    assert [(v["source"], v["target"]) for v in volumes] == [
        ("/srv/b/pipelock.yaml", "/etc/pipelock.yaml"),
        ("/srv/b/ca.pem", "/etc/pipelock/ca.pem"),
        ("/srv/b/ca-key.pem", "/etc/pipelock/ca-key.pem"),
    ]


def test_git_gate_mounts_scripts_then_keys_in_plan_order(renderer):
    volumes = render_doc(renderer, full_plan())["services"]["git-gate"]["volumes"]
    assert [(v["source"], v["target"]) for v in volumes] == [
        ("/srv/b/gg/entrypoint.sh", "/usr/local/bin/git-gate-entrypoint.sh"),
        ("/srv/b/gg/pre-receive", "/etc/git-gate/hooks/pre-receive"),
        ("/srv/b/gg/access-hook", "/etc/git-gate/hooks/access-hook"),
        ("/srv/b/keys/origin", "/etc/git-gate/creds/origin-key"),
        ("/srv/b/keys/mirror", "/etc/git-gate/creds/mirror-key"),
    ]


def test_egress_and_supervise_mounts(renderer):
    svc = render_doc(renderer, full_plan())["services"]
    assert [(v["source"], v["target"]) for v in svc["egress"]["volumes"]] == [
        ("/srv/b/eg/routes.yaml", "/etc/egress/routes.yaml"),
        ("/srv/b/eg/mitm.pem", "/home/mitmproxy/.mitmproxy/mitmproxy-ca.pem"),
        ("/srv/b/ca.pem", "/etc/egress/pipelock-ca.pem"),
    ]
    assert svc["supervise"]["volumes"] == [
        {"type": "bind", "source": "/srv/b/sv/queue", "target": "/var/lib/supervise/queue", "read_only": False}
    ]


def test_agent_mounts_current_config_only_with_supervise(renderer):
    doc = render_doc(renderer, full_plan())
    assert doc["services"]["agent"]["volumes"] == [
        {
            "type": "bind",
            "source": "/srv/b/sv/current",
            "target": "/etc/claude-bottle/current-config",
            "read_only": True,
        }
    ]
    assert "volumes" not in render_doc(renderer, full_plan(supervise=None))["services"]["agent"]


# --- environment ------------------------------------------------------------------------


def test_egress_environment_order_and_bare_token_names(renderer):
    env = render_doc(renderer, full_plan())["services"]["egress"]["environment"]
    url = "http://claude-bottle-demo-pipelock:8888"
    assert env == [
        f"EGRESS_UPSTREAM_PROXY={url}",
        f"HTTPS_PROXY={url}",
        f"HTTP_PROXY={url}",
        "NO_PROXY=localhost,127.0.0.1",
        "EGRESS_UPSTREAM_CA=/etc/egress/pipelock-ca.pem",
        "AA_TOKEN",
        "ZZ_TOKEN",
    ]


def test_token_map_values_are_never_rendered(renderer):
    plan = full_plan()
    plan["egress"]["token_env_map"] = {"AA_TOKEN": "value-that-must-not-appear"}
    text = renderer.render_data(plan, "p", Path("/"), "p").text
    assert "value-that-must-not-appear" not in text
    assert "- AA_TOKEN\n" in text


def test_supervise_environment(renderer):
    env = render_doc(renderer, full_plan())["services"]["supervise"]["environment"]
    assert env == ["SUPERVISE_BOTTLE_SLUG=demo", "SUPERVISE_QUEUE_DIR=/var/lib/supervise/queue", "SUPERVISE_PORT=8077"]


def agent_env(renderer, plan):
    return render_doc(renderer, plan)["services"]["agent"]["environment"]


def test_agent_environment_order_with_egress_and_supervise(renderer):
    proxy, no_proxy = "http://egress:8080", "localhost,127.0.0.1,supervise"
    assert agent_env(renderer, full_plan()) == [
        f"HTTPS_PROXY={proxy}",
        f"HTTP_PROXY={proxy}",
        f"https_proxy={proxy}",
        f"http_proxy={proxy}",
        f"NO_PROXY={no_proxy}",
        f"no_proxy={no_proxy}",
        "NODE_EXTRA_CA_CERTS=/usr/local/share/ca-certificates/claude-bottle.crt",
        "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
        "REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt",
        "CLAUDE_CODE_OAUTH_TOKEN",
        "ZED_TOKEN",  # forwarded names, sorted, bare
    ]


def test_agent_proxy_is_pipelock_without_egress(renderer):
    env = agent_env(renderer, full_plan(egress={"routes": []}))
    assert env[:4] == [
        f"{k}=http://claude-bottle-demo-pipelock:8888"
        for k in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy")
    ]


def test_agent_proxy_port_settings(renderer):
    assert agent_env(renderer, full_plan(settings={"ports": {"egress": 9000}}))[0] == "HTTPS_PROXY=http://egress:9000"
    no_egress = full_plan(egress={"routes": []}, settings={"ports": {"pipelock": 3128}})
    assert agent_env(renderer, no_egress)[0] == "HTTPS_PROXY=http://claude-bottle-demo-pipelock:3128"


def test_no_proxy_adds_supervise_only_when_present(renderer):
    assert "NO_PROXY=localhost,127.0.0.1,supervise" in agent_env(renderer, full_plan())
    env = agent_env(renderer, full_plan(supervise=None))
    assert "NO_PROXY=localhost,127.0.0.1" in env and "no_proxy=localhost,127.0.0.1" in env


# --- depends_on, runtime, env_file ------------------------------------------------------


def test_depends_on(renderer):
    svc = render_doc(renderer, full_plan())["services"]
    assert svc["agent"]["depends_on"] == SIDECARS
    assert svc["egress"]["depends_on"] == ["pipelock"]
    assert "depends_on" not in svc["pipelock"]
    assert render_doc(renderer, minimal_plan())["services"]["agent"]["depends_on"] == ["pipelock"]
    assert render_doc(renderer, full_plan(git_gate={"upstreams": []}, supervise=None))["services"]["agent"][
        "depends_on"
    ] == ["pipelock", "egress"]


def test_runtime_only_with_runsc(renderer):
    assert render_doc(renderer, full_plan(use_runsc=True))["services"]["agent"]["runtime"] == "runsc"
    assert "runtime" not in render_doc(renderer, full_plan(use_runsc=False))["services"]["agent"]
    assert "runtime" not in render_doc(renderer, full_plan())["services"]["agent"]


def test_env_file_only_when_it_exists_and_is_not_empty(renderer, tmp_path):
    present, empty = tmp_path / "present.env", tmp_path / "empty.env"
    present.write_text("X=1\n")
    empty.write_text("")
    assert render_doc(renderer, full_plan(env_file=str(present)))["services"]["agent"]["env_file"] == [str(present)]
    assert "env_file" not in render_doc(renderer, full_plan(env_file=str(empty)))["services"]["agent"]
    assert (
        "env_file" not in render_doc(renderer, full_plan(env_file=str(tmp_path / "missing.env")))["services"]["agent"]
    )
    # A directory is not an env file, even a non-empty one (`~` is one).
    assert "env_file" not in render_doc(renderer, full_plan(env_file=str(tmp_path)))["services"]["agent"]
    # Relative to the plan's directory, like every host path.
    assert render_doc(renderer, full_plan(env_file="present.env"), base_dir=tmp_path)["services"]["agent"][
        "env_file"
    ] == [str(present)]


# --- extra_hosts ------------------------------------------------------------------------


def test_extra_hosts_union_sorted_by_host(renderer):
    plan = full_plan()
    plan["git_gate"]["upstreams"][1]["extra_hosts"]["b.example"] = "10.0.0.2"  # same pair twice is fine
    assert render_doc(renderer, plan)["services"]["git-gate"]["extra_hosts"] == [
        "a.example:10.0.0.1",
        "b.example:10.0.0.2",
    ]


def test_no_extra_hosts_key_without_hosts(renderer):
    plan = full_plan()
    for upstream in plan["git_gate"]["upstreams"]:
        upstream.pop("extra_hosts")
    assert "extra_hosts" not in render_doc(renderer, plan)["services"]["git-gate"]


def test_extra_hosts_conflict_is_a_plan_error(renderer):
    plan = full_plan()
    plan["git_gate"]["upstreams"][1]["extra_hosts"]["b.example"] = "10.9.9.9"
    with pytest.raises(PlanError) as err:
        render_doc(renderer, plan)
    message = str(err.value)
    assert "$.git_gate.upstreams[1].extra_hosts" in message
    assert "10.9.9.9" in message and "10.0.0.2" in message


def test_upstream_names_are_unique(renderer):
    plan = full_plan()
    plan["git_gate"]["upstreams"][1]["name"] = "origin"
    with pytest.raises(PlanError, match=r"upstreams\[1\]\.name.*already used"):
        render_doc(renderer, plan)


# --- host paths ---------------------------------------------------------------------------


def test_tilde_expands_to_home_of_who_renders(renderer, monkeypatch):
    monkeypatch.setenv("HOME", "/home/someone")
    plan = full_plan()
    plan["git_gate"]["upstreams"][0]["identity_file"] = "~/.ssh/id_ed25519"
    plan["proxy"]["yaml_path"] = "~/pipelock.yaml"
    svc = render_doc(renderer, plan)["services"]
    assert svc["git-gate"]["volumes"][3]["source"] == "/home/someone/.ssh/id_ed25519"
    assert svc["pipelock"]["volumes"][0]["source"] == "/home/someone/pipelock.yaml"


def test_relative_paths_resolve_against_the_plan_directory(renderer, tmp_path, monkeypatch):
    monkeypatch.chdir("/")
    plan = full_plan(settings={"build_context": "ctx"})
    plan["proxy"]["yaml_path"] = "conf/../pipelock.yaml"
    svc = render_doc(renderer, plan, base_dir=tmp_path)["services"]
    assert svc["pipelock"]["volumes"][0]["source"] == str(tmp_path / "pipelock.yaml")
    assert svc["egress"]["build"]["context"] == str(tmp_path / "ctx")


def test_every_host_path_resolves_against_the_plan_directory(renderer, tmp_path):
    """Relative host paths in every section, supervise (a nullable section) included."""
    plan = full_plan()
    plan["supervise"] = {"queue_dir": "sv/queue", "current_config_dir": "sv/current"}
    plan["egress"]["routes_path"] = "eg/routes.yaml"
    plan["git_gate"]["hook_script"] = "gg/hook"
    plan["git_gate"]["upstreams"][0]["identity_file"] = "keys/origin"
    svc = render_doc(renderer, plan, base_dir=tmp_path)["services"]
    assert svc["supervise"]["volumes"][0]["source"] == str(tmp_path / "sv/queue")
    assert svc["agent"]["volumes"][0]["source"] == str(tmp_path / "sv/current")
    assert svc["egress"]["volumes"][0]["source"] == str(tmp_path / "eg/routes.yaml")
    assert svc["git-gate"]["volumes"][1]["source"] == str(tmp_path / "gg/hook")
    assert svc["git-gate"]["volumes"][3]["source"] == str(tmp_path / "keys/origin")


def test_dollar_is_escaped_for_compose(renderer):
    plan = full_plan()
    plan["proxy"]["yaml_path"] = "/srv/$HOME/${X}/p.yaml"
    assert render_doc(renderer, plan)["services"]["pipelock"]["volumes"][0]["source"] == "/srv/$$HOME/$${X}/p.yaml"


def test_settings_change_in_container_paths(renderer):
    doc = render_doc(
        renderer, full_plan(settings={"paths": {"pipelock_config": "/etc/pl/conf.yaml", "git_gate_creds_dir": "/keys"}})
    )
    svc = doc["services"]
    assert svc["pipelock"]["command"][2] == "/etc/pl/conf.yaml"
    assert svc["pipelock"]["volumes"][0]["target"] == "/etc/pl/conf.yaml"
    assert svc["git-gate"]["volumes"][3]["target"] == "/keys/origin-key"


def test_rendering_does_not_change_the_plan(renderer):
    plan = full_plan()
    before = copy.deepcopy(plan)
    render_doc(renderer, plan)
    assert plan == before
