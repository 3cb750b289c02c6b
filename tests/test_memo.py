"""The render memo never decides anything: after any change to what a render reads, a
command answered with the memo prints, writes and exits exactly as one run without it."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import REPO

PLAN = """\
slug: memo
runtime_image: claude-bottle/agent:latest
env_file: agent.env
proxy:
  internal_network: memo-internal
  egress_network: memo-egress
  yaml_path: files/pipelock.yaml
  ca_cert_host_path: files/ca.pem
  ca_key_host_path: files/ca-key.pem
"""
COMMAND = ("render", "plan.yml", "-f", "overlay.yml", "--templates", "tpl", "-o", "out/compose.yml")


def bottlegen(
    folder: Path,
    cache: Path,
    *,
    memo: bool = True,
    env: dict[str, str] | None = None,
    importtime: bool = False,
    command: tuple[str, ...] = COMMAND,
):
    """The command as a user runs it, in folder: (exit code, stdout, stderr, the file it wrote)."""
    environ = {**os.environ, "BOTTLEGEN_CACHE_DIR": str(cache), "BOTTLEGEN_MEMO": "1" if memo else "0", **(env or {})}
    flags = ["-X", "importtime"] if importtime else []
    proc = subprocess.run(
        [sys.executable, *flags, "-m", "bottlegen.cli", *command],
        cwd=folder,
        env=environ,
        capture_output=True,
        text=True,
        check=False,
    )
    out = folder / "out" / "compose.yml"
    return proc.returncode, proc.stdout, proc.stderr, out.read_bytes() if out.exists() else None


def answered_from_memo(folder: Path, cache: Path, env: dict[str, str] | None = None) -> bool:
    """Whether the command was answered without loading Jinja (from its memo)."""
    stderr = bottlegen(folder, cache, env=env, importtime=True)[2]
    return "jinja2" not in {line.split("|")[-1].strip() for line in stderr.splitlines()}


@pytest.fixture
def bottle(tmp_path: Path) -> Path:
    folder = tmp_path / "repo"
    (folder / "files").mkdir(parents=True)
    (folder / "tpl").mkdir()
    (folder / "plan.yml").write_text(PLAN)
    (folder / "overlay.yml").write_text("forwarded_env: [A_TOKEN]\n")
    (folder / "agent.env").write_text("")
    (folder / "files" / "ca.pem").write_text("ca\n")
    return folder


def _socket_at(path: Path) -> None:
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.close()


def _retarget_plan(folder: Path) -> None:
    """plan.yml becomes a link to the same plan in another folder: its relative paths move."""
    other = folder / "elsewhere"
    other.mkdir()
    (other / "plan.yml").write_text(PLAN)
    (folder / "plan.yml").unlink()
    (folder / "plan.yml").symlink_to(other / "plan.yml")


CHANGES: dict[str, Callable[[Path], None]] = {
    "the plan edited": lambda f: (f / "plan.yml").write_text(PLAN.replace("agent:latest", "agent:2")),
    "an overlay edited": lambda f: (f / "overlay.yml").write_text("forwarded_env: [B_TOKEN]\n"),
    "a packaged template shadowed": lambda f: shutil.copy(REPO / "templates" / "agent.yaml.j2", f / "tpl"),
    "the env file filled": lambda f: (f / "agent.env").write_text("DEBUG=1\n"),
    "a missing bind source created": lambda f: (f / "files" / "pipelock.yaml").write_text("{}\n"),
    "a bind source made a link to a socket": lambda f: (
        _socket_at(f / "engine.sock"),
        (f / "files" / "ca.pem").unlink(),
        (f / "files" / "ca.pem").symlink_to(f / "engine.sock"),
    ),
    "the plan file a link to another folder": _retarget_plan,
    "the written file edited": lambda f: (f / "out" / "compose.yml").write_text("services: {}\n"),
    "the written file removed": lambda f: (f / "out" / "compose.yml").unlink(),
}


@pytest.mark.parametrize("change", CHANGES)
def test_after_a_change_the_memo_answers_as_a_render_does(bottle: Path, tmp_path: Path, change: str):
    cache = tmp_path / "cache"
    before = bottlegen(bottle, cache, memo=False)
    assert before[0] == 0, before[2]
    assert bottlegen(bottle, cache) == before  # kept
    assert answered_from_memo(bottle, cache)  # and answered from the memo, unchanged
    CHANGES[change](bottle)
    with_memo = bottlegen(bottle, cache)
    without = bottlegen(bottle, cache, memo=False)
    assert with_memo == without
    if "written file" not in change:  # the change matters: the test could fail
        assert without != before
    assert bottlegen(bottle, cache) == without  # what is kept now is the new result


@pytest.mark.parametrize("variable", ["HOME", "BOTTLEGEN_IGNORE", "BOTTLEGEN_TEMPLATES"])
def test_the_environment_bottlegen_reads_is_part_of_the_key(bottle: Path, tmp_path: Path, variable: str):
    cache = tmp_path / "cache"
    assert bottlegen(bottle, cache)[0] == 0
    assert answered_from_memo(bottle, cache)
    value = {"HOME": str(bottle), "BOTTLEGEN_IGNORE": "BG102", "BOTTLEGEN_TEMPLATES": str(bottle / "tpl")}[variable]
    assert not answered_from_memo(bottle, cache, env={variable: value})


def test_a_touched_file_with_the_same_content_is_still_answered(bottle: Path, tmp_path: Path):
    cache = tmp_path / "cache"
    bottlegen(bottle, cache)
    os.utime(bottle / "plan.yml")
    (bottle / "agent.env").write_text("")
    assert answered_from_memo(bottle, cache)


def test_failures_are_never_kept(bottle: Path, tmp_path: Path):
    cache = tmp_path / "cache"
    (bottle / "plan.yml").write_text(PLAN + "colour: red\n")
    first = bottlegen(bottle, cache)
    assert first[0] == 3
    assert not list((cache / "memo").glob("*.json"))
    assert bottlegen(bottle, cache) == first


def test_a_planted_or_unsafe_memo_is_passed_over(bottle: Path, tmp_path: Path):
    cache = tmp_path / "cache"
    expected = bottlegen(bottle, cache, memo=False)
    bottlegen(bottle, cache)
    [entry] = (cache / "memo").glob("*.json")
    planted = json.loads(entry.read_text())
    planted["stdout"], planted["exit"] = "planted\n", 0
    planted["key"] = "0" * 64  # an entry for another command, under this one's name
    entry.write_text(json.dumps(planted))
    assert bottlegen(bottle, cache) == expected
    entry.write_text("{not json")
    assert bottlegen(bottle, cache) == expected
    bottlegen(bottle, cache)
    (cache / "memo").chmod(0o777)  # a folder others may write: no memo is trusted from it
    assert not answered_from_memo(bottle, cache)
    assert bottlegen(bottle, cache) == expected


def test_stdout_and_strict_are_answered_the_same(bottle: Path, tmp_path: Path):
    """Rendered to stdout, and --strict failing on the warnings: each as a render does."""
    cache = tmp_path / "cache"
    for command in (("render", "plan.yml"), ("render", "plan.yml", "--strict", "-o", "out/compose.yml")):
        expected = bottlegen(bottle, cache, memo=False, command=command)
        assert bottlegen(bottle, cache, command=command) == expected
        assert bottlegen(bottle, cache, command=command) == expected


def test_an_answer_that_cannot_be_written_is_said_as_a_render_says_it(bottle: Path, tmp_path: Path):
    """A full stdout (/dev/full) on a memo's answer: exit 7, no traceback, as a render gives."""
    cache = tmp_path / "cache"
    command = ("render", "plan.yml")
    bottlegen(bottle, cache, command=command)
    environ = {**os.environ, "BOTTLEGEN_CACHE_DIR": str(cache)}
    results = []
    for memo in ("1", "0"):
        with open("/dev/full", "w") as full:
            proc = subprocess.run(
                [sys.executable, "-m", "bottlegen.cli", *command],
                cwd=bottle,
                env={**environ, "BOTTLEGEN_MEMO": memo},
                stdout=full,
                stderr=subprocess.PIPE,
                text=True,
                check=False,
            )
        results.append(proc)
    assert [p.returncode for p in results] == [7, 7]
    assert all("Traceback" not in p.stderr for p in results), results[0].stderr


def test_a_project_file_that_appears_above_is_seen(bottle: Path, tmp_path: Path):
    """Found upward from the working folder, a project file can bring templates: the memo
    noted that there was none, and sees one appear."""
    cache = tmp_path / "cache"
    command = ("render", "plan.yml", "-o", "out/compose.yml")
    before = bottlegen(bottle, cache, command=command)
    assert bottlegen(bottle, cache, command=command) == before
    shutil.copy(REPO / "templates" / "agent.yaml.j2", bottle / "tpl")
    (bottle.parent / "bottlegen.toml").write_text('templates = ["repo/tpl"]\n')
    after = bottlegen(bottle, cache, command=command)
    assert after == bottlegen(bottle, cache, memo=False, command=command) and after != before


def test_a_project_that_sets_the_state_root_is_answered_too(bottle: Path, tmp_path: Path):
    """The command sets $BOTTLEGEN_STATE_ROOT from the project file once it runs; the memo's
    key is what the command started with, as the next run's lookup computes it."""
    cache = tmp_path / "cache"
    (bottle / "bottlegen.toml").write_text('state_dir = "state"\n')
    first = bottlegen(bottle, cache)
    assert first[0] == 0, first[2]
    assert answered_from_memo(bottle, cache)
    assert bottlegen(bottle, cache) == first
