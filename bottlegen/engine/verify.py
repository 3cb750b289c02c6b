"""`bottlegen verify`: prove, on the running bottle, what its compose file promises.

Network probes run in a probe container that joins the agent's network and PID namespaces
(probe.py), so they see exactly what the agent sees and need nothing in the agent's
image; what `docker inspect` says is read beside them. Each probe is one line: pass, FAIL
or warn, and what was seen. A FAIL means the bottle breaks a promise; a warn means the
property is not one the plan asked for, or one this engine cannot give (and why).

The probes send packets only to the bottle's own containers, the containers verify starts
(an "outsider" on each egress-role network), the host's addresses on its bridges, and
addresses or DNS names the operator names: nothing needs to leave the machine to prove a
property, and the routing table is read, not tested by sending.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import socket
import struct
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ..composefile import byte_size, cpu_count, names
from ..errors import ComposeError, OutputError, UsageError
from ..yamlfull import load_yaml
from . import api, drift, firewall, hostside, probe
from .docker import Engine, inspected, listed, run, vulnerability_warning
from .networks import Network, bridges
from .state import Bottle, Promises, read_promises

PASS, FAIL, WARN = "pass", "FAIL", "warn"
PROBE_SECONDS = 1  # how long a connection attempt waits before the address counts as unreachable (the
# kernel answers a SYN or a ping at once on a local bridge, however busy the service is)
HOST_PORT = 1  # tcpmux: nothing listens there; a refusal proves the host answers as well as a reply
OUTSIDER_PORT = 80
DEFAULT_ROUTE_FIXED = (25, 0)  # from Docker 25.0 an internal network gives its containers no default route
TOKEN_MIN = 4  # shorter token values are not searched for: they would match ordinary text
PORT_TARGETS = 1024  # host address and port pairs dialled, at most


@dataclass(frozen=True)
class Probe:
    """One line of verify's report; a drift also names the field, what the file allows and what runs."""

    name: str
    status: str  # PASS, FAIL or WARN
    detail: str
    field: str | None = None
    expected: str | None = None
    seen: str | None = None

    def as_json(self) -> dict[str, str]:
        found = {"probe": self.name, "status": self.status.lower(), "detail": self.detail}
        if self.field is not None:
            found |= {"field": self.field, "expected": str(self.expected), "seen": str(self.seen)}
        return found


@dataclass(frozen=True)
class VerifyOptions:
    image: str | None = None  # the probe image; default: probe.image()
    dns: Sequence[str] = ()  # external names that must not resolve from the agent
    addresses: Sequence[str] = ()  # more host addresses that must not answer the agent when sealed


NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")  # what the probe passes to nc, ping and nslookup


def check_options(options: VerifyOptions) -> None:
    """A UsageError for a --probe-dns that is not a DNS name or a --probe-address that is not an address."""
    for name in options.dns:
        if not NAME.fullmatch(name):
            raise UsageError(f"--probe-dns {name!r}: give a DNS name (letters, digits, '-', '_' and '.')")
    for address in options.addresses:
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise UsageError(f"--probe-address {address!r}: give an IPv4 or IPv6 address") from None


def failed(report: Sequence[Probe]) -> bool:
    return any(p.status == FAIL for p in report)


def verify(engine: Engine, bottle: Bottle, options: VerifyOptions = VerifyOptions()) -> list[Probe]:
    """Every probe's result, in a fixed order. Raises only when verify cannot run at all."""
    check_options(options)
    state_dir = bottle.compose_file.parent
    promises = read_promises(state_dir)
    try:
        document = load_yaml(bottle.compose_file.read_text(encoding="utf-8"))
    except Exception as e:
        raise OutputError(f"{bottle.compose_file}: cannot read the bottle's compose file: {e}") from None
    services = document.get("services") or {}
    inspected = _inspect(engine, bottle)
    report = [_running(services, inspected)]
    agent = inspected.get(promises.agent)
    if agent is None or not agent["State"].get("Running"):
        return [*report, Probe("agent", FAIL, f"the agent ({promises.agent}) is not running: nothing else to probe")]
    image = probe.image(engine, options.image)
    networks = {n.name: n for n in bridges(engine)}
    joined = sorted((agent["NetworkSettings"].get("Networks") or {}).keys())
    declared: dict[str, Any] = services[promises.agent] if isinstance(services.get(promises.agent), dict) else {}
    tokens = {name: os.environ[name] for name in promises.tokens if len(os.environ.get(name, "")) >= TOKEN_MIN}
    report += [
        _agent_networks(bottle, agent, joined, networks),
        _agent_ports(agent),
        _agent_privileges(agent),
        _docker_socket(agent),
        *_environment(agent, promises, tokens),
        *_drift(engine, declared, document, agent, inspected),
        *_host_side(engine, agent, inspected, promises, tokens),
    ]
    with _outsiders(engine, image, bottle, networks) as outsiders:
        targets = _Targets()
        sidecars = _sidecar_targets(targets, promises, services, bottle)
        egress_side = _egress_targets(targets, promises, inspected, outsiders, bottle)
        host = sorted({g for n in networks.values() for g in n.gateways} | set(options.addresses), key=_address_key)
        host_targets = {a: (targets.add("tcp", a, HOST_PORT), targets.add("ping", a)) for a in host}
        ports = hostside.listening_ports() if not engine.remote else []
        port_targets = {
            (a, p): targets.add("tcp", a, p) for a in host for p in ports[: max(1, PORT_TARGETS // max(1, len(host)))]
        }
        dns = {name: targets.add("dns", name) for name in options.dns}
        with ThreadPoolExecutor(max_workers=8) as pool:
            seen_future = pool.submit(_probe_agent, engine, image, bottle, agent, targets)
            procs = {
                s: pool.submit(_proc_of, engine, image, bottle, inspected[s]["Id"])
                for s in sorted(services)
                if s in inspected and s != promises.agent and _asks_hardening(services[s])
                if inspected[s]["State"].get("Running")
            }
            seen, agent_proc = seen_future.result()
            service_procs = {s: f.result() for s, f in procs.items()}
    report += [_sidecar(s, *t, seen) for s, t in sidecars]
    report += [_unreachable(label, idx, seen) for label, idx in egress_side]
    report.append(_routes(agent_proc, [n for n in joined if n in bottle.internal], networks, engine.server_version))
    report.append(_host(host_targets, seen, bottle.sealed))
    report.append(_host_ports(port_targets, seen, bottle.sealed, len(ports), engine.remote))
    report.append(_confinement(declared, agent_proc))
    if bottle.sealed:
        report.append(_seal(engine, bottle))
    report += [_no_resolve(name, idx, seen) for name, idx in dns.items()]
    for service in sorted(services):
        if service in inspected and _asks_hardening(services[service]):
            proc = agent_proc if service == promises.agent else service_procs.get(service, {})
            report.append(_hardening(service, services[service], inspected[service], proc))
    warning = vulnerability_warning(engine)
    report.append(
        Probe("engine-dns", WARN, warning)
        if warning
        else Probe("engine-dns", PASS, f"{engine.server_version} has the fix for CVE-2024-29018")
    )
    return report


# --- what docker inspect says --------------------------------------------------------------


def _inspect(engine: Engine, bottle: Bottle) -> dict[str, dict[str, Any]]:
    """The bottle's containers, by service."""
    ids = listed(
        engine,
        ["ps", "-aq", "--no-trunc", "--filter", f"label={api.PROJECT_LABEL}={bottle.project}"],
        "docker ps",
    )
    found: dict[str, dict[str, Any]] = {}
    for container in inspected(engine, "container", ids):
        labels = (container.get("Config") or {}).get("Labels") or {}
        if labels.get(probe.LABEL_PROBE) is None and api.SERVICE_LABEL in labels:
            found[labels[api.SERVICE_LABEL]] = container
    return found


def _running(services: dict[str, Any], inspected: dict[str, dict[str, Any]]) -> Probe:
    down = [s for s in sorted(services) if s not in inspected or not inspected[s]["State"].get("Running")]
    if down:
        return Probe("running", FAIL, f"not running: {', '.join(down)}")
    return Probe("running", PASS, f"{len(services)} service(s) run: {', '.join(sorted(services))}")


def _agent_networks(bottle: Bottle, agent: dict[str, Any], joined: list[str], networks: dict[str, Network]) -> Probe:
    mode = agent["HostConfig"].get("NetworkMode", "")
    if mode == "host" or mode.startswith("container:"):
        return Probe("agent-networks", FAIL, f"the agent shares a network namespace: network_mode {mode}")
    wrong = [n for n in joined if n not in bottle.internal]
    open_ = [n for n in joined if n in bottle.internal and not (n in networks and networks[n].internal)]
    if wrong:
        return Probe(
            "agent-networks", FAIL, f"the agent is on {', '.join(wrong)}, which is not an internal-role network"
        )
    if open_:
        return Probe("agent-networks", FAIL, f"{', '.join(open_)} is not internal (it has a route out)")
    if not joined:
        return Probe("agent-networks", FAIL, "the agent is on no network")
    return Probe("agent-networks", PASS, f"only {', '.join(joined)}, internal")


def _agent_ports(agent: dict[str, Any]) -> Probe:
    bound = agent["HostConfig"].get("PortBindings") or {}
    published = sorted(
        f"{b.get('HostIp') or '0.0.0.0'}:{b.get('HostPort')}->{port}" for port, bs in bound.items() for b in bs or []
    )
    if published:
        return Probe("agent-ports", FAIL, f"the agent publishes {', '.join(published)} on the host")
    return Probe("agent-ports", PASS, "the agent publishes no port")


def _agent_privileges(agent: dict[str, Any]) -> Probe:
    host = agent["HostConfig"]
    given = [
        what
        for what, on in [
            ("privileged", host.get("Privileged")),
            (f"devices {[d.get('PathOnHost') for d in host.get('Devices') or []]}", host.get("Devices")),
            (f"pid {host.get('PidMode')}", host.get("PidMode") == "host"),
            (f"ipc {host.get('IpcMode')}", host.get("IpcMode") == "host"),
        ]
        if on
    ]
    if given:
        return Probe("agent-privileges", FAIL, f"the agent has {', '.join(given)}")
    return Probe("agent-privileges", PASS, "not privileged; no host devices, PID or IPC namespace")


def _docker_socket(agent: dict[str, Any]) -> Probe:
    mounts = agent.get("Mounts") or []
    sockets = sorted(
        f"{m.get('Source')} -> {m.get('Destination')}"
        for m in mounts
        if any(
            str(p).rstrip("/").endswith("docker.sock") or str(p).rstrip("/") in ("/var/run", "/run")
            for p in (m.get("Source"), m.get("Destination"))
        )
    )
    if sockets:
        return Probe("docker-socket", FAIL, f"the agent mounts {', '.join(sockets)}")
    return Probe("docker-socket", PASS, "no Docker socket is mounted in the agent")


def _environment(agent: dict[str, Any], promises: Promises, tokens: dict[str, str]) -> list[Probe]:
    """Names only: docker inspect shows the values too, and they never leave this function.
    A token's value under any name is found by comparing values in memory."""
    environment = [entry.partition("=") for entry in (agent["Config"].get("Env") or [])]
    present = {name for name, _, _ in environment}
    leaked = [t for t in promises.tokens if t in present]
    leaked += [
        f"{token} (as {name})"
        for name, _, value in environment
        for token, secret in sorted(tokens.items())
        if name != token and secret in value
    ]
    missing = [f for f in promises.forwarded if f not in present]
    held = (
        Probe("secrets", FAIL, f"the agent's environment holds the token(s) {', '.join(leaked)}")
        if leaked
        else Probe(
            "secrets", PASS, f"none of the {len(promises.tokens)} token variable(s) is in the agent's environment"
        )
    )
    forwarded = (
        Probe("forwarded", WARN, f"not in the agent's environment: {', '.join(missing)} (unset when up ran?)")
        if missing
        else Probe(
            "forwarded", PASS, f"all {len(promises.forwarded)} forwarded variable(s) are in the agent's environment"
        )
    )
    return [held, forwarded]


def _drift(
    engine: Engine,
    declared: dict[str, Any],
    document: dict[str, Any],
    agent: dict[str, Any],
    inspected: dict[str, dict[str, Any]],
) -> list[Probe]:
    """Every security-relevant field of the running agent against what the compose file allows."""
    info = run([engine.docker, "info", "--format", "{{.DefaultRuntime}} {{.CgroupVersion}}"], env=engine.env)
    runtime, _, cgroup = info.stdout.strip().partition(" ") if info.returncode == 0 else ("runc", "", "1")
    defaults = drift.EngineDefaults(runtime or "runc", "private" if cgroup.strip() == "2" else "host")
    containers = {service: str(c.get("Id", "")) for service, c in inspected.items()}
    found = drift.drift(declared, document, agent, containers, defaults)
    if not found:
        return [
            Probe("drift", PASS, "every security-relevant field of the running agent is what the compose file says")
        ]
    return [
        Probe(
            f"drift:{d.field}",
            FAIL,
            f"{d.field}: the compose file allows {d.expected}, the agent runs with {d.seen}",
            d.field,
            d.expected,
            d.seen,
        )
        for d in found
    ]


def _host_side(
    engine: Engine,
    agent: dict[str, Any],
    inspected: dict[str, dict[str, Any]],
    promises: Promises,
    tokens: dict[str, str],
) -> list[Probe]:
    """What the host itself shows of the agent: whose PID namespace it is in, and what its
    mounts hold (no socket, device or FIFO; no token value). Needs a local engine and root."""
    if engine.remote or os.geteuid() != 0:
        why = "the engine is on another host" if engine.remote else "reading other processes' namespaces needs root"
        return [
            Probe("pid-namespace", WARN, f"not checked: {why}"),
            Probe("mount-contents", WARN, f"not checked: {why}"),
        ]
    own = hostside.namespace(int(agent["State"].get("Pid") or 0))
    sharing = [
        service
        for service, container in sorted(inspected.items())
        if service != promises.agent and container["State"].get("Running")
        and hostside.namespace(int(container["State"].get("Pid") or 0)) == own
    ]  # fmt: skip
    if own is None:
        pid = Probe("pid-namespace", FAIL, "could not read the agent's PID namespace")
    elif own == hostside.namespace(1):
        pid = Probe(
            "pid-namespace", FAIL, "the agent is in the host's PID namespace: it sees every process of the host"
        )
    elif sharing:
        pid = Probe(
            "pid-namespace",
            FAIL,
            f"the agent shares its PID namespace with {', '.join(sharing)}: it sees their processes",
        )
    else:
        pid = Probe(
            "pid-namespace", PASS, "the agent's PID namespace is its own: no process of another container is visible"
        )
    sources = [
        (str(m.get("Source")), str(m.get("Destination")))
        for m in agent.get("Mounts") or []
        if m.get("Type") in ("bind", "volume") and m.get("Source")
    ]
    found = hostside.search_mounts(sources, tokens)
    problems = [f"{path} is a socket, device or FIFO" for path in found.sockets[:5]]
    problems += [f"a file under {target} holds the value of {name}" for name, target in found.tokens]
    if problems:
        contents = Probe("mount-contents", FAIL, "; ".join(problems))
    elif not found.complete:
        contents = Probe("mount-contents", WARN, f"searched the first {hostside.WALK_LIMIT} entries of its mounts only")
    else:
        what = f" and none of the {len(tokens)} token value(s)" if tokens else ""
        unset = [t for t in promises.tokens if t not in tokens]
        note = f" ({', '.join(unset)} not set here: not searched)" if unset else ""
        contents = Probe(
            "mount-contents", PASS, f"no socket, device or FIFO{what} in its {len(sources)} mount(s){note}"
        )
    return [pid, contents]


def _host_ports(
    targets: dict[tuple[str, int], int], seen: dict[int, _Seen], sealed: bool, listening: int, remote: bool
) -> Probe:
    """Every TCP port the host listens on, dialled from inside the agent on every host address."""
    if remote:
        return Probe(
            "host-ports", WARN, "not checked: the engine is on another host, whose listeners are not known here"
        )
    opened = sorted(f"{a}:{p}" for (a, p), i in targets.items() if seen.get(i, _Seen(1, "")).rc == 0)
    if not opened:
        return Probe(
            "host-ports",
            PASS,
            f"none of the host's {listening} listening TCP port(s) answers the agent on {len({a for a, _ in targets})} address(es)",
        )
    if sealed:
        return Probe(
            "host-ports", FAIL, f"the host answers the agent on {', '.join(opened)}, though the plan seals the host"
        )
    return Probe("host-ports", WARN, f"the host answers the agent on {', '.join(opened)}: seal_host: true drops it")


def _confinement(declared: dict[str, Any], proc: dict[str, list[str]]) -> Probe:
    """From inside the agent's namespaces: its effective and bounding capabilities, seccomp
    mode and no-new-privileges, against what the compose file allows."""
    status = {k: v.strip() for k, _, v in (line.partition(":") for line in proc.get("status", [])) if v}
    if "CapEff" not in status:
        return Probe("confinement", FAIL, "could not read the agent's /proc/1/status")
    allowed = drift.allowed_capabilities(declared)
    wrong = []
    for field in ("CapEff", "CapBnd"):
        value = int(status.get(field, "0"), 16)
        extra = sorted(
            CAPABILITIES[b] if b < len(CAPABILITIES) else str(b)
            for b in range(64)
            if value >> b & 1 and (b >= len(CAPABILITIES) or CAPABILITIES[b] not in allowed)
        )
        if extra:
            wrong.append(f"{field} holds {', '.join(extra)}")
    options = {str(o).replace("=", ":").lower() for o in declared.get("security_opt") or []}
    if status.get("Seccomp") != "2" and "seccomp:unconfined" not in options:
        wrong.append(f"seccomp mode {status.get('Seccomp', '?')} (2, a filter, expected)")
    if options & {"no-new-privileges", "no-new-privileges:true"} and status.get("NoNewPrivs") != "1":
        wrong.append(f"NoNewPrivs {status.get('NoNewPrivs', '?')}")
    if wrong:
        return Probe("confinement", FAIL, "; ".join(wrong))
    return Probe(
        "confinement",
        PASS,
        f"capabilities within the {len(allowed)} allowed, seccomp filter, NoNewPrivs {status.get('NoNewPrivs')}",
    )


# --- what the agent sees --------------------------------------------------------------------


class _Targets:
    """What the agent probe tries, as argv triples for its script: (kind, host, port)."""

    def __init__(self) -> None:
        self.args: list[str] = []

    def add(self, kind: str, host: str, port: int = 0) -> int:
        self.args += [kind, host, str(port)]
        return len(self.args) // 3 - 1


_AGENT_SCRIPT = r"""
t=$1; shift; i=0
while [ $# -ge 3 ]; do
  kind=$1; host=$2; port=$3; shift 3
  (
    case $kind in
      tcp) out=$(timeout $((t + 1)) nc -w "$t" "$host" "$port" </dev/null 2>&1 >/dev/null) ;;
      ping) out=$(ping -c 1 -W "$t" "$host" 2>&1) ;;
      dns) out=$(nslookup "$host" 2>&1) ;;
    esac
    rc=$?
    [ "$rc" = 143 ] && rc=0  # connected, and the peer kept the connection open past the timeout
    printf 'T\t%s\t%s\t%s\n' "$i" "$rc" "$(printf '%s' "$out" | tr '\t\n' '  ')"
  ) &
  i=$((i+1))
done
wait
echo =status; cat /proc/1/status
echo =mountinfo; cat /proc/1/mountinfo
echo =route; cat /proc/net/route
echo =route6; cat /proc/net/ipv6_route 2>/dev/null
"""

_PROC_SCRIPT = """
echo =status; cat /proc/1/status
echo =mountinfo; cat /proc/1/mountinfo
"""


@dataclass(frozen=True)
class _Seen:
    rc: int
    out: str

    @property
    def answered(self) -> bool:
        """A connection made, or refused: either way the address answered."""
        return self.rc == 0 or "refused" in self.out.lower()

    @property
    def resolved(self) -> bool:
        return self.rc == 0 and "Name:" in self.out


def _sections(text: str) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {"": []}
    current = ""
    for line in text.splitlines():
        if line.startswith("=") and line[1:].isalnum():
            current = line[1:]
            sections[current] = []
        else:
            sections[current].append(line)
    return sections


def _probe_agent(
    engine: Engine, image: str, bottle: Bottle, agent: dict[str, Any], targets: _Targets
) -> tuple[dict[int, _Seen], dict[str, list[str]]]:
    out = probe.run_in(
        engine, image, bottle.project, agent["Id"], _AGENT_SCRIPT, [str(PROBE_SECONDS), *targets.args], network=True
    )
    sections = _sections(out)
    seen = {}
    for line in sections[""]:
        fields = line.split("\t", 3)
        if len(fields) == 4 and fields[0] == "T" and fields[1].isdigit() and fields[2].isdigit():
            seen[int(fields[1])] = _Seen(int(fields[2]), fields[3])
    return seen, sections


def _proc_of(engine: Engine, image: str, bottle: Bottle, container: str) -> dict[str, list[str]]:
    """What /proc says of the container's PID 1; {"error": [why]} when the probe could not run."""
    try:
        return _sections(probe.run_in(engine, image, bottle.project, container, _PROC_SCRIPT, [], network=False))
    except ComposeError as e:
        return {"error": [str(e).replace("\n", " ")]}


def _dialled(service: dict[str, Any], key: str, internal_keys: set[str]) -> str:
    """The name the agent dials a sidecar by: its first alias on an internal network, else
    its container name, else its service key."""
    attached = service.get("networks") or {}
    if isinstance(attached, dict):
        for network_key in sorted(internal_keys & set(attached)):
            aliases = (attached[network_key] or {}).get("aliases") or []
            if aliases:
                return str(aliases[0])
    return str(service.get("container_name") or key)


def _sidecar_targets(
    targets: _Targets, promises: Promises, services: dict[str, Any], bottle: Bottle
) -> list[tuple[str, tuple[str, int | None, int]]]:
    internal_keys = {key for key, name in bottle.networks.items() if name in bottle.internal}
    found = []
    for key in sorted(services):
        service = services[key]
        if key == promises.agent or not isinstance(service, dict):
            continue
        if not internal_keys & set(names(service.get("networks"))):
            continue  # not on the agent's side: never dialled by it
        host = _dialled(service, key, internal_keys)
        if not NAME.fullmatch(host):
            host = key  # what compose's DNS answers for every service too
        port = promises.ports.get(key)
        index = targets.add("tcp", host, port) if port else targets.add("dns", host)
        found.append((key, (host, port, index)))
    return found


def _sidecar(service: str, host: str, port: int | None, index: int, seen: dict[int, _Seen]) -> Probe:
    got = seen.get(index, _Seen(-1, "no answer from the probe"))
    if port is None:
        if got.resolved:
            return Probe(f"sidecar:{service}", PASS, f"{host} resolves (no port in settings.ports to dial)")
        return Probe(f"sidecar:{service}", FAIL, f"{host} does not resolve from the agent: {got.out.strip()}")
    if got.rc == 0:
        return Probe(f"sidecar:{service}", PASS, f"answers on {host}:{port}")
    return Probe(
        f"sidecar:{service}", FAIL, f"{host}:{port} does not answer the agent: {got.out.strip() or 'no connection'}"
    )


@contextlib.contextmanager
def _outsiders(engine: Engine, image: str, bottle: Bottle, networks: dict[str, Network]) -> Iterator[dict[str, str]]:
    """One stand-in for "the outside" on each egress-role network: network -> its address."""
    started: list[str] = []
    try:
        addresses = {}
        for name in sorted(set(bottle.networks.values()) - bottle.internal):
            if name not in networks:
                continue
            container = probe.start_outsider(engine, image, bottle.project, name)
            started.append(container)
            proc = run(
                [engine.docker, "inspect", "--format", "{{json .NetworkSettings.Networks}}", container], env=engine.env
            )
            attached = json.loads(proc.stdout or "{}") if proc.returncode == 0 else {}
            address = (attached.get(name) or {}).get("IPAddress")
            if not address:
                what = f"docker inspect gave no address for the probe container on {name}"
                raise ComposeError(what, proc.returncode, proc.args, proc.stderr)
            addresses[name] = address
        yield addresses
    finally:
        probe.remove(engine, started)


def _egress_targets(
    targets: _Targets,
    promises: Promises,
    inspected: dict[str, dict[str, Any]],
    outsiders: dict[str, str],
    bottle: Bottle,
) -> list[tuple[str, tuple[int, int, str]]]:
    """The addresses on the egress side that the agent must not reach: each outsider, and
    each service's address on an egress-role network."""
    found = []
    for network, address in sorted(outsiders.items()):
        found.append(
            (f"outside:{network}", (targets.add("tcp", address, OUTSIDER_PORT), targets.add("ping", address), address))
        )
    egress = set(bottle.networks.values()) - bottle.internal
    for service, container in sorted(inspected.items()):
        if service == promises.agent:
            continue
        for network, settings in sorted((container["NetworkSettings"].get("Networks") or {}).items()):
            on = str((settings or {}).get("IPAddress") or "")
            if network in egress and on:
                port = promises.ports.get(service, OUTSIDER_PORT)
                indexes = (targets.add("tcp", on, port), targets.add("ping", on), on)
                found.append((f"egress-side:{service}", indexes))
    return found


def _unreachable(label: str, indexes: tuple[int, int, str], seen: dict[int, _Seen]) -> Probe:
    tcp, ping, address = indexes
    answered = [how for how, i in (("tcp", tcp), ("ping", ping)) if seen.get(i, _Seen(1, "")).answered]
    if answered:
        return Probe(label, FAIL, f"{address} answers the agent ({' and '.join(answered)})")
    return Probe(label, PASS, f"{address} is unreachable from the agent")


def _host(host_targets: dict[str, tuple[int, int]], seen: dict[int, _Seen], sealed: bool) -> Probe:
    answered = [
        a for a, (tcp, ping) in host_targets.items() if any(seen.get(i, _Seen(1, "")).answered for i in (tcp, ping))
    ]
    if not answered:
        return Probe("host", PASS, f"none of the host's {len(host_targets)} bridge address(es) answers the agent")
    where = f"the host answers the agent on {', '.join(answered)}"
    if sealed:
        return Probe("host", FAIL, f"{where}, though the plan seals the host")
    return Probe("host", WARN, f"{where}: any service the host listens on there is reachable; seal_host: true drops it")


def _no_resolve(name: str, index: int, seen: dict[int, _Seen]) -> Probe:
    got = seen.get(index, _Seen(1, ""))
    if got.resolved:
        return Probe(f"dns:{name}", FAIL, f"{name} resolves from the agent: {got.out.strip()}")
    return Probe(f"dns:{name}", PASS, f"{name} does not resolve from the agent")


def _address_key(address: str) -> tuple[int, int]:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return (9, 0)
    return (parsed.version, int(parsed))


# --- the routing table ----------------------------------------------------------------------


def _routes(sections: dict[str, list[str]], internal: list[str], networks: dict[str, Network], version: str) -> Probe:
    """No default route, and none beyond the subnets of the internal networks the agent is on."""
    subnets = [ipaddress.ip_network(s, strict=False) for n in internal if n in networks for s in networks[n].subnets]
    own_gateways = {g for n in internal if n in networks for g in networks[n].gateways}
    beyond, defaults = [], []
    for destination, gateway, interface in _ipv4_routes(sections.get("route", [])) + _ipv6_routes(
        sections.get("route6", [])
    ):
        if destination.prefixlen == 0:
            defaults.append((destination, gateway, interface))
        elif not any(destination.version == s.version and destination.subnet_of(s) for s in subnets):
            beyond.append(f"{destination} dev {interface}")
    if beyond:
        return Probe("routes", FAIL, f"the agent has routes beyond its internal subnets: {', '.join(beyond)}")
    if not defaults:
        return Probe("routes", PASS, f"no default route; routes only to {', '.join(map(str, subnets)) or 'nothing'}")
    shown = ", ".join(f"default via {g} dev {i}" for _, g, i in defaults)
    old = _version(version) < DEFAULT_ROUTE_FIXED
    if old and all(g in own_gateways for _, g, _ in defaults):
        return Probe(
            "routes",
            WARN,
            f"{shown}: Docker {version} gives an internal network a default route to its own bridge (25.0 and "
            "later give none); the engine's isolation rules drop what it would carry beyond the subnet",
        )
    return Probe("routes", FAIL, f"the agent has a default route: {shown}")


def _ipv4_routes(lines: list[str]) -> list[tuple[Any, str, str]]:
    found = []
    for line in lines[1:]:  # a header first
        fields = line.split()
        if len(fields) < 8:
            continue
        destination, gateway, mask = (
            socket.inet_ntoa(struct.pack("<I", int(f, 16))) for f in (fields[1], fields[2], fields[7])
        )
        found.append((ipaddress.ip_network(f"{destination}/{mask}", strict=False), gateway, fields[0]))
    return found


def _ipv6_routes(lines: list[str]) -> list[tuple[Any, str, str]]:
    found = []
    for line in lines:
        fields = line.split()
        if len(fields) < 10 or fields[9] == "lo":
            continue
        destination = ipaddress.ip_network(
            f"{ipaddress.IPv6Address(bytes.fromhex(fields[0]))}/{int(fields[1], 16)}", strict=False
        )
        if destination.is_link_local or destination.is_multicast:
            continue
        found.append((destination, str(ipaddress.IPv6Address(bytes.fromhex(fields[4]))), fields[9]))
    return found


def _version(version: str) -> tuple[int, int]:
    parts = version.split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return (0, 0)


# --- the seal -------------------------------------------------------------------------------


def _seal(engine: Engine, bottle: Bottle) -> Probe:
    if os.geteuid() != 0:
        return Probe("seal", WARN, "cannot read the host's firewall without root; the host probe above still ran")
    placed = firewall.rules(bottle.project)
    missing = []
    for bridge, ipv6 in firewall.bridges_of(engine, bottle):
        for tool in ("iptables", "ip6tables") if ipv6 else ("iptables",):
            if not any(
                t == tool and "-i" in w and w[w.index("-i") + 1] == bridge and w[-2:] == ["-j", "DROP"]
                for t, w in placed
            ):
                missing.append(f"{tool} INPUT -i {bridge} -j DROP")
    if missing:
        return Probe("seal", FAIL, f"the seal is not in place: missing {', '.join(missing)}")
    ahead = []
    for bridge, ipv6 in firewall.bridges_of(engine, bottle):
        for tool in ("iptables", "ip6tables") if ipv6 else ("iptables",):
            listing = run([tool, "-S", "INPUT"], env=None).stdout.splitlines()
            ahead += [
                f"{tool} {rule}"
                for rule in hostside.rules_before_drop(listing, bridge, firewall.comment(bottle.project))
            ]
    if ahead:
        return Probe(
            "seal", FAIL, f"a rule ahead of the seal's DROP may accept what the bridge sends: {'; '.join(ahead)}"
        )
    return Probe(
        "seal",
        PASS,
        f"{len(placed)} rule(s) drop what the internal bridge sends to the host, none ahead of them accepts it",
    )


# --- hardening ------------------------------------------------------------------------------

CAPABILITIES = (  # noqa: SIM905 (a word list, in bit order as linux/capability.h numbers them)
    "CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP LINUX_IMMUTABLE "
    "NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER SYS_MODULE SYS_RAWIO SYS_CHROOT "
    "SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE "
    "AUDIT_WRITE AUDIT_CONTROL SETFCAP MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ "
    "PERFMON BPF CHECKPOINT_RESTORE"
).split()


def _asks_hardening(service: Any) -> bool:
    return isinstance(service, dict) and any(
        k in service for k in ("cap_drop", "security_opt", "read_only", "pids_limit", "mem_limit", "cpus", "init")
    )


def _hardening(service: str, declared: dict[str, Any], container: dict[str, Any], proc: dict[str, list[str]]) -> Probe:
    host = container["HostConfig"]
    status = {k: v.strip() for k, _, v in (line.partition(":") for line in proc.get("status", [])) if v}
    if "CapEff" not in status:
        if not container["State"].get("Running"):
            why = "it is not running"
        else:
            why = " ".join(proc.get("error", [])) or "the probe read nothing"
        return Probe(f"hardening:{service}", FAIL, f"could not read its /proc/1/status: {why}")
    wrong: list[str] = []
    held: list[str] = []
    if "ALL" in [str(c).upper() for c in declared.get("cap_drop") or []]:
        allowed = 0
        for cap in declared.get("cap_add") or []:
            name = str(cap).upper().removeprefix("CAP_")
            allowed |= 1 << CAPABILITIES.index(name) if name in CAPABILITIES else 0
        effective = int(status.get("CapEff", "ffffffffffffffff"), 16)
        extra = [
            CAPABILITIES[b] if b < len(CAPABILITIES) else str(b)
            for b in range(64)
            if effective >> b & 1 and not allowed >> b & 1
        ]
        (wrong if extra else held).append(
            f"capabilities beyond cap_add: {', '.join(extra)}" if extra else f"CapEff {effective:#x}"
        )
    if any(
        str(o).replace("=", ":") in ("no-new-privileges:true", "no-new-privileges")
        for o in declared.get("security_opt") or []
    ):
        ok = status.get("NoNewPrivs") == "1"
        (held if ok else wrong).append("no-new-privileges" if ok else f"NoNewPrivs {status.get('NoNewPrivs', '?')}")
    if declared.get("read_only") is True:
        root = [line.split() for line in proc.get("mountinfo", []) if len(line.split()) > 5 and line.split()[4] == "/"]
        ok = bool(host.get("ReadonlyRootfs")) and bool(root) and "ro" in root[-1][5].split(",")
        (held if ok else wrong).append("read-only root" if ok else "the root file system is writable")
    for key, field, want in (
        ("pids_limit", "PidsLimit", int),
        ("mem_limit", "Memory", byte_size),
        ("cpus", "NanoCpus", _nano),
        ("init", "Init", bool),
    ):
        if key in declared:
            expected, actual = want(declared[key]), host.get(field)
            if actual != expected:
                wrong.append(f"{key}: {field} is {actual}, not {expected}")
            else:
                held.append(key if isinstance(expected, bool) else f"{key} {declared[key]}")
    if wrong:
        return Probe(f"hardening:{service}", FAIL, "; ".join(wrong))
    return Probe(f"hardening:{service}", PASS, ", ".join(held))


def _nano(cpus: Any) -> int | None:
    count = cpu_count(cpus)
    return None if count is None else round(count * 1e9)
