"""The engine side of the library: start a bottle, find one, list them, and each bottle's
commands, returning data and raising bottlegen's errors; nothing here prints.

    import bottlegen
    b = bottlegen.up("plan.yml", state_dir="state")       # a Bottle, once it runs
    [s.state for s in b.ps()]
    report = b.verify()                                    # verify's probes, as data
    b.down()

An engine is given by docker context name (`engine="ctx"`); by default it is the one the
bottle was started on (recorded in its state directory), else the one docker itself would
use (DOCKER_HOST, DOCKER_CONTEXT, the current context).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import OutputError
from . import docker, lifecycle, listing, state
from . import services as running
from .networks import AddressPool

if TYPE_CHECKING:  # imported when used: `ps` and `ls` load neither the render nor verify
    from ..pipeline import Rendered
    from . import verify as verifying


def connect(engine: str | None = None, state_dir: Path | None = None, check: bool = True) -> docker.Engine:
    """The engine: the context named, else the one the bottle in state_dir was started on,
    else docker's own choice. check: its preflight now (the daemon answers, a compose is
    there), as a command that changes anything does first; without, what is needed is asked
    when needed, and a command that fails asks whether the daemon answers."""
    where = None
    if engine:
        where = docker.EngineAddress(context=engine)
    elif state_dir is not None:
        where = state.read_engine(state_dir)
    return docker.preflight(where) if check else docker.engine_at(where)


class Bottle:
    """A bottle on an engine, by its state directory."""

    def __init__(self, state_dir: Path, engine: docker.Engine, record: state.Bottle):
        self.state_dir = state_dir
        self.engine = engine
        self.record = record

    @property
    def name(self) -> str:
        """The compose project name."""
        return self.record.project

    def __repr__(self) -> str:
        return f"Bottle({self.name!r}, state_dir={str(self.state_dir)!r})"

    def ps(self) -> list[running.Service]:
        """Each service, sorted by name, with its state, health and container."""
        return running.ps(self.engine, self.record)

    def logs(self, services: Sequence[str] = (), tail: int | None = None, since: str | None = None) -> str:
        """The merged logs, with the value of every variable the bottle takes from the
        environment masked."""
        options = running.LogOptions(tuple(services), False, None if tail is None else str(tail), since)
        return running.logs_text(self.engine, self.record, options)

    def verify(self, options: verifying.VerifyOptions | None = None) -> list[verifying.Probe]:
        """verify's report: each probe, pass, FAIL or warn (verify.failed(report) says)."""
        from . import verify as verifying

        return verifying.verify(self.engine, self.record, options or verifying.VerifyOptions())

    def down(self, timeout: int | None = None) -> lifecycle.Outcome:
        """Save the merged log, stop the bottle, remove its networks (an error if anything is left)."""
        return lifecycle.down(self.engine, self.record, timeout)


def up(
    plan: Rendered | Mapping[str, Any] | str | os.PathLike[str],
    *,
    state_dir: str | os.PathLike[str] | None = None,
    engine: str | None = None,
    templates: Sequence[str | os.PathLike[str]] | None = None,
    wait: int = lifecycle.WAIT_SECONDS,
    build: bool = False,
    pull: str | None = None,
    pool: AddressPool | None = None,
) -> Bottle:
    """Render the plan (or take a render), create the bottle's networks, start it and wait
    until it runs; its Bottle. A plan is rendered reading the host, as `bottlegen up` does.
    compose's progress is not printed: on a failure, what it said is in the ComposeError."""
    from ..pipeline import Rendered, render

    rendered = plan if isinstance(plan, Rendered) else render(plan, templates=templates, check_host=True)
    folder = Path(state_dir) if state_dir is not None else state.default_state_dir(rendered.document["name"])
    reached = connect(engine, folder)
    options = lifecycle.UpOptions(wait=wait, build=build, pull=pull, pool=pool, progress=False)
    outcome = lifecycle.up(reached, rendered, folder, options)
    return Bottle(folder, reached, outcome.bottle)


PROJECT_ENV = "BOTTLEGEN_PROJECT"  # a bottle's name when a command is given none, as COMPOSE_PROJECT_NAME


def state_dir_of_project(name: str, engine: str | None = None) -> Path:
    """Where the bottle of a project name keeps its state: the default state directory when
    it holds that bottle, else the folder of the compose file the engine's containers were
    started from (compose labels each with it). An OutputError (exit 7) naming the bottles
    the engine has when none is this one."""
    default = state.default_state_dir(name)
    there = state.read_bottle(default)
    if there is not None and there.project == name:
        return default
    reached = connect(engine, check=False)
    files = lifecycle.project_containers(reached, name).values()
    folders = sorted({str(Path(f[0]).parent) for f in files if f})
    if len(folders) == 1:
        return Path(folders[0])  # which may be gone: `down` then goes by labels (down_by_labels)
    if len(folders) > 1:
        raise OutputError(
            f"bottle {name} runs from {len(folders)} state directories ({', '.join(folders)}): give --state-dir"
        )
    known = sorted(b.project for b in listing.bottles(reached))
    raise OutputError(
        f"no bottle named {name} on the engine ({reached.where.describe()}) nor in {default}; "
        + (f"its bottles: {', '.join(known)}" if known else "it runs no bottle")
    )


def bottle(name_or_state_dir: str | os.PathLike[str], engine: str | None = None) -> Bottle:
    """The bottle in a state directory, or of a project name (wherever its state directory
    is: state_dir_of_project); an OutputError (exit 7) when there is none."""
    given = Path(name_or_state_dir)
    is_folder = given.is_dir() or os.sep in str(name_or_state_dir)
    folder = given if is_folder else state_dir_of_project(str(given), engine)
    record = state.read_bottle(folder)
    if record is None:
        raise OutputError(f"no bottle in {folder} (run `bottlegen up PLAN --state-dir {folder}` first)")
    return Bottle(folder, connect(engine, folder, check=False), record)


def bottles(engine: str | None = None) -> list[listing.Listed]:
    """Every bottle on the engine, found by bottlegen's network labels."""
    return listing.bottles(connect(engine, check=False))
