"""A fleet rendered into a folder: each plan into DIR/<slug>.yml, in plan order, on every core.

From PARALLEL_FROM plans on (or when asked), worker processes forked from this one (so they
start with the templates loaded) render the plans and hand each outcome back through a pipe;
this process alone says and writes everything, in plan order, so the output is the same
whatever the number of workers. A worker that dies costs its plans an internal error each,
never a hang. Files are made durable once per BATCH_FLUSH, and a file is said to be written
only once it is.

Nothing here prints: what a batch has to say goes to the Reporter the caller gives (the
command prints it; a library caller may collect it).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn, Protocol

from .errors import ExitCode, OutputError, PlanError, Problem, UsageError, UserError
from .lints import Lint
from .write import Batch, write_if_changed

if TYPE_CHECKING:
    from .pipeline import Rendered

PARALLEL_FROM = 64  # plans in a batch from which the jobs (unless given) are one per core
BATCH_FLUSH = 64  # files a batch writes between flushes of their folder


class Failure(NamedTuple):
    """An error as it crosses from a worker: what reporting it needs, picklable."""

    exit_code: ExitCode
    kind: str  # the error's class name
    message: str
    problems: tuple[Problem, ...] = ()
    headline: Problem | None = None

    @property
    def records(self) -> list[Problem]:
        return list(self.problems) or [self.headline or Problem(self.message)]

    @classmethod
    def of(cls, error: BaseException) -> Failure:
        if isinstance(error, UserError):
            return cls(error.exit_code, type(error).__name__, error.message, tuple(error.problems), error.headline)
        return cls(ExitCode.INTERNAL, type(error).__name__, str(error))


class Outcome(NamedTuple):
    """What rendering one plan gave: its warnings, then its file (slug, project, text), or the failure."""

    plan: Path
    warnings: tuple[Lint, ...] = ()
    slug: str = ""
    project: str = ""
    text: str = ""
    failure: Failure | None = None


class Reporter(Protocol):
    """What a batch says, plan by plan, in plan order."""

    def warnings(self, plan: Path, found: Sequence[Lint]) -> None:
        """A plan's warnings; may raise a UserError (--strict) so that the plan is not written."""

    def failure(self, plan: Path, failure: Failure) -> None: ...

    def written(self, lines: Sequence[str]) -> None:
        """`plan -> file` lines, once their files are durable."""


def jobs_for(requested: int | None, plans: int) -> int:
    """How many processes render a batch of this many plans: the number asked for, else one
    per core this process may run on, for a batch large enough to repay the forks (Linux)."""
    if plans < 2 or sys.platform != "linux":
        return 1
    if requested is not None:
        return max(1, min(requested, plans))
    if plans < PARALLEL_FROM:
        return 1
    return max(1, min(len(os.sched_getaffinity(0)), plans))


# What each plan of the batch running in this process is rendered with (set before workers
# are forked, so that they inherit it with the templates loaded).
_render_one: Callable[[Path], Rendered] | None = None


def outcome_of(plan: Path) -> Outcome:
    """Render one plan of the batch (here or in a worker), its error captured."""
    assert _render_one is not None
    found: tuple[Lint, ...] = ()
    try:
        rendered = _render_one(plan)
        found = tuple(rendered.warnings)
        return Outcome(plan, found, rendered.context["plan"]["slug"], str(rendered.context["project"]), rendered.text)
    except UserError as e:
        return Outcome(plan, tuple(getattr(e, "warnings", ())) or found, failure=Failure.of(e))
    except (OSError, RecursionError, MemoryError, ValueError, TypeError) as e:  # a bug: report it, render the rest
        return Outcome(plan, found, failure=Failure.of(e))


@contextlib.contextmanager
def outcomes(plans: list[Path], jobs: int) -> Iterator[Iterator[Outcome]]:
    """Each plan's outcome, in plan order. With jobs > 1 the first plan renders here (it
    loads the templates), the rest in worker processes forked from this one (plan i in
    worker i mod jobs); leaving, the workers are ended."""
    if jobs <= 1 or len(plans) < 2:
        yield map(outcome_of, plans)
        return
    import pickle
    import struct

    first = outcome_of(plans[0])
    rest = plans[1:]
    jobs = min(jobs, len(rest))
    for stream in (sys.stdout, sys.stderr):
        stream.flush()  # a worker must not write out what this process has buffered
    workers: list[tuple[int, Any]] = []
    try:
        for k in range(jobs):
            read_end, write_end = os.pipe()
            pid = os.fork()
            if pid == 0:  # the worker: render its share, hand each outcome back, leave
                os.close(read_end)
                _work(rest[k::jobs], write_end)
            os.close(write_end)
            workers.append((pid, os.fdopen(read_end, "rb")))

        def results() -> Iterator[Outcome]:
            yield first
            for i, plan in enumerate(rest):
                pipe = workers[i % jobs][1]
                head = pipe.read(4)
                body = pipe.read(struct.unpack(">I", head)[0]) if len(head) == 4 else b""
                try:
                    yield pickle.loads(body)
                except Exception:  # the worker died (killed, out of memory) before this plan
                    died = RuntimeError("the worker process rendering it ended early")
                    yield Outcome(plan, failure=Failure.of(died))

        yield results()
    finally:
        for pid, pipe in workers:
            pipe.close()
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(pid, 0)


def _work(plans: list[Path], out: int) -> NoReturn:
    """A batch worker (a forked child): it renders its plans, hands each outcome back, and
    leaves by os._exit, so that nothing of the parent's stack (its writes, its cleanups) runs
    here. Ctrl-C is left to the parent, which ends the workers."""
    code = 1
    try:
        import pickle
        import struct

        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for signum in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)
        with os.fdopen(out, "wb") as pipe:
            for plan in plans:
                try:
                    outcome = outcome_of(plan)
                except BaseException as e:  # a bug: the parent reports it for this plan
                    outcome = Outcome(plan, failure=Failure.of(e))
                body = pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL)
                pipe.write(struct.pack(">I", len(body)) + body)
                pipe.flush()
        code = 0
    finally:  # whatever happened (the parent gone, a signal), leave here
        os._exit(code)


def render_into(
    render_one: Callable[[Path], Rendered],
    plans: list[Path],
    out_dir: Path,
    report: Reporter,
    jobs: int = 1,
) -> tuple[int, ExitCode]:
    """Each plan into out_dir/<slug>.yml; a bad plan is reported and the rest still render.
    (How many files were written, the worst exit code.)

    Two plans of one batch that make one compose project (say prefix `a-b` with slug `c` and
    prefix `a` with slug `b-c`) are refused, naming both files: one would replace the other.
    """
    global _render_one
    worst = ExitCode.OK
    plan_ids = file_ids(plans)  # once: a batch of a thousand plans stats each output once
    written: dict[str, Path] = {}
    projects: dict[str, Path] = {}
    batch, said = Batch(), []
    _render_one = render_one
    try:
        with outcomes(plans, jobs) as results:
            for outcome in results:
                plan = outcome.plan
                try:
                    report.warnings(plan, outcome.warnings)
                    if outcome.failure is not None:
                        report.failure(plan, outcome.failure)
                        worst = max(worst, outcome.failure.exit_code)
                        continue
                    slug = outcome.slug
                    if slug in written:
                        raise OutputError(
                            f"{plan}: slug {slug!r} was already rendered from {written[slug]}; nothing written for it"
                        )
                    project = outcome.project
                    if project in projects:
                        raise PlanError(
                            f"{plan}: makes compose project {project!r}, as {projects[project]} does; "
                            "give one of them another slug or settings.project_prefix. Nothing written for it"
                        )
                    not_the_plan(out_dir / f"{slug}.yml", plan_ids)
                    changed = write_if_changed(out_dir / f"{slug}.yml", outcome.text, batch=batch)
                    written[slug] = plan
                    projects[project] = plan
                    said.append(f"{plan} -> {out_dir / (slug + '.yml')}{'' if changed else ' (unchanged)'}")
                    if len(said) >= BATCH_FLUSH:
                        _flush(batch, said, report)
                except UserError as e:
                    report.failure(plan, Failure.of(e))
                    worst = max(worst, e.exit_code)
                except OSError as e:  # a bug: report it, write the rest
                    report.failure(plan, Failure.of(e))
                    worst = max(worst, ExitCode.INTERNAL)
    finally:  # what is in place when a signal stops the batch is said too
        _render_one = None
        _flush(batch, said, report)
    return len(written), worst


def _flush(batch: Batch, said: list[str], report: Reporter) -> None:
    """Make the batch's files durable, then say that they are written."""
    batch.flush()
    if said:
        report.written(list(said))
    said.clear()


def file_ids(paths: Sequence[Path]) -> dict[tuple[int, int], Path]:
    """(device, inode) of each existing file, to know a plan when another path names it."""
    ids = {}
    for path in paths:
        try:
            info = os.stat(path)
        except OSError:
            continue
        ids[(info.st_dev, info.st_ino)] = path
    return ids


def not_the_plan(output: Path, plans: dict[tuple[int, int], Path]) -> None:
    """Refuse to write a compose file over a plan it is rendered from."""
    try:
        info = os.stat(output)
    except OSError:
        return
    plan = plans.get((info.st_dev, info.st_ino))
    if plan is not None:
        raise UsageError(
            f"{output} is the plan {plan}: rendering would replace the plan with its compose file; write somewhere else"
        )
