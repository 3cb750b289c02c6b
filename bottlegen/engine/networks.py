"""A bottle's networks on the engine, verified, never assumed.

They are external to compose. `up` creates each missing one with the flags its role needs
(the internal one `--internal`, so it has no route out; both bridges) and bottlegen's labels
for this project. A network that already exists is used only if it carries those labels and
has exactly the properties of its role; otherwise `up` refuses before anything starts, so
two bottles never share an internal network and no network of someone else's is adopted.
Networks are found by exact name (two networks may share one, and a name may be a prefix of
another network's ID) and then handled by ID. `down` removes only networks with this
project's labels, and says so when one of them is left.

Each network bottlegen creates gets a small subnet of its own from an address pool
(`--address-pool`, `$BOTTLEGEN_ADDRESS_POOL`; DEFAULT_POOL below): a bottle needs a handful
of addresses per network, and Docker's default pools hand out a /16 or /20 each, so an engine
runs out after about 15 bottles. The subnet is the first one of the pool that overlaps no
network on the engine; when the pool has none left, up says so before anything starts.
"""

from __future__ import annotations

import bisect
import fcntl
import ipaddress
import itertools
import random
import socket
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import ComposeError, ConflictError, UsageError
from .docker import Engine, checked, inspected, listed, run
from .state import Bottle

LABEL_CREATED_BY = "org.bottlegen.created-by"  # value: bottlegen
LABEL_PROJECT = "org.bottlegen.project"  # value: the compose project


@dataclass(frozen=True)
class Network:
    id: str
    name: str
    driver: str
    internal: bool
    labels: dict[str, str] = field(default_factory=dict)
    bridge: str = ""  # the host-side interface of a bridge network
    ipv6: bool = False
    subnets: tuple[str, ...] = ()  # from its IPAM configuration
    gateways: tuple[str, ...] = ()  # the host's addresses on it

    def ours(self, project: str) -> bool:
        """Made by bottlegen for this project."""
        return self.labels.get(LABEL_CREATED_BY) == "bottlegen" and self.labels.get(LABEL_PROJECT) == project


def find(engine: Engine, names: Sequence[str]) -> dict[str, list[Network]]:
    """For each name, every network whose name is exactly it (usually none or one): one
    `network ls` and one `network inspect` for all of them (one API request on a local engine)."""
    if engine.api is not None:
        listed_: list[dict[str, Any]] = engine.api.get("/networks")
        found_: dict[str, list[Network]] = {name: [] for name in names}
        for network in _networks([n for n in listed_ if n.get("Name") in found_], local=True):
            found_[network.name].append(network)
        return found_
    listing = checked(
        [engine.docker, "network", "ls", "--no-trunc", "--format", "{{.ID}} {{.Name}}"],
        "docker network ls",
        env=engine.env,
    )
    wanted = set(names)
    ids = [line.split(" ", 1)[0] for line in listing.stdout.splitlines() if line.partition(" ")[2] in wanted]
    found: dict[str, list[Network]] = {name: [] for name in names}
    for network in _networks(inspected(engine, "network", ids), local=not engine.remote):
        if network.name in found:
            found[network.name].append(network)
    return found


def _networks(inspected: list[dict[str, Any]], local: bool) -> list[Network]:
    """Networks as docker inspect gives them. A bridge whose IPAM lists no gateway (Debian's
    engine shows none for its default bridge, docker0) has the host's addresses on its
    interface all the same: on a local engine they are read from the interface."""
    found = []
    for n in inspected:
        bridge = (n.get("Options") or {}).get("com.docker.network.bridge.name") or f"br-{n['Id'][:12]}"
        gateways = tuple(c["Gateway"].split("/")[0] for c in _ipam(n) if c.get("Gateway"))
        if not gateways and local and n.get("Driver") == "bridge":
            gateways = interface_addresses(bridge)
        found.append(
            Network(
                n["Id"],
                n["Name"],
                n.get("Driver", ""),
                bool(n.get("Internal")),
                dict(n.get("Labels") or {}),
                bridge,
                bool(n.get("EnableIPv6")),
                tuple(c["Subnet"] for c in _ipam(n) if c.get("Subnet")),
                gateways,
            )
        )
    return found


_SIOCGIFADDR = 0x8915  # linux/sockios.h: an interface's (first) IPv4 address
_IFNAMSIZ = 16


def interface_addresses(interface: str) -> tuple[str, ...]:
    """The host's global addresses on a network interface of this machine: its IPv4 address
    (ioctl SIOCGIFADDR) and its global IPv6 ones (/proc/net/if_inet6); none when it has none
    or there is no such interface."""
    found = []
    name = interface.encode()[: _IFNAMSIZ - 1]
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            answer = fcntl.ioctl(s.fileno(), _SIOCGIFADDR, struct.pack("256s", name))
        found.append(socket.inet_ntoa(answer[20:24]))
    except OSError:
        pass
    try:
        with open("/proc/net/if_inet6", encoding="ascii") as table:
            lines = table.read().splitlines()
    except OSError:
        lines = []
    for line in lines:  # address, index, prefix length, scope, flags, name
        fields = line.split()
        if len(fields) == 6 and fields[5] == interface and fields[3] == "00":
            found.append(str(ipaddress.IPv6Address(bytes.fromhex(fields[0]))))
    return tuple(found)


def _ipam(network: dict[str, Any]) -> list[dict[str, str]]:
    return list((network.get("IPAM") or {}).get("Config") or [])


def bridges(engine: Engine) -> list[Network]:
    """Every bridge network on the engine, whoever made it."""
    ids = listed(engine, ["network", "ls", "-q", "--no-trunc", "--filter", "driver=bridge"], "docker network ls")
    return _networks(inspected(engine, "network", ids), local=not engine.remote)


def _problem(bottle: Bottle, name: str, found: list[Network]) -> str | None:
    """Why an existing network cannot be this bottle's, or None when it can."""
    if len(found) > 1:
        return f"network {name}: {len(found)} networks have this name ({', '.join(n.id[:12] for n in found)}); remove all but one"
    network = found[0]
    role = "internal" if name in bottle.internal else "egress"
    if not network.ours(bottle.project):
        owner = network.labels.get(LABEL_PROJECT)
        whose = f"bottlegen made it for {owner}" if owner and owner != bottle.project else "bottlegen did not make it"
        return f"network {name} ({network.id[:12]}) exists and is not this bottle's: {whose}; remove it or choose another name"
    if network.driver != "bridge":
        return f"network {name} ({network.id[:12]}) has driver {network.driver!r}, not bridge"
    if network.internal != (role == "internal"):
        wanted = "internal (no route out)" if role == "internal" else "not internal (the way out)"
        return f"network {name} ({network.id[:12]}) has the {role} role but is not {wanted}"
    return None


def survey(engine: Engine, bottle: Bottle) -> tuple[list[str], dict[str, Network]]:
    """The bottle's networks that are missing, and those that exist and are fit for their
    role; a ConflictError naming every one that exists and is not."""
    missing, fit, problems = [], {}, []
    for name, found in find(engine, list(bottle.networks.values())).items():
        if not found:
            missing.append(name)
        elif (problem := _problem(bottle, name, found)) is not None:
            problems.append(problem)
        else:
            fit[name] = found[0]
    if problems:
        raise ConflictError(f"bottle {bottle.project} cannot use its networks; nothing was started:", problems)
    return missing, fit


POOL_ENV = "BOTTLEGEN_ADDRESS_POOL"
DEFAULT_POOL = "base=10.233.0.0/16,size=28"  # 4096 subnets of 14 addresses: 2048 bottles
MAX_SIZE = 28  # a /28 has 14 addresses: the gateway, five services and room for compose


@dataclass(frozen=True)
class AddressPool:
    """Where bottlegen takes its networks' subnets from: subnets of `size` bits in `base`."""

    base: ipaddress.IPv4Network
    size: int

    @classmethod
    def parse(cls, text: str, where: str) -> AddressPool:
        """`base=CIDR,size=N`, as dockerd's --default-address-pool writes a pool."""
        fields = dict(part.partition("=")[::2] for part in text.split(",") if part)
        example = f"write it as {DEFAULT_POOL}"
        if set(fields) != {"base", "size"}:
            raise UsageError(f"{where} {text!r}: give base= and size=, nothing else; {example}")
        try:
            base = ipaddress.IPv4Network(fields["base"])
        except ValueError as e:
            raise UsageError(f"{where} {text!r}: base is not an IPv4 network ({e}); {example}") from None
        if not fields["size"].isdigit() or not base.prefixlen <= int(fields["size"]) <= MAX_SIZE:
            raise UsageError(
                f"{where} {text!r}: size must be a prefix length from the base's ({base.prefixlen}) to {MAX_SIZE}; "
                f"{example}"
            )
        return cls(base, int(fields["size"]))

    def __str__(self) -> str:
        return f"base={self.base},size={self.size}"


def taken_subnets(engine: Engine) -> list[tuple[int, int]]:
    """The IPv4 address ranges (first, last) that networks on the engine hold, sorted."""
    ids = listed(engine, ["network", "ls", "-q", "--no-trunc"], "docker network ls")
    ranges = []
    for network in _networks(inspected(engine, "network", ids), local=False):  # subnets only
        for subnet in network.subnets:
            try:
                parsed = ipaddress.ip_network(subnet, strict=False)
            except ValueError:
                continue
            if parsed.version == 4:
                ranges.append((int(parsed.network_address), int(parsed.broadcast_address)))
    return sorted(ranges)


def _free(pool: AddressPool, taken: list[tuple[int, int]]) -> Iterator[str]:
    """The pool's subnets that overlap nothing taken, in order."""
    taken = sorted(taken)
    firsts = [first for first, _ in taken]
    reach: list[int] = []  # the furthest last address among taken ranges up to each index
    for _, last in taken:
        reach.append(max(last, reach[-1]) if reach else last)
    for subnet in pool.base.subnets(new_prefix=pool.size):
        first, last = int(subnet.network_address), int(subnet.broadcast_address)
        i = bisect.bisect_right(firsts, last)  # the ranges that start at or before our last address
        if not (i and reach[i - 1] >= first):
            yield str(subnet)


def free_subnets(pool: AddressPool, taken: list[tuple[int, int]], count: int) -> list[str]:
    """The first count subnets of the pool that overlap nothing taken; a ConflictError when
    the pool has fewer free."""
    found = list(itertools.islice(_free(pool, taken), count))
    if len(found) == count:
        return found
    total = 2 ** (pool.size - pool.base.prefixlen)
    raise ConflictError(
        f"no room on this engine for the bottle's networks: the address pool {pool} has {len(found)} of its {total} "
        f"subnets free and {count} are needed; nothing was started",
        [
            "take bottles down (bottlegen ls lists them), or remove networks that overlap the pool",
            f"or give a larger pool: --address-pool (or ${POOL_ENV}) base=10.233.0.0/15,size={pool.size}",
        ],
    )


def create_argv(engine: Engine, bottle: Bottle, name: str, subnet: str | None = None) -> list[str]:
    """The command that creates the bottle's network name, with its role's flags and our labels."""
    argv = [
        engine.docker,
        "network",
        "create",
        "--driver",
        "bridge",
        "--label",
        f"{LABEL_CREATED_BY}=bottlegen",
        "--label",
        f"{LABEL_PROJECT}={bottle.project}",
    ]
    if name in bottle.internal:  # by the network's role, never by its key
        argv.append("--internal")
    if subnet is not None:  # the gateway as Docker would pick it, but named, so inspect records it
        gateway = next(ipaddress.IPv4Network(subnet).hosts())
        argv += ["--subnet", subnet, "--gateway", str(gateway)]
    return [*argv, name]


ATTEMPTS = 24  # how often a subnet another `up` took meanwhile is given up for another free one
SPREAD = 16  # after a race lost, one of this many first free subnets, at random: racers part


def create_networks(
    engine: Engine, bottle: Bottle, pool: AddressPool | None = None
) -> tuple[list[str], dict[str, list[str]]]:
    """Check every network of the bottle, then create the missing ones, each with a subnet
    of its own from the pool: (the names created, every network's subnets).

    A ConflictError before anything is created when an existing one is not fit for its role,
    or when the pool has no room for the missing ones.
    """
    missing, fit = survey(engine, bottle)
    subnets = {name: list(network.subnets) for name, network in fit.items()}
    chosen: list[str | None] = [None] * len(missing)
    if pool is not None and missing:
        chosen = list(free_subnets(pool, taken_subnets(engine), len(missing)))  # room for all, before any is made
    created: list[str] = []
    for name, subnet in zip(missing, chosen, strict=True):
        for attempt in range(ATTEMPTS):
            proc = run(create_argv(engine, bottle, name, subnet), env=engine.env)
            if proc.returncode == 0:
                break
            raced = "overlap" in proc.stderr.lower()  # another up took that subnet meanwhile
            if pool is None or not raced or attempt == ATTEMPTS - 1:
                remove_networks(engine, bottle, only=created)
                raise ComposeError.from_process(f"docker network create {name}", proc)
            taken = taken_subnets(engine)  # one of the first free ones, at random: racers part
            subnet = random.choice(list(itertools.islice(_free(pool, taken), SPREAD)) or free_subnets(pool, taken, 1))
        created.append(name)
        if subnet is not None:
            subnets[name] = [subnet]
    return created, subnets


def remove_networks(engine: Engine, bottle: Bottle, only: Sequence[str] | None = None) -> tuple[list[str], list[str]]:
    """Remove the bottle's networks that bottlegen made for this project, by ID; never another.

    Returns (problems: networks of the bottle that are still there, notes: what was left
    alone, and why).
    """
    problems, notes = [], []
    names = list(bottle.networks.values()) if only is None else list(only)
    ours: list[tuple[str, Network]] = []
    for name, found in (find(engine, names) if names else {}).items():
        for network in found:
            if network.ours(bottle.project):
                ours.append((name, network))
            else:
                notes.append(
                    f"leaving network {name} ({network.id[:12]}): bottlegen did not make it for {bottle.project}"
                )
    if ours and run([engine.docker, "network", "rm", *(n.id for _, n in ours)], env=engine.env).returncode != 0:
        for name, network in ours:  # one at a time, to say which are still there and why
            proc = run([engine.docker, "network", "rm", network.id], env=engine.env)
            if proc.returncode != 0 and "no such network" not in proc.stderr.lower():
                problems.append(f"network {name} ({network.id[:12]}) is still there: {proc.stderr.strip()}")
    return problems, notes
