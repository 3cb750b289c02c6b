"""verify's readings, on what the kernel and docker print: the routing table, /proc/1/status
and mountinfo, docker inspect's fields, and the promises `up` writes. The probes themselves
run against a real engine in test_engine.py; these pin what each reading concludes."""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import pytest
from helpers import REPO

from bottlegen import Renderer, UsageError
from bottlegen.composefile import byte_size
from bottlegen.engine import verify
from bottlegen.engine.networks import Network
from bottlegen.engine.probe import _is_static
from bottlegen.engine.state import Promises, promises_of, read_promises

INTERNAL = Network("i1", "b-internal", "bridge", True, subnets=("172.27.0.0/16",), gateways=("172.27.0.1",))
EGRESS = Network("e1", "b-egress", "bridge", False, subnets=("172.28.0.0/16",), gateways=("172.28.0.1",))
NETWORKS = {n.name: n for n in (INTERNAL, EGRESS)}
HEADER = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT"
SUBNET = "eth0\t00001BAC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0"  # 172.27.0.0/16
DEFAULT = "eth0\t00000000\t01001BAC\t0003\t0\t0\t0\t00000000\t0\t0\t0"  # via 172.27.0.1
EGRESS_SUBNET = "eth1\t00001CAC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0"  # 172.28.0.0/16


def routes(*lines: str, version: str = "27.3.1", ipv6: tuple[str, ...] = ()) -> verify.Probe:
    return verify._routes({"route": [HEADER, *lines], "route6": list(ipv6)}, ["b-internal"], NETWORKS, version)


def test_only_the_internal_subnet_passes():
    assert routes(SUBNET).status == verify.PASS


def test_a_default_route_fails_on_an_engine_that_gives_none():
    probe = routes(SUBNET, DEFAULT)
    assert probe.status == verify.FAIL and "default via 172.27.0.1 dev eth0" in probe.detail


def test_before_docker_25_the_bridges_own_default_route_is_a_warning_and_any_other_fails():
    assert routes(SUBNET, DEFAULT, version="20.10.24+dfsg1").status == verify.WARN
    elsewhere = DEFAULT.replace("01001BAC", "01001CAC")  # via the egress network's gateway
    assert routes(SUBNET, EGRESS_SUBNET, elsewhere, version="20.10.24").status == verify.FAIL


def test_a_route_beyond_the_internal_subnets_fails():
    probe = routes(SUBNET, EGRESS_SUBNET)
    assert probe.status == verify.FAIL and "172.28.0.0/16 dev eth1" in probe.detail


def test_ipv6_routes_count_too_but_loopback_and_link_local_do_not():
    link_local = "fe800000000000000000000000000000 40 00000000000000000000000000000000 00 "
    link_local += "00000000000000000000000000000000 00000100 00000001 00000000 00000001 eth0"
    lo = "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
    lo += "00000000000000000000000000000000 ffffffff 00000001 00000000 00200200 lo"
    assert routes(SUBNET, ipv6=(link_local, lo)).status == verify.PASS
    beyond = link_local.replace("fe80", "2001").replace(" 40 ", " 40 ")
    assert routes(SUBNET, ipv6=(beyond,)).status == verify.FAIL


def proc(cap_eff: str = "0000000000000000", no_new_privs: str = "1", root: str = "ro,relatime") -> dict:
    return {
        "status": [f"CapEff:\t{cap_eff}", f"NoNewPrivs:\t{no_new_privs}"],
        "mountinfo": [f"73 49 0:39 / / {root} master:2 - overlay overlay rw"],
    }


STRICT = {
    "cap_drop": ["ALL"],
    "cap_add": ["NET_BIND_SERVICE"],
    "security_opt": ["no-new-privileges:true"],
    "read_only": True,
    "pids_limit": 256,
    "mem_limit": "512m",
    "cpus": 0.5,
    "init": True,
}
IN_FORCE = {"ReadonlyRootfs": True, "PidsLimit": 256, "Memory": 512 * 1024**2, "NanoCpus": 500_000_000, "Init": True}


def hardening(host: dict, seen: dict, running: bool = True) -> verify.Probe:
    return verify._hardening("pipelock", STRICT, {"HostConfig": host, "State": {"Running": running}}, seen)


def test_hardening_in_force_passes_and_cap_add_is_allowed():
    assert hardening(IN_FORCE, proc(cap_eff="0000000000000400")).status == verify.PASS  # NET_BIND_SERVICE is bit 10


@pytest.mark.parametrize(
    ("host", "seen", "says"),
    [
        (IN_FORCE, proc(cap_eff="00000000a80425fb"), "capabilities beyond cap_add: CHOWN"),
        (IN_FORCE, proc(no_new_privs="0"), "NoNewPrivs 0"),
        (IN_FORCE, proc(root="rw,relatime"), "writable"),
        ({**IN_FORCE, "ReadonlyRootfs": False}, proc(), "writable"),
        ({**IN_FORCE, "PidsLimit": 4096}, proc(), "pids_limit: PidsLimit is 4096, not 256"),
        ({**IN_FORCE, "Memory": 0}, proc(), "mem_limit"),
        ({**IN_FORCE, "NanoCpus": 0}, proc(), "cpus"),
        ({**IN_FORCE, "Init": False}, proc(), "init"),
        (IN_FORCE, {}, "could not read its /proc/1/status: the probe read nothing"),  # nothing proven
        (IN_FORCE, {"error": ["the probe in x's namespaces failed"]}, "the probe in x's namespaces failed"),
    ],
)
def test_each_hardening_property_not_in_force_fails(host, seen, says):
    probe = hardening(host, seen)
    assert probe.status == verify.FAIL and says in probe.detail


def test_a_service_that_is_not_running_is_not_proven_hardened():
    probe = hardening(IN_FORCE, {}, running=False)
    assert probe.status == verify.FAIL and "it is not running" in probe.detail


@pytest.mark.parametrize(
    "options",
    [
        verify.VerifyOptions(dns=["-e/bin/sh"]),
        verify.VerifyOptions(dns=["a name"]),
        verify.VerifyOptions(addresses=["10.0.0.1;reboot"]),
        verify.VerifyOptions(addresses=["-w9"]),
    ],
)
def test_probe_targets_from_the_command_line_must_be_names_or_addresses(options):
    with pytest.raises(UsageError):
        verify.check_options(options)
    verify.check_options(verify.VerifyOptions(dns=["example.org"], addresses=["192.168.1.10", "fd00::1"]))


@pytest.mark.parametrize(
    ("value", "size"),
    [(512, 512), ("512m", 512 * 1024**2), ("1gb", 1024**3), ("1.5k", 1536), ("lots", None), (True, None)],
)
def test_compose_byte_sizes(value, size):
    assert byte_size(value) == size


def agent(**host) -> dict:
    return {
        "HostConfig": {"NetworkMode": "b-internal", **host},
        "Config": {"Env": ["PATH=/bin", "FORWARDED=value-never-shown"]},
        "Mounts": [],
    }


def test_what_docker_inspect_shows_of_the_agent():
    assert verify._agent_ports(agent()).status == verify.PASS
    published = verify._agent_ports(agent(PortBindings={"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "32768"}]}))
    assert published.status == verify.FAIL and "127.0.0.1:32768->80/tcp" in published.detail
    assert verify._agent_privileges(agent(Privileged=True)).status == verify.FAIL
    assert verify._agent_privileges(agent(PidMode="host")).status == verify.FAIL
    mounted = {**agent(), "Mounts": [{"Source": "/run/docker.sock", "Destination": "/tmp/d.sock"}]}
    assert verify._docker_socket(mounted).status == verify.FAIL
    assert verify._docker_socket(agent()).status == verify.PASS


def test_the_environment_is_judged_by_names_and_no_value_is_shown():
    promises = Promises("agent", {}, tokens=("FORWARDED",), forwarded=("MISSING",))
    secrets, forwarded = verify._environment(agent(), promises, {})
    assert secrets.status == verify.FAIL and forwarded.status == verify.WARN
    assert "value-never-shown" not in secrets.detail + forwarded.detail


def test_the_agent_on_a_network_without_the_internal_role_fails():
    bottle = verify.Bottle("p", Path("x"), {"internal": "b-internal", "egress": "b-egress"}, frozenset({"b-internal"}))
    assert verify._agent_networks(bottle, agent(), ["b-internal"], NETWORKS).status == verify.PASS
    both = verify._agent_networks(bottle, agent(), ["b-egress", "b-internal"], NETWORKS)
    assert both.status == verify.FAIL and "b-egress" in both.detail
    leaky = {**NETWORKS, "b-internal": Network("i1", "b-internal", "bridge", False)}
    assert verify._agent_networks(bottle, agent(), ["b-internal"], leaky).status == verify.FAIL


def test_up_writes_what_verify_needs_and_reads_it_back(tmp_path):
    rendered = Renderer().render(REPO / "examples" / "all-sidecars.yml")
    promises = promises_of(rendered.context, rendered.agent)
    assert promises == Promises(
        "agent",
        {"egress": 8080, "pipelock": 8888, "supervise": 8077},
        tokens=("ANTHROPIC_API_KEY",),
        forwarded=("CLAUDE_CODE_OAUTH_TOKEN", "GIT_AUTHOR_NAME"),
    )
    (tmp_path / "bottle.json").write_text(promises.to_json())
    assert read_promises(tmp_path) == promises


def elf(program_types: list[int]) -> bytes:
    """A 64-bit little-endian ELF header and program header table of these segment types."""
    header = bytearray(64)
    header[:6] = b"\x7fELF\x02\x01"
    struct.pack_into("<Q", header, 32, 64)  # e_phoff
    struct.pack_into("<HH", header, 54, 56, len(program_types))  # e_phentsize, e_phnum
    return bytes(header) + b"".join(struct.pack("<I", t) + bytes(52) for t in program_types)


def test_a_static_executable_is_told_from_one_that_needs_a_loader(tmp_path):
    PT_LOAD, PT_INTERP = 1, 3
    (tmp_path / "static").write_bytes(elf([PT_LOAD, PT_LOAD]))
    (tmp_path / "dynamic").write_bytes(elf([PT_LOAD, PT_INTERP, PT_LOAD]))
    assert _is_static(tmp_path / "static") and not _is_static(tmp_path / "dynamic")
    assert not _is_static(Path(sys.executable).resolve())  # the interpreter links libc
    assert not _is_static(REPO / "README.md") and not _is_static(tmp_path / "missing")


# --- the running agent against its compose file (drift.py) ---------------------------------

from bottlegen.engine import drift, hostside  # noqa: E402 (beside the tests that read them)

DOCUMENT = {
    "name": "claude-bottle-x",
    "networks": {"internal": {"name": "x-internal", "external": True}},
    "volumes": {"cache": {}},
}
SERVICE = {
    "image": "agent",
    "networks": {"internal": None},
    "cap_drop": ["ALL"],
    "security_opt": ["no-new-privileges:true"],
    "read_only": True,
    "pids_limit": 1024,
    "mem_limit": "4g",
    "cpus": 2,
    "init": True,
    "volumes": [
        {"type": "bind", "source": "/srv/cfg", "target": "/cfg", "read_only": True},
        "cache:/cache",
    ],
}


def container(**host: object) -> dict:
    """docker inspect of a container that runs SERVICE as compose starts it; host overrides HostConfig."""
    config = {
        "Privileged": False,
        "CapAdd": None,
        "CapDrop": ["CAP_ALL"],
        "SecurityOpt": ["no-new-privileges:true"],
        "PidMode": "",
        "IpcMode": "private",
        "UTSMode": "",
        "UsernsMode": "",
        "CgroupnsMode": "host",
        "NetworkMode": "x-internal",
        "Devices": [],
        "DeviceRequests": None,
        "Runtime": "runc",
        "ReadonlyRootfs": True,
        "PidsLimit": 1024,
        "Memory": 4 * 1024**3,
        "NanoCpus": 2_000_000_000,
        "Sysctls": None,
        "Dns": [],
        "ExtraHosts": [],
        "Init": True,
        **host,
    }
    return {
        "HostConfig": config,
        "AppArmorProfile": "docker-default",
        "Config": {"Volumes": None},
        "NetworkSettings": {"Networks": {"x-internal": {}}},
        "Mounts": [
            {"Type": "bind", "Source": "/srv/cfg", "Destination": "/cfg", "RW": False},
            {
                "Type": "volume",
                "Name": "claude-bottle-x_cache",
                "Source": "/v/_data",
                "Destination": "/cache",
                "RW": True,
            },
        ],
    }


def drifted(inspected: dict, **service: object) -> dict[str, drift.Drift]:
    return {d.field: d for d in drift.drift({**SERVICE, **service}, DOCUMENT, inspected, {"pipelock": "abc123"})}


def test_an_agent_that_runs_as_declared_has_no_drift():
    assert drifted(container()) == {}


@pytest.mark.parametrize(
    ("host", "field"),
    [
        ({"CapAdd": ["CAP_SYS_ADMIN"]}, "cap_add"),
        ({"CapDrop": None}, "cap_drop"),
        ({"SecurityOpt": ["no-new-privileges:true", "seccomp=unconfined"]}, "security_opt"),
        ({"Privileged": True}, "privileged"),
        ({"PidMode": "container:abc123"}, "pid"),
        ({"PidMode": "host"}, "pid"),
        ({"IpcMode": "container:abc123"}, "ipc"),
        ({"UTSMode": "host"}, "uts"),
        ({"UsernsMode": "host"}, "userns_mode"),
        ({"CgroupnsMode": "private"}, "cgroup"),
        ({"NetworkMode": "host"}, "network_mode"),
        ({"Devices": [{"PathOnHost": "/dev/kvm", "PathInContainer": "/dev/kvm"}]}, "devices"),
        ({"DeviceRequests": [{"Count": -1, "Capabilities": [["gpu"]]}]}, "device_requests"),
        ({"Runtime": "runsc"}, "runtime"),
        ({"ReadonlyRootfs": False}, "read_only"),
        ({"PidsLimit": 0}, "pids_limit"),
        ({"Memory": 8 * 1024**3}, "mem_limit"),
        ({"NanoCpus": 0}, "cpus"),
        ({"Sysctls": {"net.ipv4.ip_forward": "1"}}, "sysctls"),
        ({"Dns": ["10.0.0.53"]}, "dns"),
        ({"ExtraHosts": ["metadata:169.254.169.254"]}, "extra_hosts"),
        ({"Init": False}, "init"),
    ],
)
def test_each_security_relevant_field_that_differs_is_named(host, field):
    found = drifted(container(**host))
    assert list(found) == [field], found


def test_mounts_drift_by_source_writability_and_presence():
    inspected = container()
    inspected["Mounts"][0]["Source"] = "/var/run"  # the declared target, another source
    assert drifted(inspected)["mounts"].seen == "'bind /var/run -> /cfg (read-only)'".strip("'")
    inspected = container()
    inspected["Mounts"][0]["RW"] = True
    assert "read-only" in drifted(inspected)["mounts"].expected
    inspected = container()
    inspected["Mounts"].append({"Type": "bind", "Source": "/var/run/docker.sock", "Destination": "/s", "RW": True})
    assert drifted(inspected)["mounts"].expected == "no mount at /s"
    inspected["Config"]["Volumes"] = {"/data": {}}
    inspected["Mounts"][-1] = {"Type": "volume", "Name": "0" * 64, "Source": "/v", "Destination": "/data", "RW": True}
    assert drifted(inspected) == {}  # an anonymous volume its image declares


def test_a_declared_shared_namespace_is_the_named_services_container():
    assert drifted(container(PidMode="container:abc123"), pid="service:pipelock") == {}
    assert "pid" in drifted(container(PidMode="container:other"), pid="service:pipelock")


def test_allowed_capabilities_follow_cap_drop_and_cap_add():
    assert drift.allowed_capabilities({"cap_drop": ["ALL"], "cap_add": ["NET_BIND_SERVICE"]}) == {"NET_BIND_SERVICE"}
    assert "NET_RAW" not in drift.allowed_capabilities({"cap_drop": ["net_raw"]})
    assert drift.allowed_capabilities({}) == drift.DEFAULT_CAPABILITIES


def status_of(cap_eff: str, cap_bnd: str, seccomp: str = "2", nnp: str = "1") -> dict[str, list[str]]:
    return {"status": [f"CapEff:\t{cap_eff}", f"CapBnd:\t{cap_bnd}", f"Seccomp:\t{seccomp}", f"NoNewPrivs:\t{nnp}"]}


def test_confinement_reads_effective_and_bounding_capabilities_seccomp_and_no_new_privileges():
    assert verify._confinement(SERVICE, status_of("0", "0")).status == verify.PASS
    sys_admin = f"{1 << 21:016x}"
    probe = verify._confinement(SERVICE, status_of("0", sys_admin))
    assert probe.status == verify.FAIL and "CapBnd holds SYS_ADMIN" in probe.detail
    assert "seccomp mode 0" in verify._confinement(SERVICE, status_of("0", "0", seccomp="0")).detail
    assert "NoNewPrivs 0" in verify._confinement(SERVICE, status_of("0", "0", nnp="0")).detail
    default = sum(1 << verify.CAPABILITIES.index(c) for c in drift.DEFAULT_CAPABILITIES)
    assert verify._confinement({}, status_of(f"{default:x}", f"{default:x}", nnp="0")).status == verify.PASS


# --- what the host shows (hostside.py) ------------------------------------------------------

SEAL = "-A INPUT -i br-1 -m comment --comment bottlegen:p -j DROP"


@pytest.mark.parametrize(
    ("ahead", "opens"),
    [
        ("-A INPUT -i br-1 -j ACCEPT", True),
        ("-A INPUT -j ACCEPT", True),
        ("-A INPUT -i br+ -p tcp --dport 22 -j ACCEPT", True),
        ("-A INPUT -j ufw-before-input", True),
        ("-A INPUT ! -i lo -j ACCEPT", True),
        ("-A INPUT ! -i br-1 -j ACCEPT", False),
        ("-A INPUT -i br-2 -j ACCEPT", False),
        ("-A INPUT -i lo -j ACCEPT", False),
        ("-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT", False),
        ("-A INPUT -i br-1 -j LOG", False),
    ],
)
def test_a_rule_ahead_of_the_seals_drop_that_may_accept_the_bridge_is_found(ahead, opens):
    listing = ["-P INPUT ACCEPT", ahead, SEAL, "-A INPUT -j ACCEPT"]  # what follows the DROP never matters
    assert bool(hostside.rules_before_drop(listing, "br-1", "bottlegen:p")) is opens


def test_listening_ports_come_from_the_socket_tables(tmp_path):
    (tmp_path / "net").mkdir()
    header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode"
    (tmp_path / "net/tcp").write_text(
        f"{header}\n   0: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1\n"
        "   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 2\n"
    )
    (tmp_path / "net/tcp6").write_text(
        f"{header}\n   0: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A 0 0 0 0 0 3\n"
    )
    assert hostside.listening_ports(str(tmp_path)) == [80, 2024]  # LISTEN only: 8080 is a connection


def test_mounts_are_searched_for_sockets_and_token_values_without_following_inner_links(tmp_path):
    import socket

    mounted = tmp_path / "mounted"
    (mounted / "deep").mkdir(parents=True)
    (mounted / "deep" / "config.yaml").write_text("api_key: s3cr3t-value\n")
    (mounted / "plain").write_text("nothing here\n")
    outside = socket.socket(socket.AF_UNIX)
    outside.bind(str(tmp_path / "outside.sock"))
    (mounted / "link").symlink_to(tmp_path / "outside.sock")  # in the container it resolves inside it
    found = hostside.search_mounts([(str(mounted), "/work")], {"API_TOKEN": "s3cr3t-value"})
    assert found.sockets == [] and found.tokens == [("API_TOKEN", "/work")] and found.complete
    inside = socket.socket(socket.AF_UNIX)
    inside.bind(str(mounted / "engine.sock"))
    found = hostside.search_mounts([(str(mounted), "/work"), (str(tmp_path / "outside.sock"), "/s")], {})
    assert found.sockets == [str(mounted / "engine.sock"), str(tmp_path / "outside.sock")]
    outside.close()
    inside.close()
