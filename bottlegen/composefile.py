"""What compose means by a document's short forms, for the stages that read a document:
list-or-mapping blocks, the short volume syntax, `$$` (a literal `$`), and the names its
DNS resolves.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

# A name compose's embedded DNS answers: dot-separated labels of letters, digits, `_` and
# `-` (not first or last), at most 63 characters each and 253 in all.
DNS_LABEL = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
DNS_NAME_MAX = 253


def dns_problem(name: str) -> str | None:
    """Why name is not a name other containers can resolve, or None when it is."""
    labels = name.split(".")
    if len(name) <= DNS_NAME_MAX and all(DNS_LABEL.fullmatch(label) for label in labels):
        return None
    longest = max(map(len, labels))
    return f"a DNS label of {longest} characters (at most 63)" if longest > 63 else "not a valid DNS name"


def names(block: Any) -> list[str]:
    """Keys of a compose list-or-mapping block (depends_on, networks)."""
    if isinstance(block, dict):
        return list(block)
    if isinstance(block, list):
        return [item for item in block if isinstance(item, str)]
    return []


def unescape(value: str) -> str:
    """A string value as compose reads it: `$$` is one `$`."""
    return value.replace("$$", "$")


def mounts(service: dict[str, Any]) -> list[tuple[int, str | None, str | None, str | None]]:
    """(index, type, source, target) of each volume entry, long or short form."""
    out = []
    for index, volume in enumerate(service.get("volumes") or []):
        if isinstance(volume, dict):
            out.append((index, volume.get("type"), volume.get("source"), volume.get("target")))
        elif isinstance(volume, str):
            parts = volume.split(":")
            if len(parts) == 1:
                out.append((index, "volume", None, parts[0]))
            else:
                kind = "bind" if parts[0].startswith((".", "/", "~")) else "volume"
                out.append((index, kind, parts[0], parts[1]))
    return out


class HostPath(NamedTuple):
    """One way a host file reaches a container, as the document writes it: where (its key
    path), the value written, how it is used, which services get it, and whether they may
    write to it."""

    at: tuple[Any, ...]
    value: str
    use: str  # "bind", "volume device", "env_file", "build context", "secret file", "config file"
    services: tuple[str, ...]  # the services given it (none: a top-level entry no service uses)
    writable: bool = False


def _is_url(value: str) -> bool:
    return "://" in value or value.startswith(("git@", "github.com/"))


def short_writable(volume: str) -> bool:
    """Whether a short-syntax volume `SRC:DST[:MODE]` is mounted writable (no `ro` in MODE)."""
    parts = volume.split(":")
    options = parts[2].split(",") if len(parts) > 2 else []
    return "ro" not in options and "readonly" not in options


def _short_bind(volume: str) -> tuple[str, bool] | None:
    """(source, writable) of a short-syntax bind, or None when it is no bind."""
    parts = volume.split(":")
    if len(parts) < 2 or not parts[0].startswith((".", "/", "~")):
        return None
    return parts[0], short_writable(volume)


def _named_volume_device(document: dict[str, Any], name: Any) -> tuple[Any, ...] | None:
    """The key path of a top-level volume's `driver_opts.device` (a bind in disguise), if any."""
    volume = (document.get("volumes") or {}).get(name) if isinstance(name, str) else None
    options = volume.get("driver_opts") if isinstance(volume, dict) else None
    if isinstance(options, dict) and isinstance(options.get("device"), str):
        return ("volumes", name, "driver_opts", "device")
    return None


def host_paths(document: dict[str, Any]) -> list[HostPath]:
    """Every host path the document hands a container: binds (long and short), named
    volumes whose driver binds a device path, env files, build contexts (and additional
    contexts), and the files of top-level secrets and configs, with the services that use them."""
    found: list[HostPath] = []
    services = {k: v for k, v in (document.get("services") or {}).items() if isinstance(v, dict)}
    users: dict[tuple[str, str], list[str]] = {}
    for name, service in services.items():
        for index, volume in enumerate(service.get("volumes") or []):
            at = ("services", name, "volumes", index)
            if isinstance(volume, dict):
                writable = volume.get("read_only") is not True
                if volume.get("type") == "bind" and isinstance(volume.get("source"), str):
                    found.append(HostPath((*at, "source"), volume["source"], "bind", (name,), writable))
                elif volume.get("type") == "volume" and (
                    device := _named_volume_device(document, volume.get("source"))
                ):
                    found.append(HostPath(device, _at(document, device), "volume device", (name,), writable))
            elif isinstance(volume, str):
                bind = _short_bind(volume)
                if bind is not None:
                    found.append(HostPath(at, bind[0], "bind", (name,), bind[1]))
                elif (device := _named_volume_device(document, volume.split(":")[0])) is not None:
                    found.append(
                        HostPath(device, _at(document, device), "volume device", (name,), short_writable(volume))
                    )
        env_file = service.get("env_file")
        for index, entry in enumerate([env_file] if isinstance(env_file, str) else env_file or []):
            where: tuple[Any, ...] = ("services", name, "env_file") + (() if isinstance(env_file, str) else (index,))
            if isinstance(entry, str):
                found.append(HostPath(where, entry, "env_file", (name,)))
            elif isinstance(entry, dict) and isinstance(entry.get("path"), str):
                found.append(HostPath((*where, "path"), entry["path"], "env_file", (name,)))
        build = service.get("build")
        if isinstance(build, str) and not _is_url(build):
            found.append(HostPath(("services", name, "build"), build, "build context", (name,)))
        elif isinstance(build, dict):
            context = build.get("context", ".")
            if isinstance(context, str) and not _is_url(context):
                found.append(HostPath(("services", name, "build", "context"), context, "build context", (name,)))
            extra = build.get("additional_contexts")
            pairs = extra.items() if isinstance(extra, dict) else enumerate(extra if isinstance(extra, list) else [])
            for key, value in pairs:
                path = (
                    value if isinstance(extra, dict) else (value.partition("=")[2] if isinstance(value, str) else None)
                )
                if (
                    isinstance(path, str)
                    and not _is_url(path)
                    and not path.startswith(("docker-image:", "service:", "target:"))
                ):
                    found.append(
                        HostPath(
                            ("services", name, "build", "additional_contexts", key), path, "build context", (name,)
                        )
                    )
            for ref in build.get("secrets") or []:
                source = ref.get("source") if isinstance(ref, dict) else ref
                if isinstance(source, str):
                    users.setdefault(("secrets", source), []).append(name)
        for kind in ("secrets", "configs"):
            for ref in service.get(kind) or []:
                source = ref.get("source") if isinstance(ref, dict) else ref
                if isinstance(source, str):
                    users.setdefault((kind, source), []).append(name)
    for kind, use in (("secrets", "secret file"), ("configs", "config file")):
        for key, entry in (document.get(kind) or {}).items():
            if isinstance(entry, dict) and isinstance(entry.get("file"), str):
                given = tuple(dict.fromkeys(users.get((kind, key), [])))
                found.append(HostPath((kind, key, "file"), entry["file"], use, given))
    return found


def _at(document: dict[str, Any], path: tuple[Any, ...]) -> Any:
    value: Any = document
    for key in path:
        value = value[key]
    return value


def set_at(document: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    """Replace the value at a key path (a short-syntax volume's source, when the path ends at
    the volume's entry)."""
    *parents, last = path
    container = _at(document, tuple(parents))
    current = container[last]
    if isinstance(current, str) and len(parents) >= 3 and parents[-1] == "volumes" and parents[0] == "services":
        # a short volume `SRC:DST[:MODE]`: only SRC changes
        _, _, rest = current.partition(":")
        container[last] = f"{value}:{rest}"
    else:
        container[last] = value


_BYTE_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4, "p": 1024**5}


def byte_size(value: Any) -> int | None:
    """compose's byte sizes (mem_limit): a number, or a number with b, k, m, g (kb, mb ...),
    in 1024s; None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return int(value)
    if not isinstance(value, str):
        return None
    text = value.strip().lower().removesuffix("b")
    number = text.rstrip("kmgtp")
    try:
        return int(float(number) * _BYTE_UNITS[text[len(number) :]])
    except (KeyError, ValueError):
        return None


def cpu_count(value: Any) -> float | None:
    """compose's `cpus`: a number, or a string of one; None when it is not one."""
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
