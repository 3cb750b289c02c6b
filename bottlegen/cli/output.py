"""How the command speaks: warnings (--ignore, -q, --strict, a batch's summary), errors as
text or JSON (--error-format json), internal errors, and stdout that may be closed or full."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .. import lints
from ..errors import ExitCode, LintError, OutputError, UserError, as_json, failure_json
from ..lints import Lint

if TYPE_CHECKING:
    from .. import batch
    from ..engine.lifecycle import Outcome


class Warnings:
    """How a command reports warnings: --ignore (and $BOTTLEGEN_IGNORE) drop a kind; -q hides
    the rest (but --strict, which fails on any, always shows them); a batch counts each kind
    and prints one line per kind at the end (-v: each warning as it comes)."""

    def __init__(self, args: argparse.Namespace):
        self.ignore = lints.ignored(getattr(args, "ignore", None))
        self.strict = bool(getattr(args, "strict", False))
        self.quiet, self.verbose = args.quiet, args.verbose
        self.counts: Counter[str] = Counter()
        self.first: dict[str, str] = {}

    def report(self, found: Sequence[Lint], where: str = "", batch: bool = False) -> None:
        """Print (or count) these warnings; with --strict, fail (before anything is written).
        Several of one kind are one entry that lists them (-v: each in full)."""
        shown = lints.kept(found, self.ignore)
        if self.strict or not (self.quiet or (batch and not self.verbose)):
            for group in lints.grouped(shown):
                if len(group) == 1 or self.verbose or _json_errors:
                    for warning in group:
                        warn_of(warning, where)
                else:
                    warn_of_many(group, where)
        elif batch and not self.quiet:
            for warning in shown:
                self.counts[warning.kind.code] += 1
                self.first.setdefault(warning.kind.code, f"{where}{warning.located}")
        if self.strict and shown:
            raise LintError(f"{len(shown)} warning(s) and --strict: nothing was written")

    def summary(self) -> None:
        """A batch's warnings, one line per kind."""
        for code in sorted(self.counts):
            kind = lints.BY_CODE[code]
            if _json_errors:
                fields = {"warning": code, "name": kind.name, "count": self.counts[code], "first": self.first[code]}
                say(json.dumps(fields))
                continue
            warn(
                f"{code} {kind.name}: {self.counts[code]} time(s), the first: {self.first[code]} "
                f"(-v shows each; --ignore {code} silences them)"
            )


def warn_of(warning: Lint, where: str = "") -> None:
    if _json_errors:
        fields = {"warning": warning.kind.code, "name": warning.kind.name}
        plan = {"plan": where.removesuffix(": ")} if where else {}
        at = {"where": warning.where} if warning.where else {}
        say(json.dumps({**fields, **plan, **at, "message": warning.located}))
    else:
        warn(f"{where}{warning}")


def warn_of_many(group: Sequence[Lint], where: str = "") -> None:
    """Several warnings of one kind: what the kind means once, then where each is."""
    kind = group[0].kind
    listing = "".join(f"\n  {where}{w.listed}" for w in group)
    warn(
        f"{kind.code} {kind.name}, {len(group)} times: {kind.summary} (-v says each in full; --ignore {kind.code} silences them):{listing}"
    )


def warn(message: str) -> None:
    say(f"bottlegen: warning: {message}")


def print_outcome(outcome: Outcome) -> None:
    for note in outcome.notes:
        say(f"bottlegen: {note}")
    for warning in outcome.warnings:
        warn(warning)


_json_errors = False  # --error-format json, or --format json: errors as JSON objects on stderr


def json_errors() -> bool:
    return _json_errors


def set_json_errors(on: bool) -> None:
    global _json_errors
    _json_errors = on


def report(error: UserError, plan: str | None = None) -> None:
    if _json_errors:
        say(json.dumps(as_json(error, **({"plan": plan} if plan else {}))))
    else:
        say(f"bottlegen: error: {plan + ': ' if plan else ''}{error}")


def wants_json_errors(argv: Sequence[str]) -> bool:
    """Read before parsing, so that a usage error is JSON too."""
    words = list(argv)
    for i, word in enumerate(words):
        if word in ("--error-format=json", "--format=json"):
            return True
        if word in ("--error-format", "--format") and words[i + 1 : i + 2] == ["json"]:
            return True
    return False


def internal_error(error: BaseException, plan: str | None = None) -> None:
    report_internal(type(error).__name__, str(error), plan)


def report_internal(kind: str, text: str, plan: str | None = None) -> None:
    message = (
        f"{kind}: {text}. This is a bug in bottlegen; please report it "
        "with the command that caused it (BOTTLEGEN_DEBUG=1 shows the traceback)"
    )
    if _json_errors:
        where = {"plan": plan} if plan else {}
        fields = {"class": kind, "kind": "internal", "exit_code": int(ExitCode.INTERNAL), **where}
        say(json.dumps({**fields, "message": message, "problems": [{"message": message}]}))
    else:
        say(f"bottlegen: internal error: {plan + ': ' if plan else ''}{message}")


def report_failure(failure: batch.Failure, plan: str) -> None:
    """A failure a batch handed back, said as report says an error."""
    if failure.exit_code == ExitCode.INTERNAL:
        report_internal(failure.kind, failure.message, plan)
    elif _json_errors:
        say(json.dumps(failure_json(failure.kind, failure.exit_code, failure.message, failure.records, plan=plan)))
    else:
        text = "\n".join([failure.message, *(f"  {p}" for p in failure.problems)])
        say(f"bottlegen: error: {plan}: {text}")


def flush_stdout() -> None:
    """Flush stdout now, so that a full disk or a closed pipe is reported here, not at exit."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as e:
        silence_stdout()
        raise OutputError(f"cannot write to stdout: {e.strerror or e}") from None


def silence_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's flush at exit has nothing to fail on."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def say(message: str) -> None:
    """A line on stderr, when there is a stderr to write to."""
    try:
        print(message, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass
