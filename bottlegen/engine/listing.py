"""Every bottle on an engine, found by bottlegen's labels, not by state directories.

A bottle is a compose project whose networks bottlegen created (they carry
`org.bottlegen.created-by=bottlegen` and `org.bottlegen.project=<project>`); its services are
the project's containers (compose's labels), and its state directory is the folder of the
compose file those containers were started from. Two `docker ... ls` and two `inspect` calls
list an engine, however many bottles it runs.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from .api import CONFIG_FILES_LABEL, PROJECT_LABEL, SERVICE_LABEL, health_of, labelled
from .docker import Engine, inspected, listed
from .networks import LABEL_CREATED_BY, LABEL_PROJECT


@dataclass(frozen=True)
class Listed:
    """One bottle on the engine."""

    project: str
    running: int  # services whose container runs
    services: int  # services with a container, running or not
    health: str  # healthy, unhealthy, starting, or "" when no service has a healthcheck
    state_dir: str  # "" when no container says where its compose file is
    created: str  # when its first network was created (the engine's timestamp)
    networks: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "running": self.running,
            "services": self.services,
            "health": self.health or None,
            "state_dir": self.state_dir or None,
            "created": self.created,
            "networks": list(self.networks),
        }


def _inspect(engine: Engine, what: str, ids: list[str]) -> list[dict[str, Any]]:
    return inspected(engine, "network" if what == "network" else "container", ids)


def _ids(engine: Engine, argv: list[str], what: str) -> list[str]:
    return listed(engine, argv, what)


def _networks(engine: Engine) -> list[dict[str, Any]]:
    """The networks bottlegen created: Name, Created and Labels of each."""
    if engine.api is not None:
        found: list[dict[str, Any]] = engine.api.get("/networks", filters=labelled(f"{LABEL_CREATED_BY}=bottlegen"))
        return found
    label = f"label={LABEL_CREATED_BY}=bottlegen"
    return _inspect(
        engine, "network", _ids(engine, ["network", "ls", "-q", "--no-trunc", "--filter", label], "docker network ls")
    )


def _containers(engine: Engine) -> list[tuple[dict[str, str], str, str, str]]:
    """Every compose project's containers: (labels, name, state, health) of each."""
    if engine.api is not None:
        rows = engine.api.get("/containers/json", all="1", filters=labelled(PROJECT_LABEL))
        return [
            (
                row.get("Labels") or {},
                str((row.get("Names") or ["/?"])[0]),
                str(row.get("State", "")),
                health_of(str(row.get("Status", ""))),
            )
            for row in rows
        ]
    inspected_ = _inspect(
        engine,
        "container",
        _ids(engine, ["ps", "-aq", "--no-trunc", "--filter", f"label={PROJECT_LABEL}"], "docker ps"),
    )
    return [
        (
            (c.get("Config") or {}).get("Labels") or {},
            str(c.get("Name", "?")),
            str((c.get("State") or {}).get("Status", "")),
            str(((c.get("State") or {}).get("Health") or {}).get("Status", "")),
        )
        for c in inspected_
    ]


def bottles(engine: Engine) -> list[Listed]:
    """Every bottle on the engine, sorted by project."""
    by_project: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for network in _networks(engine):
        project = (network.get("Labels") or {}).get(LABEL_PROJECT)
        if project:
            by_project[project].append(network)
    if not by_project:
        return []
    services: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for labels, name, state, health in _containers(engine):
        project = labels.get(PROJECT_LABEL)
        if project in by_project:
            services[project][labels.get(SERVICE_LABEL, name)] = {
                "state": state,
                "health": health,
                "config": labels.get(CONFIG_FILES_LABEL, ""),
            }
    listed = []
    for project, nets in sorted(by_project.items()):
        found = services.get(project, {})
        healths = {s["health"] for s in found.values() if s["health"]}
        health = next((h for h in ("unhealthy", "starting", "healthy") if h in healths), "")
        configs = sorted({s["config"].split(",")[0] for s in found.values() if s["config"]})
        listed.append(
            Listed(
                project,
                sum(1 for s in found.values() if s["state"] == "running"),
                len(found),
                health,
                os.path.dirname(configs[0]) if configs else "",
                min(str(n.get("Created", "")) for n in nets),
                tuple(sorted(str(n.get("Name", "")) for n in nets)),
            )
        )
    return listed
