"""Default deny: the policy judges what the engine will do, by allow-list. Each class of
opening named in the seal issue is tried here as an attacker would, with an operator's
template, a plan value or a change on the host, and must be refused at render (exit 5 naming
the template, or exit 3 naming the plan key); `up`'s second judgement is in test_engine.py."""

from __future__ import annotations

import copy
import json
import os
import socket
from pathlib import Path

import pytest
from helpers import REPO, full_plan, parse_yaml
from test_policy import AGENT_NETWORKS, PACKAGED, render

from bottlegen import DocumentError, PlanError, Renderer, host
from bottlegen.compose import policy

COMPOSE_SERVICE_KEYS = sorted(
    json.loads((REPO / "schema/compose-spec/compose-spec.json").read_text())["definitions"]["service"]["properties"]
)


def agent_adds(text: str) -> dict[str, tuple[str, str]]:
    return {"agent_yaml_j2": (AGENT_NETWORKS, AGENT_NETWORKS + text)}


def supervise_adds(text: str) -> dict[str, tuple[str, str]]:
    anchor = '    environment:\n      - {{ "SUPERVISE_BOTTLE_SLUG=" ~ plan.slug }}\n'
    return {"supervise_yaml_j2": (anchor, text + anchor)}


def relaxed(*rules: str) -> dict[str, str]:
    manifest = (PACKAGED / "manifest.yaml").read_text() + "relax:\n"
    return {"manifest_yaml": manifest + "".join(f"  {rule}: reviewed for a test\n" for rule in rules)}


def refused(tmp_path: Path, message: str, plan: dict | None = None, **edits) -> DocumentError:
    with pytest.raises(DocumentError, match=message) as err:
        render(tmp_path, plan, **edits)
    assert err.value.exit_code == 5
    return err.value


def baseline_facts(agent_changes: dict) -> policy.Facts:
    rendered = Renderer().render_data(full_plan(), "plan.yml", Path("/srv/plans"), "plan.yml")
    assert rendered.basis is not None
    merged = copy.copy(rendered.basis.merged)
    merged.document = copy.deepcopy(merged.document)
    merged.document["services"]["agent"].update(agent_changes)
    return policy.facts_of(merged, "agent", rendered.basis.gateways, rendered.context, host.lexical())


# --- 2. allow-lists ---------------------------------------------------------------------


@pytest.mark.parametrize("key", COMPOSE_SERVICE_KEYS)
def test_the_agent_carries_only_allow_listed_keys(key):
    """Every key compose knows: on the allow-list, judged by a rule of its own, or refused by
    agent-keys. A key compose adds later is refused until someone puts it on the list."""
    facts = baseline_facts({key: {"placeholder": True}})
    problems = [p.message for p in policy.judge(facts, {}, ("agent-keys",))]
    mentioned = [m for m in problems if f"carry `{key}`" in m]
    if key in policy.AGENT_KEYS or key in policy.JUDGED_AGENT_KEYS:
        assert mentioned == []
    else:
        assert mentioned and "relax `agent-keys`" in mentioned[0]


@pytest.mark.parametrize(
    "key",
    [
        "gpus",
        "device_cgroup_rules",
        "secrets",
        "configs",
        "sysctls",
        "dns",
        "extra_hosts",
        "links",
        "external_links",
        "cgroup_parent",
        "profiles",
        "network_mode",
        "pid",
        "ipc",
        "uts",
        "userns_mode",
    ],
)
def test_the_keys_the_issue_names_are_refused_for_the_agent(key):
    value = "host" if key in ("network_mode", "pid", "ipc", "uts", "userns_mode") else ["x"]
    assert policy.judge(baseline_facts({key: value}), {}), key


def test_deploy_may_limit_but_not_reserve_devices():
    limits = {"resources": {"limits": {"cpus": "1", "memory": "1g", "pids": 10}, "reservations": {"memory": "1g"}}}
    assert policy.judge(baseline_facts({"deploy": limits}), {}, ("agent-keys",)) == []
    devices = {"resources": {"reservations": {"devices": [{"capabilities": ["gpu"]}]}}}
    [problem] = policy.judge(baseline_facts({"deploy": devices}), {}, ("agent-keys",))
    assert problem.at == ("services", "agent", "deploy", "resources", "reservations", "devices")


@pytest.mark.parametrize(
    ("option", "allowed"),
    [
        ("no-new-privileges:true", True),
        ("no-new-privileges", True),
        ("no-new-privileges=true", True),
        ("seccomp=builtin", True),
        ("apparmor=docker-default", True),
        ("no-new-privileges:false", False),
        ("seccomp=/srv/profile.json", False),
        ("seccomp:unconfined", False),
        ("apparmor=my-own-profile", False),
        ("label=disable", False),
        ("label:type:spc_t", False),
        ("label=user:system_u", False),
        ("systempaths=unconfined", False),
        ("${SECURITY}", False),
    ],
)
def test_the_agents_security_options_are_an_allow_list(option, allowed):
    problems = policy.judge(baseline_facts({"security_opt": [option]}), {}, ("agent-privileges",))
    assert (problems == []) is allowed, problems


INTERPOLATED = {
    "in the agent's environment": (agent_adds("    labels: [x]\n"), None),  # control: no interpolation
    "the agent's environment takes a host variable": (
        {"agent_yaml_j2": ('      - {{ "NO_PROXY=" ~ facts.no_proxy }}\n', "      - NO_PROXY=${HOME}\n")},
        r"services\.agent\.environment\[4\] .*filled in by compose",
    ),
    "a gateway's image": (
        {"pipelock_yaml_j2": ("    image: {{ settings.images.pipelock }}\n", "    image: ${PIPELOCK_IMAGE}\n")},
        r"services\.pipelock\.image .*filled in by compose",
    ),
    "the agent's runtime": (agent_adds("    runtime: ${RUNTIME}\n"), r"services\.agent\.runtime .*filled in"),
    "the internal network's name": (
        {"document_yaml_j2": ("    name: {{ plan.proxy.internal_network }}\n", "    name: ${NET}\n")},
        r"internal-role network's name would be filled in",
    ),
    "a sidecar's network_mode": (supervise_adds("    ipc: ${IPC}\n"), r"services\.supervise\.ipc .*filled in"),
}


@pytest.mark.parametrize("case", INTERPOLATED)
def test_interpolation_is_refused_where_the_policy_judges(tmp_path, case):
    edits, message = INTERPOLATED[case]
    if message is None:
        render(tmp_path, **edits)
    else:
        refused(tmp_path, message, **edits)


def test_a_sidecars_environment_may_interpolate(tmp_path):
    edits = {
        "supervise_yaml_j2": (
            '      - {{ "SUPERVISE_PORT=" ~ settings.ports.supervise }}\n',
            '      - {{ "SUPERVISE_PORT=" ~ settings.ports.supervise }}\n      - LEVEL=${LOG_LEVEL}\n',
        )
    }
    assert "LEVEL=${LOG_LEVEL}" in parse_yaml(render(tmp_path, **edits).text)["services"]["supervise"]["environment"]


NAMESPACES = {
    "a sidecar in a gateway's PID namespace": (supervise_adds("    pid: service:pipelock\n"), r"gateway pipelock"),
    "a sidecar in the host's IPC namespace": (supervise_adds("    ipc: host\n"), r"shares the host's namespace"),
    "a sidecar in the agent's PID namespace by container name": (
        supervise_adds("    pid: container:claude-bottle-demo-agent\n"),
        r"shares the namespace of the agent",
    ),
    "a sidecar in a container outside the bottle": (
        supervise_adds("    uts: container:someone-else\n"),
        r"a container outside the bottle",
    ),
    "a sidecar takes a gateway's volumes": (supervise_adds("    volumes_from: [egress]\n"), r"volumes of \"egress\""),
}


@pytest.mark.parametrize("case", NAMESPACES)
def test_no_service_shares_the_hosts_the_agents_or_a_gateways_namespaces(tmp_path, case):
    edits, message = NAMESPACES[case]
    refused(tmp_path, r"services\.supervise\.\w+.* " + message, **edits)


def test_each_refusal_names_its_rule_and_the_relax_that_would_allow_it(tmp_path):
    error = refused(tmp_path, r"services\.supervise\.ipc", **supervise_adds("    ipc: host\n"))
    assert "[rule service-namespaces; a manifest may relax it: `relax: {service-namespaces: <the reason>}`]" in str(
        error
    )
    with pytest.raises(PlanError) as plan_error:
        render(tmp_path, full_plan(proxy={**full_plan()["proxy"], "yaml_path": "/dev/null"}))
    assert "[rule host-paths, which always holds]" in str(plan_error.value)


def test_a_sidecar_may_keep_a_private_namespace(tmp_path):
    assert parse_yaml(render(tmp_path, **supervise_adds("    ipc: private\n")).text)["services"]["supervise"]["ipc"]


def strict(**changes) -> dict:
    return full_plan(hardening="strict", **changes)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("    pids_limit: {{ h.pids_limit }}\n", "    pids_limit: -1\n", r"pids_limit -1 is no limit"),
        ("    mem_limit: {{ h.mem_limit }}\n", "    mem_limit: 64g\n", r"mem_limit \"64g\" is looser than"),
        ("    cpus: {{ h.cpus }}\n", "    cpus: 0\n", r"cpus 0 is no limit"),
        ("    cpus: {{ h.cpus }}\n", "    cpus: 64\n", r"cpus 64 is looser than"),
    ],
)
def test_strict_hardening_is_judged_by_value(tmp_path, old, new, message):
    refused(tmp_path, message, strict(), _macros_yaml_j2=(old, new))


def test_use_runsc_cannot_be_dropped_by_a_template(tmp_path):
    refused(
        tmp_path,
        r"use_runsc, but the agent has no runtime",
        full_plan(use_runsc=True),
        agent_yaml_j2=("    runtime: runsc\n", ""),
    )
    refused(
        tmp_path,
        r"use_runsc, but the agent runtime is \"runc\"",
        full_plan(use_runsc=True),
        agent_yaml_j2=("    runtime: runsc\n", "    runtime: runc\n"),
    )


# --- 3. networks by their engine names ----------------------------------------------------


def test_an_external_network_without_a_name_is_its_key_on_the_engine(tmp_path):
    edits = {
        "document_yaml_j2": (
            "  egress:\n    name: {{ plan.proxy.egress_network }}\n",
            "  egress:\n",
        ),
    }
    plan = full_plan(proxy={**full_plan()["proxy"], "internal_network": "egress"})
    refused(tmp_path, r"networks internal and egress are one network \(\"egress\"\) on the engine", plan, **edits)


def test_the_internal_role_is_never_an_engine_built_in(tmp_path):
    """A template that names an engine network as the internal one (the plan cannot: see
    test_a_plan_naming_an_engine_network_is_refused_at_its_key)."""
    edits = {"document_yaml_j2": ("name: {{ plan.proxy.internal_network }}", "name: bridge")}
    refused(tmp_path, r"built-in 'bridge' network", **edits)


def test_a_role_less_key_for_the_egress_network_is_still_the_way_out(tmp_path):
    edits = {
        "document_yaml_j2": (
            "networks:\n",
            "networks:\n  side:\n    name: {{ plan.proxy.egress_network }}\n    external: true\n",
        ),
        "supervise_yaml_j2": (
            "          - {{ settings.hostnames.supervise }}\n",
            "          - {{ settings.hostnames.supervise }}\n      side: null\n",
        ),
    }
    refused(tmp_path, r"supervise joins the internal network and side", **edits)


# --- 4. tokens ----------------------------------------------------------------------------


def test_a_token_variable_never_reaches_the_agents_environment(tmp_path):
    no_proxy = '      - {{ "NO_PROXY=" ~ facts.no_proxy }}\n'
    forwarded = (no_proxy, no_proxy + "      - AA_TOKEN\n")
    refused(tmp_path, r"environment\[5\] .*AA_TOKEN is a token variable .*forwarded", agent_yaml_j2=forwarded)
    # compared exactly, as the engine does; a value written in the file is not the token's
    near = (no_proxy, no_proxy + "      - aa_token\n      - AA_TOKEN_OLD\n      - ZZ_TOKEN=not-the-token\n")
    assert "aa_token" in render(tmp_path, agent_yaml_j2=near).document["services"]["agent"]["environment"]


def test_a_token_variable_never_reaches_the_agent_as_a_secret(tmp_path):
    edits = {
        **relaxed("agent-keys"),
        **agent_adds("    secrets: [api]\n"),
        "document_yaml_j2": ("networks:\n", "secrets:\n  api:\n    environment: ZZ_TOKEN\nnetworks:\n"),
    }
    refused(tmp_path, r"secret 'api' is the token variable ZZ_TOKEN", **edits)


def test_a_token_variable_never_reaches_the_agent_by_its_env_file(tmp_path):
    env_file = tmp_path / "agent.env"
    env_file.write_text("# the agent's settings\nEDITOR=vi\nexport AA_TOKEN\n")
    with pytest.raises(PlanError, match=r"plan\.yml::\$\.env_file: .*sets AA_TOKEN, a token variable"):
        render(tmp_path, full_plan(env_file=str(env_file)))
    env_file.write_text("EDITOR=vi\n")
    render(tmp_path, full_plan(env_file=str(env_file)))


# --- 1. host paths, as the engine will open them -----------------------------------------


@pytest.fixture
def unix_socket(tmp_path):
    path = tmp_path / "engine.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    yield path
    server.close()


def test_a_socket_behind_a_symlink_is_refused_for_any_service(tmp_path, unix_socket):
    link = tmp_path / "hook"
    link.symlink_to(unix_socket)
    plan = full_plan(git_gate={**full_plan()["git_gate"], "hook_script": str(link)})
    with pytest.raises(
        PlanError, match=r"\$\.git_gate\.hook_script: .*resolves to .*engine\.sock, a socket\) is not a file"
    ):
        render(tmp_path, plan)


def test_a_fifo_or_a_device_is_refused(tmp_path):
    fifo = tmp_path / "routes"
    os.mkfifo(fifo)
    plan = full_plan(egress={**full_plan()["egress"], "routes_path": str(fifo)})
    with pytest.raises(PlanError, match=r"\$\.egress\.routes_path: .*routes \(a FIFO\) is not a file"):
        render(tmp_path, plan)
    with pytest.raises(PlanError, match=r"\$\.proxy\.yaml_path: .*/dev/null \(a device\)"):
        render(tmp_path, full_plan(proxy={**full_plan()["proxy"], "yaml_path": "/dev/null"}))


def test_nothing_in_proc_or_sys_is_given_to_any_service(tmp_path):
    """/proc/self/environ, read by compose at up, would be compose's environment: every token."""
    plan = full_plan()
    for path in ("/proc/self/environ", "/sys/kernel"):
        plan["git_gate"] = {**full_plan()["git_gate"], "hook_script": path}
        with pytest.raises(PlanError, match=r"hook_script: .*kernel pseudo-filesystem"):
            render(tmp_path, plan)
    edit = ("    volumes:\n", "    env_file: [/proc/self/environ]\n    volumes:\n")
    refused(
        tmp_path,
        r"services\.supervise\.env_file\[0\] .*env_file /proc/self/environ .*pseudo-filesystem",
        supervise_yaml_j2=edit,
    )


def test_a_symlink_into_a_system_tree_is_judged_where_it_leads(tmp_path):
    link = tmp_path / "config"
    link.symlink_to("/etc")
    plan = full_plan(supervise={"queue_dir": "/srv/b/sv/queue", "current_config_dir": str(link)})
    with pytest.raises(
        PlanError, match=r"\$\.supervise\.current_config_dir: .*resolves to /etc, a directory\) is a host system tree"
    ):
        render(tmp_path, plan)


def test_the_agent_gets_nothing_in_a_system_tree(tmp_path):
    plan = full_plan(supervise={"queue_dir": "/srv/b/sv/queue", "current_config_dir": "/etc/ssl"})
    with pytest.raises(PlanError, match=r"current_config_dir: .*give the agent the host's /etc"):
        render(tmp_path, plan)


def test_a_sidecar_may_read_in_a_tree_but_not_have_its_root_or_write_there(tmp_path):
    gate = full_plan()["git_gate"]
    render(tmp_path, full_plan(git_gate={**gate, "hook_script": "/etc/hostname"}))  # read-only, not a root
    with pytest.raises(PlanError, match=r"hook_script: .*bind /home .*system tree"):
        render(tmp_path, full_plan(git_gate={**gate, "hook_script": "/home"}))
    with pytest.raises(PlanError, match=r"hook_script: .*/var/lib/docker/volumes .*engine's data"):
        render(tmp_path, full_plan(git_gate={**gate, "hook_script": "/var/lib/docker/volumes"}))
    with pytest.raises(PlanError, match=r"queue_dir: .*bind /var/run/q .*writable and in the host's (/var)?/run;"):
        render(tmp_path, full_plan(supervise={"queue_dir": "/var/run/q", "current_config_dir": "/srv/b/sv/current"}))


def test_writable_only_where_the_plan_marks_a_path_writable(tmp_path):
    pipelock = "{{ m.bind(plan.proxy.yaml_path, settings.paths.pipelock_config) }}"
    writable = "{{ m.bind(plan.proxy.yaml_path, settings.paths.pipelock_config, read_only=false) }}"
    refused(
        tmp_path,
        r"pipelock\.volumes\[0\]\.source .*is writable, but the plan marks no such host path writable",
        pipelock_yaml_j2=(pipelock, writable),
    )
    # supervise's queue is marked x-writable in the plan schema: it stays writable
    assert render(tmp_path).document["services"]["supervise"]["volumes"][0]["read_only"] is False


def test_the_agent_never_writes_to_the_host_not_even_where_the_plan_allows_a_sidecar(tmp_path):
    """supervise's queue is marked writable for supervise: mounted read-write into the agent, it
    would let the agent write into the queue a human approves from."""
    queue = "{{ m.bind(plan.supervise.queue_dir, '/queue', read_only=false) }}"
    edits = {"agent_yaml_j2": ("    volumes:\n", f"    volumes:\n      - {queue}\n")}
    refused(
        tmp_path, r"services\.agent\.volumes\[0\]\.source .*is writable: the agent may not write to the host", **edits
    )
    read_only = {
        "agent_yaml_j2": ("    volumes:\n", "    volumes:\n      - {{ m.bind(plan.supervise.queue_dir, '/queue') }}\n")
    }
    render(tmp_path, **read_only)  # reading it is the agent's to do


def test_a_users_home_itself_is_never_given(tmp_path, monkeypatch):
    home = tmp_path / "home-of-someone"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    plan = full_plan(git_gate={**full_plan()["git_gate"], "hook_script": str(home)})
    with pytest.raises(PlanError, match=r"hook_script: .*a user's home"):
        Renderer().render_data(plan, "plan.yml", tmp_path, "plan.yml")
    inside = home / "hook"
    inside.write_text("#!/bin/sh\n")
    plan["git_gate"]["hook_script"] = str(inside)
    Renderer().render_data(plan, "plan.yml", tmp_path, "plan.yml")  # a file in it, read-only: a sidecar may


def test_top_level_secret_and_config_files_are_host_paths(tmp_path):
    given = {
        **relaxed("agent-keys"),
        **agent_adds("    configs: [keys]\n"),
        "document_yaml_j2": ("networks:\n", "configs:\n  keys:\n    file: /root/.ssh/id_ed25519\nnetworks:\n"),
    }
    refused(
        tmp_path,
        r"\$\.configs\.keys\.file .*config file /root/\.ssh/id_ed25519 .*give the agent the host's /root",
        **given,
    )
    given["document_yaml_j2"] = ("networks:\n", "configs:\n  keys:\n    file: /\nnetworks:\n")
    refused(tmp_path, r"\$\.configs\.keys\.file .*config file / .*system tree", **given)


def test_a_build_context_is_a_host_path(tmp_path):
    plan = full_plan(settings={"build_context": "/"})
    with pytest.raises(PlanError, match=r"\$\.settings\.build_context: .*build context / .*system tree"):
        render(tmp_path, plan)


def test_a_lexical_view_reads_nothing_of_the_host(tmp_path, unix_socket):
    """host.lexical() judges paths as written: a library render that must not depend on the
    machine. The socket behind the symlink is then up's to find."""
    link = tmp_path / "hook"
    link.symlink_to(unix_socket)
    plan = full_plan(git_gate={**full_plan()["git_gate"], "hook_script": str(link)})
    rendered = Renderer(view=host.lexical()).render_data(plan, "plan.yml", tmp_path, "plan.yml")
    problems, _ = rendered.pinned(host.local())
    [problem] = problems
    assert problem.path == "$.git_gate.hook_script" and problem.file == "plan.yml" and problem.rule == "host-paths"
    assert "a socket) is not a file" in problem.message and "$.git_gate.hook_script: " in str(problem)


def test_pinned_names_the_resolved_paths_and_the_golden_keeps_the_plans(tmp_path):
    target = tmp_path / "real-hook"
    target.write_text("#!/bin/sh\n")
    link = tmp_path / "hook"
    link.symlink_to(target)
    plan = full_plan(git_gate={**full_plan()["git_gate"], "hook_script": str(link)})
    rendered = render(tmp_path, plan)
    assert str(link) in rendered.text and str(target) not in rendered.text
    problems, pinned = rendered.pinned(host.local())
    assert problems == []
    assert str(target) in pinned.text and str(link) not in pinned.text
    hook = [v for v in pinned.document["services"]["git-gate"]["volumes"] if v["target"].endswith("pre-receive")]
    assert hook[0]["source"] == str(target)


def test_a_refusal_in_json_is_the_same_record_as_its_text(tmp_path):
    """--error-format json prints each problem's fields (the rule and the relax among them),
    built from the same record as the text line, nothing read back from the text."""
    from helpers import run_cli, write_plan

    plan = write_plan(tmp_path, full_plan(proxy={**full_plan()["proxy"], "yaml_path": "/dev/null"}))
    text = run_cli("render", str(plan))
    as_json = run_cli("render", "--error-format", "json", str(plan))
    assert text.returncode == as_json.returncode == 3
    [problem] = json.loads(as_json.stderr)["problems"]
    assert problem["file"] == str(plan) and problem["path"] == "$.proxy.yaml_path" and problem["rule"] == "host-paths"
    assert problem["hint"] == "[rule host-paths, which always holds]"
    at = f":{problem['line']}" if "line" in problem else ""
    line = f"{problem['file']}{at}::{problem['path']}: {problem['message']} {problem['hint']}"
    assert f"  {line}\n" in text.stderr


def test_a_plan_whose_two_networks_are_one_is_refused_at_its_key(tmp_path):
    proxy = {**full_plan()["proxy"], "internal_network": "shared", "egress_network": "shared"}
    with pytest.raises(
        PlanError, match=r"plan\.yml::\$\.proxy\.egress_network: \"shared\" is also proxy\.internal_network"
    ):
        render(tmp_path, full_plan(proxy=proxy))
    proxy = {k: v for k, v in proxy.items() if k != "egress_network"} | {
        "internal_network": "claude-bottle-demo-egress"
    }
    with pytest.raises(PlanError, match=r"\$\.proxy\.internal_network: .* is also proxy\.egress_network"):
        render(tmp_path, full_plan(proxy=proxy))  # equal to the other's default


@pytest.mark.parametrize("key", ["internal_network", "egress_network"])
@pytest.mark.parametrize("name", ["none", "host", "bridge"])
def test_a_plan_naming_an_engine_network_is_refused_at_its_key(tmp_path, key, name):
    """Found by the hostile-values property: `none` as the internal network was refused by
    the policy, blaming the packaged template; it is the plan's value, and the plan is told."""
    proxy = {**full_plan()["proxy"], key: name}
    with pytest.raises(PlanError, match=rf"plan\.yml::\$\.proxy\.{key}: '{name}' is the engine's built-in network"):
        render(tmp_path, full_plan(proxy=proxy))
