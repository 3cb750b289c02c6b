"""Stage 8: put the rendered text in place, whole or not at all.

The text goes to a temporary file in the destination's directory, is flushed to disk, and
is renamed over the destination: a reader (or a crash) sees the old file or the new one,
never a mix. On any failure the temporary file is removed and the destination untouched.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import OutputError

FILE_MODE = 0o644


def write_atomic(path: Path, text: str, mode: int = FILE_MODE) -> None:
    data = text.encode("utf-8")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except (FileExistsError, NotADirectoryError):
        blocker = next(p for p in [path.parent, *path.parent.parents] if p.exists())
        raise OutputError(f"{path}: cannot write here: {blocker} is a file, not a directory") from None
    except OSError as e:
        raise OutputError(f"{path}: cannot write here: {e.strerror or e}") from None
    try:
        try:
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(e, OSError):
            raise OutputError(f"{path}: writing failed, the file is unchanged: {e.strerror or e}") from None
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
