"""Stage 6b: the sandbox's invariants, checked on every render, whatever templates are in effect.

The packaged templates make a sealed bottle; this module is what makes that a property of
bottlegen rather than of those templates. It reads the merged document, with the manifest's
roles (which service is the agent, which are gateways) and the networks' roles
(`x-bottlegen: {role: internal | egress}` on each network), never a key's spelling, and it
judges what the engine will do, not how the file spells it: host paths as they resolve on
the host (host.py), networks by the names the engine gives them, and nothing compose would
interpolate at `up` where a value is judged. The agent's keys and security options are
allow-lists: what is not on them is refused until the manifest relaxes the rule.

Each rule is one function that returns its problems; `enforce` runs them all and reports
every problem at once (exit 5, naming the document path and the template). A rule in
RELAXABLE can be turned off by the manifest in effect, with a reason (`relax:`), and every
rendered file then names it in its header; the other rules always hold.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

from .. import host as hosts
from ..composefile import HostPath, byte_size, cpu_count, dns_problem, host_paths, mounts, names, unescape
from ..paths import json_path, shorten
from ..roles import EGRESS, INTERNAL, ROLE_KEY
from ..stages import resolve
from ..stages.merge import Merged
from ..stages.verdicts import Finding, refuse

PROJECT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")
_INTERPOLATION = re.compile(r"\$(?!\$)")
_REFERENCE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")
BUILT_IN_NETWORKS = resolve.ENGINE_NETWORKS

# The keys the agent's service may carry. Beside these, the keys other rules judge by value
# (JUDGED_AGENT_KEYS) and extension keys (`x-...`). Any other key (gpus, sysctls, dns,
# extra_hosts, secrets, configs, links, cgroup_parent, profiles, ...) is refused until the
# manifest relaxes `agent-keys` with a reason.
AGENT_KEYS = frozenset(
    {
        "image", "command", "entrypoint", "environment", "env_file", "working_dir", "user",
        "tmpfs", "depends_on", "healthcheck", "labels", "container_name", "hostname", "init",
        "read_only", "cap_drop", "ulimits", "stop_signal", "stop_grace_period", "restart",
        "tty", "stdin_open", "platform", "pull_policy", "expose", "pids_limit", "mem_limit",
        "mem_reservation", "memswap_limit", "mem_swappiness", "cpus", "cpu_shares", "cpu_quota",
        "cpu_period", "cpuset", "shm_size", "blkio_config", "deploy",
    }
)  # fmt: skip
JUDGED_AGENT_KEYS = frozenset(
    {
        "networks", "network_mode", "ports", "privileged", "cap_add", "devices",
        "device_cgroup_rules", "security_opt", "pid", "ipc", "uts", "userns_mode", "cgroup",
        "volumes", "volumes_from", "runtime",
    }
)  # fmt: skip
# deploy: only resources (limits and reservations of CPU, memory, processes), restarts and labels.
AGENT_DEPLOY = {"resources": {"limits": {"cpus", "memory", "pids"}, "reservations": {"cpus", "memory"}}}
AGENT_DEPLOY_PLAIN = frozenset({"restart_policy", "labels"})
# security_opt values the agent may carry: no-new-privileges, and seccomp and AppArmor only as
# the engine's default. A custom profile, `unconfined`, `label=...` need agent-privileges relaxed.
AGENT_SECURITY_OPTS = frozenset(
    {"no-new-privileges", "no-new-privileges:true", "seccomp:builtin", "apparmor:docker-default"}
)
AGENT_VOLUME_TYPES = ("bind", "volume", "tmpfs")
NAMESPACE_KEYS = ("pid", "ipc", "uts", "userns_mode", "cgroup")
# Interpolation a service other than the agent may use (values compose fills from the
# environment of `up` where nothing the policy judges is): its environment, command,
# entrypoint, healthcheck test and labels. The agent may use none.
INTERPOLATED_KEYS = ("environment", "command", "entrypoint", "healthcheck", "labels")


class Facts(NamedTuple):
    """What the rules look at, read once from the document, the manifest and the plan."""

    merged: Merged
    services: dict[str, dict[str, Any]]
    agent: str
    gateways: frozenset[str]
    roles: dict[str, str]  # network key -> role, by the engine network each key resolves to
    engine_names: dict[str, str | None]  # network key -> its name on the engine (None: interpolated)
    hardening: dict[str, Any] | None  # with `hardening: strict`, settings.hardening; else None
    seal_host: bool  # the plan's seal_host
    use_runsc: bool  # the plan's use_runsc
    tokens: frozenset[str]  # the token variables of the gateways (egress.token_env_map)
    forwarded: frozenset[str]  # the plan's forwarded_env
    host: hosts.HostView  # how host paths resolve (each path resolved once per render)
    writable: frozenset[str]  # the host paths the plan marks writable, resolved
    places: list[HostPath]  # every host path the document hands a container

    def at(self, path: tuple[Any, ...], message: str, value: Any = None) -> Finding:
        """A problem at a key path of the document (named with the template that wrote it)."""
        return Finding(message, value, tuple(path))

    def resolved(self, written: str) -> hosts.Resolved | None:
        """A host path as written in the document, as the engine will open it; None when
        compose would interpolate it or it is relative (other rules say so)."""
        text = literal(written)
        if text is None:
            return None
        expanded = os.path.expanduser(text)
        if not expanded.startswith("/"):
            return None
        return self.host.resolve(expanded)


def literal(value: Any) -> str | None:
    """A string as compose reads it, or None when compose would interpolate a variable in it."""
    if not isinstance(value, str):
        return None
    return None if _INTERPOLATION.search(value.replace("$$", "")) else unescape(value)


def _networks_of(service: dict[str, Any]) -> list[str]:
    """The network keys a service joins; compose's implicit `default` when it names none."""
    if "network_mode" in service:
        return []
    return names(service.get("networks")) or ["default"]


def engine_name(project: Any, key: str, definition: Any) -> str | None:
    """The name a network key has on the engine: its `name:`; else, external, the key itself;
    else `<project>_<key>`. None when compose would interpolate the name."""
    definition = definition if isinstance(definition, dict) else {}
    if "name" in definition:
        return literal(definition["name"])
    if definition.get("external") is True:
        return key
    return f"{project}_{key}"


# --- the rules -------------------------------------------------------------------------


def document_name(f: Facts) -> Iterator[Finding]:
    name = f.merged.document.get("name")
    if not isinstance(name, str) or not PROJECT_NAME.fullmatch(name):
        yield f.at(
            ("name",),
            f"the document needs a top-level `name:`, the compose project name (lowercase letters, "
            f"digits, - and _), which `up`, `ps` and `down` find the bottle by; got {shorten(name)}",
        )


def no_includes(f: Facts) -> Iterator[Finding]:
    if "include" in f.merged.document:
        yield f.at(
            ("include",), "`include` brings in services the policy cannot see; render them from templates instead"
        )
    for name, service in f.services.items():
        if "extends" in service:
            yield f.at(
                ("services", name, "extends"),
                "`extends` brings in settings the policy cannot see; write them in the template",
            )


def _strings(value: Any, path: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], str]]:
    """Every string value under value (keys are not interpolated), with its key path."""
    stack = [(value, path)]
    while stack:
        item, at = stack.pop()
        if isinstance(item, str):
            yield at, item
        elif isinstance(item, dict):
            stack += [(v, (*at, k)) for k, v in reversed(item.items())]
        elif isinstance(item, list):
            stack += [(v, (*at, i)) for i, v in reversed(list(enumerate(item)))]


def no_interpolation(f: Facts) -> Iterator[Finding]:
    """Nothing compose would fill in from the environment of `up` where the policy judges a
    value: the policy must judge what will run. Plan values are written with `$$` (a literal
    `$`), so only a template writes `${...}` or `$VAR`."""
    document = f.merged.document
    for key, value in document.items():
        if key == "services" and isinstance(value, dict):
            for name, service in value.items():
                if not isinstance(service, dict):
                    continue
                for sub, item in service.items():
                    if name != f.agent and sub in INTERPOLATED_KEYS:
                        continue
                    for at, text in _strings(item, ("services", name, sub)):
                        if _INTERPOLATION.search(text.replace("$$", "")):
                            whom = "the agent's service" if name == f.agent else f"{json_path(at[:3])}"
                            yield f.at(
                                at,
                                f"{shorten(text)} would be filled in by compose from the environment of "
                                f"`up`, which the policy cannot judge; {whom} may hold no `$` interpolation here "
                                "(write the value, or `$$` for a literal `$`)",
                            )
        else:
            for at, text in _strings(value, (key,)):
                if _INTERPOLATION.search(text.replace("$$", "")):
                    yield f.at(
                        at,
                        f"{shorten(text)} would be filled in by compose from the environment of `up`, "
                        "which the policy cannot judge; write the value (or `$$` for a literal `$`)",
                    )


def agent_exists(f: Facts) -> Iterator[Finding]:
    if f.agent not in f.services:
        yield f.at(
            ("services",),
            f"the agent service {f.agent!r} (the manifest's `role: agent`) is not rendered; "
            f"a bottle always has its agent (services: {', '.join(f.services) or 'none'})",
        )


def network_roles(f: Facts) -> Iterator[Finding]:
    networks = f.merged.document.get("networks") or {}
    declared = {
        key: r for key, r in f.roles.items() if isinstance(networks.get(key), dict) and ROLE_KEY in networks[key]
    }
    for role in (INTERNAL, EGRESS):
        keys = [key for key, r in declared.items() if r == role]
        if len(keys) != 1:
            yield f.at(
                ("networks",),
                f"exactly one network must have `{ROLE_KEY}: {{role: {role}}}`; "
                + (f"found {', '.join(keys)}" if keys else "none has it"),
            )
    by_engine: dict[str, tuple[str, str]] = {}
    for key, role in declared.items():
        definition = networks.get(key) or {}
        name = f.engine_names.get(key)
        if name is None:
            yield f.at(
                ("networks", key, "name"),
                f"the {role}-role network's name would be filled in by compose "
                "from the environment of `up`; the policy judges networks by their names on the engine: write it",
            )
            continue
        if name in by_engine and by_engine[name][1] != role:
            yield f.at(
                ("networks", key),
                f"networks {by_engine[name][0]} and {key} are one network "
                f"({shorten(name)}) on the engine; the internal and egress networks must differ",
            )
        by_engine.setdefault(name, (key, role))
        if role == INTERNAL and name in BUILT_IN_NETWORKS:
            yield f.at(
                ("networks", key),
                f"the internal-role network is the engine's built-in {name!r} network, "
                "which is not internal; name a network of the bottle's own",
            )
        if role == INTERNAL and definition.get("external") is not True and definition.get("internal") is not True:
            yield f.at(
                ("networks", key),
                "the internal-role network must be `internal: true` (no route out), "
                "or `external: true` (bottlegen up creates it with --internal)",
            )
    for key, definition in networks.items():
        given: Any = definition.get(ROLE_KEY) if isinstance(definition, dict) else None
        if given is not None and (
            not isinstance(given, dict) or given.get("role") not in (INTERNAL, EGRESS) or len(given) != 1
        ):
            yield f.at(
                ("networks", key, ROLE_KEY),
                f"must be {{role: internal}} or {{role: egress}}; got {shorten(given)}",
            )


def agent_networks(f: Facts) -> Iterator[Finding]:
    agent = f.services.get(f.agent)
    if agent is None:
        return
    if "network_mode" in agent:
        yield f.at(
            ("services", f.agent, "network_mode"),
            "the agent may not set network_mode; it joins the internal network only",
        )
        return
    joined = names(agent.get("networks"))
    if not joined:
        yield f.at(
            ("services", f.agent),
            "the agent names no networks, so compose would put it on the project's "
            "default network, which has a route out; give it the internal network",
        )
    for key in joined:
        if f.roles.get(key) != INTERNAL:
            yield f.at(
                ("services", f.agent, "networks", key),
                f"the agent may join only the internal-role network; "
                f"{key!r} is {'the ' + f.roles[key] + '-role network' if key in f.roles else 'a network without the internal role'}",
            )


def agent_ports(f: Facts) -> Iterator[Finding]:
    agent = f.services.get(f.agent) or {}
    if agent.get("ports"):
        yield f.at(
            ("services", f.agent, "ports"),
            "the agent may not publish ports: they are a way in from outside the bottle",
        )


def agent_keys(f: Facts) -> Iterator[Finding]:
    """The agent carries only keys on the allow-list (AGENT_KEYS) or judged by another rule."""
    agent = f.services.get(f.agent) or {}
    for key in agent:
        if key in AGENT_KEYS or key in JUDGED_AGENT_KEYS or (isinstance(key, str) and key.startswith("x-")):
            continue
        yield f.at(
            ("services", f.agent, key),
            f"the agent may not carry `{key}` (it is not on the agent's allow-list); "
            "leave it out, or relax `agent-keys` in the manifest with the reason a reviewer reads",
        )
    deploy = agent.get("deploy")
    if isinstance(deploy, dict):
        for key, value in deploy.items():
            if key in AGENT_DEPLOY_PLAIN:
                continue
            if key not in AGENT_DEPLOY or not isinstance(value, dict):
                yield f.at(
                    ("services", f.agent, "deploy", key),
                    "the agent's deploy may hold only resources' limits and reservations, restart_policy and labels",
                )
                continue
            for kind, limits in value.items():
                allowed = AGENT_DEPLOY[key].get(kind)
                extra = sorted(set(limits) - allowed) if allowed is not None and isinstance(limits, dict) else [kind]
                for name in extra:
                    at = ("services", f.agent, "deploy", key, kind) + ((name,) if name != kind else ())
                    yield f.at(
                        at,
                        f"the agent's deploy.resources may set only cpus, memory and pids "
                        f"(reservations: cpus and memory); {name!r} (devices, generic resources) needs `agent-keys` relaxed",
                    )


def _security_option(option: Any) -> str | None:
    """A security_opt value in one spelling (`kind:value`, lowercase), or None when compose
    would interpolate it or it is not a string."""
    text = literal(option)
    if text is None:
        return None
    kind, sep, value = text.replace("=", ":", 1).partition(":")
    return f"{kind.strip().lower()}{sep}{value.strip().lower()}" if sep else kind.strip().lower()


def agent_privileges(f: Facts) -> Iterator[Finding]:
    agent = f.services.get(f.agent) or {}
    at = ("services", f.agent)
    if agent.get("privileged", False) is not False:
        yield f.at(
            (*at, "privileged"),
            "the agent may not be privileged",
        )
    for key, what in (
        ("cap_add", "add capabilities"),
        ("devices", "get host devices"),
        ("device_cgroup_rules", "get device access rules"),
    ):
        if agent.get(key):
            yield f.at(
                (*at, key),
                f"the agent may not {what}",
            )
    for index, option in enumerate(agent.get("security_opt") or []):
        if _security_option(option) not in AGENT_SECURITY_OPTS:
            yield f.at(
                (*at, "security_opt", index),
                f"{shorten(option)} would change the agent's confinement; it may "
                f"carry only {', '.join(sorted(AGENT_SECURITY_OPTS))} (the engine's own seccomp and AppArmor profiles)",
            )


def agent_host_namespaces(f: Facts) -> Iterator[Finding]:
    agent = f.services.get(f.agent) or {}
    for key in NAMESPACE_KEYS:
        value = agent.get(key)
        if value is None:
            continue
        text = literal(value)
        if text is None or text == "host" or text.startswith(("container:", "service:")):
            yield f.at(
                ("services", f.agent, key),
                f"{key}: {shorten(value)} would share a namespace with the host or another container",
            )


def service_namespaces(f: Facts) -> Iterator[Finding]:
    """No other service shares the host's namespaces, nor those of the agent or a gateway
    (whose processes hold the keys and tokens), nor a container outside the bottle."""
    containers = {s.get("container_name"): n for n, s in f.services.items() if isinstance(s.get("container_name"), str)}
    protected = {f.agent, *f.gateways}
    for name, service in f.services.items():
        if name == f.agent:
            continue
        for key in ("network_mode", *NAMESPACE_KEYS):
            if key not in service:
                continue
            text = literal(service[key])
            kind, _, target = (text or "").partition(":")
            owner = target if kind == "service" else containers.get(target) if kind == "container" else None
            if text is None:
                why = "is filled in by compose at `up`, so what it shares cannot be judged"
            elif text == "host":
                why = "shares the host's namespace"
            elif kind == "container" and owner is None:
                why = "shares the namespace of a container outside the bottle"
            elif kind in ("service", "container") and owner in protected:
                why = f"shares the namespace of {'the agent' if owner == f.agent else 'gateway ' + str(owner)}"
            else:
                continue
            yield f.at(
                ("services", name, key),
                f"{key}: {shorten(service[key])} {why}",
            )
        for index, source in enumerate(service.get("volumes_from") or []):
            text = literal(source) or ""
            kind, _, target = text.partition(":")
            owner = containers.get(target.split(":")[0]) if kind == "container" else kind
            if name not in f.gateways and (owner in protected or (kind == "container" and owner is None)):
                yield f.at(
                    ("services", name, "volumes_from", index),
                    f"{name} may not take the volumes of "
                    f"{shorten(source)} (the agent's, a gateway's, or a container outside the bottle)",
                )


def runtime(f: Facts) -> Iterator[Finding]:
    """The plan's use_runsc holds: the agent runs under gVisor, whatever the templates write."""
    agent = f.services.get(f.agent)
    if f.use_runsc and agent is not None and agent.get("runtime") != "runsc":
        given = f"runtime is {shorten(agent['runtime'])}" if "runtime" in agent else "has no runtime"
        yield f.at(
            ("services", f.agent, "runtime"),
            f"the plan asks for use_runsc, but the agent {given}; it must be `runtime: runsc`",
        )


def host_paths_rule(f: Facts) -> Iterator[Finding]:
    """Every host path, as it resolves: never a socket, a device or a FIFO; never a system
    tree itself, a user's home itself or under the engine's data root; nothing in a system
    tree writable; writable only where the plan marks a path writable."""
    for place in f.places:
        text = literal(place.value)
        if text is None:
            continue  # no-interpolation says so
        expanded = os.path.expanduser(text)
        if not expanded.startswith("/"):
            if place.use != "bind":  # check.bind_sources_absolute says so for binds
                yield f.at(
                    place.at,
                    f"{place.use} {shorten(place.value)} is relative, so what the engine opens depends on "
                    "where the file is written; write it absolute",
                )
            continue
        resolved = f.host.resolve(expanded)
        shown = resolved.describe(text)
        if resolved.kind in hosts.FORBIDDEN_TYPES:
            yield f.at(
                place.at,
                f"{place.use} {shown} is not a file but a channel to the host; no service may be given one",
                text,
            )
            continue
        if f.host.in_pseudo_tree(resolved.path):
            yield f.at(
                place.at,
                f"{place.use} {shown} is in a kernel pseudo-filesystem (/proc, /sys): a window on the "
                "kernel or on a process, not a file; no service may be given it",
                text,
            )
            continue
        whole = _whole_of_host(f.host, resolved.path)
        if whole is not None:
            yield f.at(
                place.at,
                f"{place.use} {shown} is a host system tree, a user's home or the engine's data: {whole}; "
                "no service may be given it",
                text,
            )
            continue
        if place.writable and place.use in ("bind", "volume device"):
            tree = f.host.in_tree(resolved.path)
            if tree is not None:
                yield f.at(
                    place.at, f"{place.use} {shown} is writable and in the host's {tree}; mount it read-only", text
                )
            elif resolved.path not in f.writable:  # the template made it writable: the template is at fault
                yield f.at(
                    place.at,
                    f"{place.use} {shown} is writable, but the plan marks no such host path writable; "
                    "mount it read-only (`read_only: true`), or take it from a plan key marked `x-writable`",
                )


def _whole_of_host(host: hosts.HostView, path: str) -> str | None:
    """What of the host path is the whole of, said for an operator: the root, a system tree
    itself, a user's home itself, or (at or below it) the engine's data; None otherwise."""
    data_root = hosts.normalized(host.data_root)
    if path == data_root or path.startswith(data_root + "/"):
        return f"the engine's own data (its data root {data_root}: images, containers, volumes)"
    if path == hosts.ROOT:
        return "the host's root file system"
    if path in host.homes:
        return "a user's home directory"
    if path in host.trees:
        return f"the host's whole {path} (a system tree)"
    return None


def agent_host_mounts(f: Facts) -> Iterator[Finding]:
    agent = f.services.get(f.agent) or {}
    if agent.get("volumes_from"):
        yield f.at(
            ("services", f.agent, "volumes_from"),
            "the agent may not take another container's volumes (they hold the sidecars' keys)",
        )
    volumes = f.merged.document.get("volumes") or {}
    for index, kind, source, _ in mounts(agent):
        if kind not in AGENT_VOLUME_TYPES:
            yield f.at(
                ("services", f.agent, "volumes", index),
                f"the agent may have only bind, volume and tmpfs mounts; got {shorten(kind)}",
            )
        elif kind == "volume" and isinstance(source, str) and (volumes.get(source) or {}).get("external"):
            yield f.at(
                ("services", f.agent, "volumes", index),
                f"volume {shorten(source)} is external: what it "
                "holds and how its driver mounts it cannot be judged here",
            )
    for place in f.places:
        if f.agent not in place.services:
            continue
        resolved = f.resolved(place.value)
        if (
            resolved is None
            or resolved.kind in hosts.FORBIDDEN_TYPES
            or f.host.is_tree_root(resolved.path)
            or f.host.in_pseudo_tree(resolved.path)
        ):
            continue  # host-paths refuses these for every service
        tree = f.host.in_tree(resolved.path)
        if tree is not None:
            yield f.at(
                place.at,
                f"{place.use} {resolved.describe(literal(place.value) or '')} would give the agent "
                f"the host's {tree} (the engine, the host's system or a user's home)",
                literal(place.value),
            )
        elif place.writable:  # x-writable paths are the sidecars' (supervise's queue): the agent only reads
            yield f.at(
                place.at,
                f"{place.use} {resolved.describe(literal(place.value) or '')} is writable: the agent may not "
                "write to the host (a path the plan marks writable is a sidecar's, such as supervise's queue); "
                "mount it read-only",
            )


def tokens(f: Facts) -> Iterator[Finding]:
    """No token variable of a gateway reaches the agent: not by its environment (names compared
    exactly, as the engine does), an env file, a secret or config from the environment."""
    agent = f.services.get(f.agent)
    if agent is None or not f.tokens:
        return
    environment = agent.get("environment")
    # What compose forwards from the environment of `up`: a bare NAME, or NAME with no value
    # (a value written in the file is that value, not the variable's)
    forwarded = (
        [(i, e) for i, e in enumerate(environment) if isinstance(e, str) and "=" not in e]
        if isinstance(environment, list)
        else [(k, k) for k, v in environment.items() if v is None]
        if isinstance(environment, dict)
        else []
    )
    for at, variable in forwarded:
        if variable in f.tokens:
            yield f.at(
                ("services", f.agent, "environment", at),
                f"{variable} is a token variable of a gateway "
                "(egress.token_env_map), forwarded from the environment of `up`; the agent may never hold it",
                variable if variable in f.forwarded else None,  # the plan's forwarded_env, or a template
            )
    for place in f.places:
        if place.use != "env_file" or f.agent not in place.services or not f.host.reads_host:
            continue
        resolved = f.resolved(place.value)
        if resolved is None or resolved.kind != hosts.FILE:
            continue
        for variable in sorted(_env_file_names(resolved.path) & f.tokens):
            yield f.at(
                (*place.at,),
                f"env file {shorten(place.value)} sets {variable}, a token variable of a gateway "
                "(egress.token_env_map), in the agent's environment; the agent may never hold it",
                literal(place.value),
            )
    document = f.merged.document
    for kind in ("secrets", "configs"):
        for index, ref in enumerate(agent.get(kind) or []):
            source = ref.get("source") if isinstance(ref, dict) else ref
            entry = (document.get(kind) or {}).get(source) if isinstance(source, str) else None
            if isinstance(entry, dict) and entry.get("environment") in f.tokens:
                yield f.at(
                    ("services", f.agent, kind, index),
                    f"{kind[:-1]} {source!r} is the token variable "
                    f"{entry['environment']} of a gateway; the agent may never hold it",
                )


def _env_file_names(path: str) -> set[str]:
    """The variable names an env file sets (`NAME=...`, `export NAME=...`, a bare `NAME`)."""
    try:
        lines = hosts.read_bytes(path, 1 << 20).decode("utf-8", errors="replace").splitlines()
    except OSError:
        return set()
    found = set()
    for line in lines:
        text = line.strip().removeprefix("export ").strip()
        if text and not text.startswith("#"):
            found.add(re.split(r"[=:\s]", text, maxsplit=1)[0])
    return found


def gateways(f: Facts) -> Iterator[Finding]:
    for name, service in f.services.items():
        if name in f.gateways or name == f.agent:
            continue
        joined = _networks_of(service)
        inside = [key for key in joined if f.roles.get(key) == INTERNAL]
        outside = [key for key in joined if f.roles.get(key) != INTERNAL]
        if inside and outside:
            yield f.at(
                ("services", name, "networks"),
                f"{name} joins the internal network and {', '.join(outside)}, a way "
                f"out for the agent; only services the manifest marks `role: gateway` may ({', '.join(sorted(f.gateways)) or 'none'})",
            )


def env_override(f: Facts) -> Iterator[Finding]:
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
                yield f.at(
                    ("services", name, "environment", index),
                    f"{shorten(variable)} is set twice for service {name} "
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


def dns_names(f: Facts) -> Iterator[Finding]:
    owners: dict[str, str] = {}
    for name, service in f.services.items():
        for path, dns in _dns_names(name, service):
            why = dns_problem(dns)
            if why is not None:
                yield f.at((*path,), f"{shorten(dns)} is {why}: the other containers could not resolve it", dns)
            owner = owners.setdefault(dns.lower(), name)
            if owner != name:
                yield f.at(
                    (*path,),
                    f"{shorten(dns)} is also a name of service {owner}; "
                    "two services answering to one name would make the agent dial either",
                    dns,
                )


RuleFunction = Callable[[Facts], Iterator[Finding]]


def _limit_problem(key: str, given: Any, allowed: Any) -> str | None:
    """Why a strict limit is not one: not positive, or looser than the plan's."""
    parse = {"pids_limit": lambda v: v if isinstance(v, int) and not isinstance(v, bool) else None,
             "mem_limit": byte_size, "cpus": cpu_count}[key]  # fmt: skip
    value, bound = parse(given), parse(allowed)
    if value is None or value <= 0:
        return (
            f"{key} {shorten(given)} is no limit (it must be a positive {'count' if key == 'pids_limit' else 'amount'})"
        )
    if bound is not None and value > bound:
        return f"{key} {shorten(given)} is looser than the plan's {shorten(allowed)} (settings.hardening)"
    return None


def hardening(f: Facts) -> Iterator[Finding]:
    """With `hardening: strict`, every service is what the plan asked for, judged by value:
    the templates must write it, and none can leave it out or loosen it."""
    if f.hardening is None:
        return
    for name, service in f.services.items():
        here = ("services", name)
        settings = f.hardening.get(name) or {}
        given = set(names(settings.get("cap_add")))
        if "ALL" not in names(service.get("cap_drop")):
            yield f.at(here, f"hardening is strict, but {name} keeps its capabilities (it needs `cap_drop: [ALL]`)")
        extra = sorted(set(names(service.get("cap_add"))) - given)
        if extra:
            yield f.at(
                here,
                f"hardening is strict, but {name} adds {', '.join(extra)}, which the plan does not give it "
                f"(settings.hardening.{name}.cap_add)",
            )
        if not {"no-new-privileges:true", "no-new-privileges"} & {
            _security_option(o) for o in service.get("security_opt") or []
        }:
            yield f.at(here, f"hardening is strict, but {name} lacks `security_opt: [no-new-privileges:true]`")
        if service.get("read_only") is not True:
            yield f.at(
                here, f"hardening is strict, but {name}'s root file system is writable (it needs `read_only: true`)"
            )
        missing = [key for key in ("pids_limit", "mem_limit", "cpus") if key not in service]
        if missing:
            yield f.at(here, f"hardening is strict, but {name} has no {', '.join(missing)}")
        for key in ("pids_limit", "mem_limit", "cpus"):
            if key in service and (why := _limit_problem(key, service[key], settings.get(key))) is not None:
                yield f.at(
                    ("services", name, key),
                    f"hardening is strict, but {name}'s {why}",
                )
    agent = f.services.get(f.agent)
    if agent is not None and agent.get("init") is not True:
        yield f.at(
            ("services", f.agent),
            "hardening is strict, but the agent runs without an init (`init: true`)",
        )


def sealed_host(f: Facts) -> Iterator[Finding]:
    """With the plan's `seal_host: true`, the document says so, for `up` to seal the host."""
    marker = f.merged.document.get(ROLE_KEY)
    if f.seal_host and not (isinstance(marker, dict) and marker.get("seal_host") is True):
        yield f.at(
            (ROLE_KEY,), f"the plan asks for seal_host, but the document lacks `{ROLE_KEY}: {{seal_host: true}}`"
        )


# Every rule, in the order problems are listed. The relaxable ones are those the manifest's
# `relax:` may turn off; the others always hold.
RULES: dict[str, RuleFunction] = {
    "document-name": document_name,
    "no-includes": no_includes,
    "no-interpolation": no_interpolation,
    "agent-exists": agent_exists,
    "network-roles": network_roles,
    "agent-networks": agent_networks,
    "agent-ports": agent_ports,
    "agent-keys": agent_keys,
    "agent-privileges": agent_privileges,
    "agent-host-namespaces": agent_host_namespaces,
    "service-namespaces": service_namespaces,
    "runtime": runtime,
    "host-paths": host_paths_rule,
    "agent-host-mounts": agent_host_mounts,
    "tokens": tokens,
    "gateways": gateways,
    "env-override": env_override,
    "dns-names": dns_names,
    "hardening": hardening,
    "sealed-host": sealed_host,
}
# The rules that read the host (resolved paths, file types, env files): `up` runs them again
# right before anything is created, with a view of the engine's host.
HOST_RULES = ("host-paths", "agent-host-mounts", "tokens")


def facts_of(
    merged: Merged,
    agent: str,
    gateway_services: frozenset[str],
    context: dict[str, Any],
    host: hosts.HostView,
    writable: Sequence[str] = (),
) -> Facts:
    """What the rules look at: the document's services, each network's role and engine name
    (a network key takes the role of the engine network it resolves to), the plan's asks."""
    document = merged.document
    services = {k: v for k, v in (document.get("services") or {}).items() if isinstance(v, dict)}
    networks = document.get("networks") or {}
    project = document.get("name")
    declared = {key: networks.get(key) for key in networks}
    for service in services.values():  # compose's implicit default network, where a service joins it
        if "default" in _networks_of(service):
            declared.setdefault("default", None)
    engine_names = {key: engine_name(project, key, d) for key, d in declared.items()}
    by_role = {
        key: d[ROLE_KEY].get("role")
        for key, d in networks.items()
        if isinstance(d, dict) and isinstance(d.get(ROLE_KEY), dict)
    }
    engine_roles = {engine_names[key]: role for key, role in by_role.items() if engine_names.get(key)}
    roles = {key: by_role.get(key) or engine_roles.get(engine_names[key] or "") for key in declared}
    strict = context["plan"].get("hardening") == "strict"
    host = hosts.HostView(functools.cache(host.resolve), host.data_root, host.homes, host.reads_host)  # once a render
    return Facts(
        merged,
        services,
        agent,
        gateway_services,
        {key: role for key, role in roles.items() if role},
        engine_names,
        context["settings"]["hardening"] if strict else None,
        context["plan"].get("seal_host") is True,
        context["plan"].get("use_runsc") is True,
        frozenset(context["plan"]["egress"].get("token_env_names") or ()),
        frozenset(context["plan"].get("forwarded_env") or ()),
        host,
        frozenset(host.resolve(os.path.expanduser(w)).path for w in writable if w.startswith(("/", "~"))),
        host_paths(document),
    )


def judge(facts: Facts, relax: dict[str, str], rules: tuple[str, ...] | None = None) -> list[Finding]:
    """Every finding of the rules (all, or those named), but the relaxed ones, each with its rule."""
    return [
        finding._replace(rule=rule)
        for rule, check in RULES.items()
        if rule not in relax and (rules is None or rule in rules)
        for finding in check(facts)
    ]


def enforce(
    merged: Merged,
    agent: str,
    gateway_services: frozenset[str],
    relax: dict[str, str],
    context: dict[str, Any],
    source: str,
    host: hosts.HostView | None = None,
    writable: Sequence[str] = (),
) -> None:
    """Raise DocumentError listing every broken rule, or PlanError when each comes from a plan value.

    A problem whose value at fault is, verbatim, a value of the plan is reported at the plan's
    key path (exit 3): the plan has to change, whatever the templates. Host paths are judged
    with host (default: this machine, read now).
    """
    facts = facts_of(merged, agent, gateway_services, context, host or hosts.local(), writable)
    refuse(judge(facts, relax), merged, context, source, "document")
