"""The render memo: `bottlegen render` run again with nothing changed answers from its last run.

A render reads this machine only through bottlegen.host: the plan and overlay files, the
templates and the manifest, the env file, each host path it judges, the home directories.
While the command runs, every one of those observations is noted (host.recording). When it
succeeds, the memo keeps them with what it printed, the file it wrote and its exit code,
under a key of all else the result depends on: the command line, the working folder, the
environment variables bottlegen reads, the Python that ran it, bottlegen's own files
(code, packaged templates, schemas) and the installed packages.

The next run with the same key makes each observation again (host.unchanged: the very
functions that saw the machine look again). Only when every one finds what it found, and
the file it wrote is still the one it wrote (same inode, size, modification and change
times), is its answer what it printed and how it exited (the command prints it, leaving the
file as it is): the bytes a render would give, without loading Jinja. Anything else, and it renders as if there
were no memo. A memo only ever stands for a success: an error is found afresh every time.

Trust, as the template cache's (cachedir.py): entries live in a private folder, are read
through its descriptor and are JSON, never code. `BOTTLEGEN_MEMO=0` turns the memo off;
`BOTTLEGEN_CACHE_DIR=` (empty) turns off every cache.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple, TextIO

from . import cachedir, host, resources

MEMO_ENV = "BOTTLEGEN_MEMO"
FORMAT = "bottlegen-memo 1"
KEEP = 512  # entries kept; the oldest half goes when there are more
_ENV_READ = ("HOME", "XDG_CACHE_HOME", "PYTHONPATH")  # and every BOTTLEGEN_* variable


def enabled() -> bool:
    return os.environ.get(MEMO_ENV, "1") not in ("0", "off", "no", "false")


def _folder(create: bool) -> int | None:
    base = cachedir.base()
    return None if base is None else cachedir.open_folder(str(base / "memo"), create)


def _files_of(folder: Path) -> Iterator[str]:
    """Each file under folder (bytecode caches aside) with its size and modification time."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            if entry.name != "__pycache__":
                yield from _files_of(Path(entry.path))
        else:
            info = entry.stat()
            yield f"{entry.path} {info.st_size} {info.st_mtime_ns}"


def _installed() -> Iterator[str]:
    """The packages installed where this Python imports from (a release's dist-info names it)."""
    for place in sys.path:
        if place.endswith(("site-packages", "dist-packages")):
            try:
                names = sorted(os.listdir(place))
            except OSError:
                continue
            yield from (f"{place}/{n}" for n in names if n.endswith((".dist-info", ".egg-info", ".pth")))


def key(argv: Sequence[str]) -> str:
    """Everything a render's result depends on besides what it observes of the machine, as
    the command starts (what it sets in its own environment later, say the state root of a
    project file, is not a condition of its result): asked once per process."""
    return _key(tuple(argv))


@functools.cache
def _key(argv: tuple[str, ...]) -> str:
    env = sorted((k, v) for k, v in os.environ.items() if k.startswith("BOTTLEGEN_") or k in _ENV_READ)
    parts: list[Any] = [FORMAT, sys.version, sys.executable, sys.path, os.getcwd(), list(argv), env]
    parts += [list(_files_of(resources.PACKAGE)), list(_installed())]
    for name in ("templates", "schema"):
        folder = resources.PACKAGE / name
        if not folder.is_dir():
            parts.append(list(_files_of(resources.PACKAGE.parent / name)))
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode("utf-8", "surrogateescape")).hexdigest()


def _file_id(path: str) -> list[int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return [info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns]


class Answer(NamedTuple):
    """What a kept run printed, and how it exited."""

    stdout: str
    stderr: str
    exit_code: int


def replay(argv: Sequence[str]) -> Answer | None:
    """The command's answer from its memo, or None when there is no memo for it or anything
    it depends on changed."""
    if not enabled():
        return None
    folder = _folder(create=False)
    if folder is None:
        return None
    wanted = key(argv)
    data = cachedir.read_entry(folder, f"{wanted}.json")
    if data is None:
        return None
    try:
        entry = json.loads(data)
        if entry["format"] != FORMAT or entry["key"] != wanted:
            return None
        output, stdout, stderr, code = entry["output"], entry["stdout"], entry["stderr"], int(entry["exit"])
        if output is not None and _file_id(output[0]) != output[1]:
            return None
        if not host.unchanged(entry["seen"]):
            return None
    except (ValueError, KeyError, TypeError, IndexError):
        return None
    return Answer(str(stdout), str(stderr), code)


class _Tee:
    """A stream that keeps a copy of what is written to it."""

    def __init__(self, stream: TextIO):
        self._stream = stream
        self.copy: list[str] = []

    def write(self, text: str) -> int:
        self.copy.append(text)
        return self._stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class Session:
    """One command's run, noted so that its success can be kept (keep())."""

    def __init__(self, argv: Sequence[str], reads: host.Reads, out: _Tee, err: _Tee):
        self.key = key(argv)  # as the command starts: as the next run's replay will ask
        self.reads, self._out, self._err = reads, out, err
        self.output: str | None = None
        self.kept = False

    def done(self, code: int) -> None:
        """Keep the run when it succeeded, said it may be kept, and saw nothing change under it
        (a memo that cannot be kept, say with the working folder gone, is simply not kept)."""
        if code != 0 or not self.kept or self.reads.spoiled:
            return
        try:
            self._keep(code)
        except (OSError, ValueError, RuntimeError):
            pass

    def _keep(self, code: int) -> None:
        folder = _folder(create=True)
        if folder is None:
            return
        output = None
        if self.output is not None:
            found = _file_id(self.output)
            if found is None:
                return
            output = [self.output, found]
        entry = {
            "format": FORMAT,
            "key": self.key,
            "seen": [[kind, path, value] for (kind, path), value in self.reads.seen.items()],
            "output": output,
            "stdout": "".join(self._out.copy),
            "stderr": "".join(self._err.copy),
            "exit": code,
        }
        data = json.dumps(entry, ensure_ascii=False).encode("utf-8", "surrogateescape")
        if len(data) <= cachedir.MAX_ENTRY_BYTES:
            cachedir.write_entry(folder, f"{entry['key']}.json", data)
            _prune(folder)


_session: Session | None = None


@contextmanager
def session(argv: Sequence[str]) -> Iterator[Session | None]:
    """Run a command under a session (None when the memo is off): its observations noted,
    what it prints copied."""
    global _session
    if not enabled() or cachedir.base() is None:
        yield None
        return
    out, err = _Tee(sys.stdout), _Tee(sys.stderr)
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        with host.recording() as reads:
            _session = Session(argv, reads, out, err)
            yield _session
    finally:
        _session = None
        sys.stdout, sys.stderr = saved


def keep(output: Path | None) -> None:
    """Say that this command's result may stand for the next run with the same inputs: it
    printed all it printed through sys.stdout and sys.stderr, and wrote nothing but output."""
    if _session is not None:
        _session.kept = True
        _session.output = None if output is None else os.path.abspath(output)


def _prune(folder: int) -> None:
    try:
        names = [n for n in os.listdir(folder) if n.endswith(".json")]
        if len(names) <= KEEP:
            return
        aged = sorted(names, key=lambda n: os.stat(n, dir_fd=folder, follow_symlinks=False).st_mtime_ns)
        for name in aged[: len(aged) // 2]:
            os.unlink(name, dir_fd=folder)
    except OSError:
        pass
