"""A rendered file kept in git (a golden) against what its plan renders now: the same bytes,
or a drift with the unified diff and why, for `check`, the pre-commit hooks and a library
caller alike. Nothing here prints."""

from __future__ import annotations

import difflib
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from .errors import OutputError
from .stages import load


class Drift(NamedTuple):
    """How a file differs from its render: the unified diff, and why in a few words."""

    path: Path
    diff: str
    why: str  # "" or " (it does not exist)", " (only its line endings ...)", " (it is not UTF-8 text)"


def compare(text: str, path: Path, label: str) -> Drift | None:
    """None when path holds exactly text (as bytes); else the drift. A file that is not
    there is all drift; one that cannot be read is an OutputError (exit 7)."""
    try:
        current = load.read_text_file(path, "compose file", OutputError)
    except OutputError:
        if path.exists() or path.is_symlink():
            raise
        current = b""  # a golden not rendered yet: all of it is drift
    wanted = text.encode("utf-8")
    if current == wanted:
        return None
    try:
        old, utf8 = current.decode("utf-8"), True
    except UnicodeDecodeError:
        old, utf8 = current.decode("utf-8", errors="replace"), False
    diff = "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True),
            text.splitlines(keepends=True),
            fromfile=f"{path} (on disk)",
            tofile=f"{path} ({label})",
        )
    )
    why = " (it does not exist)" if not current and not path.exists() else ""
    if b"\r\n" in current and current.replace(b"\r\n", b"\n") == wanted:
        why = " (only its line endings: it has CRLF, bottlegen writes LF)"
    elif not utf8:
        why = " (it is not UTF-8 text)"
    return Drift(path, diff, why)


def fix_command(render_flags: Sequence[str], plan: str, path: Path | None = None, out_dir: Path | None = None) -> str:
    """The exact shell-quoted command that rewrites the file: `-o FILE`, or the fleet's `--out-dir`."""
    where = ["--out-dir", str(out_dir), plan] if out_dir is not None else [plan, "-o", str(path)]
    return shlex.join([*render_flags, *where])
