"""What the host holds, as the engine will find it: a path with every symlink in every
component followed, its file type, and the host's system trees, which nothing may hand the
agent.

The policy judges a host path by what it resolves to, never by how it is spelled: a bind of
`/srv/x` that is a symlink to `/var/run/docker.sock` hands over the Docker socket all the
same. A `HostView` answers those questions; `local()` reads this machine, `lexical()` reads
nothing (a path is taken as written), for a render that must not depend on the machine.
`up` judges again with a view of the engine's host, right before anything is created.
"""

from __future__ import annotations

import functools
import os
import posixpath
import stat
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

# The host's system trees: for the agent, nothing in them; for any service, never one of
# them itself, and nothing in them writable. `/` is the root of everything, so it is judged
# as a path of its own (the agent may not have `/` itself; below it is judged by the rest).
SYSTEM_TREES = (
    "/etc",
    "/proc",
    "/sys",
    "/dev",
    "/boot",
    "/root",
    "/home",
    "/run",
    "/var/run",
    "/var/lib/docker",
    "/var/lib/containerd",
)
ROOT = "/"
# Kernel pseudo-filesystems: what is in them is no file but a window on the kernel or on a
# process (`/proc/self/environ` is the environment of whoever reads it: at `up`, compose and
# every token it holds). No service is given anything in them.
PSEUDO_TREES = ("/proc", "/sys")
DEFAULT_DATA_ROOT = "/var/lib/docker"  # the engine's data root when docker info is not asked

# File types no container may be given, wherever they live: each is a channel to a process
# or a device of the host, not a file.
FILE, DIRECTORY, MISSING, UNREADABLE = "file", "directory", "missing", "unreadable"
SOCKET, DEVICE, FIFO = "socket", "device", "FIFO"
FORBIDDEN_TYPES = (SOCKET, DEVICE, FIFO)


class Resolved(NamedTuple):
    """A host path as the engine will open it: every symlink followed, and what is there."""

    path: str
    kind: str  # FILE, DIRECTORY, SOCKET, DEVICE, FIFO, MISSING, UNREADABLE, or "unknown" (not read)

    def describe(self, written: str) -> str:
        there = f"a {self.kind}" if self.kind not in (MISSING, UNREADABLE, "unknown") else self.kind
        return f"{written}" + (f" (resolves to {self.path}, {there})" if self.path != written else f" ({there})")


def kind_of(mode: int) -> str:
    if stat.S_ISREG(mode):
        return FILE
    if stat.S_ISDIR(mode):
        return DIRECTORY
    if stat.S_ISSOCK(mode):
        return SOCKET
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return DEVICE
    if stat.S_ISFIFO(mode):
        return FIFO
    return "unknown"


_O_PATH = getattr(os, "O_PATH", 0)  # Linux: a descriptor that names a file without opening it


def _kernel_resolve(path: str) -> Resolved | None:
    """The kernel's own answer: the path opened with O_PATH (no FIFO blocks, no device
    opens), named back by /proc/self/fd, its type from fstat. None where it has none."""
    try:
        fd = os.open(path, _O_PATH | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        resolved = os.readlink(f"/proc/self/fd/{fd}")
        if resolved.startswith("/") and not resolved.endswith(" (deleted)"):
            return Resolved(resolved, kind_of(os.fstat(fd).st_mode))
        return None
    except OSError:
        return None
    finally:
        os.close(fd)


def _local_resolve(path: str) -> Resolved:
    """A path as the kernel resolves it, three system calls where it exists. Where it does
    not, its longest existing prefix is resolved so and the rest (which holds no link: it is
    not there) added as written, as os.path.realpath does; without O_PATH, realpath itself."""
    if _O_PATH and path.startswith("/"):
        found = _kernel_resolve(path)
        if found is not None:
            return found
        if ".." in path.split("/"):  # `..` after a link goes up from where it led: realpath knows
            return _real(path)
        head, rest = normalized(path), ""
        while head != ROOT:
            head, _, leaf = head.rpartition("/")
            head = head or ROOT
            rest = f"{leaf}/{rest}" if rest else leaf
            prefix = _kernel_resolve(head)
            if prefix is not None:
                # Only the first component below it can be there at all: a dangling link,
                # which realpath follows as far as it goes.
                if os.path.islink(posixpath.join(head, rest.split("/", 1)[0])):
                    return _real(path)
                return Resolved(normalized(posixpath.join(prefix.path, rest)), MISSING)
    return _real(path)


def _real(path: str) -> Resolved:
    try:
        resolved = os.path.realpath(path)
    except OSError:  # a link this process may not read (root's /proc/1/root): judged as written
        return Resolved(normalized(path), UNREADABLE)
    try:
        return Resolved(resolved, kind_of(os.stat(resolved).st_mode))
    except OSError:
        return Resolved(resolved, MISSING)


# Sockets known by their names: a view that reads nothing still knows these for what they are.
KNOWN_SOCKETS = ("docker.sock", "containerd.sock", "podman.sock", "dockershim.sock", "crio.sock")


def _lexical_resolve(path: str) -> Resolved:
    clean = normalized(path)
    return Resolved(clean, SOCKET if posixpath.basename(clean) in KNOWN_SOCKETS else "unknown")


def normalized(path: str) -> str:
    """An absolute path without `.`, `..`, repeated or trailing slashes (POSIX keeps a
    leading `//`; the kernel does not)."""
    clean = posixpath.normpath(path)
    return "/" + clean.lstrip("/") if clean.startswith("//") else clean


def _home_dirs() -> frozenset[str]:
    """Every user's home directory on this machine (the password database), and $HOME."""
    found: set[str] = set()
    try:
        import pwd

        found.update(entry.pw_dir for entry in pwd.getpwall() if entry.pw_dir.startswith("/"))
    except (ImportError, OSError):
        pass
    home = os.environ.get("HOME", "")
    if home.startswith("/"):
        found.add(home)
    return frozenset(normalized(h) for h in found if normalized(h) != ROOT)


class HostView:
    """How the host's paths are judged: resolving one, and the trees and homes to keep from the agent."""

    def __init__(
        self,
        resolve: Callable[[str], Resolved],
        data_root: str = DEFAULT_DATA_ROOT,
        homes: frozenset[str] = frozenset(),
        reads_host: bool = True,
    ):
        self.resolve = resolve
        self.data_root = data_root
        self.homes = homes
        self.reads_host = reads_host

    @functools.cached_property
    def trees(self) -> tuple[str, ...]:
        """The system trees, the engine's data root among them."""
        return tuple(dict.fromkeys([*SYSTEM_TREES, normalized(self.data_root)]))

    def in_tree(self, path: str) -> str | None:
        """The system tree path is in (or is), or None."""
        return next((tree for tree in self.trees if path == tree or path.startswith(tree + "/")), None)

    def in_pseudo_tree(self, path: str) -> bool:
        return any(path == tree or path.startswith(tree + "/") for tree in PSEUDO_TREES)

    def is_tree_root(self, path: str) -> bool:
        """path is `/`, a system tree itself, or a user's home directory itself."""
        return path == ROOT or path in self.trees or path in self.homes


def local(data_root: str | None = None) -> HostView:
    """This machine, read now: realpath and stat, the password database's home directories."""
    return HostView(_noted_resolve, data_root or DEFAULT_DATA_ROOT, frozenset(observe("homes", "")))


def lexical(data_root: str | None = None) -> HostView:
    """Nothing read: each path judged as written (normalized), no homes known."""
    return HostView(_lexical_resolve, data_root or DEFAULT_DATA_ROOT, frozenset(), reads_host=False)


# --- what a render reads of this machine, noted --------------------------------------------
#
# A render reads the machine only through the functions below (tests/test_architecture.py
# holds the render's modules to that). Each is an observation: a kind, a path, and what was
# there, as a JSON value. While a `recording()` is open in the thread, every observation is
# noted; `unchanged()` makes each one again and compares. That is what lets bottlegen.memo
# answer a render run again with nothing changed with its earlier result: nothing the
# render saw of the machine has changed, because the very functions that saw it see the same.


def _file_state(path: str) -> str:
    """What a stat (following links) finds: `missing`, or the type and, for a file, its size."""
    try:
        info = os.stat(path)
    except OSError:
        return MISSING
    return f"{FILE}:{info.st_size}" if stat.S_ISREG(info.st_mode) else kind_of(info.st_mode)


def _entry_state(path: str) -> str:
    """What is at path itself (a link is said as one) and what it leads to."""
    try:
        own = os.lstat(path)
    except OSError:
        return MISSING
    leads = _file_state(path)
    return f"link:{leads}" if stat.S_ISLNK(own.st_mode) else leads


def digest(data: bytes) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(data).hexdigest()


def _text_state(path: str) -> str:
    try:
        with open(path, "rb") as file:
            return digest(file.read())
    except OSError:
        return UNREADABLE


def _resolve_state(path: str) -> list[str]:
    return list(_local_resolve(path))


def _homes_state(_: str) -> list[str]:
    return sorted(_home_dirs())


OBSERVERS: dict[str, Callable[[str], Any]] = {
    "real": os.path.realpath,
    "exists": os.path.exists,
    "state": _file_state,
    "entry": _entry_state,
    "text": _text_state,
    "resolve": _resolve_state,
    "homes": _homes_state,
}


class Reads:
    """The observations of one recording: (kind, path) -> what was there. Two observations of
    one thing that disagree (a file changed while the render read it) spoil the record."""

    def __init__(self) -> None:
        self.seen: dict[tuple[str, str], Any] = {}
        self.spoiled = False

    def note(self, kind: str, path: str, value: Any) -> None:
        if self.seen.setdefault((kind, path), value) != value:
            self.spoiled = True


_recording = threading.local()


@contextmanager
def recording() -> Iterator[Reads]:
    """Note every observation this thread makes until the block ends."""
    reads, previous = Reads(), getattr(_recording, "reads", None)
    _recording.reads = reads
    try:
        yield reads
    finally:
        _recording.reads = previous


def _noted(kind: str, path: str, value: Any) -> Any:
    reads = getattr(_recording, "reads", None)
    if reads is not None:
        reads.note(kind, path, value)
    return value


def observe(kind: str, path: str) -> Any:
    """Look (OBSERVERS[kind]) and note what was there."""
    return _noted(kind, path, OBSERVERS[kind](path))


def realpath(path: str | os.PathLike[str]) -> str:
    return str(observe("real", os.fspath(path)))


def exists(path: str) -> bool:
    return bool(observe("exists", path))


def file_state(path: str) -> str:
    """`missing`, `file:SIZE`, or the type of what is there (links followed)."""
    return str(observe("state", path))


def entry_state(path: str | os.PathLike[str]) -> str:
    """file_state, and `link:` before it where path itself is a symbolic link."""
    return str(observe("entry", os.fspath(path)))


def read_bytes(path: str | os.PathLike[str], limit: int | None = None) -> bytes:
    """A file's bytes (at most limit of them), noted by the whole file's digest. Raises OSError."""
    with open(path, "rb") as file:
        data = file.read() if limit is None else file.read(limit)
    if getattr(_recording, "reads", None) is not None:
        _noted("text", os.fspath(path), digest(data) if limit is None else _text_state(os.fspath(path)))
    return data


def was_read(path: str | os.PathLike[str], data: bytes) -> None:
    """Note a file the caller read whole itself (load.read_text_file, which reads carefully)."""
    _noted("text", os.fspath(path), digest(data))


def _noted_resolve(path: str) -> Resolved:
    found = _local_resolve(path)
    _noted("resolve", path, list(found))
    return found


def unchanged(seen: list[list[Any]]) -> bool:
    """Each observation [kind, path, value] made again finds the same value."""
    try:
        return all(OBSERVERS[kind](path) == value for kind, path, value in seen)
    except (KeyError, ValueError, TypeError):
        return False
