"""The `bottlegen` command: an adapter over the library. It parses the command line, calls
the library, prints what it returns and chooses the exit code; no rendering, layering,
batching, checking or engine logic lives here (see bottlegen.pipeline, batch, goldens and
bottlegen.engine).

This module is what the `bottlegen` script imports first, so it stays small: a render run
again with nothing changed is answered from the memo (bottlegen.memo) before the command
line's parser, Jinja or the render stages are loaded. The commands are in commands.py.
"""

from __future__ import annotations

import gc
import sys
from contextlib import nullcontext
from typing import Any, NoReturn

from ..errors import ExitCode


def run() -> NoReturn:
    """The `bottlegen` command: main(), then exit.

    Freezing the garbage collector first spares the exit its collections over every object
    the process loaded, ~12 ms of a ~110 ms render; the process ends here anyway.
    """
    argv = sys.argv[1:]
    may_keep = "render" in argv  # the command decides whether its run is kept (memo.keep)
    if may_keep:
        from .. import memo
    code = None
    try:
        answer = memo.replay(argv) if may_keep else None
        if answer is not None:
            code = _said(answer.stdout, answer.stderr, answer.exit_code)
    except Exception:  # the memo never decides anything: whatever fails in it, render afresh
        code = None
    except KeyboardInterrupt:
        print("bottlegen: interrupted", file=sys.stderr)
        code = ExitCode.INTERRUPTED
    if code is None:
        from .commands import main

        with memo.session(argv) if may_keep else nullcontext() as session:
            code = main(argv)
            if session is not None:
                session.done(code)
    gc.freeze()
    sys.exit(code)


def _said(stdout: str, stderr: str, code: int) -> int:
    """Print a kept answer; a stdout that cannot be written is said as a render says it."""
    try:
        sys.stdout.write(stdout)
        sys.stdout.flush()
    except OSError:  # a reader that stopped reading, a full disk
        from .output import silence_stdout

        silence_stdout()
        return ExitCode.IO
    sys.stderr.write(stderr)
    sys.stderr.flush()
    return code


def __getattr__(name: str) -> Any:
    """main, build_parser and COMMAND_EXIT_CODES, loaded when first asked for."""
    if name in ("main", "build_parser", "COMMAND_EXIT_CODES"):
        from . import commands

        return getattr(commands, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["COMMAND_EXIT_CODES", "build_parser", "main", "run"]
