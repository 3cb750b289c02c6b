"""The kubernetes target: every example plan as Kubernetes objects, reviewed goldens, proven
offline with the field's own tools: kubernetes-validate (the official schemas of a pinned
Kubernetes and of the oldest we support, strict), agent-sandbox's vendored CRD schema, and
IBM's network-config-analyzer, which computes what the NetworkPolicies let each pod reach.
The policy's promises are shown by operator templates that try to break them."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from helpers import EXAMPLES, REPO, run_cli, write_plan

from bottlegen import resources, schemas
from bottlegen.pipeline import Renderer

EXAMPLE_PLANS = sorted(p.name for p in EXAMPLES.iterdir() if p.suffix in (".yml", ".json"))
# The Kubernetes the objects are checked against: the validator's newest, and the oldest the
# templates support (Pod Security admission's labels are GA from 1.25).
KUBERNETES_VERSIONS = ("1.37.0", "1.25.0")
TEMPLATES = REPO / "templates-kubernetes"
NCA = Path(sys.executable).parent / "nca"
DEFAULT_PORTS = {"pipelock": 8888, "git-gate": 9418, "egress": 8080, "supervise": 8077}
MINIMAL = EXAMPLES / "minimal.yml"


@pytest.fixture(scope="module")
def kube() -> Renderer:
    return Renderer(target=resources.KUBERNETES)


def documents(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d is not None]


def render(kube: Renderer, name: str, **sets: str) -> str:
    if not sets:
        return kube.render(EXAMPLES / name).text
    args = [w for key, value in sets.items() for w in ("--set", f"{key}={value}")]
    result = run_cli("render", "--target", "kubernetes", *args, str(EXAMPLES / name))
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("name", EXAMPLE_PLANS)
def test_golden(name, kube, golden, golden_home):
    assert kube.render(EXAMPLES / name).text == golden


@pytest.mark.parametrize("kind", ["Pod", "Sandbox"])
@pytest.mark.parametrize("name", EXAMPLE_PLANS)
def test_objects_pass_the_official_schemas_strictly(name, kind, kube):
    for document in documents(
        render(kube, name, **({"settings.kubernetes.agent_kind": kind} if kind != "Pod" else {}))
    ):
        if document["kind"] == "Sandbox":
            assert schemas.violations(resources.SANDBOX_SCHEMA, document) == []
            continue
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(document, version, strict=True)  # raises on any violation


def test_the_strict_checks_see_a_stray_field():
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "x"},
        "spec": {"containers": [{"name": "a", "image": "b", "bogus": 1}]},
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(pod, KUBERNETES_VERSIONS[0], strict=True)
    sandbox = {
        "apiVersion": "agents.x-k8s.io/v1beta1",
        "kind": "Sandbox",
        "metadata": {"name": "x"},
        "spec": {"podTemplate": {"bogus": 1}},
    }
    assert schemas.violations(resources.SANDBOX_SCHEMA, sandbox)


def test_the_resolver_the_readme_gives_passes_the_schemas():
    for document in documents((REPO / "docs" / "kubernetes-resolver.yaml").read_text()):
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(document, version, strict=True)


# --- what the NetworkPolicies allow, computed by network-config-analyzer ------------------

ELSEWHERE = """\
apiVersion: v1
kind: Namespace
metadata: {name: bottle-dns, labels: {kubernetes.io/metadata.name: bottle-dns}}
---
apiVersion: v1
kind: Pod
metadata: {name: resolver, namespace: bottle-dns, labels: {app.kubernetes.io/name: bottle-resolver}}
spec: {containers: [{name: dns, image: coredns, ports: [{containerPort: 53, protocol: UDP}]}]}
---
apiVersion: v1
kind: Namespace
metadata: {name: elsewhere, labels: {kubernetes.io/metadata.name: elsewhere}}
---
apiVersion: v1
kind: Pod
metadata: {name: other, namespace: elsewhere, labels: {app: other}}
spec: {containers: [{name: other, image: other, ports: [{containerPort: 8888, protocol: TCP}]}]}
"""
LINE = re.compile(r"^(\S+) => (\S+) : (.+)$")


def connections(text: str, tmp_path: Path) -> set[tuple[str, str, str]]:
    """Every (from, to, what) the bottle's NetworkPolicies allow, by network-config-analyzer,
    in a cluster of the bottle, a bottle resolver, and a namespace of someone else's."""
    folder = tmp_path / "cluster"
    folder.mkdir(exist_ok=True)
    (folder / "bottle.yaml").write_text(text)
    (folder / "elsewhere.yaml").write_text(ELSEWHERE)
    result = subprocess.run(
        [str(NCA), "--connectivity", str(folder / "bottle.yaml"), "--resource_list", str(folder),
         "--output_format", "txt_no_fw_rules"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    found = {m.groups() for m in map(LINE.match, result.stdout.splitlines()) if m}
    assert found, result.stdout  # the analysis ran and listed connections
    return found  # type: ignore[return-value]


def agent_reach(found: set[tuple[str, str, str]], namespace: str) -> dict[str, str]:
    return {to: what for source, to, what in found if source == f"{namespace}/agent[Pod]"}


def expected_reach(text: str, ports: dict[str, int]) -> tuple[str, dict[str, str]]:
    """The bottle's namespace, and what its agent must reach: each sidecar it has on its port
    (the plan's settings.ports), and the resolver's DNS."""
    namespace = next(d for d in documents(text) if d["kind"] == "Namespace")["metadata"]["name"]
    sidecars = [d["metadata"]["name"] for d in documents(text) if d["kind"] == "Deployment"]
    reach = {f"{namespace}/{s}[Deployment]": f"{{protocols:TCP,dst_ports:{ports[s]}}}" for s in sidecars}
    reach["bottle-dns/resolver[Pod]"] = "{protocols:TCP, UDP,dst_ports:53}"
    return namespace, reach


@pytest.mark.parametrize("name", EXAMPLE_PLANS)
def test_the_agent_reaches_its_sidecars_ports_and_the_resolver_and_nothing_else(name, kube, tmp_path):
    text = render(kube, name)
    settings = kube.context(EXAMPLES / name)["settings"]
    namespace, expected = expected_reach(text, {**settings["ports"], **settings["kubernetes"]["ports"]})
    found = connections(text, tmp_path)
    assert agent_reach(found, namespace) == expected
    assert not [c for c in found if c[1] == f"{namespace}/agent[Pod]"], "nothing reaches the agent"
    supervise = f"{namespace}/supervise[Deployment]"
    assert not [c for c in found if c[0] == supervise], "supervise reaches nothing (internal only)"
    for source, to, _ in found:  # only gateways reach outside the bottle
        if source.startswith(f"{namespace}/") and not to.startswith(f"{namespace}/"):
            assert source.split("/")[1].split("[")[0] in ("agent", "pipelock", "egress", "git-gate"), source


def eject(tmp_path: Path, edits: dict[str, tuple[str, str]], relax: str | None = None) -> Path:
    """An operator's folder of the kubernetes templates, each edit (file: (old, new)) made."""
    folder = tmp_path / "ops"
    shutil.copytree(TEMPLATES, folder)
    for file, (old, new) in edits.items():
        text = (folder / file).read_text()
        assert old in text, (file, old)  # the edit is made, or the test would prove nothing
        (folder / file).write_text(text.replace(old, new, 1))
    if relax:
        manifest = folder / "manifest.yaml"
        manifest.write_text(manifest.read_text() + f"relax:\n  {relax}: reviewed by the test\n")
    return folder


OPEN_AGENT = (
    "        ports: [{protocol: UDP, port: 53}, {protocol: TCP, port: 53}]\n",
    "        ports: [{protocol: UDP, port: 53}, {protocol: TCP, port: 53}]\n"
    "      - to: [{ipBlock: {cidr: 0.0.0.0/0}}]\n        ports: [{protocol: TCP, port: 443}]\n",
)


def test_the_analysis_sees_a_template_that_opens_a_way_out(tmp_path):
    """A template that lets the agent out is refused; relaxed by a manifest, it renders, and
    the connectivity analysis shows the way out it opened."""
    folder = eject(tmp_path, {"agent.yaml.j2": OPEN_AGENT})
    refused = run_cli("render", "--target", "kubernetes", "--templates", str(folder), str(MINIMAL))
    assert refused.returncode == 5, refused.stderr
    assert "NetworkPolicy/agent spec.egress[2].to[0]" in refused.stderr and "never an ipBlock" in refused.stderr
    relaxed = eject(tmp_path / "relaxed", {"agent.yaml.j2": OPEN_AGENT}, relax="agent-networks")
    result = run_cli("render", "--target", "kubernetes", "--templates", str(relaxed), str(MINIMAL))
    assert result.returncode == 0, result.stderr
    assert "SANDBOX RULES RELAXED" in result.stdout and "agent-networks: reviewed by the test" in result.stdout
    namespace, expected = expected_reach(result.stdout, DEFAULT_PORTS)
    reach = agent_reach(connections(result.stdout, tmp_path), namespace)
    assert reach != expected
    assert reach["0.0.0.0-255.255.255.255"] == "{protocols:TCP,dst_ports:443}"


# --- the policy: a template cannot open what the compose target keeps closed ---------------

BREAKS = {
    "service-account token": (
        {"agent.yaml.j2": ("automountServiceAccountToken: false", "automountServiceAccountToken: true")},
        "Pod/agent spec.automountServiceAccountToken: must be false",
    ),
    "service links": (
        {"pipelock.yaml.j2": ("enableServiceLinks: false", "enableServiceLinks: true")},
        "Deployment/pipelock spec.template.spec.enableServiceLinks: must be false",
    ),
    "host network": (
        {"agent.yaml.j2": ("dnsPolicy: None\n", "hostNetwork: true\ndnsPolicy: None\n")},
        "Pod/agent spec.hostNetwork",
    ),
    "host path": (
        {"pipelock.yaml.j2": ("          - {name: files,", "          - {name: node, hostPath: {path: /}}\n          - {name: files,")},
        "a hostPath volume",
    ),
    "privileged agent": (
        {"agent.yaml.j2": ("    securityContext: {{ m.container_security(h) }}", "    securityContext: {privileged: true}")},
        "Pod/agent spec.containers[0].securityContext.privileged",
    ),
    "a capability for the agent": (
        {"agent.yaml.j2": ("    securityContext: {{ m.container_security(h) }}", "    securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL], add: [NET_RAW]}}")},
        "adds NET_RAW: the agent keeps none",
    ),
    "no default deny": (
        {"namespace.yaml.j2": ("    policyTypes: [Ingress, Egress]", "    policyTypes: [Ingress]")},
        "needs a default deny",
    ),
    "no Pod Security": (
        {"namespace.yaml.j2": ("enforce: restricted", "enforce: privileged")},
        "Namespace/claude-bottle-minimal metadata.labels",
    ),
    "a Secret": (
        {"namespace.yaml.j2": ("default-deny:\n", "token:\n  apiVersion: v1\n  kind: Secret\n  metadata: {{ m.metadata(\"token\", \"bottle\") }}\n  stringData: {token: x}\ndefault-deny:\n")},
        "a bottle renders no Secret",
    ),
    "RBAC": (
        {"namespace.yaml.j2": ("default-deny:\n", "admin:\n  apiVersion: rbac.authorization.k8s.io/v1\n  kind: ClusterRoleBinding\n  metadata: {name: bottle-admin}\n  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\ndefault-deny:\n")},
        "rbac.authorization.k8s.io/v1 ClusterRoleBinding is not a kind a bottle has",
    ),
    "a gateway's Secret in the agent": (
        {"agent.yaml.j2": ("    command: [sleep, infinity]\n", "    command: [sleep, infinity]\n    envFrom: [{secretRef: {name: pipelock-secrets}}]\n")},
        "hands the agent the Secret pipelock-secrets, which a gateway takes",
    ),
    "traffic in to the agent": (
        {"agent.yaml.j2": ("    ingress: []", "    ingress: [{from: [{podSelector: {}}]}]")},
        "lets traffic in to the agent",
    ),
    "a port the sidecar does not serve": (
        {"agent.yaml.j2": ("ports: [{protocol: TCP, port: {{ ports[name] }}}]", "ports: [{protocol: TCP, port: 22}]")},
        "opens TCP 22 to Deployment/pipelock, which declares no such containerPort",
    ),
    "every destination": (
        {"agent.yaml.j2": ("      - to: [{podSelector:", "      - {}\n      - to: [{podSelector:")},
        "lets the agent send anywhere",
    ),
    "another namespace": (
        {"agent.yaml.j2": ("      - to: [{podSelector: {matchLabels:", "      - to: [{namespaceSelector: {}, podSelector: {matchLabels:")},
        "never an ipBlock or another namespace",
    ),
    "the agent as a Deployment": (
        {"agent.yaml.j2": ("  apiVersion: v1\n  kind: Pod\n  metadata: {{ m.metadata(\"agent\", \"agent\") }}\n  spec:\n    {{ pod_spec() | indent(4) | raw }}",
                           "  apiVersion: apps/v1\n  kind: Deployment\n  metadata: {{ m.metadata(\"agent\", \"agent\") }}\n  spec:\n    selector: {matchLabels: {{ m.selector(\"agent\") }}}\n    template:\n      metadata: {labels: {{ m.labels(\"agent\") }}}\n      spec:\n        {{ pod_spec() | indent(8) | raw }}")},
        "the agent runs as a bare Pod or a Sandbox",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BREAKS))
def test_a_template_cannot_open_the_sandbox(case, tmp_path):
    edits, said = BREAKS[case]
    folder = eject(tmp_path, edits)
    result = run_cli("render", "--target", "kubernetes", "--templates", str(folder), str(MINIMAL))
    assert result.returncode == 5, result.stderr
    assert said in result.stderr
    assert "[rule " in result.stderr and result.stdout == ""
    if case != "no default deny":  # a problem with a place names the template that wrote it
        assert f"in template {next(iter(edits))} (override {folder})" in result.stderr


def test_a_relaxed_rule_is_named_in_the_header(tmp_path):
    edits, _ = BREAKS["traffic in to the agent"]
    result = run_cli(
        "render",
        "--target",
        "kubernetes",
        "--templates",
        str(eject(tmp_path, edits, relax="agent-ports")),
        str(MINIMAL),
    )
    assert result.returncode == 0, result.stderr
    assert "#   agent-ports: reviewed by the test" in result.stdout


def test_a_rule_that_always_holds_cannot_be_relaxed(tmp_path):
    edits, _ = BREAKS["service-account token"]
    folder = eject(tmp_path, edits)
    manifest = folder / "manifest.yaml"
    manifest.write_text(manifest.read_text() + "relax:\n  service-account-token: no\n")
    result = run_cli("render", "--target", "kubernetes", "--templates", str(folder), str(MINIMAL))
    assert result.returncode == 4 and "manifest" in result.stderr  # not a rule a manifest may name


# --- bad input: the same exit codes as the compose target --------------------------------


def test_a_compose_only_setting_is_an_error_at_its_key():
    result = run_cli("render", "--target", "kubernetes", "--set", "seal_host=true", str(MINIMAL))
    assert result.returncode == 3
    assert "--set seal_host::$.seal_host: seal_host drops" in result.stderr


def test_a_template_error_names_the_file_and_line(tmp_path):
    folder = eject(
        tmp_path, {"agent.yaml.j2": ("{% set h = settings.hardening.agent %}", "{% set h = settings.nobody.agent %}")}
    )
    result = run_cli("render", "--target", "kubernetes", "--templates", str(folder), str(MINIMAL))
    assert result.returncode == 4
    assert f"{folder / 'agent.yaml.j2'}:7: UndefinedError" in result.stderr


def test_an_object_without_a_kind_is_refused(tmp_path):
    folder = eject(tmp_path, {"namespace.yaml.j2": ("  kind: Namespace\n", "")})
    result = run_cli("render", "--target", "kubernetes", "--templates", str(folder), str(MINIMAL))
    assert result.returncode == 5
    assert "$.namespace in template namespace.yaml.j2" in result.stderr and "needs kind" in result.stderr


def test_a_name_kubernetes_refuses_is_an_error(tmp_path):
    plan = write_plan(tmp_path, {**yaml.safe_load(MINIMAL.read_text()), "slug": "under_score"})
    result = run_cli("render", "--target", "kubernetes", str(plan))
    assert result.returncode == 3
    assert '::$.slug: makes the bottle\'s namespace "claude-bottle-under_score"' in result.stderr


def test_values_keep_their_dollars_as_kubernetes_reads_them(tmp_path):
    """`$` is `$$` only where Kubernetes expands $(VAR) (command, args, env values)."""
    plan = {
        **yaml.safe_load((EXAMPLES / "supervise.yml").read_text()),
        "settings": {"paths": {"agent_current_config_dir": "/etc/a$b", "agent_ca_path": "/x/$(HOME)"}},
    }
    result = run_cli("render", "--target", "kubernetes", str(write_plan(tmp_path, plan)))
    assert result.returncode == 0, result.stderr
    agent = next(d for d in documents(result.stdout) if d["kind"] == "Pod")["spec"]["containers"][0]
    assert agent["volumeMounts"][0]["mountPath"] == "/etc/a$b"
    assert {"name": "NODE_EXTRA_CA_CERTS", "value": "/x/$$(HOME)"} in agent["env"]


# --- the commands -------------------------------------------------------------------------


def test_a_fleet_renders_into_a_folder(tmp_path, kube):
    out = tmp_path / "out"
    result = run_cli(
        "render", "--target", "kubernetes", "--out-dir", str(out), str(MINIMAL), str(EXAMPLES / "egress.yml")
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["egress.yml", "minimal.yml"]
    assert (out / "minimal.yml").read_text() == kube.render(MINIMAL).text


def test_templates_list_and_eject_take_the_target(tmp_path):
    listed = run_cli("templates", "list", "--target", "kubernetes")
    assert listed.returncode == 0 and "namespace.yaml.j2" in listed.stdout
    ejected = run_cli("templates", "eject", "--target", "kubernetes", "agent.yaml.j2", "--to", str(tmp_path))
    assert ejected.returncode == 0, ejected.stderr
    assert (tmp_path / "agent.yaml.j2").read_text() == (TEMPLATES / "agent.yaml.j2").read_text()


def test_compose_templates_never_shadow_the_kubernetes_ones(tmp_path):
    folder = tmp_path / "compose-ops"
    folder.mkdir()
    (folder / "agent.yaml.j2").write_text("services: {}\n")
    result = run_cli("render", "--target", "kubernetes", str(MINIMAL), env={"BOTTLEGEN_TEMPLATES": str(folder)})
    assert result.returncode == 0, result.stderr
    assert "kind: Pod" in result.stdout


def test_verify_is_for_the_compose_target():
    result = run_cli("render", "--target", "kubernetes", "--verify", str(MINIMAL))
    assert result.returncode == 2 and "compose target only" in result.stderr


def test_the_library_renders_the_target_too(kube):
    import bottlegen

    rendered = bottlegen.render(MINIMAL, target="kubernetes", check_host=True)
    assert rendered.text == kube.render(MINIMAL).text
    assert next(iter(rendered.document.values()))["kind"] == "Namespace"  # in apply order
