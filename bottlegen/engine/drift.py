"""The running agent against what its compose file allows.

Each security-relevant field of the agent's container, as `docker inspect` reports it
(capabilities, security options, privilege, every namespace mode, the network mode and the
networks, devices and device requests, the runtime, mounts with their type and source, the
root's writability, limits, sysctls, DNS and extra hosts), is compared with the service as
the compose file declares it. A container recreated by hand, or changed since `up`, shows up
here as a drift naming the field, what the file allows and what runs. Pure functions over
the inspect data: `verify` reads it, the tests give it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

from ..composefile import byte_size, cpu_count, mounts, names, short_writable

# The capabilities Docker gives a container by default (moby's oci/caps/defaults.go).
DEFAULT_CAPABILITIES = frozenset(
    [
        "CHOWN",
        "DAC_OVERRIDE",
        "FSETID",
        "FOWNER",
        "MKNOD",
        "NET_RAW",
        "SETGID",
        "SETUID",
        "SETFCAP",
        "SETPCAP",
        "NET_BIND_SERVICE",
        "SYS_CHROOT",
        "KILL",
        "AUDIT_WRITE",
    ]
)
IPC_DEFAULTS = ("", "private", "shareable")


class Drift(NamedTuple):
    field: str
    expected: str
    seen: str


class EngineDefaults(NamedTuple):
    """What the engine fills in where the file says nothing (docker info)."""

    runtime: str = "runc"
    cgroupns: str = "host"  # "private" on cgroup v2, "host" on v1


def capability(name: Any) -> str:
    return str(name).upper().removeprefix("CAP_")


def _set(values: Any) -> list[str]:
    return sorted({capability(v) for v in values or []})


def _security_opt(option: Any) -> str:
    kind, sep, value = str(option).replace("=", ":", 1).partition(":")
    text = f"{kind.strip().lower()}{sep}{value.strip().lower()}" if sep else kind.strip().lower()
    return "no-new-privileges:true" if text == "no-new-privileges" else text


def _host(entry: Any) -> str:
    """An extra_hosts entry as `host:address`, whichever separator wrote it."""
    text = str(entry)
    if "=" in text:
        host, _, address = text.partition("=")
        return f"{host}:{address}"
    return text


def _extra_hosts(value: Any) -> list[str]:
    if isinstance(value, dict):
        entries = [f"{k}:{v}" for k, vs in value.items() for v in (vs if isinstance(vs, list) else [vs])]
    else:
        entries = [_host(e) for e in value or []]
    return sorted(entries)


def _sysctls(value: Any) -> dict[str, str]:
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    return {str(e).partition("=")[0]: str(e).partition("=")[2] for e in value or []}


def _limit(value: Any) -> int | None:
    return None if value in (None, 0, -1) else int(value)


def _namespace(key: str, declared: Any, seen: str, containers: dict[str, str], defaults: EngineDefaults) -> str | None:
    """What the file allows for a namespace mode, when seen is not it; None when it is."""
    if declared is None:
        allowed = {
            "pid": ("",),
            "ipc": IPC_DEFAULTS,
            "uts": ("",),
            "userns_mode": ("",),
            "cgroup": ("", defaults.cgroupns),
        }[key]
        return None if seen in allowed else " or ".join(repr(a) for a in allowed)
    text = str(declared)
    kind, _, target = text.partition(":")
    if kind == "service":
        wanted = containers.get(target, target)
        return (
            None if seen.startswith(f"container:{wanted}") or seen == f"container:{target}" else f"container:{wanted}"
        )
    return None if seen == text else repr(text)


def _declared_mounts(
    service: dict[str, Any], document: dict[str, Any], project: str
) -> dict[str, tuple[str, str, bool]]:
    """target -> (type, source, writable) of each mount the file declares, as the engine reports it."""
    volumes = document.get("volumes") or {}
    found: dict[str, tuple[str, str, bool]] = {}
    for index, kind, source, target in mounts(service):
        volume = (service.get("volumes") or [])[index]
        writable = volume.get("read_only") is not True if isinstance(volume, dict) else short_writable(str(volume))
        if target is None:
            continue
        if kind == "volume" and isinstance(source, str):
            top: dict[str, Any] = volumes[source] if isinstance(volumes.get(source), dict) else {}
            source = top.get("name") or (source if top.get("external") else f"{project}_{source}")
        found[str(target)] = (str(kind), str(source or ""), writable)
    for kind in ("secrets", "configs"):
        entries: dict[str, Any] = document.get(kind) or {}
        for ref in service.get(kind) or []:
            name = ref.get("source") if isinstance(ref, dict) else ref
            target = ref.get("target") if isinstance(ref, dict) else None
            entry = entries.get(str(name)) or {}
            where = target or (f"/run/secrets/{name}" if kind == "secrets" else f"/{name}")
            if not str(where).startswith("/"):
                where = f"/run/secrets/{where}"
            found[str(where)] = ("bind", str(entry.get("file") or ""), False)
    return found


def _mount_drift(
    service: dict[str, Any], document: dict[str, Any], project: str, container: dict[str, Any]
) -> Iterator[Drift]:
    declared = _declared_mounts(service, document, project)
    image_volumes = set((container.get("Config") or {}).get("Volumes") or {})
    for mount in sorted(container.get("Mounts") or [], key=lambda m: str(m.get("Destination"))):
        kind, target = str(mount.get("Type")), str(mount.get("Destination"))
        source = str(mount.get("Name") if kind == "volume" else mount.get("Source"))
        writable = bool(mount.get("RW"))
        seen = f"{kind} {source} -> {target}{'' if writable else ' (read-only)'}"
        if kind == "tmpfs":
            continue  # memory of the container's own, no host path
        if target not in declared:
            if kind == "volume" and target in image_volumes:
                continue  # an anonymous volume the image declares
            yield Drift("mounts", f"no mount at {target}", seen)
            continue
        want_kind, want_source, want_writable = declared[target]
        if kind != want_kind or (kind == "bind" and source.rstrip("/") != want_source.rstrip("/")):
            yield Drift("mounts", f"{want_kind} {want_source} -> {target}", seen)
        elif writable and not want_writable:
            yield Drift("mounts", f"{want_kind} {want_source} -> {target} (read-only)", seen)


def drift(
    service: dict[str, Any],
    document: dict[str, Any],
    container: dict[str, Any],
    containers: dict[str, str],
    defaults: EngineDefaults | None = None,
) -> list[Drift]:
    """Every field of the running container (inspect data) that differs from what the
    service declares. containers: service -> container ID, for `service:` namespace modes."""
    host = container.get("HostConfig") or {}
    project = str(document.get("name") or "")
    defaults = defaults or EngineDefaults()
    found: list[Drift] = []

    def compare(field: str, expected: Any, seen: Any) -> None:
        if expected != seen:
            found.append(Drift(field, repr(expected), repr(seen)))

    compare("privileged", bool(service.get("privileged", False)), bool(host.get("Privileged")))
    compare("cap_add", _set(service.get("cap_add")), _set(host.get("CapAdd")))
    compare("cap_drop", _set(service.get("cap_drop")), _set(host.get("CapDrop")))
    compare(
        "security_opt",
        sorted({_security_opt(o) for o in service.get("security_opt") or []}),
        sorted({_security_opt(o) for o in host.get("SecurityOpt") or []}),
    )
    apparmor = str(container.get("AppArmorProfile") or "")
    if apparmor == "unconfined" and "apparmor:unconfined" not in {
        _security_opt(o) for o in service.get("security_opt") or []
    }:
        found.append(Drift("apparmor", "the engine's profile", "unconfined"))
    for key, field in (
        ("pid", "PidMode"),
        ("ipc", "IpcMode"),
        ("uts", "UTSMode"),
        ("userns_mode", "UsernsMode"),
        ("cgroup", "CgroupnsMode"),
    ):
        seen = str(host.get(field) or "")
        wanted = _namespace(key, service.get(key), seen, containers, defaults)
        if wanted is not None:
            found.append(Drift(key, wanted, repr(seen)))
    networks = sorted(names(service.get("networks")))
    engine_names = {
        key: (definition.get("name") if isinstance(definition, dict) and definition.get("name") else
              key if isinstance(definition, dict) and definition.get("external") else f"{project}_{key}")
        for key, definition in (document.get("networks") or {}).items()
    }  # fmt: skip
    joined = sorted(((container.get("NetworkSettings") or {}).get("Networks") or {}).keys())
    mode = str(host.get("NetworkMode") or "")
    if "network_mode" in service:
        compare("network_mode", str(service["network_mode"]), mode)
    else:
        compare("networks", sorted(str(engine_names.get(n, f"{project}_{n}")) for n in networks), joined)
        if mode == "host" or mode.startswith("container:") or mode == "none":
            found.append(Drift("network_mode", "the file's networks", repr(mode)))
    devices = sorted(str(d).split(":")[0] for d in service.get("devices") or [])
    compare("devices", devices, sorted(str(d.get("PathOnHost")) for d in host.get("Devices") or []))
    requested = bool(service.get("gpus")) or bool(
        ((service.get("deploy") or {}).get("resources") or {}).get("reservations", {}).get("devices")
    )
    if not requested and host.get("DeviceRequests"):
        found.append(Drift("device_requests", "none", repr(host.get("DeviceRequests"))))
    compare("runtime", str(service.get("runtime") or defaults.runtime), str(host.get("Runtime") or defaults.runtime))
    compare("read_only", service.get("read_only") is True, bool(host.get("ReadonlyRootfs")))
    compare("pids_limit", _limit(service.get("pids_limit")), _limit(host.get("PidsLimit")))
    compare("mem_limit", _limit(byte_size(service.get("mem_limit"))), _limit(host.get("Memory")))
    cpus = cpu_count(service.get("cpus"))
    compare("cpus", _limit(round(cpus * 1e9) if cpus else None), _limit(host.get("NanoCpus")))
    compare("sysctls", _sysctls(service.get("sysctls")), _sysctls(host.get("Sysctls")))
    compare("dns", [str(d) for d in service.get("dns") or []], [str(d) for d in host.get("Dns") or []])
    compare("extra_hosts", _extra_hosts(service.get("extra_hosts")), _extra_hosts(host.get("ExtraHosts")))
    compare("init", service.get("init") is True, bool(host.get("Init")))
    found += _mount_drift(service, document, project, container)
    return found


def allowed_capabilities(service: dict[str, Any]) -> frozenset[str]:
    """The capabilities a process of the service may hold: Docker's default set, less
    cap_drop (ALL: every one), plus cap_add."""
    drop = set(_set(service.get("cap_drop")))
    add = set(_set(service.get("cap_add")))
    base = set() if "ALL" in drop else set(DEFAULT_CAPABILITIES) - drop
    return frozenset(base | add)
