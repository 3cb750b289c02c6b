"""Stage 6: check the merged document before anything is written.

1. The official compose-spec schema (vendored in schema/compose-spec/, draft 7).
2. What the schema cannot say but Docker Compose rejects at load time, or silently gets
   wrong: depends_on naming a service that is not rendered, a service on an undeclared
   network, duplicate or malformed container names, dependency cycles, two volumes with
   one target in a service (compose keeps the last), relative bind sources.
3. Lints, which warn (and fail with --strict): pipelock's image not pinned by digest, a
   bind source that does not exist now, runsc with sidecars found only by name.

Every message names the document path and the template that produced it.
"""

from __future__ import annotations

import os
import re
from typing import Any

from . import resources
from .errors import DocumentError
from .merge import Merged
from .paths import json_path
from .schemas import describe, violations

CONTAINER_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def check_schema(merged: Merged) -> None:
    errors = violations(resources.COMPOSE_SCHEMA, merged.document)
    if errors:
        raise DocumentError(
            "the rendered document is not a valid compose file; fix the template named:",
            [f"{merged.where(tuple(e.absolute_path))}: {describe(e)}" for e in errors],
        )


def names(block: Any) -> list[str]:
    """Keys of a compose list-or-mapping block (depends_on, networks)."""
    if isinstance(block, dict):
        return list(block)
    if isinstance(block, list):
        return [item for item in block if isinstance(item, str)]
    return []


def unescape(value: str) -> str:
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


def check_rules(merged: Merged) -> None:
    doc = merged.document
    services: dict[str, Any] = doc.get("services") or {}
    networks = set(doc.get("networks") or {})
    problems: list[str] = []
    owners: dict[str, str] = {}
    for name, service in services.items():
        if not isinstance(service, dict):
            continue
        base = ("services", name)
        for dep in names(service.get("depends_on")):
            if dep not in services:
                problems.append(
                    f"{merged.where((*base, 'depends_on'))}: depends on {dep!r}, which is not rendered (services: {', '.join(services)})"
                )
        for net in names(service.get("networks")):
            if net not in networks:
                problems.append(
                    f"{merged.where((*base, 'networks', net))}: network {net!r} is not declared under the top-level networks"
                )
        container_name = service.get("container_name")
        if isinstance(container_name, str):
            if not CONTAINER_NAME.fullmatch(container_name):
                problems.append(
                    f"{merged.where((*base, 'container_name'))}: {container_name!r} is not a valid container name ([a-zA-Z0-9][a-zA-Z0-9_.-]+)"
                )
            if container_name in owners:
                problems.append(
                    f"{merged.where((*base, 'container_name'))}: {container_name!r} is also the container name of service {owners[container_name]!r}"
                )
            owners.setdefault(container_name, name)
        targets: dict[str, int] = {}
        for index, kind, source, target in mounts(service):
            where = merged.where((*base, "volumes", index))
            if target is not None:
                if target in targets:
                    problems.append(
                        f"{where}: target {target!r} is also mounted by volumes[{targets[target]}]; compose would silently keep only the last"
                    )
                targets.setdefault(target, index)
            if kind == "bind" and isinstance(source, str) and not os.path.isabs(unescape(source)):
                problems.append(
                    f"{where}: bind source {source!r} is relative; it would resolve against wherever the compose file is written. Use an absolute path"
                )
    problems += _cycles(merged, services)
    if problems:
        raise DocumentError(
            "the rendered document breaks rules Docker Compose enforces; fix the template named:", problems
        )


def _cycles(merged: Merged, services: dict[str, Any]) -> list[str]:
    graph = {
        name: [d for d in names(s.get("depends_on")) if d in services]
        for name, s in services.items()
        if isinstance(s, dict)
    }
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    found: list[str] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for dep in graph.get(node, []):
            if state.get(dep) == 1:
                cycle = [*trail[trail.index(dep) :], dep] if dep in trail else [node, dep]
                made_by = sorted({str(merged.source_of(("services", s, "depends_on"))) for s in cycle})
                found.append(
                    f"{json_path(('services', node, 'depends_on'))}: dependency cycle {' -> '.join(cycle)}; "
                    f"depends_on comes from template(s) {', '.join(made_by)}"
                )
            elif dep not in state:
                visit(dep, [*trail, dep])
        state[node] = 2

    for name in graph:
        if name not in state:
            visit(name, [name])
    return found


def lint(merged: Merged) -> list[str]:
    """Warnings: real risks that do not make the document invalid."""
    warnings: list[str] = []
    services: dict[str, Any] = merged.document.get("services") or {}
    pipelock = services.get("pipelock")
    if isinstance(pipelock, dict) and isinstance(pipelock.get("image"), str) and not DIGEST.search(pipelock["image"]):
        warnings.append(
            f"{merged.where(('services', 'pipelock', 'image'))}: pipelock's image {pipelock['image']!r} is not pinned by digest; "
            "set settings.images.pipelock to name@sha256:<digest> so the firewall cannot change under the bottle"
        )
    for name, service in services.items():
        if not isinstance(service, dict):
            continue
        for index, kind, source, _ in mounts(service):
            if kind == "bind" and isinstance(source, str) and not os.path.exists(unescape(source)):
                warnings.append(
                    f"{merged.where(('services', name, 'volumes', index))}: bind source {source!r} does not exist now; "
                    "unless it exists when the bottle starts, Docker mounts an empty directory created in its place"
                )
        if service.get("runtime") == "runsc" and not service.get("extra_hosts") and not service.get("dns"):
            dials = ", ".join(names(service.get("depends_on"))) or "its sidecars"
            warnings.append(
                f"{merged.where(('services', name, 'runtime'))}: {name} runs under gVisor (runsc) and finds {dials} only by name; "
                "gVisor cannot use Docker's embedded DNS at 127.0.0.11, so give it extra_hosts or a dns setting"
            )
    return warnings
