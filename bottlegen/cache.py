"""The compiled-template cache: it saves ~20 ms of each launch and never decides anything.

Jinja compiles a template to Python bytecode, and that code runs outside the sandbox, so an
entry is trusted only as far as the folder it is in:
- The folder is opened once (`O_DIRECTORY | O_NOFOLLOW`) and its owner and mode are checked
  on that descriptor, at the open and again before each read or write: it must be ours and
  writable by nobody else, or there is no cache.
  Every entry is then read and written relative to the descriptor, so swapping the folder
  or a parent (say under a world-writable /tmp) after the check changes nothing.
- An entry must be a regular file of ours that nobody else can write, start with this
  format's header (bottlegen's format, the Python and Jinja versions, the template source's
  checksum) and carry the SHA-256 of its code: anything else is passed over. Nothing is
  unpickled; the code is read with `marshal` only once all of that holds.
- Any failure (a corrupt or truncated entry, a read-only or full folder, no home directory)
  means the template is compiled as if there were no cache.

Where: $BOTTLEGEN_CACHE_DIR (empty: no cache), else $XDG_CACHE_HOME/bottlegen or
~/.cache/bottlegen, in a folder named after the code that configures Jinja, so that a
change to it never meets code compiled under the old one.
"""

from __future__ import annotations

import functools
import hashlib
import marshal
import os
import stat
import sys
from pathlib import Path

import jinja2
from jinja2.bccache import Bucket

CACHE_ENV = "BOTTLEGEN_CACHE_DIR"
MAX_ENTRY_BYTES = 8 * 1024 * 1024
_HEADER = f"bottlegen-jinja-cache 1 {sys.implementation.cache_tag} jinja2-{jinja2.__version__}\n".encode()
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


class DirectoryCache(jinja2.BytecodeCache):
    """Entries in a folder held open as a descriptor (see the module's docstring)."""

    def __init__(self, directory_fd: int):
        self.fd = directory_fd

    def _header(self, bucket: Bucket) -> bytes:
        return _HEADER + str(bucket.checksum).encode() + b"\n"

    def _still_private(self) -> bool:
        """The folder is still ours alone (checked again on every use: a process may live long)."""
        try:
            return _private(os.fstat(self.fd))
        except OSError:
            return False

    def load_bytecode(self, bucket: Bucket) -> None:
        if not self._still_private():
            return
        try:
            fd = os.open(f"{bucket.key}.cache", _OPEN_FLAGS, dir_fd=self.fd)
        except OSError:
            return
        try:
            info = os.fstat(fd)
            if not _private(info) or not stat.S_ISREG(info.st_mode) or info.st_size > MAX_ENTRY_BYTES:
                return
            data = b"".join(iter(lambda: os.read(fd, 1 << 16), b""))
        except OSError:
            return
        finally:
            os.close(fd)
        header = self._header(bucket)
        digest, code = data[len(header) : len(header) + 32], data[len(header) + 32 :]
        if not data.startswith(header) or hashlib.sha256(code).digest() != digest:
            return
        try:
            bucket.code = marshal.loads(code)
        except (EOFError, ValueError, TypeError):
            bucket.reset()

    def dump_bytecode(self, bucket: Bucket) -> None:
        if not self._still_private():
            return
        code = marshal.dumps(bucket.code)
        data = self._header(bucket) + hashlib.sha256(code).digest() + code
        name, tmp = f"{bucket.key}.cache", f".{bucket.key}.{os.getpid()}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=self.fd)
        except OSError:
            return
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
            os.replace(tmp, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        except OSError:
            try:
                os.unlink(tmp, dir_fd=self.fd)
            except OSError:
                pass

    def clear(self) -> None:
        for name in os.listdir(self.fd):
            if name.endswith(".cache"):
                try:
                    os.unlink(name, dir_fd=self.fd)
                except OSError:
                    pass


def _private(info: os.stat_result) -> bool:
    return info.st_uid == os.getuid() and not info.st_mode & 0o022


def cache_folder() -> Path | None:
    """Where the cache is, or None when it is turned off or there is no home to put it in."""
    configured = os.environ.get(CACHE_ENV)
    if configured == "":
        return None
    here = Path(__file__).resolve().parent
    code = (here / "stages" / "templating.py").read_bytes() + (here / "cache.py").read_bytes()
    fingerprint = hashlib.sha256(code).hexdigest()[:16]
    try:
        base = (
            Path(configured)
            if configured
            else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "bottlegen"
        )
    except RuntimeError:  # no home directory
        return None
    return base / f"jinja-{fingerprint}"


def open_cache() -> DirectoryCache | None:
    """The cache, or None where it cannot be trusted or made; one per folder and process."""
    directory = cache_folder()
    return None if directory is None else _open(str(directory))


@functools.cache
def _open(path: str) -> DirectoryCache | None:
    directory = Path(path)
    try:
        directory.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            directory.mkdir(mode=0o700)
        except FileExistsError:
            pass
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        info = os.fstat(fd)
    except OSError:
        os.close(fd)
        return None
    if not _private(info):
        os.close(fd)
        return None
    return DirectoryCache(fd)
