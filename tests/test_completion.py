"""Shell completion, loaded by the real shells: bash always; zsh and fish where tests/engine.sh
installs them (Debian's packages, as root: the tests that need them are marked engine)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import run_cli

from bottlegen.cli import build_parser
from bottlegen.lints import KINDS


def script(shell: str, tmp_path: Path) -> Path:
    proc = run_cli("completion", shell)
    assert proc.returncode == 0, proc.stderr
    path = tmp_path / f"bottlegen.{shell}"
    path.write_text(proc.stdout)
    return path


def shell(name: str) -> str:
    found = shutil.which(name)
    assert found, f"{name} is not installed: tests/engine.sh installs it (Debian: apt-get install {name})"
    return found


def complete_in_bash(
    completions: Path, *words: str, cwd: Path | None = None, path: str | None = None, env: dict | None = None
) -> list[str]:
    """What bash's completion function offers for the last word of `bottlegen WORDS` (path: the
    folder of the `bottlegen` it asks for names, first on PATH; default: this environment's)."""
    line = " ".join(f"'{w}'" for w in ("bottlegen", *words))
    program = f'source {completions}; COMP_WORDS=({line}); COMP_CWORD={len(words)}; _bottlegen; printf "%s\\n" "${{COMPREPLY[@]}}"'
    search = f"{path or Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    environ = {**os.environ, **(env or {}), "PATH": search}
    proc = subprocess.run(["bash", "-c", program], capture_output=True, text=True, check=False, cwd=cwd, env=environ)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    return [w for w in proc.stdout.splitlines() if w]


def test_bash_completes_commands_options_choices_and_files(tmp_path):
    completions = script("bash", tmp_path)
    commands = list(build_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    assert complete_in_bash(completions, "") == commands
    assert complete_in_bash(completions, "ver") == ["verify"]
    assert complete_in_bash(completions, "up", "--pu") == ["--pull"]
    assert complete_in_bash(completions, "up", "--pull", "") == ["always", "missing", "never"]
    assert complete_in_bash(completions, "render", "--ignore", "BG10") == [k.code for k in KINDS]
    assert complete_in_bash(completions, "templates", "l") == ["list"]
    assert complete_in_bash(completions, "templates", "list", "--fo") == ["--format"]
    assert "agent.yaml.j2" in complete_in_bash(completions, "templates", "eject", "age")
    (tmp_path / "plans").mkdir()
    (tmp_path / "plans" / "team.yml").write_text("slug: t\n")
    assert complete_in_bash(completions, "render", "plans/t", cwd=tmp_path) == ["plans/team.yml"]
    assert complete_in_bash(completions, "up", "--state-dir", "pl", cwd=tmp_path) == ["plans"]
    assert complete_in_bash(completions, "up", "--wait-timeout", "") == []  # a number: nothing to offer


def test_bash_asks_bottlegen_for_bottles_and_services_with_the_lines_own_bottle_flags(tmp_path):
    """Names that exist only when tab is pressed are asked of bottlegen itself, passing on the
    options of the line that say which bottle and engine (a stand-in bottlegen records them)."""
    completions = script("bash", tmp_path)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    asked = tmp_path / "asked"
    fake = bin_dir / "bottlegen"
    fake.write_text(
        f'#!/bin/sh\necho "$*" >> {asked}\n'
        'case "$1" in ls) printf "red-bottle\\nblue bottle\\n" ;; ps) printf "agent\\npipelock\\n" ;; esac\n'
    )
    fake.chmod(0o755)
    ask = lambda *words: complete_in_bash(completions, *words, path=str(bin_dir))  # noqa: E731
    assert ask("logs", "-p", "") == ["red-bottle", "blue bottle"]
    assert ask("ps", "--context", "far", "-p", "re") == ["red-bottle"]
    assert ask("logs", "-p", "red-bottle", "") == ["agent", "pipelock"]
    assert ask("exec", "--state-dir", "/srv/b", "--context", "far", "pi") == ["pipelock"]
    assert ask("exec", "agent", "--", "") == []  # after --, the words are the command's
    assert asked.read_text().splitlines() == [
        "ls --format names",
        "ls --format names --context far",
        "ps --services -p red-bottle",
        "ps --services --state-dir /srv/b --context far",
    ]


def test_every_option_is_offered_by_bash(tmp_path):
    """Generated from the parser: a new option cannot be missing from completion."""
    completions = script("bash", tmp_path)
    parser = build_parser()
    for name, sub in parser._subparsers._group_actions[0].choices.items():  # type: ignore[union-attr]
        flags = {f for a in sub._actions for f in a.option_strings}
        assert set(complete_in_bash(completions, name, "-")) == flags, name


@pytest.mark.engine
def test_zsh_loads_the_completion_and_offers_the_choices(tmp_path):
    completions = script("zsh", tmp_path)
    program = (
        f"autoload -U compinit && compinit -u -d {tmp_path}/zcompdump; source {completions}; "
        'print -- "registered: ${_comps[bottlegen]}"; setopt ksharrays; '
        'COMP_WORDS=(bottlegen up --pull ""); COMP_CWORD=3; _bottlegen; print -l -- "${COMPREPLY[@]}"'
    )
    proc = subprocess.run([shell("zsh"), "-f", "-c", program], capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "registered: _bash_complete -F _bottlegen" and lines[1:] == ["always", "missing", "never"]


@pytest.mark.engine
def test_fish_loads_the_completion_and_offers_commands_and_choices(tmp_path):
    completions = script("fish", tmp_path)

    def complete(line: str) -> list[str]:
        program = f"source {completions}; complete -C{line!r}"
        proc = subprocess.run(
            [shell("fish"), "--no-config", "-c", program], capture_output=True, text=True, check=False
        )
        assert proc.returncode == 0 and proc.stderr == "", proc.stderr
        return [entry.split("\t")[0] for entry in proc.stdout.splitlines()]

    assert complete("bottlegen ver") == ["verify"]
    assert complete("bottlegen up --pull ") == ["always", "missing", "never"]
    assert complete("bottlegen templates ") == ["eject", "list"]
    assert "--format" in complete("bottlegen ps --")
    # names asked of bottlegen (a stand-in first on PATH records what it was asked)
    bin_dir, asked = tmp_path / "bin", tmp_path / "asked"
    bin_dir.mkdir()
    (bin_dir / "bottlegen").write_text(
        f'#!/bin/sh\necho "$*" >> {asked}\ncase "$1" in ls) echo red-bottle ;; ps) printf "agent\\npipelock\\n" ;; esac\n'
    )
    (bin_dir / "bottlegen").chmod(0o755)
    os.environ["PATH"], saved = f"{bin_dir}{os.pathsep}{os.environ['PATH']}", os.environ["PATH"]
    try:
        assert complete("bottlegen logs -p ") == ["red-bottle"]
        assert complete("bottlegen exec --state-dir /srv/b ") == ["agent", "pipelock"]
    finally:
        os.environ["PATH"] = saved
    assert asked.read_text().splitlines() == ["ls --format names", "ps --services --state-dir /srv/b"]
