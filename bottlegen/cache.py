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

Where: in the cache folder (cachedir.py), in a folder named after the code that configures
Jinja, so that a change to it never meets code compiled under the old one.
"""

from __future__ import annotations

import hashlib
import marshal
import sys
from pathlib import Path

import jinja2
from jinja2.bccache import Bucket

from . import cachedir

_HEADER = f"bottlegen-jinja-cache 1 {sys.implementation.cache_tag} jinja2-{jinja2.__version__}\n".encode()


class DirectoryCache(jinja2.BytecodeCache):
    """Entries in a folder held open as a descriptor (see the module's docstring)."""

    def __init__(self, directory_fd: int):
        self.fd = directory_fd

    def _header(self, bucket: Bucket) -> bytes:
        return _HEADER + str(bucket.checksum).encode() + b"\n"

    def load_bytecode(self, bucket: Bucket) -> None:
        data = cachedir.read_entry(self.fd, f"{bucket.key}.cache")
        if data is None:
            return
        header = self._header(bucket)
        digest, code = data[len(header) : len(header) + 32], data[len(header) + 32 :]
        if not data.startswith(header) or hashlib.sha256(code).digest() != digest:
            return
        try:
            bucket.code = marshal.loads(code)
        except (EOFError, ValueError, TypeError):
            bucket.reset()

    def dump_bytecode(self, bucket: Bucket) -> None:
        code = marshal.dumps(bucket.code)
        cachedir.write_entry(
            self.fd, f"{bucket.key}.cache", self._header(bucket) + hashlib.sha256(code).digest() + code
        )

    def clear(self) -> None:
        import os

        for name in os.listdir(self.fd):
            if name.endswith(".cache"):
                try:
                    os.unlink(name, dir_fd=self.fd)
                except OSError:
                    pass


def cache_folder() -> Path | None:
    """Where the cache is, or None when it is turned off or there is no home to put it in."""
    base = cachedir.base()
    if base is None:
        return None
    here = Path(__file__).resolve().parent
    code = (here / "stages" / "templating.py").read_bytes() + (here / "cache.py").read_bytes()
    return base / f"jinja-{hashlib.sha256(code).hexdigest()[:16]}"


def open_cache() -> DirectoryCache | None:
    """The cache, or None where it cannot be trusted or made; one per folder and process."""
    directory = cache_folder()
    fd = None if directory is None else cachedir.open_folder(str(directory))
    return None if fd is None else DirectoryCache(fd)
