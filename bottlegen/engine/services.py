"""A running bottle's services, as the everyday commands see them: `ps`, `logs` and `exec`.

They only look (or run a command inside): no preflight, no lock, nothing created or removed,
so they load nothing of `up` and `down` (lifecycle.py) and ask only what they need: `ps` asks
the engine's API on a local socket, `logs` and `exec` run compose's own plugin binary.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..errors import ComposeError, UserError
from . import api
from .docker import FOLLOW, Engine, failure, long, run, stream
from .state import Bottle, read_promises

MASK_MIN = 4  # shorter values are not masked: they would blot out ordinary text


@dataclass(frozen=True)
class Service:
    """One row of `ps`: a service of the bottle, its state and its container's name."""

    service: str
    state: str
    name: str
    health: str = ""  # "healthy", "unhealthy", "starting", or "" without a healthcheck
    exit_code: int = 0


@dataclass(frozen=True)
class LogOptions:
    """Which logs: of these services (all when empty), followed or not, the last N lines, since T."""

    services: Sequence[str] = ()
    follow: bool = False
    tail: str | None = None
    since: str | None = None

    def flags(self) -> list[str]:
        return [
            *(["-f"] if self.follow else []),
            *(["--tail", self.tail] if self.tail else []),
            *(["--since", self.since] if self.since else []),
            *self.services,
        ]


def logs(engine: Engine, bottle: Bottle, options: LogOptions = LogOptions()) -> None:
    """The bottle's merged logs to our stdout as they come, with the value of every variable
    the bottle takes from our environment masked, as the log `down` saves is. A signal ends
    compose with us."""
    argv = engine.compose_argv(
        bottle.project, bottle.compose_file, "logs", "--no-color", "--timestamps", *options.flags()
    )
    environment = dict(os.environ)
    code = stream(
        argv,
        lambda line: mask(line, bottle.variables, environment),
        FOLLOW if options.follow else long(),
        env=engine.env,
    )
    if code != 0:
        engine.server_version  # noqa: B018 (an EngineError when the daemon does not answer)
        raise ComposeError(f"docker compose logs for {bottle.project} failed (exit {code})", code, argv)


def logs_text(engine: Engine, bottle: Bottle, options: LogOptions = LogOptions()) -> str:
    """The bottle's merged logs as text, masked as `logs` prints them (never followed)."""
    argv = engine.compose_argv(
        bottle.project, bottle.compose_file, "logs", "--no-color", "--timestamps", *options.flags()
    )
    proc = run(argv, timeout=long(), env=engine.env)
    if proc.returncode != 0:
        raise ComposeError.from_process(f"docker compose logs for {bottle.project}", proc)
    return mask(proc.stdout, bottle.variables, os.environ)


@dataclass(frozen=True)
class ExecOptions:
    """What `exec` passes on: variables, the working folder, the user, and whether to give
    the command a TTY (when our standard input is one)."""

    env: tuple[str, ...] = ()
    workdir: str | None = None
    user: str | None = None
    tty: bool = False

    def flags(self) -> list[str]:
        """As `docker compose exec` takes them."""
        return [
            *([] if self.tty else ["-T"]),
            *(w for e in self.env for w in ("--env", e)),
            *(["--workdir", self.workdir] if self.workdir else []),
            *(["--user", self.user] if self.user else []),
        ]

    def docker_flags(self) -> list[str]:
        """As `docker exec` takes them: stdin open, as compose's exec keeps it."""
        return [
            "-i",
            *(["-t"] if self.tty else []),
            *(w for e in self.env for w in ("-e", e)),
            *(["-w", self.workdir] if self.workdir else []),
            *(["-u", self.user] if self.user else []),
        ]


def agent_of(bottle: Bottle) -> str:
    """The bottle's agent service, as `up` recorded it (bottle.json), else the one named agent."""
    try:
        return read_promises(bottle.compose_file.parent).agent
    except UserError:
        return "agent"


def exec_in(engine: Engine, bottle: Bottle, service: str, command: Sequence[str], options: ExecOptions) -> int:
    """Run a command in a service of the bottle, our standard streams its own; its exit status.
    On a local engine, `docker exec` in the service's running container (found by compose's
    labels in one API request): what compose's exec does, without compose's start."""
    argv = None
    if engine.api is not None:
        labels = (f"{api.PROJECT_LABEL}={bottle.project}", f"{api.SERVICE_LABEL}={service}", api.NOT_ONEOFF)
        rows = engine.api.get("/containers/json", filters=api.labelled(*labels))
        if len(rows) == 1:  # else compose says what is wrong (not running, or more than one)
            container = str((rows[0].get("Names") or ["/"])[0]).lstrip("/")
            argv = [engine.docker, "exec", *options.docker_flags(), container, *command]
    if argv is None:
        argv = engine.compose_argv(bottle.project, bottle.compose_file, "exec", *options.flags(), service, *command)
    code = run(argv, output="inherit", timeout=FOLLOW, env=engine.env).returncode
    if code != 0:  # the command's own status, unless the daemon is what failed
        engine.server_version  # noqa: B018 (an EngineError when the daemon does not answer)
    return code


def ps(engine: Engine, bottle: Bottle) -> list[Service]:
    """The bottle's services, sorted by name, with their state: asked of the engine's API on
    a local socket (one request), else of `compose ps`."""
    if engine.api is not None:
        rows = engine.api.get(
            "/containers/json", all="1", filters=api.labelled(f"{api.PROJECT_LABEL}={bottle.project}", api.NOT_ONEOFF)
        )
        services = [
            Service(
                str((row.get("Labels") or {}).get(api.SERVICE_LABEL, "?")),
                str(row.get("State", "?")),
                str((row.get("Names") or ["/?"])[0]).lstrip("/"),
                api.health_of(str(row.get("Status", ""))),
                api.exit_code_of(str(row.get("Status", ""))),
            )
            for row in rows
        ]
        return sorted(services, key=lambda s: s.service)
    proc = run(
        engine.compose_argv(bottle.project, bottle.compose_file, "ps", "--all", "--format", "json"), env=engine.env
    )
    if proc.returncode != 0:
        raise failure(engine, f"docker compose ps for {bottle.project}", proc)
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.strip().startswith("{")]
    services = [
        Service(
            row.get("Service", "?"),
            row.get("State", "?"),
            row.get("Name", "?"),
            row.get("Health", "") or "",
            int(row.get("ExitCode", 0) or 0),
        )
        for row in rows
    ]
    return sorted(services, key=lambda s: s.service)


def mask(text: str, names: Sequence[str], environment: Mapping[str, str]) -> str:
    """text with each named variable's value (from environment) replaced by `[NAME masked]`."""
    values = sorted(
        ((environment[n], n) for n in names if len(environment.get(n, "")) >= MASK_MIN),
        key=lambda pair: -len(pair[0]),  # the longest first: a value may contain another
    )
    for value, name in values:
        text = text.replace(value, f"[{name} masked]")
    return text
