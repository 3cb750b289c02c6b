"""Stage 3: turn a validated plan into the resolved plan templates see.

Defaults come from the plan schema's `default` keywords (the schema is the one place they
are written). Host paths (schema keys marked `x-host-path`) get a leading `~` expanded and
a relative path resolved against the plan file's directory, so every bind source is
absolute wherever the compose file is written. The result is plain data.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from .. import host, resources
from ..composefile import dns_problem
from ..errors import PlanError, Problem
from ..paths import json_path, shorten
from ..yamltext import copy_plain

SETTING_PLACEHOLDERS = ("prefix", "service", "slug")


def _below(schema: dict[str, Any], test: Callable[[dict[str, Any]], bool], memo: dict[int, Any]) -> bool:
    """Whether test holds for schema or any schema under it (properties, items, oneOf).

    Remembered per schema object for the process: the walks below skip every part of a plan
    whose schema says nothing for them. The memo keeps the schema, so its id is never reused.
    """
    found = memo.get(id(schema))
    if found is None:
        below = [*schema.get("properties", {}).values(), *schema.get("oneOf", [])]
        if isinstance(schema.get("items"), dict):
            below.append(schema["items"])
        found = memo[id(schema)] = (schema, test(schema) or any(_below(s, test, memo) for s in below))
    return bool(found[1])


_WITH_DEFAULTS: dict[int, Any] = {}
_WITH_HOST_PATHS: dict[int, Any] = {}


def _has_defaults(schema: dict[str, Any]) -> bool:
    return "default" in schema or schema.get("type") == "integer"


def _has_host_path(schema: dict[str, Any]) -> bool:
    return bool(schema.get("x-host-path"))


def apply_defaults(schema: dict[str, Any], value: Any) -> Any:
    """Fill absent object properties from the schema's `default`s, recursively."""
    if not _below(schema, _has_defaults, _WITH_DEFAULTS):
        return value
    schema = _branch_for(schema, value) or schema
    if isinstance(value, dict):
        for key, sub in schema.get("properties", {}).items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            if key in value:
                value[key] = apply_defaults(sub, value[key])
        return value
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [apply_defaults(schema["items"], item) for item in value]
    if isinstance(value, float) and schema.get("type") == "integer":
        return int(value)  # JSON Schema's integer 8888.0 is written as the plan means it: 8888
    return value


_JSON_TYPES = {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer", type(None): "null"}


def _branch_for(schema: dict[str, Any], value: Any) -> dict[str, Any] | None:
    """The `oneOf` branch of schema that is meant for value's JSON type, if any."""
    wanted = _JSON_TYPES.get(type(value))
    return next((b for b in schema.get("oneOf", []) if b.get("type") == wanted), None)


def host_path(value: str, base_dir: Path) -> str:
    """`~` expanded; a relative path joined to base_dir and normalised; absolute kept as written."""
    expanded = os.path.expanduser(value)
    if os.path.isabs(expanded):
        return expanded
    return os.path.normpath(os.path.join(base_dir, expanded))


def map_host_paths(
    schema: dict[str, Any], value: Any, change: Callable[[str], str], marked: Callable[[str, str], None] | None = None
) -> Any:
    """value with change applied to each host path in it (the schema's `x-host-path` keys);
    marked(path as written, path as changed) is told of each the schema marks `x-writable`.
    The parts without one are the same objects as in value."""
    if not _below(schema, _has_host_path, _WITH_HOST_PATHS):
        return value
    schema = _branch_for(schema, value) or schema
    if isinstance(value, str) and schema.get("x-host-path"):
        changed = change(value)
        if marked is not None and schema.get("x-writable"):
            marked(value, changed)
        return changed
    if isinstance(value, dict):
        props = schema.get("properties", {})
        return {k: map_host_paths(props.get(k, {}), v, change, marked) for k, v in value.items()}
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [map_host_paths(schema["items"], item, change, marked) for item in value]
    return value


def _relative(path: str) -> bool:
    return not os.path.isabs(os.path.expanduser(path))


def resolve_host_paths(schema: dict[str, Any], value: Any, base_dir: Path) -> Any:
    return map_host_paths(schema, value, lambda path: host_path(path, base_dir))


def rebase_host_paths(schema: dict[str, Any], value: Any, from_dir: Path, to_dir: Path) -> Any:
    """value (a part of a plan written in from_dir) with each relative host path rewritten
    to mean the same from to_dir; `~` and absolute paths are kept."""
    source, target = host.realpath(from_dir), host.realpath(to_dir)
    if source == target:
        return value

    def rebase(path: str) -> str:
        return os.path.relpath(os.path.normpath(os.path.join(source, path)), target) if _relative(path) else path

    return map_host_paths(schema, value, rebase)


class PlanHostPaths(NamedTuple):
    """What the walk that resolves a plan's host paths learns on the way, for the stages
    after the templates: the paths the plan marks writable (x-writable), and those it gave
    relative (as a template writes them, `$` as `$$`), which relocate may write relative."""

    writable: list[str]
    relative: set[str]


def container_name(pattern: str, prefix: str, service: str, slug: str) -> str:
    values = {"prefix": prefix, "service": service, "slug": slug}
    out = pattern
    for key in SETTING_PLACEHOLDERS:
        out = out.replace("{" + key + "}", values[key])
    return out


def _extra_hosts(upstreams: list[dict[str, Any]]) -> list[str]:
    """The union of the upstreams' extra_hosts as sorted `host:ip` (validate made sure each
    host has one address)."""
    hosts: dict[str, str] = {}
    for upstream in upstreams:
        hosts.update(upstream.get("extra_hosts", {}))
    return [f"{host}:{hosts[host]}" for host in sorted(hosts)]


DNS_LABEL_MAX = 63


def _check_dns_names(names: dict[str, str], agent_named: bool, source: str, settings: dict[str, Any]) -> None:
    """Container names are how sidecars are dialled: each must be a name DNS resolves. A bad
    one is blamed on what made it: container_name, the pattern, the prefix, or the slug."""
    pattern, prefix = settings["container_name_pattern"], settings["project_prefix"]
    problems = []
    for service, name in names.items():
        why = dns_problem(name)
        if why is None:
            continue
        if service == "agent" and agent_named:
            where = "$.container_name"
        elif dns_problem(container_name(pattern, "x", "x", "x")) is not None:
            where = "$.settings.container_name_pattern"
        elif dns_problem(container_name(pattern, prefix, "x", "x")) is not None:
            where = "$.settings.project_prefix"
        else:
            where = "$.slug"
        longest = max(len(label) for label in name.split("."))
        if longest > DNS_LABEL_MAX:
            message = (
                f"makes {service}'s container name {shorten(name)}, a DNS label of {longest} "
                f"characters; at most {DNS_LABEL_MAX} resolve: shorten the slug, settings.project_prefix or "
                "settings.container_name_pattern" + (" (or container_name)" if service == "agent" else "")
            )
        else:
            message = (
                f"makes {service}'s container name {shorten(name)}, {why} (an empty label, "
                "or a label that starts or ends with '-'): the other containers could not resolve it"
            )
        problems.append(Problem(message, source, where))
    if problems:
        raise PlanError("invalid plan: container names other containers could not resolve:", problems)


ENGINE_NETWORKS = ("bridge", "host", "none")  # every Docker engine's own; compose/policy.py judges templates by them
SUPERVISE = "supervise"  # a service name this module relies on (the operators' guide lists them)


def _default_names(
    data: dict[str, Any],
    project: str,
    names: dict[str, str],
    settings: dict[str, Any],
    source: str = "<plan>",
    source_keys: Sequence[str] = (),
) -> None:
    """What a plan may leave out because it follows from the rest: the networks' names, from
    the project, and egress' upstream proxy, pipelock by its container name and port."""
    proxy = data["proxy"]
    proxy.setdefault("internal_network", f"{project}-internal")
    proxy.setdefault("egress_network", f"{project}-egress")
    for key in ("internal_network", "egress_network"):
        if proxy[key] in ENGINE_NETWORKS:
            raise PlanError(
                "invalid plan: a network of the bottle is one of the engine's own:",
                [
                    Problem(
                        f"{proxy[key]!r} is the engine's built-in network (bridge, host and none are the engine's "
                        "on every Docker host): give the bottle a network of its own, or leave the key out",
                        source,
                        json_path(("proxy", key)),
                    )
                ],
            )
    if proxy["internal_network"] == proxy["egress_network"]:
        given = "egress_network" if "egress_network" in source_keys else "internal_network"
        raise PlanError(
            "invalid plan: the bottle's two networks would be one:",
            [
                Problem(
                    f"{shorten(proxy[given])} is also proxy.{'internal_network' if given == 'egress_network' else 'egress_network'}: "
                    "the internal network (no route out) and the egress network must be two networks on the engine",
                    source,
                    json_path(("proxy", given)),
                )
            ],
        )
    pipelock = names.get("pipelock")
    if pipelock is not None and "pipelock" in settings["ports"]:
        data["egress"].setdefault("pipelock_proxy_url", pipelock_url(pipelock, settings["ports"]["pipelock"]))


def pipelock_url(container_name: str, port: int) -> str:
    return f"http://{container_name}:{port}"


def _env_file_in_use(path: str | None) -> str | None:
    """The env file when it is a regular file and not empty, else None.

    As the reference does, a missing or empty file is left out; a directory (say `~`) is
    not an env file either.
    """
    if path is None:
        return None
    state = host.file_state(path)
    return path if state.startswith("file:") and state != "file:0" else None


def resolve_plan(
    plan: dict[str, Any],
    base_dir: Path,
    source: str,
    service_names: list[str],
    schema: dict[str, Any] | None = None,
    check_host: bool = True,
) -> tuple[dict[str, Any], PlanHostPaths]:
    """The template context's data for a validated plan, without the enabled services, and
    what resolving its host paths learned (PlanHostPaths).

    `service_names` are all the services the manifest declares, enabled or not: each gets a
    container name from the pattern. With check_host false nothing of the host is read: the
    env file is taken as the plan gives it (the seed's rule, a file present and not empty,
    needs the host).
    """
    schema = schema or resources.load_schema(resources.PLAN_SCHEMA)
    data = apply_defaults(schema, copy_plain(plan))
    found = PlanHostPaths([], set())

    def resolved(path: str) -> str:
        absolute = host_path(path, base_dir)
        if _relative(path):
            found.relative.add(absolute.replace("$", "$$"))
        return absolute

    data = map_host_paths(schema, data, resolved, lambda _, absolute: found.writable.append(absolute))
    data.pop("$schema", None)
    settings = data["settings"]
    upstreams = data["git_gate"]["upstreams"]

    def named(service: str) -> str:
        return container_name(settings["container_name_pattern"], settings["project_prefix"], service, data["slug"])

    data["container_name"] = data.get("container_name") or named("agent")
    names = {service: named(service) for service in service_names} | {"agent": data["container_name"]}
    _check_dns_names(names, "container_name" in plan, source, settings)
    project = f"{settings['project_prefix']}-{data['slug']}"
    _default_names(data, project, names, settings, source, list((plan.get("proxy") or {}).keys()))
    # Only the token variables' names reach the templates: the map's values are never rendered.
    data["egress"]["token_env_names"] = sorted(data["egress"].pop("token_env_map"))
    context = {
        "project": f"{settings['project_prefix']}-{data['slug']}",
        "plan": {k: v for k, v in data.items() if k != "settings"},
        "settings": settings,
        "container_names": names,
        "facts": {
            "env_file_in_use": _env_file_in_use(data.get("env_file")) if check_host else data.get("env_file"),
            "git_gate_extra_hosts": _extra_hosts(upstreams),
        },
    }
    return context, found
