"""A bottle's networks on the engine. They are external to compose: `up` creates the missing
ones (the internal-role one with --internal, so it has no route out) with labels saying
bottlegen made them for this project, and `down` removes only networks with those labels.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from ..errors import ComposeError
from .docker import Engine, run
from .state import Bottle

LABEL_CREATED_BY = "org.bottlegen.created-by"  # value: bottlegen
LABEL_PROJECT = "org.bottlegen.project"  # value: the compose project


def labels(engine: Engine, name: str) -> dict[str, str] | None:
    """The labels of the network called name, or None when there is none."""
    proc = run([engine.docker, "network", "inspect", "--format", "{{json .Labels}}", name])
    if proc.returncode != 0:
        return None
    found: dict[str, str] = json.loads(proc.stdout.strip() or "null") or {}
    return found


def create_networks(engine: Engine, bottle: Bottle) -> list[str]:
    """Create the bottle's missing networks; return the names this call created."""
    created: list[str] = []
    for name in bottle.networks.values():
        if labels(engine, name) is not None:
            continue
        argv = [
            engine.docker,
            "network",
            "create",
            "--label",
            f"{LABEL_CREATED_BY}=bottlegen",
            "--label",
            f"{LABEL_PROJECT}={bottle.project}",
        ]
        if name in bottle.internal:  # by the network's role, never by its key
            argv.append("--internal")
        proc = run([*argv, name])
        if proc.returncode != 0:
            remove_networks(engine, bottle, only=created)
            raise ComposeError.from_process(f"docker network create {name}", proc)
        created.append(name)
    return created


def remove_networks(engine: Engine, bottle: Bottle, only: Sequence[str] | None = None) -> tuple[list[str], list[str]]:
    """Remove the bottle's networks that bottlegen created for this project; never another.

    Returns (problems: what could not be removed, notes: what was left alone, and why).
    """
    problems, notes = [], []
    for name in bottle.networks.values() if only is None else only:
        found = labels(engine, name)
        if found is None:
            continue
        if found.get(LABEL_PROJECT) != bottle.project or found.get(LABEL_CREATED_BY) != "bottlegen":
            notes.append(f"leaving network {name}: bottlegen did not create it for {bottle.project}")
            continue
        proc = run([engine.docker, "network", "rm", name])
        if proc.returncode != 0:
            problems.append(f"docker network rm {name}: {proc.stderr.strip()}")
    return problems, notes
