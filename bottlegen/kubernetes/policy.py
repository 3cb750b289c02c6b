"""Stage 7 of the kubernetes target: the sandbox's invariants, judged on the objects.

The same promises as the compose target's policy (bottlegen/compose/policy.py), in
Kubernetes' terms, and the same way: by the manifest's roles (which service is the agent,
which are gateways: a pod's role is its `app.kubernetes.io/component` label), by allow-list
(what is not allowed is refused), every problem at once, exit 5 naming the template, the
object and the field. The rules a manifest may relax are the compose target's relaxable rules
of the same meaning, by the same names; the others always hold.

What the rules judge:
- kinds: only Namespace, ConfigMap, Service, PersistentVolumeClaim, NetworkPolicy, Deployment,
  Pod and agent-sandbox's Sandbox. Never a Secret (values are the operator's, created by
  name), never RBAC, never a cluster-scoped object other than the bottle's Namespace.
- the Namespace: exactly one, the project's, with Pod Security `restricted` enforced; every
  other object in it; every object with the recommended labels.
- every pod: no service-account token, no service links, no host namespace, no hostPath,
  no host port, only configMap, secret, emptyDir and persistentVolumeClaim volumes, and the
  securityContext Pod Security restricted asks (the agent's is its own relaxable rule).
- the network: a default deny for the namespace; the agent reaches only the bottle's other
  pods, on ports they declare, and DNS only at the bottle resolver; nothing reaches the agent;
  only gateways reach beyond the bottle.
- tokens: the agent takes no Secret a gateway takes, and no variable named as a token.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from ..stages.merge import Merged
from ..stages.verdicts import RELAXABLE, Finding, refuse
from .check import Object, containers, references, where

ALLOWED_KINDS = {
    ("v1", "Namespace"),
    ("v1", "ConfigMap"),
    ("v1", "Service"),
    ("v1", "PersistentVolumeClaim"),
    ("v1", "Pod"),
    ("apps/v1", "Deployment"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("agents.x-k8s.io/v1beta1", "Sandbox"),
}
AGENT_KINDS = ("Pod", "Sandbox")
VOLUME_SOURCES = frozenset({"configMap", "secret", "emptyDir", "persistentVolumeClaim"})
AGENT_VOLUME_SOURCES = frozenset({"configMap", "emptyDir"})
HOST_NAMESPACES = ("hostNetwork", "hostPID", "hostIPC")
COMPONENT = "app.kubernetes.io/component"
RECOMMENDED = ("app.kubernetes.io/managed-by", "app.kubernetes.io/part-of", COMPONENT)
PSA = "pod-security.kubernetes.io/enforce"
NAMESPACE_NAME = "kubernetes.io/metadata.name"
AGENT, OTHERS = ("agent",), ("gateway", "sidecar")  # pod roles, as Facts.pods_of takes them
DNS_PORTS = frozenset({("UDP", 53), ("TCP", 53)})


class Pod(NamedTuple):
    """A pod an object runs: the object, where its spec is, the spec, its labels, its role."""

    obj: Object
    at: tuple[Any, ...]
    spec: dict[str, Any]
    labels: dict[str, Any]
    component: str | None


class Facts(NamedTuple):
    objects: list[Object]
    pods: list[Pod]
    policies: list[Object]
    agent: str
    gateways: frozenset[str]
    project: str
    settings: dict[str, Any]
    plan: dict[str, Any]

    def at(self, obj: Object, path: tuple[Any, ...], message: str, value: Any = None) -> Finding:
        """A problem at path (from the document's top) that names the object and field."""
        return Finding(f"{where(obj, path)}: {message}", value, path)

    def role(self, pod: Pod) -> str:
        if pod.component == self.agent:
            return "agent"
        return "gateway" if pod.component in self.gateways else "sidecar"

    def pods_of(self, *roles: str) -> Iterator[Pod]:
        """The pods whose role (agent, gateway, sidecar) is one of roles."""
        return (pod for pod in self.pods if self.role(pod) in roles)


RuleFunction = Callable[[Facts], Iterator[Finding]]


def kinds(f: Facts) -> Iterator[Finding]:
    for obj in f.objects:
        version = obj.body.get("apiVersion")
        if obj.kind == "Secret":
            yield f.at(
                obj,
                (obj.handle, "kind"),
                "a bottle renders no Secret: a value in it would be in this file. Reference the operator's Secret "
                "by name (secretKeyRef, a secret volume) instead",
            )
        elif (version, obj.kind) not in ALLOWED_KINDS:
            allowed = ", ".join(sorted(f"{k} ({v})" for v, k in ALLOWED_KINDS))
            yield f.at(obj, (obj.handle, "kind"), f"{version} {obj.kind} is not a kind a bottle has; it has {allowed}")


def namespace(f: Facts) -> Iterator[Finding]:
    spaces = [o for o in f.objects if o.kind == "Namespace"]
    if len(spaces) != 1 or spaces[0].name != f.project:
        found = ", ".join(o.name for o in spaces) or "none"
        yield Finding(f"a bottle is exactly one Namespace, named {f.project} (its project); found {found}")
    for space in spaces:
        labels = space.get("metadata", "labels") or {}
        if not isinstance(labels, dict) or labels.get(PSA) != "restricted":
            yield f.at(
                space,
                (space.handle, "metadata", "labels"),
                f"the bottle's Namespace must enforce Pod Security restricted (label {PSA}: restricted)",
            )
    for obj in f.objects:
        if obj.kind != "Namespace" and obj.get("metadata", "namespace") != f.project:
            yield f.at(
                obj,
                (obj.handle, "metadata", "namespace"),
                f"every object of the bottle is in its namespace {f.project}, given as metadata.namespace",
            )


def labels(f: Facts) -> Iterator[Finding]:
    wanted = {"app.kubernetes.io/managed-by": "bottlegen", "app.kubernetes.io/part-of": f.project}
    for obj in f.objects:
        found = obj.get("metadata", "labels")
        found = found if isinstance(found, dict) else {}
        wrong = [k for k, v in wanted.items() if found.get(k) != v]
        if not found.get(COMPONENT):
            wrong.append(COMPONENT)
        if wrong:
            yield f.at(
                obj,
                (obj.handle, "metadata", "labels"),
                f"needs the recommended labels ({', '.join(wrong)}): managed-by bottlegen, part-of {f.project}, "
                "component its service",
            )
    for pod in f.pods:
        if not pod.component:
            yield f.at(pod.obj, (pod.obj.handle,), f"its pods need the label {COMPONENT}: the role the policy judges")


def agent_exists(f: Facts) -> Iterator[Finding]:
    agents = [p for p in f.pods if p.component == f.agent]
    if len(agents) != 1:
        yield Finding(
            f"exactly one pod is the agent's ({COMPONENT}: {f.agent}, the manifest's role: agent); found {len(agents)}"
        )
    for pod in agents:
        if pod.obj.kind not in AGENT_KINDS:
            yield f.at(
                pod.obj,
                (pod.obj.handle, "kind"),
                "the agent runs as a bare Pod or a Sandbox (one pod, never restarted elsewhere or scaled), not a "
                + pod.obj.kind,
            )


def service_account_token(f: Facts) -> Iterator[Finding]:
    for pod in f.pods:
        if pod.spec.get("automountServiceAccountToken") is not False:
            yield f.at(
                pod.obj,
                (*pod.at, "automountServiceAccountToken"),
                "must be false: no pod of a bottle holds a service-account token (the API server's key)",
            )
        if pod.spec.get("enableServiceLinks") is not False:
            yield f.at(
                pod.obj,
                (*pod.at, "enableServiceLinks"),
                "must be false: no pod of a bottle is handed the addresses of the namespace's services",
            )
        for index, volume in enumerate(_list(pod.spec.get("volumes"))):
            for source_index, source in enumerate(_list(_dict(volume.get("projected")).get("sources"))):
                if isinstance(source, dict) and "serviceAccountToken" in source:
                    yield f.at(
                        pod.obj,
                        (*pod.at, "volumes", index, "projected", "sources", source_index),
                        "projects a service-account token: no pod of a bottle holds one",
                    )


def host_namespaces(agent: bool) -> RuleFunction:
    def rule(f: Facts) -> Iterator[Finding]:
        for pod in f.pods_of(*(AGENT if agent else OTHERS)):
            for key in HOST_NAMESPACES:
                if pod.spec.get(key):
                    yield f.at(pod.obj, (*pod.at, key), "shares a namespace of the node: no pod of a bottle does")
            if pod.spec.get("hostUsers") is True:
                yield f.at(pod.obj, (*pod.at, "hostUsers"), "shares the node's user namespace")

    return rule


def host_access(f: Facts) -> Iterator[Finding]:
    for pod in f.pods:
        for index, volume in enumerate(_list(pod.spec.get("volumes"))):
            bad = sorted(k for k in volume if k != "name" and k not in VOLUME_SOURCES)
            if bad:
                yield f.at(
                    pod.obj,
                    (*pod.at, "volumes", index),
                    f"a {bad[0]} volume: a bottle's pods mount only {', '.join(sorted(VOLUME_SOURCES))} "
                    "(never the node's files, never a network disk)",
                )
        for path, container in containers(pod.spec):
            for index, port in enumerate(_list(container.get("ports"))):
                if port.get("hostPort") or port.get("hostIP"):
                    yield f.at(
                        pod.obj,
                        (*pod.at, *path, "ports", index),
                        "a host port: no pod of a bottle listens on its node",
                    )


def agent_volumes(f: Facts) -> Iterator[Finding]:
    for pod in f.pods_of(*AGENT):
        for index, volume in enumerate(_list(pod.spec.get("volumes"))):
            found = [k for k in volume if k != "name" and k in VOLUME_SOURCES and k not in AGENT_VOLUME_SOURCES]
            if found:
                yield f.at(
                    pod.obj,
                    (*pod.at, "volumes", index),
                    f"the agent mounts a {found[0]} volume; it mounts only configMap (read-only) and emptyDir: "
                    "no Secret, no claim it could write for a sidecar to read",
                )


def privileges(agent: bool) -> RuleFunction:
    def rule(f: Facts) -> Iterator[Finding]:
        for pod in f.pods_of(*(AGENT if agent else OTHERS)):
            yield from _pod_privileges(f, pod, agent)

    return rule


def _pod_privileges(f: Facts, pod: Pod, agent: bool) -> Iterator[Finding]:
    security = _dict(pod.spec.get("securityContext"))
    if security.get("runAsNonRoot") is not True:
        yield f.at(pod.obj, (*pod.at, "securityContext", "runAsNonRoot"), "must be true (Pod Security restricted)")
    if security.get("runAsUser") == 0:
        yield f.at(pod.obj, (*pod.at, "securityContext", "runAsUser"), "runs as root")
    pod_seccomp = _dict(security.get("seccompProfile")).get("type")
    if pod_seccomp not in (None, "RuntimeDefault"):
        yield f.at(pod.obj, (*pod.at, "securityContext", "seccompProfile"), "must be RuntimeDefault")
    hardening = f.settings["hardening"].get(pod.component or "", {}) if f.plan.get("hardening") == "strict" else {}
    kept = set() if agent else set(hardening.get("cap_add") or ())
    for path, container in containers(pod.spec):
        at = (*pod.at, *path, "securityContext")
        context = _dict(container.get("securityContext"))
        if context.get("privileged"):
            yield f.at(pod.obj, (*at, "privileged"), "a privileged container")
        if context.get("allowPrivilegeEscalation") is not False:
            yield f.at(pod.obj, (*at, "allowPrivilegeEscalation"), "must be false")
        if context.get("runAsUser") == 0 or context.get("runAsNonRoot") is False:
            yield f.at(pod.obj, at, "runs as root")
        if context.get("procMount") not in (None, "Default"):
            yield f.at(pod.obj, (*at, "procMount"), "unmasks /proc")
        seccomp = _dict(context.get("seccompProfile")).get("type")
        if seccomp not in (None, "RuntimeDefault") or (seccomp is None and pod_seccomp is None):
            yield f.at(pod.obj, (*at, "seccompProfile"), "must be RuntimeDefault (here or on the pod)")
        caps = _dict(context.get("capabilities"))
        if "ALL" not in _list(caps.get("drop"), str):
            yield f.at(pod.obj, (*at, "capabilities", "drop"), "must drop ALL capabilities")
        added = [c for c in _list(caps.get("add"), str) if c not in kept]
        if added:
            whose = "the agent keeps none" if agent else "a sidecar keeps only its settings.hardening cap_add"
            yield f.at(pod.obj, (*at, "capabilities", "add"), f"adds {', '.join(map(str, added))}: {whose}")


def runtime(f: Facts) -> Iterator[Finding]:
    if not f.plan.get("use_runsc"):
        return
    wanted = f.settings["kubernetes"]["runtime_class"]
    for pod in f.pods_of(*AGENT):
        if pod.spec.get("runtimeClassName") != wanted:
            yield f.at(
                pod.obj,
                (*pod.at, "runtimeClassName"),
                f"the plan asks for use_runsc: the agent's pod runs under RuntimeClass {wanted} "
                "(settings.kubernetes.runtime_class)",
            )


def hardening(f: Facts) -> Iterator[Finding]:
    if f.plan.get("hardening") != "strict":
        return
    for pod in f.pods:
        for path, container in containers(pod.spec):
            if path[0] == "ephemeralContainers":
                continue
            at = (*pod.at, *path)
            if _dict(container.get("securityContext")).get("readOnlyRootFilesystem") is not True:
                yield f.at(
                    pod.obj, (*at, "securityContext", "readOnlyRootFilesystem"), "hardening: strict: must be true"
                )
            limits = _dict(_dict(container.get("resources")).get("limits"))
            missing = [k for k in ("cpu", "memory") if k not in limits]
            if missing:
                yield f.at(pod.obj, (*at, "resources", "limits"), f"hardening: strict: needs a {missing[0]} limit")


def default_deny(f: Facts) -> Iterator[Finding]:
    for policy in f.policies:
        spec = _dict(policy.get("spec"))
        if (
            spec.get("podSelector") == {}
            and {"Ingress", "Egress"} <= set(_list(spec.get("policyTypes"), str))
            and not spec.get("ingress")
            and not spec.get("egress")
        ):
            return
    yield Finding(
        "the bottle's namespace needs a default deny: a NetworkPolicy with podSelector {} and policyTypes "
        "[Ingress, Egress], and no rules (see the packaged namespace.yaml.j2)"
    )


def agent_networks(f: Facts) -> Iterator[Finding]:
    """What the agent may send: only to the bottle's other pods, on ports they declare, and DNS
    to the bottle resolver."""
    for pod in f.pods_of(*AGENT):
        for policy, rule_at, rule in _rules(f, pod, "egress"):
            yield from _agent_egress(f, policy, rule_at, rule)


def _agent_egress(f: Facts, policy: Object, at: tuple[Any, ...], rule: dict[str, Any]) -> Iterator[Finding]:
    peers = _list(rule.get("to"))
    ports = _ports(rule.get("ports"))
    if not peers:
        yield f.at(policy, (*at, "to"), "lets the agent send anywhere: name the pods it may reach")
        return
    if ports is None:
        yield f.at(policy, (*at, "ports"), "lets the agent send on every port: name the ports")
        return
    resolver = f.settings["kubernetes"]["resolver"]
    for index, peer in enumerate(peers):
        here = (*at, "to", index)
        if set(peer) == {"namespaceSelector", "podSelector"} and _is_resolver(peer, resolver):
            if not ports <= DNS_PORTS:
                yield f.at(policy, (*at, "ports"), "the agent may send only DNS (53, UDP and TCP) to the resolver")
            continue
        if set(peer) != {"podSelector"}:
            yield f.at(
                policy,
                here,
                "the agent may reach only pods of its own bottle (a podSelector alone), and the bottle resolver "
                "(settings.kubernetes.resolver): never an ipBlock or another namespace",
            )
            continue
        selected = [p for p in f.pods if _selects(peer["podSelector"], p.labels)]
        if not selected:
            yield f.at(policy, (*here, "podSelector"), "selects none of the bottle's pods")
        for target in selected:
            if f.role(target) == "agent":
                yield f.at(policy, (*here, "podSelector"), "selects the agent itself")
                continue
            declared = _declared_ports(target)
            for protocol, port in sorted(ports, key=str):
                if (protocol, port) not in declared:
                    yield f.at(
                        policy,
                        (*at, "ports"),
                        f"opens {protocol} {port} to {target.obj.ref}, which declares no such containerPort",
                    )


def agent_ports(f: Facts) -> Iterator[Finding]:
    """Nothing reaches the agent: no NetworkPolicy lets anything in, no Service selects it."""
    for pod in f.pods_of(*AGENT):
        for policy, rule_at, _ in _rules(f, pod, "ingress"):
            yield f.at(policy, rule_at, "lets traffic in to the agent: nothing reaches the agent")
        for obj in f.objects:
            selector = obj.get("spec", "selector")
            if obj.kind == "Service" and isinstance(selector, dict) and selector and _matches(selector, pod.labels):
                yield f.at(obj, (obj.handle, "spec", "selector"), "a Service in front of the agent")


def gateways(f: Facts) -> Iterator[Finding]:
    """Only gateways send beyond the bottle: a sidecar's peers are the bottle's pods."""
    for pod in f.pods_of("sidecar"):
        for policy, at, rule in _rules(f, pod, "egress"):
            peers = _list(rule.get("to"))
            if not peers:
                yield f.at(policy, (*at, "to"), f"lets {pod.obj.ref} send anywhere; only gateways reach out")
            for index, peer in enumerate(peers):
                if set(peer) != {"podSelector"}:
                    yield f.at(
                        policy,
                        (*at, "to", index),
                        f"lets {pod.obj.ref} send beyond the bottle; only the manifest's gateways do",
                    )


def tokens(f: Facts) -> Iterator[Finding]:
    names = set(f.plan["egress"].get("token_env_names") or ())
    forwarded = set(f.plan.get("forwarded_env") or ())
    gateway_secrets = {s for p in f.pods_of("gateway") for _, s in _secrets(p)}
    for pod in f.pods:
        agent = f.role(pod) == "agent"
        for path, container in containers(pod.spec):
            for index, variable in enumerate(_list(container.get("env"))):
                name = variable.get("name")
                at = (*pod.at, *path, "env", index)
                if agent and name in names:
                    yield f.at(
                        pod.obj, at, f"hands the agent {name}, a token egress injects: the agent never holds one"
                    )
                elif name in names | forwarded and "value" in variable:
                    yield f.at(
                        pod.obj,
                        (*at, "value"),
                        f"{name} is a secret the operator provides: take it from a Secret (valueFrom.secretKeyRef), "
                        "never as a value in this file",
                    )
        if agent:
            for at, secret in _secrets(pod):
                if secret in gateway_secrets:
                    yield f.at(pod.obj, at, f"hands the agent the Secret {secret}, which a gateway takes")


RULES: dict[str, RuleFunction] = {
    "kinds": kinds,
    "namespace": namespace,
    "labels": labels,
    "agent-exists": agent_exists,
    "service-account-token": service_account_token,
    "agent-host-namespaces": host_namespaces(agent=True),
    "service-namespaces": host_namespaces(agent=False),
    "host-paths": host_access,
    "agent-host-mounts": agent_volumes,
    "agent-privileges": privileges(agent=True),
    "privileges": privileges(agent=False),
    "runtime": runtime,
    "hardening": hardening,
    "default-deny": default_deny,
    "agent-networks": agent_networks,
    "agent-ports": agent_ports,
    "gateways": gateways,
    "tokens": tokens,
}


# --- reading NetworkPolicies -----------------------------------------------------------


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any, kind: type = dict) -> list[Any]:
    return [v for v in value if isinstance(v, kind)] if isinstance(value, list) else []


def _matches(labels_wanted: dict[str, Any], labels: dict[str, Any]) -> bool:
    return all(labels.get(k) == v for k, v in labels_wanted.items())


def _selects(selector: Any, labels: dict[str, Any]) -> bool:
    """Whether a LabelSelector selects a pod with these labels (an empty one selects all)."""
    if not isinstance(selector, dict):
        return False
    if not _matches(_dict(selector.get("matchLabels")), labels):
        return False
    for expression in _list(selector.get("matchExpressions")):
        key, operator, values = expression.get("key"), expression.get("operator"), expression.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return False
    return True


def _rules(f: Facts, pod: Pod, direction: str) -> Iterator[tuple[Object, tuple[Any, ...], dict[str, Any]]]:
    """(policy, key path, rule) of every ingress or egress rule that applies to pod."""
    for policy in f.policies:
        spec = _dict(policy.get("spec"))
        if not _selects(spec.get("podSelector"), pod.labels):
            continue
        for index, rule in enumerate(spec.get(direction) or []):
            yield policy, (policy.handle, "spec", direction, index), _dict(rule)


def _ports(value: Any) -> set[tuple[str, Any]] | None:
    """A rule's ports as (protocol, port), or None for every port (none given, a range, or
    a port without a number or name)."""
    ports = _list(value)
    if not ports or any("endPort" in p or "port" not in p for p in ports):
        return None
    return {(str(p.get("protocol") or "TCP"), p["port"]) for p in ports}


def _declared_ports(pod: Pod) -> set[tuple[str, Any]]:
    found = set()
    for _, container in containers(pod.spec):
        for port in _list(container.get("ports")):
            protocol = str(port.get("protocol") or "TCP")
            found.add((protocol, port.get("containerPort")))
            if port.get("name"):
                found.add((protocol, port["name"]))
    return found


def _is_resolver(peer: dict[str, Any], resolver: dict[str, Any]) -> bool:
    return _dict(peer.get("namespaceSelector")) == {"matchLabels": {NAMESPACE_NAME: resolver["namespace"]}} and _dict(
        peer.get("podSelector")
    ) == {"matchLabels": resolver["labels"]}


def _secrets(pod: Pod) -> Iterator[tuple[tuple[Any, ...], str]]:
    """(key path, name) of every Secret a pod takes: volumes, env and envFrom."""
    for ref in references(pod.spec):
        if ref.kind == "Secret":
            yield (*pod.at, *ref.at), ref.name


# --- judging -----------------------------------------------------------------------------


def facts_of(objects: list[Object], agent: str, gateways: frozenset[str], context: dict[str, Any]) -> Facts:
    pods = []
    for obj in objects:
        found = obj.pod_spec()
        if found is not None:
            labels = obj.pod_labels()
            component = labels.get(COMPONENT)
            pods.append(Pod(obj, found[0], found[1], labels, component if isinstance(component, str) else None))
    policies = [o for o in objects if o.kind == "NetworkPolicy"]
    return Facts(objects, pods, policies, agent, gateways, context["project"], context["settings"], context["plan"])


def enforce(
    merged: Merged,
    objects: list[Object],
    agent: str,
    gateways: frozenset[str],
    relax: dict[str, str],
    context: dict[str, Any],
    source: str,
) -> None:
    """Raise DocumentError listing every broken rule (PlanError when each comes from a plan value)."""
    facts = facts_of(objects, agent, gateways, context)
    findings = [
        finding._replace(rule=rule)
        for rule, check in RULES.items()
        if not (rule in relax and rule in RELAXABLE)
        for finding in check(facts)
    ]
    refuse(findings, merged, context, source, "objects")
