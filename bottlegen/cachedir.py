"""Where bottlegen keeps what it may reuse (compiled templates, the render memo), and the
one rule for trusting it: a folder of ours that nobody else can write, held open as a
descriptor so that swapping it or a parent (say under a world-writable /tmp) after the check
changes nothing.

Where: $BOTTLEGEN_CACHE_DIR (empty: no cache at all), else $XDG_CACHE_HOME/bottlegen or
~/.cache/bottlegen.
"""

from __future__ import annotations

import functools
import os
import stat
from pathlib import Path

CACHE_ENV = "BOTTLEGEN_CACHE_DIR"
MAX_ENTRY_BYTES = 8 * 1024 * 1024
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


def base() -> Path | None:
    """The cache's folder, or None when it is turned off or there is no home to put it in."""
    configured = os.environ.get(CACHE_ENV)
    if configured == "":
        return None
    try:
        return (
            Path(configured)
            if configured
            else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "bottlegen"
        )
    except RuntimeError:  # no home directory
        return None


def private(info: os.stat_result) -> bool:
    return info.st_uid == os.getuid() and not info.st_mode & 0o022


def still_private(fd: int) -> bool:
    """The folder is still ours alone (checked again on every use: a process may live long)."""
    try:
        return private(os.fstat(fd))
    except OSError:
        return False


@functools.cache
def open_folder(path: str, create: bool = True) -> int | None:
    """A descriptor of the folder at path (made, private, where create and it is missing), or
    None where it cannot be trusted or made; one per folder and process."""
    directory = Path(path)
    try:
        if create:
            directory.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            try:
                directory.mkdir(mode=0o700)
            except FileExistsError:
                pass
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    if not still_private(fd):
        os.close(fd)
        return None
    return fd


def read_entry(folder: int, name: str) -> bytes | None:
    """An entry's bytes: a regular file of ours that nobody else can write, at most
    MAX_ENTRY_BYTES, in a folder still private; else None."""
    if not still_private(folder):
        return None
    try:
        fd = os.open(name, READ_FLAGS, dir_fd=folder)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not private(info) or not stat.S_ISREG(info.st_mode) or info.st_size > MAX_ENTRY_BYTES:
            return None
        return b"".join(iter(lambda: os.read(fd, 1 << 16), b""))
    except OSError:
        return None
    finally:
        os.close(fd)


def write_entry(folder: int, name: str, data: bytes) -> None:
    """Put an entry in place whole (a temporary file renamed over it), or not at all."""
    if not still_private(folder):
        return
    tmp = f".{name}.{os.getpid()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=folder)
    except OSError:
        return
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        os.replace(tmp, name, src_dir_fd=folder, dst_dir_fd=folder)
    except OSError:
        try:
            os.unlink(tmp, dir_fd=folder)
        except OSError:
            pass
