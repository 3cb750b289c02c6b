"""Stage 6b: the sandbox's invariants, checked on every render, whatever templates are in effect.

The packaged templates make a sealed bottle; this module is what makes that a property of
bottlegen rather than of those templates. It reads the merged document, with the manifest's
roles (which service is the agent, which are gateways) and the networks' roles
(`x-bottlegen: {role: internal | egress}` on each network), never a key's spelling.

Each rule is one function that returns its problems; `enforce` runs them all and reports
every problem at once (exit 5, naming the document path and the template). A rule in
RELAXABLE can be turned off by the manifest in effect, with a reason (`relax:`), and every
rendered file then names it in its header; the other rules always hold.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from .composefile import dns_problem, mounts, names, unescape
from .errors import DocumentError, PlanError
from .merge import Merged
from .paths import json_path, shorten
from .roles import EGRESS, INTERNAL, ROLE_KEY

PROJECT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")
_INTERPOLATION = re.compile(r"\$(?!\$)")

# Host paths whose bind gives the agent the engine or the host: these, what is below the
# first four, and any path ending in one of SOCKETS.
HOST_PATHS = (
    "/proc",
    "/sys",
    "/dev",
    "/var/lib/docker",
    "/",
    "/run",
    "/var/run",
    "/var",
    "/run/containerd",
    "/var/run/containerd",
)
SOCKETS = ("docker.sock", "containerd.sock", "podman.sock")
UNCONFINED = {"seccomp": "unconfined", "apparmor": "unconfined", "label": "disable", "systempaths": "unconfined"}


class Problem(NamedTuple):
    """A broken rule: the message, and the value at fault (to find it in the plan, if it is there)."""

    message: str
    value: Any = None


class Facts(NamedTuple):
    """What the rules look at, read once from the document and the manifest."""

    merged: Merged
    services: dict[str, dict[str, Any]]
    agent: str
    gateways: frozenset[str]
    roles: dict[str, str]  # network key -> role
    hardening: dict[str, Any] | None  # with `hardening: strict`, settings.hardening; else None
    seal_host: bool  # the plan's seal_host

    def where(self, *path: Any) -> str:
        return self.merged.where(path)


def _literal(value: Any) -> str | None:
    """A string as compose reads it, or None when compose would interpolate a variable in it."""
    if not isinstance(value, str):
        return None
    return None if _INTERPOLATION.search(value.replace("$$", "")) else unescape(value)


def _networks_of(service: dict[str, Any]) -> list[str]:
    """The network keys a service joins; compose's implicit `default` when it names none."""
    if "network_mode" in service:
        return []
    return names(service.get("networks")) or ["default"]


# --- the rules -------------------------------------------------------------------------


def document_name(f: Facts) -> Iterator[str | Problem]:
    name = f.merged.document.get("name")
    if not isinstance(name, str) or not PROJECT_NAME.fullmatch(name):
        yield (
            f"{f.where('name')}: the document needs a top-level `name:`, the compose project name (lowercase letters, "
            f"digits, - and _), which `up`, `ps` and `down` find the bottle by; got {shorten(name)}"
        )


def no_includes(f: Facts) -> Iterator[str | Problem]:
    if "include" in f.merged.document:
        yield f"{f.where('include')}: `include` brings in services the policy cannot see; render them from templates instead"
    for name, service in f.services.items():
        if "extends" in service:
            yield f"{f.where('services', name, 'extends')}: `extends` brings in settings the policy cannot see; write them in the template"


def agent_exists(f: Facts) -> Iterator[str | Problem]:
    if f.agent not in f.services:
        yield (
            f"{f.where('services')}: the agent service {f.agent!r} (the manifest's `role: agent`) is not rendered; "
            f"a bottle always has its agent (services: {', '.join(f.services) or 'none'})"
        )


def network_roles(f: Facts) -> Iterator[str | Problem]:
    networks = f.merged.document.get("networks") or {}
    for role in (INTERNAL, EGRESS):
        keys = [key for key, r in f.roles.items() if r == role]
        if len(keys) != 1:
            yield (
                f"{f.where('networks')}: exactly one network must have `{ROLE_KEY}: {{role: {role}}}`; "
                + (f"found {', '.join(keys)}" if keys else "none has it")
            )
    project = f.merged.document.get("name")
    engine_names: dict[str, str] = {}
    for key, role in f.roles.items():
        definition = networks.get(key) or {}
        engine_name = definition.get("name") or f"{project}_{key}"
        if engine_name in engine_names:
            yield (
                f"{f.where('networks', key, 'name')}: networks {engine_names[engine_name]} and {key} are one network "
                f"({shorten(engine_name)}) on the engine; the internal and egress networks must differ"
            )
        engine_names.setdefault(engine_name, key)
        if role == INTERNAL and definition.get("external") is not True and definition.get("internal") is not True:
            yield (
                f"{f.where('networks', key)}: the internal-role network must be `internal: true` (no route out), "
                "or `external: true` (bottlegen up creates it with --internal)"
            )
    for key, definition in networks.items():
        given: Any = definition.get(ROLE_KEY) if isinstance(definition, dict) else None
        if given is not None and (
            not isinstance(given, dict) or given.get("role") not in (INTERNAL, EGRESS) or len(given) != 1
        ):
            yield f"{f.where('networks', key, ROLE_KEY)}: must be {{role: internal}} or {{role: egress}}; got {shorten(given)}"


def agent_networks(f: Facts) -> Iterator[str | Problem]:
    agent = f.services.get(f.agent)
    if agent is None:
        return
    if "network_mode" in agent:
        yield f"{f.where('services', f.agent, 'network_mode')}: the agent may not set network_mode; it joins the internal network only"
        return
    joined = names(agent.get("networks"))
    if not joined:
        yield (
            f"{f.where('services', f.agent)}: the agent names no networks, so compose would put it on the project's "
            "default network, which has a route out; give it the internal network"
        )
    for key in joined:
        if f.roles.get(key) != INTERNAL:
            yield (
                f"{f.where('services', f.agent, 'networks', key)}: the agent may join only the internal-role network; "
                f"{key!r} is {'the ' + f.roles[key] + '-role network' if key in f.roles else 'a network without the internal role'}"
            )


def agent_ports(f: Facts) -> Iterator[str | Problem]:
    agent = f.services.get(f.agent) or {}
    if agent.get("ports"):
        yield f"{f.where('services', f.agent, 'ports')}: the agent may not publish ports: they are a way in from outside the bottle"


def agent_privileges(f: Facts) -> Iterator[str | Problem]:
    agent = f.services.get(f.agent) or {}
    at = ("services", f.agent)
    if agent.get("privileged", False) is not False:
        yield f"{f.where(*at, 'privileged')}: the agent may not be privileged"
    for key, what in (
        ("cap_add", "add capabilities"),
        ("devices", "get host devices"),
        ("device_cgroup_rules", "get device access rules"),
    ):
        if agent.get(key):
            yield f"{f.where(*at, key)}: the agent may not {what}"
    for index, option in enumerate(agent.get("security_opt") or []):
        text = _literal(option)
        kind, _, value = (text or "").replace(":", "=", 1).partition("=")
        if text is None or UNCONFINED.get(kind.strip().lower()) == value.strip().lower():
            yield f"{f.where(*at, 'security_opt', index)}: {shorten(option)} would lift the agent's confinement"


def agent_host_namespaces(f: Facts) -> Iterator[str | Problem]:
    agent = f.services.get(f.agent) or {}
    for key in ("pid", "ipc", "uts", "userns_mode", "cgroup"):
        value = agent.get(key)
        if value is None:
            continue
        text = _literal(value)
        if text is None or text == "host" or text.startswith(("container:", "service:")):
            yield f"{f.where('services', f.agent, key)}: {key}: {shorten(value)} would share a namespace with the host or another container"


def _sensitive(path: str) -> bool:
    clean = posixpath.normpath(path) if path.startswith("/") else path
    if clean.startswith("//"):
        clean = "/" + clean.lstrip("/")
    return clean in HOST_PATHS or clean.startswith(tuple(p + "/" for p in HOST_PATHS[:4])) or clean.endswith(SOCKETS)


def agent_host_mounts(f: Facts) -> Iterator[str | Problem]:
    agent = f.services.get(f.agent) or {}
    volumes = f.merged.document.get("volumes") or {}
    if agent.get("volumes_from"):
        yield f"{f.where('services', f.agent, 'volumes_from')}: the agent may not take another container's volumes (they hold the sidecars' keys)"
    for index, kind, source, _ in mounts(agent):
        if kind == "volume" and isinstance(source, str) and isinstance(volumes.get(source), dict):
            options = volumes[source].get("driver_opts") or {}
            source = options.get("device") if isinstance(options, dict) and "device" in options else None
            kind = "bind" if source is not None else kind
        if kind != "bind" or source is None:
            continue
        text = _literal(source)
        if text is None:
            yield f"{f.where('services', f.agent, 'volumes', index)}: bind source {shorten(source)} holds a variable, so what it mounts cannot be checked"
        elif _sensitive(text):
            yield Problem(
                f"{f.where('services', f.agent, 'volumes', index)}: bind source {shorten(source)} would give the agent "
                "the Docker engine or the host (the Docker socket, /, /proc, /sys, /dev or /run)",
                text,
            )


def gateways(f: Facts) -> Iterator[str | Problem]:
    for name, service in f.services.items():
        if name in f.gateways or name == f.agent:
            continue
        joined = _networks_of(service)
        inside = [key for key in joined if f.roles.get(key) == INTERNAL]
        outside = [key for key in joined if f.roles.get(key) != INTERNAL]
        if inside and outside:
            yield (
                f"{f.where('services', name, 'networks')}: {name} joins the internal network and {', '.join(outside)}, a way "
                f"out for the agent; only services the manifest marks `role: gateway` may ({', '.join(sorted(f.gateways)) or 'none'})"
            )


def env_override(f: Facts) -> Iterator[Problem]:
    """One variable set twice in a service: the later one (often from the host) replaces it."""
    for name, service in f.services.items():
        environment = service.get("environment")
        if not isinstance(environment, list):
            continue  # a mapping cannot hold a name twice (the loader refuses duplicate keys)
        seen: dict[str, int] = {}
        for index, entry in enumerate(environment):
            if not isinstance(entry, str):
                continue
            variable = entry.split("=", 1)[0]
            if variable in seen:
                yield Problem(
                    f"{f.where('services', name, 'environment', index)}: {shorten(variable)} is set twice for service {name} "
                    f"(also at environment[{seen[variable]}]): the later one would replace what the template set; "
                    "a variable the templates set cannot be forwarded under its own name",
                    variable,
                )
            seen.setdefault(variable, index)


def _dns_names(service_name: str, service: dict[str, Any]) -> Iterator[tuple[tuple[Any, ...], str]]:
    """(path, name) for every name a service answers to on its networks."""
    yield ("services", service_name), service_name
    for key in ("container_name", "hostname"):
        if isinstance(service.get(key), str):
            yield ("services", service_name, key), service[key]
    networks = service.get("networks")
    if isinstance(networks, dict):
        for key, options in networks.items():
            for index, alias in enumerate((options or {}).get("aliases") or [] if isinstance(options, dict) else []):
                if isinstance(alias, str):
                    yield ("services", service_name, "networks", key, "aliases", index), alias


def dns_names(f: Facts) -> Iterator[str | Problem]:
    owners: dict[str, str] = {}
    for name, service in f.services.items():
        for path, dns in _dns_names(name, service):
            why = dns_problem(dns)
            if why is not None:
                yield Problem(
                    f"{f.where(*path)}: {shorten(dns)} is {why}: the other containers could not resolve it", dns
                )
            owner = owners.setdefault(dns.lower(), name)
            if owner != name:
                yield Problem(
                    f"{f.where(*path)}: {shorten(dns)} is also a name of service {owner}; "
                    "two services answering to one name would make the agent dial either",
                    dns,
                )


RuleFunction = Callable[[Facts], Iterator[str | Problem]]


# Every rule, in the order problems are listed. The relaxable ones are those the manifest's
# `relax:` may turn off; the others always hold.
def hardening(f: Facts) -> Iterator[str | Problem]:
    """With `hardening: strict`, every service is what the plan asked for: the templates must
    write it, and none can leave it out."""
    if f.hardening is None:
        return
    for name, service in f.services.items():
        here = f.where("services", name)
        given = set(names((f.hardening.get(name) or {}).get("cap_add")))
        if "ALL" not in names(service.get("cap_drop")):
            yield f"{here}: hardening is strict, but {name} keeps its capabilities (it needs `cap_drop: [ALL]`)"
        extra = sorted(set(names(service.get("cap_add"))) - given)
        if extra:
            yield (
                f"{here}: hardening is strict, but {name} adds {', '.join(extra)}, which the plan does not give it "
                f"(settings.hardening.{name}.cap_add)"
            )
        if not {"no-new-privileges:true", "no-new-privileges"} & set(names(service.get("security_opt"))):
            yield f"{here}: hardening is strict, but {name} lacks `security_opt: [no-new-privileges:true]`"
        if service.get("read_only") is not True:
            yield f"{here}: hardening is strict, but {name}'s root file system is writable (it needs `read_only: true`)"
        missing = [key for key in ("pids_limit", "mem_limit", "cpus") if key not in service]
        if missing:
            yield f"{here}: hardening is strict, but {name} has no {', '.join(missing)}"
    agent = f.services.get(f.agent)
    if agent is not None and agent.get("init") is not True:
        yield f"{f.where('services', f.agent)}: hardening is strict, but the agent runs without an init (`init: true`)"


def sealed_host(f: Facts) -> Iterator[str | Problem]:
    """With the plan's `seal_host: true`, the document says so, for `up` to seal the host."""
    marker = f.merged.document.get(ROLE_KEY)
    if f.seal_host and not (isinstance(marker, dict) and marker.get("seal_host") is True):
        yield f"{f.where(ROLE_KEY)}: the plan asks for seal_host, but the document lacks `{ROLE_KEY}: {{seal_host: true}}`"


RULES: dict[str, RuleFunction] = {
    "document-name": document_name,
    "no-includes": no_includes,
    "agent-exists": agent_exists,
    "network-roles": network_roles,
    "agent-networks": agent_networks,
    "agent-ports": agent_ports,
    "agent-privileges": agent_privileges,
    "agent-host-namespaces": agent_host_namespaces,
    "agent-host-mounts": agent_host_mounts,
    "gateways": gateways,
    "env-override": env_override,
    "dns-names": dns_names,
    "hardening": hardening,
    "sealed-host": sealed_host,
}
RELAXABLE = (
    "agent-networks",
    "agent-ports",
    "agent-privileges",
    "agent-host-namespaces",
    "agent-host-mounts",
    "gateways",
)


def plan_paths(context: dict[str, Any]) -> dict[Any, tuple[Any, ...]]:
    """Every string of the resolved plan and settings, with its key path in the plan file."""
    found: dict[Any, tuple[Any, ...]] = {}
    stack: list[tuple[Any, tuple[Any, ...]]] = [(context["plan"], ()), (context["settings"], ("settings",))]
    while stack:
        value, path = stack.pop()
        if path == ("egress", "token_env_names"):
            for variable in value:
                found.setdefault(variable, ("egress", "token_env_map", variable))
        elif isinstance(value, dict):
            stack += [(v, (*path, k)) for k, v in value.items()]
        elif isinstance(value, list):
            stack += [(v, (*path, i)) for i, v in enumerate(value)]
        elif isinstance(value, str):
            found.setdefault(value, path)
    return found


def enforce(
    merged: Merged,
    agent: str,
    gateway_services: frozenset[str],
    relax: dict[str, str],
    context: dict[str, Any],
    source: str,
) -> None:
    """Raise DocumentError listing every broken rule, or PlanError when each comes from a plan value.

    A problem whose value at fault is, verbatim, a value of the plan is reported at the plan's
    key path (exit 3): the plan has to change, whatever the templates.
    """
    document = merged.document
    services = {k: v for k, v in (document.get("services") or {}).items() if isinstance(v, dict)}
    networks = document.get("networks") or {}
    roles = {
        key: d[ROLE_KEY].get("role")
        for key, d in networks.items()
        if isinstance(d, dict) and isinstance(d.get(ROLE_KEY), dict)
    }
    strict = context["plan"].get("hardening") == "strict"
    facts = Facts(
        merged,
        services,
        agent,
        gateway_services,
        roles,
        context["settings"]["hardening"] if strict else None,
        context["plan"].get("seal_host") is True,
    )
    problems = [
        Problem(p) if isinstance(p, str) else p
        for rule, check in RULES.items()
        if rule not in relax
        for p in check(facts)
    ]
    if not problems:
        return
    in_plan = plan_paths(context)
    from_plan = [
        f"{source}::{json_path(in_plan[p.value])}: {p.message}"
        for p in problems
        if isinstance(p.value, str) and p.value in in_plan
    ]
    if len(from_plan) == len(problems):
        raise PlanError("invalid plan: a value would break the sandbox's rules; change it:", from_plan)
    raise DocumentError(
        "the rendered document breaks the sandbox's rules (bottlegen's policy); fix the template named, "
        "or, for a rule that may be relaxed, say so in the manifest's `relax:`:",
        [p.message for p in problems],
    )
