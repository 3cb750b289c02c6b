"""A bottle's state directory: its compose file (`docker-compose.yml`, mode 0644), what
`verify` checks beyond it (`bottle.json`: which service is the agent, the ports it dials
its sidecars on, the names of the variables it must and must not hold; never a value) and,
after `down`, the merged log (`compose.log`). What the engine side needs to know of a
bottle is read back from those files, by the networks' roles, never by their keys.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConflictError, OutputError
from ..project import STATE_ROOT_ENV
from ..roles import INTERNAL, ROLE_KEY
from ..yamlsubset import load_data as load_yaml  # the fast reader, the full one where it declines
from .docker import EngineAddress

COMPOSE_FILE = "docker-compose.yml"
ENGINE_FILE = "engine.json"  # which engine the bottle runs on: {"context": NAME} or {"host": DOCKER_HOST}
COMPOSE_LOG = "compose.log"
PROMISES_FILE = "bottle.json"
LOCK_FILE = ".bottlegen.lock"


@dataclass(frozen=True)
class Bottle:
    project: str
    compose_file: Path
    networks: dict[str, str]  # compose key -> engine name
    internal: frozenset[str] = frozenset()  # engine names of the internal-role networks
    # The variables compose takes from our environment (bare names in `environment`): the
    # forwarded ones and the tokens. Their values are secrets: never in a file we write.
    variables: tuple[str, ...] = ()
    sealed: bool = False  # the plan's seal_host: drop what the internal network sends to the host


def bottle_of(document: dict[str, Any], compose_file: Path) -> Bottle:
    """The bottle a compose document describes, its compose file at compose_file."""
    declared = {key: net if isinstance(net, dict) else {} for key, net in (document.get("networks") or {}).items()}
    networks = {key: net.get("name", key) for key, net in declared.items()}
    internal = frozenset(
        networks[key] for key, net in declared.items() if (net.get(ROLE_KEY) or {}).get("role") == INTERNAL
    )
    return Bottle(
        project=document["name"],
        compose_file=compose_file,
        networks=networks,
        internal=internal,
        variables=bare_variables(document),
        sealed=isinstance(document.get(ROLE_KEY), dict) and document[ROLE_KEY].get("seal_host") is True,
    )


@dataclass(frozen=True)
class Promises:
    """What `verify` proves beyond the compose file, from the plan it was rendered from."""

    agent: str  # the agent's service key (the manifest's `role: agent`)
    ports: dict[str, int]  # service -> the port the agent dials it on (settings.ports)
    tokens: tuple[str, ...] = ()  # egress's token variables: never in the agent's environment
    forwarded: tuple[str, ...] = ()  # the plan's forwarded_env: in the agent's environment
    subnets: dict[str, list[str]] = field(default_factory=dict)  # network name -> its subnets, as up found them

    def to_json(self) -> str:
        fields = {"agent": self.agent, "ports": self.ports, "tokens": self.tokens, "forwarded": self.forwarded}
        return json.dumps({**fields, "subnets": self.subnets}, indent=2, sort_keys=True)


def promises_of(context: dict[str, Any], agent: str, subnets: dict[str, list[str]] | None = None) -> Promises:
    """The promises of a rendered plan, from its template context (and its networks' subnets)."""
    plan, settings = context["plan"], context["settings"]
    enabled = set(context["services"])
    return Promises(
        agent=agent,
        ports={name: int(port) for name, port in sorted(settings["ports"].items()) if name in enabled},
        tokens=tuple(sorted(plan["egress"]["token_env_names"])),
        forwarded=tuple(sorted(plan.get("forwarded_env") or ())),
        subnets=dict(sorted((subnets or {}).items())),
    )


def read_promises(state_dir: Path) -> Promises:
    """The promises `up` wrote into state_dir (OutputError, exit 7, when there are none)."""
    path = state_dir / PROMISES_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Promises(
            agent=str(data["agent"]),
            ports={str(k): int(v) for k, v in data["ports"].items()},
            tokens=tuple(str(t) for t in data["tokens"]),
            forwarded=tuple(str(f) for f in data["forwarded"]),
            subnets={str(k): [str(s) for s in v] for k, v in (data.get("subnets") or {}).items()},
        )
    except FileNotFoundError:
        raise OutputError(
            f"{path}: missing; it is written by `bottlegen up` (an older one did not): run up again"
        ) from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise OutputError(f"{path}: cannot read what the bottle promises: {e}; run `bottlegen up` again") from None


def chosen_subnets(state_dir: Path | None, project: str) -> dict[str, list[str]]:
    """The subnets `up` recorded for the bottle (in state_dir, else the project's default
    state directory), or none yet."""
    folder = state_dir or default_state_dir(project)
    if not (folder / PROMISES_FILE).is_file():
        return {}
    return read_promises(folder).subnets


def bare_variables(document: dict[str, Any]) -> tuple[str, ...]:
    """The names in services' `environment` that have no value in the file."""
    names: set[str] = set()
    for service in (document.get("services") or {}).values():
        environment = service.get("environment") if isinstance(service, dict) else None
        if isinstance(environment, list):
            names.update(e for e in environment if isinstance(e, str) and "=" not in e)
        elif isinstance(environment, dict):
            names.update(k for k, v in environment.items() if v is None)
    return tuple(sorted(names))


def service_names(bottle: Bottle) -> list[str]:
    """The services of the bottle's compose file, in its order."""
    try:
        document = load_yaml(bottle.compose_file.read_text(encoding="utf-8"))
    except Exception as e:
        raise OutputError(f"{bottle.compose_file}: cannot read the bottle's compose file: {e}") from None
    return list((document.get("services") or {}) if isinstance(document, dict) else {})


def read_bottle(state_dir: Path) -> Bottle | None:
    """The bottle whose compose file is in state_dir, or None when there is none."""
    compose_file = state_dir / COMPOSE_FILE
    try:
        return bottle_of(load_yaml(compose_file.read_text(encoding="utf-8")), compose_file)
    except FileNotFoundError:
        return None
    except Exception as e:
        raise OutputError(f"{compose_file}: cannot read the bottle's compose file: {e}") from None


def state_root() -> Path:
    """Where bottles keep their state when no --state-dir is given: $BOTTLEGEN_STATE_ROOT, else
    $XDG_STATE_HOME/bottlegen, else ~/.local/state/bottlegen."""
    if os.environ.get(STATE_ROOT_ENV):
        return Path(os.environ[STATE_ROOT_ENV])
    try:
        base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    except RuntimeError:  # no home directory
        raise OutputError("no home directory for the default state directory; give --state-dir") from None
    return Path(base) / "bottlegen"


def default_state_dir(project: str) -> Path:
    """Where a bottle's state lives when no --state-dir is given: <state_root()>/<project>."""
    if not project or "/" in project or project in (".", ".."):
        raise OutputError(f"{project!r} is not a compose project name; give --state-dir instead")
    return state_root() / project


def require_bottle(state_dir: Path) -> Bottle:
    """The bottle in state_dir; an OutputError (exit 7) that says how to make one if none."""
    bottle = read_bottle(state_dir)
    if bottle is None:
        raise OutputError(
            f"{state_dir / COMPOSE_FILE}: no bottle here (run `bottlegen up PLAN --state-dir {state_dir}` first)"
        )
    return bottle


@contextlib.contextmanager
def locked(state_dir: Path) -> Iterator[None]:
    """Hold the state directory's lock while the bottle's state changes (up, down): a second
    command on the same bottle is refused (ConflictError) instead of racing the first.

    The lock is flock(2) on a file in the folder, so it ends with the process that holds it,
    however that ends. A folder made here for a command that then fails is removed again.
    """
    made = not state_dir.exists()
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(state_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as e:
        raise OutputError(f"{state_dir}: cannot use the state directory: {e.strerror or e}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            made = False  # the other command's folder
            raise ConflictError(
                f"{state_dir}: another bottlegen command is changing this bottle now; wait for it to finish"
            ) from None
        yield
        made = False
    finally:
        os.close(fd)
        if made:
            with contextlib.suppress(OSError):
                (state_dir / LOCK_FILE).unlink()
                state_dir.rmdir()


def write_engine(state_dir: Path, where: EngineAddress) -> None:
    """Record which engine the bottle in state_dir runs on, so that ps, logs, verify and down
    reach it later without --context. The address only: never a credential."""
    from ..write import write_atomic

    write_atomic(state_dir / ENGINE_FILE, json.dumps(where.as_json(), sort_keys=True) + "\n")


def read_engine(state_dir: Path) -> EngineAddress | None:
    """The engine `up` recorded in state_dir, or None when there is no record."""
    path = state_dir / ENGINE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return EngineAddress(context=data.get("context") or None, host=data.get("host") or None)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, AttributeError) as e:
        raise OutputError(f"{path}: cannot read which engine the bottle runs on: {e}; give --context") from None
