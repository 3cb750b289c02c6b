"""The sandbox's rules hold whatever templates are in effect: each is broken here by an
operator's override template (or a plan) and must be refused, naming the rule's place."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import REPO, full_plan, minimal_plan, parse_yaml, run_cli, write_plan

from bottlegen import DocumentError, PlanError, Renderer, TemplateError

PACKAGED = REPO / "templates"


def templates(tmp_path: Path, **edits: tuple[str, str] | str) -> Path:
    """An override folder: each NAME=(old, new) edits the packaged NAME; NAME=text replaces it."""
    directory = tmp_path / "ovr"
    directory.mkdir(exist_ok=True)
    for key, edit in edits.items():
        name = key.replace("__", ".").replace("_yaml_j2", ".yaml.j2").replace("_yaml", ".yaml")
        if isinstance(edit, tuple):
            old, new = edit
            text = (PACKAGED / name).read_text()
            assert old in text, f"{old!r} is not in {name}"
            text = text.replace(old, new)
        else:
            text = edit
        (directory / name).write_text(text)
    return directory


def render(tmp_path: Path, plan: dict | None = None, **edits):
    renderer = Renderer([templates(tmp_path, **edits)]) if edits else Renderer()
    return renderer.render_data(plan or full_plan(), "plan.yml", tmp_path, "plan.yml")


AGENT_NETWORKS = "    networks:\n      internal: null\n"
# What a host path that gives the agent the engine or the host is refused with: a socket (a
# channel to the host), a system tree itself, or a path in one.
HOST_GIVEN = r"(channel to the host|is a host system tree|would give the agent the host's|pseudo-filesystem)"


def agent_volume(entry: str) -> dict[str, tuple[str, str]]:
    """An edit of agent.yaml.j2 that mounts entry first in the agent's volumes."""
    block = '{% if "supervise" in services %}\n    volumes:\n'
    return {"agent_yaml_j2": (block, f'    volumes:\n      - {entry}\n{{% if "supervise" in services %}}\n')}


# rule broken -> (template edits, what the message must say)
BROKEN = {
    "agent on the egress network": (
        {"agent_yaml_j2": (AGENT_NETWORKS, "    networks:\n      internal: null\n      egress: null\n")},
        r"\$\.services\.agent\.networks\.egress in template agent\.yaml\.j2 .*may join only the internal-role network",
    ),
    "agent with no networks (compose's default network)": (
        {"agent_yaml_j2": (AGENT_NETWORKS, "")},
        r"the agent names no networks",
    ),
    "agent in the host's network": ({"agent_yaml_j2": (AGENT_NETWORKS, "    network_mode: host\n")}, r"network_mode"),
    "agent with a published port": (
        {"agent_yaml_j2": (AGENT_NETWORKS, AGENT_NETWORKS + "    ports:\n      - 8080:80\n")},
        r"\$\.services\.agent\.ports .*publish",
    ),
    "privileged agent": ({"agent_yaml_j2": (AGENT_NETWORKS, AGENT_NETWORKS + "    privileged: true\n")}, r"privileged"),
    "agent with a capability": (
        {"agent_yaml_j2": (AGENT_NETWORKS, AGENT_NETWORKS + "    cap_add: [NET_ADMIN]\n")},
        r"cap_add.*capabilities",
    ),
    "agent with a device": (
        {"agent_yaml_j2": (AGENT_NETWORKS, AGENT_NETWORKS + "    devices: ['/dev/kvm:/dev/kvm']\n")},
        r"devices",
    ),
    "agent without seccomp": (
        {"agent_yaml_j2": (AGENT_NETWORKS, AGENT_NETWORKS + "    security_opt: ['seccomp:unconfined']\n")},
        r"security_opt\[0\].*confinement",
    ),
    "agent without AppArmor": (
        {"agent_yaml_j2": (AGENT_NETWORKS, AGENT_NETWORKS + "    security_opt: ['apparmor=unconfined']\n")},
        r"confinement",
    ),
    "agent in the host's pid namespace": (
        {"agent_yaml_j2": (AGENT_NETWORKS, AGENT_NETWORKS + "    pid: host\n")},
        r"\.pid .*namespace",
    ),
    "agent in a gateway's pid namespace": (
        {"agent_yaml_j2": (AGENT_NETWORKS, AGENT_NETWORKS + "    pid: service:pipelock\n")},
        r"\.pid .*namespace",
    ),
    "agent in the host's user namespace": (
        {"agent_yaml_j2": (AGENT_NETWORKS, AGENT_NETWORKS + "    userns_mode: host\n")},
        r"userns_mode",
    ),
    "the Docker socket in the agent (short form)": (
        agent_volume("/var/run/docker.sock:/var/run/docker.sock"),
        r"volumes\[0\] .*/var/run/docker\.sock .*" + HOST_GIVEN,
    ),
    "the host's root in the agent (long form, written oddly)": (
        agent_volume("{type: bind, source: //., target: /host}"),
        r"volumes\[0\]\.source .*bind //\. \(resolves to /, a directory\) is a host system tree",
    ),
    "/proc below its top in the agent": (
        agent_volume("{type: bind, source: /proc/1/root, target: /h}"),
        HOST_GIVEN,
    ),
    "a named volume that binds the host's root": (
        {
            **agent_volume("hostroot:/h"),
            "document_yaml_j2": (
                "networks:",
                "volumes:\n  hostroot:\n    driver_opts: {type: none, o: bind, device: /}\nnetworks:",
            ),
        },
        r"\$\.volumes\.hostroot\.driver_opts\.device in template document\.yaml\.j2 .*volume device / .*system tree",
    ),
    "a bind source compose would interpolate": (
        agent_volume("{type: bind, source: '/run/${SOCK}', target: /s}"),
        r"volumes\[0\]\.source .*would be filled in by compose from the environment of `up`",
    ),
    "the agent takes a sidecar's volumes": (
        {"agent_yaml_j2": (AGENT_NETWORKS, AGENT_NETWORKS + "    volumes_from: [pipelock]\n")},
        r"volumes_from",
    ),
    "a sidecar that is not a gateway bridges the networks": (
        {
            "supervise_yaml_j2": (
                "          - {{ settings.hostnames.supervise }}\n",
                "          - {{ settings.hostnames.supervise }}\n      egress: null\n",
            )
        },
        r"\$\.services\.supervise\.networks .*supervise joins the internal network and egress.*role: gateway",
    ),
    "a sidecar on the internal network and compose's default one": (
        {
            "supervise_yaml_j2": (
                "          - {{ settings.hostnames.supervise }}\n",
                "          - {{ settings.hostnames.supervise }}\n      default: null\n",
            ),
            "document_yaml_j2": ("networks:\n", "networks:\n  default: {}\n"),
        },
        r"supervise joins the internal network and default",
    ),
    "no network has the internal role": (
        {"document_yaml_j2": ("      role: internal\n", "      role: egress\n")},
        r"exactly one network must have `x-bottlegen: \{role: internal\}`; none has it",
    ),
    "two networks have the internal role": (
        {"document_yaml_j2": ("      role: egress\n", "      role: internal\n")},
        r"role: internal\}`; found internal, egress",
    ),
    "the two roles are one network on the engine": (
        {"document_yaml_j2": ("{{ plan.proxy.egress_network }}", "{{ plan.proxy.internal_network }}")},
        r"are one network .* must differ",
    ),
    "an internal-role network compose creates with a route out": (
        {
            "document_yaml_j2": (
                "    external: true\n    x-bottlegen:\n      role: internal\n",
                "    x-bottlegen:\n      role: internal\n",
            )
        },
        r"must be `internal: true`",
    ),
    "a document without a project name": ({"document_yaml_j2": ("name: {{ project }}\n", "")}, r"top-level `name:`"),
    "include brings in services unseen": (
        {"document_yaml_j2": ("name: {{ project }}\n", "name: {{ project }}\ninclude: [other.yml]\n")},
        r"`include`",
    ),
    "extends brings in settings unseen": (
        {"agent_yaml_j2": (AGENT_NETWORKS, AGENT_NETWORKS + "    extends: {file: other.yml, service: x}\n")},
        r"`extends`",
    ),
    "a template sets one variable twice": (
        {
            "agent_yaml_j2": (
                '      - {{ "no_proxy=" ~ facts.no_proxy }}\n',
                '      - {{ "no_proxy=" ~ facts.no_proxy }}\n      - HTTPS_PROXY\n',
            )
        },
        r"environment\[6\] .*\"HTTPS_PROXY\" is set twice for service agent \(also at environment\[0\]\)",
    ),
    "an alias equal to another service's name": (
        {
            "supervise_yaml_j2": (
                "          - {{ settings.hostnames.supervise }}\n",
                "          - {{ settings.hostnames.supervise }}\n          - pipelock\n",
            )
        },
        r"\"pipelock\" is also a name of service pipelock",
    ),
    "an alias that is no DNS name": (
        {
            "supervise_yaml_j2": (
                "          - {{ settings.hostnames.supervise }}\n",
                "          - {{ settings.hostnames.supervise }}\n          - " + "s" * 64 + "\n",
            )
        },
        r"a DNS label of 64 characters",
    ),
}


@pytest.mark.parametrize("case", BROKEN)
def test_each_rule_holds_against_an_operator_template(tmp_path, case):
    edits, message = BROKEN[case]
    with pytest.raises(DocumentError, match=message) as err:
        render(tmp_path, **edits)
    assert err.value.exit_code == 5
    assert "sandbox's rules" in str(err.value)


def test_roles_not_keys_decide(tmp_path):
    """Networks renamed in an operator's document are still recognised by their roles."""
    document = (
        (PACKAGED / "document.yaml.j2")
        .read_text()
        .replace("  internal:\n", "  inner:\n")
        .replace("  egress:\n", "  outer:\n")
    )

    def swap(name):
        return (PACKAGED / name).read_text().replace("internal:", "inner:").replace("egress: null", "outer: null")

    edits = {
        "document_yaml_j2": document,
        **{
            n.replace(".", "_"): swap(n)
            for n in ("agent.yaml.j2", "pipelock.yaml.j2", "git-gate.yaml.j2", "egress.yaml.j2", "supervise.yaml.j2")
        },
    }
    edits["_macros_yaml_j2"] = (
        (PACKAGED / "_macros.yaml.j2")
        .read_text()
        .replace("{internal:", "{inner:")
        .replace("egress: null}", "outer: null}")
    )
    edits = {k.replace("git-gate", "git-gate"): v for k, v in edits.items()}
    directory = templates(tmp_path, **{k: v for k, v in edits.items() if "git-gate" not in k})
    (directory / "git-gate.yaml.j2").write_text(swap("git-gate.yaml.j2"))
    doc = parse_yaml(Renderer([directory]).render_data(full_plan(), "plan.yml", tmp_path, "plan.yml").text)
    assert set(doc["networks"]) == {"inner", "outer"} and doc["services"]["agent"]["networks"] == {"inner": None}
    (directory / "agent.yaml.j2").write_text(
        swap("agent.yaml.j2").replace("      inner: null\n", "      outer: null\n")
    )
    with pytest.raises(DocumentError, match=r"networks\.outer .*the egress-role network"):
        Renderer([directory]).render_data(full_plan(), "plan.yml", tmp_path, "plan.yml")


def test_a_relaxed_rule_is_named_in_every_file(tmp_path):
    manifest = (
        PACKAGED / "manifest.yaml"
    ).read_text() + "relax:\n  agent-ports: the agent serves a preview; reviewed by ops\n"
    agent = (AGENT_NETWORKS, AGENT_NETWORKS + "    ports:\n      - 127.0.0.1:3000:3000\n")
    rendered = render(tmp_path, manifest_yaml=manifest, agent_yaml_j2=agent)
    assert parse_yaml(rendered.text)["services"]["agent"]["ports"] == ["127.0.0.1:3000:3000"]
    assert (
        "# SANDBOX RULES RELAXED by the templates' manifest (review these):\n#   agent-ports: the agent serves a preview"
        in rendered.text
    )
    # the relaxation covers that rule only
    agent = (AGENT_NETWORKS, AGENT_NETWORKS + "    ports: [3000]\n    privileged: true\n")
    with pytest.raises(DocumentError, match="privileged"):
        render(tmp_path, manifest_yaml=manifest, agent_yaml_j2=agent)


def test_only_the_listed_rules_can_be_relaxed(tmp_path):
    manifest = (PACKAGED / "manifest.yaml").read_text() + "relax:\n  network-roles: nope\n"
    with pytest.raises(TemplateError, match=r"(?s)invalid manifest.*\$\.relax: unknown key \"network-roles\""):
        render(tmp_path, manifest_yaml=manifest)
    manifest = (PACKAGED / "manifest.yaml").read_text() + "relax:\n  agent-ports: ''\n"
    with pytest.raises(TemplateError, match=r"invalid manifest"):
        render(tmp_path, manifest_yaml=manifest)


def test_the_manifest_names_exactly_one_agent(tmp_path):
    with pytest.raises(TemplateError, match=r"exactly one service must have `role: agent`.*none has it"):
        render(tmp_path, manifest_yaml=("    role: agent\n", ""))
    with pytest.raises(TemplateError, match="found pipelock, agent"):
        render(
            tmp_path,
            manifest_yaml=(
                "    template: pipelock.yaml.j2\n    role: gateway\n",
                "    template: pipelock.yaml.j2\n    role: agent\n",
            ),
        )


def test_an_agent_that_is_not_rendered_is_refused(tmp_path):
    with pytest.raises(DocumentError, match=r"the agent service 'agent' .* is not rendered"):
        render(
            tmp_path, manifest_yaml=("    template: agent.yaml.j2\n", "    template: agent.yaml.j2\n    when: false\n")
        )


# --- what a plan cannot do, whatever the templates -------------------------------------


@pytest.mark.parametrize(
    ("plan", "where"),
    [
        (
            full_plan(forwarded_env=["HOME", "HTTPS_PROXY"]),
            r"plan\.yml::\$\.forwarded_env\[1\]: .*\"HTTPS_PROXY\" is set twice",
        ),
        (full_plan(forwarded_env=["SSL_CERT_FILE"]), r"plan\.yml::\$\.forwarded_env\[0\]"),
        (
            full_plan(egress={**full_plan()["egress"], "token_env_map": {"EGRESS_UPSTREAM_CA": "x"}}),
            r"plan\.yml::\$\.egress\.token_env_map\.EGRESS_UPSTREAM_CA: .*set twice for service egress",
        ),
        (
            full_plan(egress={**full_plan()["egress"], "token_env_map": {"HTTPS_PROXY": "x"}}),
            r"\$\.egress\.token_env_map\.HTTPS_PROXY",
        ),
        (
            full_plan(settings={"hostnames": {"egress": "pipelock"}}),
            r"plan\.yml::\$\.settings\.hostnames\.egress: .*also a name of service pipelock",
        ),
        (
            full_plan(settings={"hostnames": {"supervise": "Claude-Bottle-Demo-Egress"}}),
            r"\$\.settings\.hostnames\.supervise: .*also a name",
        ),
        (
            minimal_plan(slug="s" * 60),
            r"plan\.yml::\$\.slug: makes pipelock's container name .*a DNS label of 83 characters",
        ),
        (
            minimal_plan(settings={"container_name_pattern": "0..{slug}{service}"}),
            r"plan\.yml::\$\.settings\.container_name_pattern: makes pipelock's container name \"0\.\.",
        ),
        (minimal_plan(container_name="a" * 64), r"plan\.yml::\$\.container_name: .*64 characters"),
        (minimal_plan(container_name="0."), r"plan\.yml::\$\.container_name: .*\"0\.\", not a valid DNS name"),
        (
            full_plan(supervise={"queue_dir": "/srv/q", "current_config_dir": "/var/run"}),
            r"plan\.yml::\$\.supervise\.current_config_dir: .*bind /var/run .*system tree",
        ),
    ],
)
def test_a_plan_value_that_would_weaken_the_bottle_is_a_plan_error(tmp_path, plan, where):
    with pytest.raises(PlanError, match=where) as err:
        Renderer().render_data(plan, "plan.yml", tmp_path, "plan.yml")
    assert err.value.exit_code == 3


def test_a_container_name_dns_cannot_resolve_is_refused_with_the_plan_alone(tmp_path):
    """Found by the hostile-values property: the context already refuses it, not only the policy."""
    with pytest.raises(PlanError, match=r"plan\.yml::\$\.container_name: .*not a valid DNS name"):
        Renderer().context_for(minimal_plan(container_name="0."), "plan.yml", tmp_path)


def test_integral_numbers_are_written_as_integers(tmp_path):
    doc = parse_yaml(
        Renderer()
        .render_data(
            full_plan(settings={"ports": {"pipelock": 8888.0, "egress": 9e3}}), "plan.yml", tmp_path, "plan.yml"
        )
        .text
    )
    assert doc["services"]["pipelock"]["command"][-1] == "0.0.0.0:8888"
    assert "HTTPS_PROXY=http://egress:9000" in doc["services"]["agent"]["environment"]
    with pytest.raises(PlanError, match=r"ports\.pipelock"):
        Renderer().render_data(full_plan(settings={"ports": {"pipelock": 8888.5}}), "plan.yml", tmp_path, "plan.yml")


def test_two_plans_of_one_project_are_caught_by_a_batch(tmp_path):
    a = write_plan(tmp_path, minimal_plan(slug="b-c", settings={"project_prefix": "a"}), "one.yml")
    b = write_plan(tmp_path, minimal_plan(slug="c", settings={"project_prefix": "a-b"}), "two.yml")
    c = write_plan(tmp_path, minimal_plan(slug="other"), "three.yml")
    proc = run_cli("render", "--out-dir", str(tmp_path / "out"), str(a), str(b), str(c))
    assert proc.returncode == 3, proc.stderr
    assert f"{b}: makes compose project 'a-b-c', as {a} does" in proc.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["b-c.yml", "other.yml"]


# --- hardening: strict, as the plan asks, whatever the templates ---------------------------

STRICT = full_plan(hardening="strict")
HARDENING_BROKEN = {
    "a template that leaves the hardening out": (
        {"agent_yaml_j2": ("{{ m.hardening(settings.hardening[service.name]) }}\n", "")},
        r"\$\.services\.agent in template agent\.yaml\.j2 \(override .*\): hardening is strict, but agent keeps its capabilities",
    ),
    "a writable root": (
        {"_macros_yaml_j2": ("    read_only: true\n", "    read_only: false\n")},
        r"pipelock's root file system is writable",
    ),
    "a capability the plan does not give": (
        {"egress_yaml_j2": ("    depends_on:\n", "    cap_add: [NET_ADMIN]\n    depends_on:\n")},
        r"egress adds NET_ADMIN, which the plan does not give it \(settings\.hardening\.egress\.cap_add\)",
    ),
    "no no-new-privileges": (
        {"_macros_yaml_j2": ("      - no-new-privileges:true\n", "      - label=type:container_t\n")},
        r"lacks `security_opt: \[no-new-privileges:true\]`",
    ),
    "no limits": (
        {"_macros_yaml_j2": ("    pids_limit: {{ h.pids_limit }}\n", "")},
        r"has no pids_limit",
    ),
    "an agent without an init": (
        {"agent_yaml_j2": ("    init: true\n", "")},
        r"the agent runs without an init",
    ),
}


@pytest.mark.parametrize("case", HARDENING_BROKEN)
def test_strict_hardening_holds_against_an_operator_template(tmp_path, case):
    edits, message = HARDENING_BROKEN[case]
    with pytest.raises(DocumentError, match=message):
        render(tmp_path, STRICT, **edits)


def test_strict_hardening_is_what_the_packaged_templates_write(tmp_path):
    plan = full_plan(hardening="strict", settings={"hardening": {"pipelock": {"cap_add": ["NET_BIND_SERVICE"]}}})
    doc = parse_yaml(render(tmp_path, plan).text)
    for name, service in doc["services"].items():
        assert service["cap_drop"] == ["ALL"] and service["read_only"] is True, name
        assert service["security_opt"] == ["no-new-privileges:true"] and service["tmpfs"][0] == "/tmp", name
        assert {"pids_limit", "mem_limit", "cpus"} <= set(service), name
    assert doc["services"]["pipelock"]["cap_add"] == ["NET_BIND_SERVICE"]
    assert "cap_add" not in doc["services"]["egress"] and doc["services"]["agent"]["init"] is True
    # without it, nothing of it
    plain = parse_yaml(render(tmp_path / "plain", full_plan()).text)
    assert not any({"cap_drop", "read_only", "init"} & set(s) for s in plain["services"].values())


def test_the_agent_gets_no_capability_even_from_the_plan(tmp_path):
    plan = full_plan(hardening="strict", settings={"hardening": {"agent": {"cap_add": ["NET_RAW"]}}})
    with pytest.raises(PlanError, match=r"plan\.yml::\$\.settings\.hardening\.agent: unknown key \"cap_add\""):
        render(tmp_path, plan)


def test_a_document_that_drops_the_seal_is_refused(tmp_path):
    edits = {"document_yaml_j2": ("x-bottlegen:\n  seal_host: true\n", "")}
    with pytest.raises(DocumentError, match=r"the plan asks for seal_host, but the document lacks"):
        render(tmp_path, full_plan(seal_host=True), **edits)
    doc = parse_yaml(render(tmp_path / "packaged", full_plan(seal_host=True)).text)
    assert doc["x-bottlegen"] == {"seal_host": True}
    assert "x-bottlegen" not in parse_yaml(render(tmp_path / "plain", full_plan()).text)


def test_sealing_needs_root_and_iptables(monkeypatch, tmp_path):
    from bottlegen import EngineError
    from bottlegen.engine import firewall

    monkeypatch.setattr(firewall.os, "geteuid", lambda: 1000)
    with pytest.raises(EngineError, match=r"seal_host: true needs root .*nothing was started") as caught:
        firewall.require()
    assert caught.value.exit_code == 8
    monkeypatch.setattr(firewall.os, "geteuid", lambda: 0)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EngineError, match=r"needs iptables on PATH"):
        firewall.require()
