"""Stage 8: put the rendered text in place, whole or not at all.

The text goes to a temporary file in the destination's directory, is flushed to disk, and
is renamed over the destination: a reader (or a crash) sees the old file or the new one,
never a mix. On any failure, Ctrl-C, SIGTERM or SIGHUP (the CLI turns the last two into an
exception) the temporary file is removed and the destination untouched. A temporary file
that a killed process (SIGKILL, a power cut) left behind carries that process's id in its
name, and the next write to the same destination removes it.

The destination must be a regular file or not exist: a device, a FIFO or a socket at that
path is refused (a rename would replace it; writing into a FIFO could block forever).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from .errors import OutputError

FILE_MODE = 0o644


def _tmp_prefix(path: Path) -> str:
    return f".{path.name}."


def check_destination(path: Path) -> None:
    """Refuse a destination that exists and is not a regular file (or a link to one)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return
    except NotADirectoryError:
        return  # write_atomic says which parent is a file
    except OSError as e:
        raise OutputError(f"{path}: cannot write here: {e.strerror or e}") from None
    if stat.S_ISDIR(info.st_mode):
        raise OutputError(f"{path}: is a directory; give the path of the file to write")
    if not stat.S_ISREG(info.st_mode):
        raise OutputError(
            f"{path}: is not a regular file (a device, FIFO or socket); write to a regular file, "
            "or leave out -o to write to stdout"
        )


def write_atomic(path: Path, text: str, mode: int = FILE_MODE, batch: Batch | None = None) -> None:
    """Write path whole. Once this returns the file survives a crash; in a batch, once the
    batch's flush() returns."""
    import tempfile  # here: a command that writes nothing does not load it

    data = text.encode("utf-8")
    check_destination(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{_tmp_prefix(path)}{os.getpid()}.", suffix=".tmp")
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
                view = view[os.write(fd, view) :]
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
    if batch is not None:
        batch.written.setdefault(path.parent, set()).add(path.name)
        return
    _fsync_dir(path.parent)
    remove_stale_temporaries(path)


class Batch:
    """The writes of one batch (`render --out-dir`): each file is written whole and flushed
    as write_atomic does, but each folder is flushed once per flush() rather than once per
    file, and swept of stale temporaries once. A batch's files survive a crash once flush()
    has returned: say that they are written only then."""

    def __init__(self) -> None:
        self.written: dict[Path, set[str]] = {}

    def flush(self) -> None:
        for directory, names in self.written.items():
            _fsync_dir(directory)
            _remove_stale(directory, {_tmp_prefix(directory / name) for name in names})
        self.written.clear()


def write_if_changed(path: Path, text: str, mode: int = FILE_MODE, batch: Batch | None = None) -> bool:
    """write_atomic, unless path already holds exactly these bytes with this mode: then
    nothing is written and its mtime stays (so make, rsync and reviewers see no change).
    Whether it wrote."""
    data = text.encode("utf-8")
    try:
        info = os.stat(path)
        if stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) == mode and info.st_size == len(data):
            with open(path, "rb") as f:
                if f.read(len(data) + 1) == data:
                    return False
    except OSError:
        pass  # missing or unreadable: write_atomic says what is wrong, if anything
    write_atomic(path, text, mode, batch)
    return True


def remove_stale_temporaries(path: Path) -> None:
    """Remove our temporary files beside path whose writer is no longer running."""
    _remove_stale(path.parent, {_tmp_prefix(path)})


def _remove_stale(directory: Path, prefixes: set[str]) -> None:
    """Remove the temporary files in directory, of the files these prefixes name, whose
    writer is no longer running."""
    try:
        names = [n for n in os.listdir(directory) if n.endswith(".tmp") and n.startswith(".")]
    except OSError:
        return
    for name in names:
        head = name[: -len(".tmp")].rpartition(".")[0]  # .NAME.PID.RANDOM.tmp: RANDOM has no dot
        prefix, _, pid = head.rpartition(".")
        if f"{prefix}." not in prefixes or not pid.isdigit() or _alive(int(pid)):
            continue
        candidate = directory / name
        try:
            info = os.lstat(candidate)
            if stat.S_ISREG(info.st_mode) and info.st_uid == os.getuid():
                os.unlink(candidate)
        except OSError:
            pass


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
