"""The template cache never decides anything: a planted, swapped, corrupt or unusable
cache renders exactly what no cache renders, and no planted code ever runs."""

from __future__ import annotations

import marshal
import os
from pathlib import Path

import pytest
from helpers import EXAMPLES, run_cli_process

PLAN = str(EXAMPLES / "all-sidecars.yml")


def render(cache: Path | str) -> tuple[int, str, str]:
    """A render in a new process, as each launch is: the cache folder is opened at its start."""
    proc = run_cli_process(
        "render", PLAN, env={"BOTTLEGEN_CACHE_DIR": str(cache), "BOTTLEGEN_MEMO": "0"}
    )  # the memo would skip Jinja
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture(scope="module")
def expected() -> str:
    code, out, err = render("")
    assert code == 0, err
    return out


def warm_folder(tmp_path: Path) -> Path:
    cache = tmp_path / "cache"
    assert render(cache)[0] == 0
    [folder] = cache.iterdir()
    return folder


def planted_code(marker: Path) -> bytes:
    """Compiled code that would leave marker behind if it ever ran."""
    return marshal.dumps(compile(f"open({str(marker)!r}, 'w').close()", "planted", "exec"))


@pytest.mark.parametrize(
    "damage", ["truncated", "garbage", "empty", "flipped byte", "other python", "a directory", "a FIFO"]
)
def test_a_damaged_entry_is_passed_over(tmp_path, expected, damage):
    folder = warm_folder(tmp_path)
    for entry in folder.glob("*.cache"):
        data = entry.read_bytes()
        entry.unlink()
        if damage == "truncated":
            entry.write_bytes(data[: len(data) // 2])
        elif damage == "garbage":
            entry.write_bytes(os.urandom(len(data)))
        elif damage == "empty":
            entry.write_bytes(b"")
        elif damage == "flipped byte":
            entry.write_bytes(data[:-10] + bytes([data[-10] ^ 0xFF]) + data[-9:])
        elif damage == "other python":
            entry.write_bytes(data.replace(b"cpython-", b"cpython-9", 1))
        elif damage == "a directory":
            entry.mkdir()
        else:
            os.mkfifo(entry)
    code, out, err = render(folder.parent)
    assert (code, out) == (0, expected), err
    assert "Traceback" not in err


def test_a_planted_entry_never_runs(tmp_path, expected):
    """Entries with our header but someone else's code: wrong digest, other owner, writable by others."""
    folder = warm_folder(tmp_path)
    marker = tmp_path / "ran"
    entries = sorted(folder.glob("*.cache"))
    for index, entry in enumerate(entries):
        data = entry.read_bytes()
        header = data[: data.index(b"\n", data.index(b"\n") + 1) + 1]
        code = planted_code(marker)
        kind = index % 3
        if kind == 0:  # our own file, but the digest does not match the code
            entry.write_bytes(header + b"\0" * 32 + code)
        else:  # a well-formed entry, but not only ours to write
            import hashlib

            entry.write_bytes(header + hashlib.sha256(code).digest() + code)
            if kind == 1:
                os.chown(entry, 65534, 65534) if os.getuid() == 0 else entry.chmod(0o666)
            else:
                entry.chmod(0o666)
    result = render(folder.parent)
    assert result[:2] == (0, expected), result[2]
    assert not marker.exists(), "planted code ran"


def test_a_folder_someone_else_can_write_or_swap_is_not_used(tmp_path, expected):
    folder = warm_folder(tmp_path)
    for entry in folder.iterdir():
        entry.unlink()
    folder.chmod(0o777)
    assert render(folder.parent)[:2] == (0, expected)
    assert list(folder.iterdir()) == []
    # a link in place of the folder: O_NOFOLLOW refuses it
    folder.chmod(0o700)
    target = tmp_path / "elsewhere"
    folder.rename(target)
    folder.symlink_to(target)
    assert render(folder.parent)[:2] == (0, expected)
    assert list(target.iterdir()) == []


@pytest.mark.parametrize("where", ["a file", "under a file", "no home"])
def test_a_cache_that_cannot_be_made_renders_without_one(tmp_path, expected, where):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    if where == "no home":
        env = {k: v for k, v in os.environ.items() if k not in ("BOTTLEGEN_CACHE_DIR", "XDG_CACHE_HOME")}
        import subprocess
        import sys

        def run(**extra: str) -> subprocess.CompletedProcess:
            return subprocess.run(
                [sys.executable, "-m", "bottlegen.cli", "render", PLAN],
                capture_output=True,
                text=True,
                env={**env, "HOME": str(blocker), **extra},
                check=False,
            )

        proc, expected = run(), run(BOTTLEGEN_CACHE_DIR="").stdout  # ~ is this HOME in both
        code, out, err = proc.returncode, proc.stdout, proc.stderr
    else:
        code, out, err = render(blocker if where == "a file" else blocker / "sub")
    assert (code, out) == (0, expected), err
