"""The one exception tree of bottlegen.

Every error a user can cause is a `UserError`: it carries the message the CLI prints and
the exit code the CLI returns. Domain errors also inherit the matching built-in, so
library callers can catch them the ordinary way (a plan or document error is a
ValueError, an I/O error an OSError); a failed docker command, a ComposeError, carries
`returncode`, `cmd` and `stderr` as subprocess.CalledProcessError does.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import subprocess  # a render never imports it: ~5 ms of start-up


class ExitCode(IntEnum):
    """Exit codes of the `bottlegen` command, one per class of failure (MEANINGS says which)."""

    OK = 0
    DRIFT = 1
    USAGE = 2
    INVALID_PLAN = 3
    TEMPLATE = 4
    INVALID_DOCUMENT = 5
    LINT = 6
    IO = 7
    ENGINE = 8
    COMPOSE = 9
    CONFLICT = 10
    VERIFY = 11
    INTERNAL = 70  # sysexits' EX_SOFTWARE
    HANGUP = 129  # 128 + the signal's number, as a shell reports a command a signal ended
    INTERRUPTED = 130
    TERMINATED = 143


# What each exit code means, as `bottlegen --help` prints it.
MEANINGS = {
    ExitCode.OK: "success",
    ExitCode.DRIFT: "check: the file differs from what render produces (a diff is printed)",
    ExitCode.USAGE: "usage: bad command line",  # argparse exits 2 too
    ExitCode.INVALID_PLAN: "invalid plan: unreadable YAML/JSON, or it breaks the plan schema",
    ExitCode.TEMPLATE: "template error: a template fails to load, render or parse, or two templates conflict",
    ExitCode.INVALID_DOCUMENT: "invalid document: the result breaks the compose schema or compose's rules",
    ExitCode.LINT: "warnings, with --strict",
    ExitCode.IO: "I/O: a file could not be read or written, or stdout is full or closed (quietly, on a closed pipe)",
    ExitCode.ENGINE: "engine: no docker CLI, no compose plugin, or the daemon is unreachable",
    ExitCode.COMPOSE: "compose: a docker or docker compose command failed",
    ExitCode.CONFLICT: "conflict: the engine or the state directory holds what this bottle cannot take "
    "(a network bottlegen did not make for it, another running bottle, another command at work); nothing changed",
    ExitCode.VERIFY: "verify: a probe found the running bottle breaking a promise of its compose file "
    "(its FAIL lines say which and what was seen)",
    ExitCode.INTERNAL: "a bug in bottlegen (please report it; BOTTLEGEN_DEBUG=1 shows the traceback)",
    ExitCode.HANGUP: "stopped by SIGHUP; a file being written is left as it was",
    ExitCode.INTERRUPTED: "stopped by SIGINT (Ctrl-C); a file being written is left as it was",
    ExitCode.TERMINATED: "stopped by SIGTERM; a file being written is left as it was",
}


class BottlegenError(Exception):
    """Base of every error bottlegen raises on purpose."""


class Stopped(BaseException):
    """A signal (SIGTERM, SIGHUP) asked bottlegen to stop: raised where it arrives, so that
    cleanups run as they do for Ctrl-C. A BaseException, like KeyboardInterrupt."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.exit_code = 128 + signum


class Problem(NamedTuple):
    """One thing wrong, as a record: what and where (a plan file and key path, a document key
    path and the template that wrote it, or a file and line), the rule or check it breaks,
    and a hint at what would fix it. `str()` is the line the CLI prints; `as_json()` the
    object `--error-format json` prints: two renderings of the same record."""

    message: str
    file: str | None = None
    path: str | None = None  # a JSON path: $.egress.routes[0]
    line: int | None = None
    column: int | None = None
    template: str | None = None
    rule: str | None = None
    hint: str | None = None

    @property
    def structured(self) -> bool:
        return any(v is not None for v in (self.file, self.path, self.line, self.template, self.rule, self.hint))

    def __str__(self) -> str:
        text = f"{self.message} {self.hint}" if self.hint else self.message
        if self.file is not None and self.path is not None:
            return f"{self.file}{'' if self.line is None else f':{self.line}'}::{self.path}: {text}"
        if self.path is not None:
            return f"{self.path}{' in template ' + self.template if self.template else ''}: {text}"
        if self.template is not None:
            return f"template {self.template}: {text}"
        if self.file is not None and self.line is not None:
            return f"{self.file}:{self.line}{'' if self.column is None else f':{self.column}'}: {text}"
        if self.file is not None:
            return f"{self.file}: {text}"
        return text

    def as_json(self) -> dict[str, Any]:
        """Its fields, those it has."""
        return {k: v for k, v in self._asdict().items() if v is not None}


class UserError(BottlegenError):
    """An error the user can fix; `str()` is the message the CLI prints. Its details are
    Problems (a plain string is a Problem with a message only)."""

    exit_code: ExitCode = ExitCode.USAGE

    def __init__(self, message: str | Problem, details: Sequence[str | Problem] = ()):
        super().__init__(str(message))
        self.message = str(message)
        # An error that is one problem says it as its headline: `file::$.path: message`.
        self.headline = message if isinstance(message, Problem) else None
        self.problems: list[Problem] = [d if isinstance(d, Problem) else Problem(d) for d in details]

    @property
    def records(self) -> list[Problem]:
        """What went wrong, record by record: its problems, else its headline, else its message."""
        return self.problems or [self.headline or Problem(self.message)]

    @property
    def details(self) -> list[str]:
        """Each problem as the CLI prints it."""
        return [str(p) for p in self.problems]

    @details.setter
    def details(self, lines: Sequence[str | Problem]) -> None:
        kept = {str(p): p for p in self.problems}  # `error.details += [...]` keeps the records it had
        self.problems = [line if isinstance(line, Problem) else kept.get(line) or Problem(line) for line in lines]

    def __str__(self) -> str:
        return "\n".join([self.message, *("  " + d for d in self.details)])


class UsageError(UserError):
    """The command line asks for something that does not go together."""

    exit_code = ExitCode.USAGE


class PlanError(UserError, ValueError):
    """The plan file cannot be read or breaks the plan schema."""

    exit_code = ExitCode.INVALID_PLAN


class TemplateError(UserError):
    """A template fails to load, render or parse as YAML, or is used against the rules."""

    exit_code = ExitCode.TEMPLATE


class MergeConflictError(TemplateError):
    """Two templates give the same key different values."""


class DocumentError(UserError, ValueError):
    """The merged document breaks the compose schema or a rule compose enforces."""

    exit_code = ExitCode.INVALID_DOCUMENT


class LintError(UserError):
    """Warnings were found and --strict turns them into a failure."""

    exit_code = ExitCode.LINT


class OutputError(UserError, OSError):
    """A file bottlegen reads or writes could not be accessed."""

    exit_code = ExitCode.IO


class EngineError(UserError):
    """The docker CLI, the compose plugin or the daemon is not usable."""

    exit_code = ExitCode.ENGINE


class ConflictError(UserError):
    """What is on the engine or in the state directory is not this bottle's to use or change:
    refused before anything changes."""

    exit_code = ExitCode.CONFLICT


class ComposeError(UserError):
    """A docker or docker compose command exited non-zero: its exit status, its argv (never
    a secret: bottlegen passes none on a command line) and what it wrote on stderr."""

    exit_code = ExitCode.COMPOSE

    def __init__(self, message: str, returncode: int, cmd: Sequence[str], stderr: str = ""):
        super().__init__(message, [line for line in stderr.strip().splitlines() if line])
        self.returncode = returncode
        self.cmd = list(cmd)
        self.stderr = stderr

    @classmethod
    def from_process(cls, what: str, proc: subprocess.CompletedProcess[Any]) -> ComposeError:
        stderr = proc.stderr if isinstance(proc.stderr, str) else (proc.stderr or b"").decode(errors="replace")
        return cls(f"{what} failed (exit {proc.returncode})", proc.returncode, proc.args, stderr)


def as_json(error: UserError, **context: str) -> dict[str, Any]:
    """One error as a JSON object: its class, exit code, message, and each problem's record."""
    return failure_json(type(error).__name__, error.exit_code, error.message, error.records, **context)


def failure_json(
    kind: str, exit_code: ExitCode, message: str, problems: Sequence[Problem], **context: str
) -> dict[str, Any]:
    """An error's JSON object from its parts (as a batch worker hands them back)."""
    return {
        "class": kind,
        "kind": exit_code.name.lower(),
        "exit_code": int(exit_code),
        **context,
        "message": message,
        "problems": [p.as_json() for p in problems] or [{"message": message}],
    }
