"""Stage 6: check the merged document before anything is written.

1. The official compose-spec schema (vendored in schema/compose-spec/, draft 7).
2. What the schema cannot say but Docker Compose rejects at load time, or silently gets
   wrong: depends_on naming a service that is not rendered, a service on an undeclared
   network, duplicate or malformed container names, dependency cycles, two volumes with
   one target in a service (compose keeps the last), relative bind sources, durations that
   are not Go durations and negative counts.
3. Lints, which warn (and fail with --strict): pipelock's image not pinned by digest, a
   bind source that does not exist now, runsc with sidecars found only by name, and (from
   the plan's context) an egress upstream proxy that is not pipelock.

Every message names the document path and the template that produced it.
"""

from __future__ import annotations

import graphlib
import os
import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

from .. import host, resources
from ..composefile import mounts, names, unescape
from ..errors import DocumentError, Problem
from ..lints import Lint, lint
from ..paths import json_path, shorten
from ..schemas import describe, violations
from ..stages import resolve
from ..stages.merge import Merged

CONTAINER_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def check_schema(merged: Merged) -> None:
    errors = violations(resources.COMPOSE_SCHEMA, merged.document)
    if errors:
        raise DocumentError(
            "the rendered document is not a valid compose file; fix the template named:",
            [merged.problem(tuple(e.absolute_path), describe(e)) for e in errors],
        )


def check_rules(merged: Merged) -> None:
    """Every rule of RULES, every problem collected: a DocumentError listing them all."""
    problems = [problem for rule in RULES for problem in rule(merged)]
    if problems:
        raise DocumentError(
            "the rendered document breaks rules Docker Compose enforces; fix the template named:", problems
        )


def _services(merged: Merged) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, service in (merged.document.get("services") or {}).items():
        if isinstance(service, dict):
            yield name, service


def depends_on_rendered(merged: Merged) -> Iterator[Problem]:
    """depends_on names only services that are rendered (compose refuses the file)."""
    services = merged.document.get("services") or {}
    for name, service in _services(merged):
        for dep in names(service.get("depends_on")):
            if dep not in services:
                yield merged.problem(
                    ("services", name, "depends_on"),
                    f"depends on {dep!r}, which is not rendered (services: {', '.join(services)})",
                )


def networks_declared(merged: Merged) -> Iterator[Problem]:
    """A service joins only networks the document declares (compose refuses the file)."""
    networks = set(merged.document.get("networks") or {})
    for name, service in _services(merged):
        for net in names(service.get("networks")):
            if net not in networks:
                yield merged.problem(
                    ("services", name, "networks", net), f"network {net!r} is not declared under the top-level networks"
                )


def container_names(merged: Merged) -> Iterator[Problem]:
    """Container names are well formed and each belongs to one service (the engine refuses a second)."""
    owners: dict[str, str] = {}
    for name, service in _services(merged):
        container_name = service.get("container_name")
        if not isinstance(container_name, str):
            continue
        where = ("services", name, "container_name")
        if not CONTAINER_NAME.fullmatch(container_name):
            yield merged.problem(
                where, f"{container_name!r} is not a valid container name ([a-zA-Z0-9][a-zA-Z0-9_.-]+)"
            )
        if container_name in owners:
            yield merged.problem(
                where, f"{container_name!r} is also the container name of service {owners[container_name]!r}"
            )
        owners.setdefault(container_name, name)


def volume_targets_unique(merged: Merged) -> Iterator[Problem]:
    """Two volumes of a service never share a target: compose would silently keep only the last."""
    for name, service in _services(merged):
        targets: dict[str, int] = {}
        for index, _, _, target in mounts(service):
            if target is None:
                continue
            if target in targets:
                yield merged.problem(
                    ("services", name, "volumes", index),
                    f"target {target!r} is also mounted by "
                    f"volumes[{targets[target]}]; compose would silently keep only the last",
                )
            targets.setdefault(target, index)


def bind_sources_absolute(merged: Merged) -> Iterator[Problem]:
    """A bind source is absolute: a relative one resolves against wherever the file is written."""
    for name, service in _services(merged):
        for index, kind, source, _ in mounts(service):
            if kind == "bind" and isinstance(source, str) and not os.path.isabs(unescape(source)):
                yield merged.problem(
                    ("services", name, "volumes", index),
                    f"bind source {source!r} is relative; it "
                    "would resolve against wherever the compose file is written. Use an absolute path",
                )


def no_dependency_cycles(merged: Merged) -> Iterator[Problem]:
    """depends_on has no cycle (compose refuses the file). Every cycle is named, each from the
    service first in the document, at the depends_on that closes it."""
    services = merged.document.get("services") or {}
    order = {name: index for index, name in enumerate(services)}
    graph = {name: {d for d in names(s.get("depends_on")) if d in services} for name, s in _services(merged)}
    while True:
        try:
            graphlib.TopologicalSorter(graph).prepare()
            return
        except graphlib.CycleError as e:
            # graphlib lists each node before the one that depends on it; turn it round.
            cycle = list(reversed(e.args[1][:-1]))
            start = min(range(len(cycle)), key=lambda i: order[cycle[i]])
            cycle = cycle[start:] + cycle[:start]
            closing = cycle[-1]
            made_by = sorted({str(merged.source_of(("services", s, "depends_on"))) for s in cycle})
            yield Problem(
                f"dependency cycle {' -> '.join([*cycle, cycle[0]])}; depends_on comes from template(s) "
                f"{', '.join(made_by)}",
                path=json_path(("services", closing, "depends_on")),
            )
            graph[closing].discard(cycle[0])  # and look for the next one


# Go's time.ParseDuration, which compose reads durations with: "0", or numbers with units.
GO_DURATION = re.compile(r"[-+]?(?:0|(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:ns|us|µs|μs|ms|s|m|h))+)")
_DURATIONS = (
    ("healthcheck", "interval"),
    ("healthcheck", "timeout"),
    ("healthcheck", "start_period"),
    ("healthcheck", "start_interval"),
    ("stop_grace_period",),
    ("deploy", "restart_policy", "delay"),
    ("deploy", "restart_policy", "window"),
    ("deploy", "update_config", "delay"),
    ("deploy", "update_config", "monitor"),
    ("deploy", "rollback_config", "delay"),
    ("deploy", "rollback_config", "monitor"),
)
_UNSIGNED = (
    ("healthcheck", "retries"),
    ("deploy", "restart_policy", "max_attempts"),
    ("deploy", "update_config", "parallelism"),
    ("deploy", "rollback_config", "parallelism"),
)


def _at(service: dict[str, Any], keys: tuple[str, ...]) -> Any:
    value: Any = service
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def durations_and_unsigned(merged: Merged) -> Iterator[Problem]:
    """Durations are Go durations (30s, 1m30s) and counts are not negative: the schema says
    only "a string" and "a number", and compose refuses the file at load time."""
    for name, service in _services(merged):
        for keys in _DURATIONS:
            value = _at(service, keys)
            if isinstance(value, str) and not GO_DURATION.fullmatch(value):
                yield merged.problem(
                    ("services", name, *keys),
                    f"{value!r} is not a duration compose reads: give a "
                    "number and a unit (ns, us, ms, s, m, h), for example 30s or 1m30s",
                )
        for keys in _UNSIGNED:
            value = _at(service, keys)
            negative = isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0
            if negative or (isinstance(value, str) and not re.fullmatch(r"\+?[0-9]+", value)):
                yield merged.problem(
                    ("services", name, *keys), f"{value!r} is not a count compose reads: give 0 or more"
                )


# Every rule compose enforces at load time that the schema cannot say, in the order problems are listed.
RULES: tuple[Callable[[Merged], Iterator[Problem]], ...] = (
    depends_on_rendered,
    networks_declared,
    container_names,
    volume_targets_unique,
    bind_sources_absolute,
    durations_and_unsigned,
    no_dependency_cycles,
)


def plan_lints(context: dict[str, Any], source: str) -> list[Lint]:
    """Warnings about the plan itself: an egress upstream proxy that is not pipelock."""
    url = context["plan"]["egress"].get("pipelock_proxy_url")
    pipelock = context["container_names"].get("pipelock")
    if not url or "egress" not in context["services"] or pipelock is None:
        return []
    expected = resolve.pipelock_url(pipelock, context["settings"]["ports"]["pipelock"])
    try:  # a URL that urllib cannot take apart (a bad port, a broken [IPv6]) is not pipelock's
        parsed = urlsplit(url)
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        host = (parsed.hostname or "").lower()
    except ValueError:
        host, port = "", None
    if host == pipelock.lower() and port == context["settings"]["ports"]["pipelock"]:
        return []
    return [
        lint(
            "BG105",
            f"{shorten(url)} is not pipelock ({expected}): egress would send its "
            "traffic past the firewall that scans it for secrets; leave the key out to get pipelock",
            f"{source}::$.egress.pipelock_proxy_url",
        )
    ]


def lints(merged: Merged, check_host: bool = True) -> list[Lint]:
    """Warnings: real risks that do not make the document invalid (a missing bind source only
    when the host may be read)."""
    warnings: list[Lint] = []
    services: dict[str, Any] = merged.document.get("services") or {}
    pipelock = services.get("pipelock")
    if isinstance(pipelock, dict) and isinstance(pipelock.get("image"), str) and not DIGEST.search(pipelock["image"]):
        warnings.append(
            lint(
                "BG101",
                f"pipelock's image {pipelock['image']!r} is not pinned by digest; "
                "set settings.images.pipelock to name@sha256:<digest> so the firewall cannot change under the bottle",
                merged.where(("services", "pipelock", "image")),
            )
        )
    for name, service in services.items():
        if not isinstance(service, dict):
            continue
        for index, kind, source, _ in mounts(service):
            if check_host and kind == "bind" and isinstance(source, str) and not host.exists(unescape(source)):
                warnings.append(
                    lint(
                        "BG102",
                        f"bind source {source!r} does not exist now; unless it exists when the bottle starts, "
                        "Docker mounts an empty directory created in its place",
                        merged.where(("services", name, "volumes", index)),
                        f"bind source {source!r}",
                    )
                )
        if service.get("runtime") == "runsc" and not service.get("extra_hosts") and not service.get("dns"):
            dials = ", ".join(names(service.get("depends_on"))) or "its sidecars"
            warnings.append(
                lint(
                    "BG103",
                    f"{name} runs under gVisor (runsc) and finds {dials} "
                    "only by name; gVisor cannot use Docker's embedded DNS at 127.0.0.11, so give it extra_hosts or a dns setting "
                    "(for the agent, keys beyond its allow-list: relax `agent-keys` in the manifest, with the reason)",
                    merged.where(("services", name, "runtime")),
                )
            )
    return warnings
