"""Every input ends in a documented exit code: hostile plans, templates and files through
every command, and never a traceback, a hang, or a file written by a failed command."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import REPO, full_plan, minimal_plan, run_cli, write_plan

from bottlegen import ExitCode, cli

DOCUMENTED = {int(code) for code in ExitCode}
PACKAGED = REPO / "templates"


def bomb(levels: int = 9) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


# name -> writes the hostile plan file at the path it is given
PLANS: dict[str, Callable[[Path], None]] = {
    "integer past the digit limit": lambda p: p.write_text("slug: " + "1" * 5000 + "\n"),
    "integer past 64 bits (hex)": lambda p: p.write_text(
        "slug: x\nsettings: {ports: {pipelock: 0x" + "f" * 40 + "}}\n"
    ),
    "YAML nested 100,000 deep": lambda p: p.write_text("slug: " + "[" * 100_000 + "]" * 100_000 + "\n"),
    "YAML nested 1,000 deep in blocks": lambda p: p.write_text(
        "".join(" " * i + f"k{i}:\n" for i in range(1000)) + " " * 1000 + "v\n"
    ),
    "JSON nested 100,000 deep": lambda p: p.with_suffix(".json").write_text("[" * 100_000 + "]" * 100_000),
    "JSON nested 500 deep": lambda p: p.with_suffix(".json").write_text('{"a":' * 500 + "1" + "}" * 500),
    "alias bomb": lambda p: p.write_text(bomb()),
    "alias bomb in a rendered field": lambda p: p.write_text(
        bomb(4) + "slug: x\nruntime_image: i\nforwarded_env: *a3\n"
    ),
    "recursive alias": lambda p: p.write_text("slug: &s [*s]\n"),
    "recursive alias in routes": lambda p: p.write_text(
        json.dumps(minimal_plan())[:-1] + ', "egress": {"routes": &r [*r]}}'
    ),
    "lone surrogate in JSON": lambda p: p.with_suffix(".json").write_text(
        json.dumps(minimal_plan(slug="x\ud800"), ensure_ascii=True)
    ),
    "lone surrogate in a JSON key": lambda p: p.with_suffix(".json").write_text('{"\\udc00": 1}'),
    "!!set": lambda p: p.write_text("slug: !!set {a, b}\n"),
    "!!binary": lambda p: p.write_text("slug: !!binary aGVsbG8=\n"),
    "complex key": lambda p: p.write_text("? [a, b]\n: c\n"),
    "integer key": lambda p: p.write_text("1: x\n"),
    ".nan in routes (context prints them)": lambda p: p.write_text(json.dumps(full_plan())[:-1] + ', "x": .nan}'),
    ".inf as a port": lambda p: write_plan(p.parent, full_plan(settings={"ports": {"pipelock": float("inf")}}), p.name),
    "not UTF-8": lambda p: p.write_bytes(b"slug: \xff\xfe\n"),
    "binary garbage": lambda p: p.write_bytes(bytes(range(256)) * 4),
    "NUL bytes": lambda p: p.write_bytes(b"slug: a\0b\n"),
    "empty file": lambda p: p.write_text(""),
    "a list": lambda p: p.write_text("- a\n- b\n"),
    "a string": lambda p: p.write_text("just text\n"),
    "larger than a plan can be": lambda p: p.write_text("# " + "x" * (5 * 1024 * 1024) + "\nslug: x\n"),
    "a directory": lambda p: p.mkdir(),
    "a FIFO": lambda p: os.mkfifo(p),
    "a socket": lambda p: _bound(socket.socket(socket.AF_UNIX), p),
    "a link to /dev/zero": lambda p: p.symlink_to("/dev/zero"),
    "a dangling link": lambda p: p.symlink_to(p.parent / "nowhere"),
    "missing": lambda p: None,
    "a port of 8888.5": lambda p: write_plan(p.parent, full_plan(settings={"ports": {"pipelock": 8888.5}}), p.name),
    "a variable the templates set": lambda p: write_plan(p.parent, full_plan(forwarded_env=["NO_PROXY"]), p.name),
    "a slug too long to resolve": lambda p: write_plan(p.parent, minimal_plan(slug="a" * 63), p.name),
}


def _bound(sock: socket.socket, path: Path) -> None:
    with sock:
        sock.bind(str(path))


# Broken only by what rendering makes of them: `context`, which renders nothing, accepts them.
RENDER_ONLY = {"a variable the templates set"}


def plan_file(tmp_path: Path, case: str) -> Path:
    path = tmp_path / "plan.yml"
    PLANS[case](path)
    json_path = path.with_suffix(".json")
    return json_path if json_path.exists() else path


def run_main(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def commands(plan: Path, tmp_path: Path) -> list[list[str]]:
    golden = tmp_path / "golden.yml"
    golden.write_text("untouched\n")
    good = write_plan(tmp_path, minimal_plan(slug="good"), "good.yml")
    return [
        ["render", str(plan)],
        ["render", str(plan), "-o", str(tmp_path / "out.yml")],
        ["render", "--out-dir", str(tmp_path / "batch"), str(plan), str(good)],
        ["context", str(plan)],
        ["check", str(plan), str(golden)],
    ]


@pytest.mark.parametrize("case", PLANS)
def test_a_hostile_plan_through_every_command(tmp_path, capsys, case):
    plan = plan_file(tmp_path, case)
    for argv in commands(plan, tmp_path):
        code, _, err = run_main(capsys, *argv)
        assert code in DOCUMENTED, f"{argv}: exit {code}\n{err}"
        assert code != ExitCode.INTERNAL, f"{argv}: exit {code}\n{err}"
        if code == ExitCode.OK and argv[0] == "context" and case in RENDER_ONLY:
            continue
        assert code != ExitCode.OK, f"{argv}: exit {code}\n{err}"
        assert "Traceback" not in err and "internal error" not in err, err
        assert "bottlegen: error:" in err, err
    assert not (tmp_path / "out.yml").exists(), "a failed render wrote its output"
    assert (tmp_path / "golden.yml").read_text() == "untouched\n"
    assert [p.name for p in (tmp_path / "batch").iterdir()] == ["good.yml"], "one bad plan stopped the batch"


def test_a_fifo_never_hangs_a_real_process(tmp_path):
    fifo = tmp_path / "fifo.yml"
    os.mkfifo(fifo)
    for argv in (
        ["render", str(fifo)],
        ["render", str(write_plan(tmp_path, minimal_plan())), "-o", str(fifo)],
        ["check", str(write_plan(tmp_path, minimal_plan(), "p.yml")), str(fifo)],
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "bottlegen.cli", *argv], capture_output=True, text=True, timeout=30, check=False
        )
        assert proc.returncode in (ExitCode.INVALID_PLAN, ExitCode.IO), proc.stderr
        assert "FIFO" in proc.stderr and "Traceback" not in proc.stderr
    assert fifo.exists() and not fifo.is_file()


# --- templates ---------------------------------------------------------------------------


def agent_with(extra: str) -> str:
    return (PACKAGED / "agent.yaml.j2").read_text() + extra


TEMPLATES: dict[str, dict[str, str | bytes]] = {
    "output with a recursive alias": {"agent.yaml.j2": agent_with("    labels: &l {a: *l}\n")},
    "output with an alias bomb": {
        "agent.yaml.j2": agent_with(
            "".join(f"    x-a{i}: &a{i} [{', '.join(['x' if i == 0 else f'*a{i - 1}'] * 10)}]\n" for i in range(8))
        )
    },
    "output with !!set": {"agent.yaml.j2": agent_with("    labels: !!set {a, b}\n")},
    "output with !!binary": {"agent.yaml.j2": agent_with("    labels: {a: !!binary aGk=}\n")},
    "output with a complex key": {"agent.yaml.j2": agent_with("    labels:\n      ? [a, b]\n      : c\n")},
    "output with .nan": {"agent.yaml.j2": agent_with("    stop_grace_period: .nan\n")},
    "output with an integer key": {"agent.yaml.j2": agent_with("    labels: {1: a}\n")},
    "output nested 100,000 deep": {"agent.yaml.j2": agent_with("    x-deep: " + "[" * 100_000 + "]" * 100_000 + "\n")},
    "output not a mapping": {"agent.yaml.j2": "- a\n"},
    "output with tabs": {"agent.yaml.j2": "services:\n\tagent: {}\n"},
    "a document without name": {
        "document.yaml.j2": (PACKAGED / "document.yaml.j2").read_text().replace("name: {{ project }}\n", "")
    },
    "a document whose name is a list": {
        "document.yaml.j2": (PACKAGED / "document.yaml.j2").read_text().replace("name: {{ project }}", "name: [a]")
    },
    "a template that is not UTF-8": {"agent.yaml.j2": b"services: \xff\n"},
    "a template with a syntax error": {"agent.yaml.j2": "{% if %}\n"},
    "a template that divides by zero": {"agent.yaml.j2": "x: {{ 1 // 0 }}\n"},
    "a template that recurses": {"agent.yaml.j2": "{% macro f() %}{{ f() }}{% endmacro %}x: {{ f() }}\n"},
    "a manifest that is not YAML": {"manifest.yaml": "document: [\n"},
    "a manifest that is a list": {"manifest.yaml": "- a\n"},
    "a manifest with a broken condition": {
        "manifest.yaml": (PACKAGED / "manifest.yaml")
        .read_text()
        .replace("plan.supervise is not none", "plan.supervise.x.y")
    },
    "a manifest without its agent": {
        "manifest.yaml": (PACKAGED / "manifest.yaml").read_text().replace("    role: agent\n", "")
    },
    "a manifest whose template is outside": {
        "manifest.yaml": (PACKAGED / "manifest.yaml")
        .read_text()
        .replace("template: agent.yaml.j2", "template: ../agent.yaml.j2")
    },
    "a manifest that is a FIFO": {"manifest.yaml": "FIFO"},
    "a template that is a link to /dev/zero": {"agent.yaml.j2": "->/dev/zero"},
}


def template_dir(tmp_path: Path, case: str) -> Path:
    directory = tmp_path / "ovr"
    directory.mkdir()
    for name, text in TEMPLATES[case].items():
        path = directory / name
        if text == "FIFO":
            os.mkfifo(path)
        elif isinstance(text, str) and text.startswith("->"):
            path.symlink_to(text[2:])
        elif isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text)
    return directory


@pytest.mark.parametrize("case", TEMPLATES)
def test_a_hostile_template_through_every_command(tmp_path, capsys, case):
    templates = template_dir(tmp_path, case)
    plan = write_plan(tmp_path, full_plan())
    for argv in commands(plan, tmp_path):
        code, _, err = run_main(capsys, argv[0], "--templates", str(templates), *argv[1:])
        assert code in DOCUMENTED - {ExitCode.INTERNAL}, f"{argv}: exit {code}\n{err}"
        assert "Traceback" not in err, err
        if argv[0] != "context":  # context renders no template but the manifest's conditions
            assert code != ExitCode.OK, f"{argv} accepted {case}"
    code, _, err = run_main(capsys, "templates", "list", "--templates", str(templates))
    assert code in DOCUMENTED - {ExitCode.INTERNAL} and "Traceback" not in err, err
    assert not (tmp_path / "out.yml").exists()
    assert (tmp_path / "golden.yml").read_text() == "untouched\n"


# --- stdout -------------------------------------------------------------------------------

STDOUT_COMMANDS = [
    ["render", str(REPO / "examples" / "minimal.yml")],
    ["schema"],
    ["context", str(REPO / "examples" / "minimal.yml")],
    ["templates", "list"],
    ["--help"],
    ["render", "--help"],
    ["--version"],
]


@pytest.mark.parametrize("argv", STDOUT_COMMANDS, ids=" ".join)
def test_a_full_stdout_is_exit_7_with_a_message(argv):
    with open("/dev/full", "w") as full:
        proc = subprocess.run(
            [sys.executable, "-m", "bottlegen.cli", *argv], stdout=full, stderr=subprocess.PIPE, text=True, check=False
        )
    assert proc.returncode == ExitCode.IO, proc.stderr
    assert "No space left on device" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("argv", STDOUT_COMMANDS, ids=" ".join)
def test_a_closed_pipe_is_quiet(argv):
    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "bottlegen.cli", *argv], stdout=write, stderr=subprocess.PIPE, text=True, check=False
        )
    finally:
        os.close(write)
    assert proc.returncode == ExitCode.IO, proc.stderr
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr
    assert "error" not in proc.stderr.replace("warning", "")


# --- outputs ------------------------------------------------------------------------------


def test_output_onto_a_device_or_the_plan_is_refused(tmp_path):
    plan = write_plan(tmp_path, minimal_plan())
    proc = run_cli("render", str(plan), "-o", "/dev/null")
    assert proc.returncode == ExitCode.IO and "not a regular file" in proc.stderr
    before = plan.read_bytes()
    proc = run_cli("render", str(plan), "-o", str(plan))
    assert proc.returncode == ExitCode.USAGE and "is the plan" in proc.stderr
    proc = run_cli("render", "--out-dir", str(tmp_path), str(plan.rename(tmp_path / "demo.yml")))
    assert proc.returncode == ExitCode.USAGE and "is the plan" in proc.stderr
    assert (tmp_path / "demo.yml").read_bytes() == before


def test_check_compares_bytes(tmp_path):
    plan = write_plan(tmp_path, minimal_plan())
    golden = tmp_path / "golden.yml"
    assert run_cli("render", str(plan), "-o", str(golden)).returncode == 0
    assert run_cli("check", str(plan), str(golden)).returncode == 0
    golden.write_bytes(golden.read_bytes().replace(b"\n", b"\r\n"))
    proc = run_cli("check", str(plan), str(golden))
    assert proc.returncode == ExitCode.DRIFT and "CRLF" in proc.stderr
    golden.write_bytes(b"\xff\xfe" + golden.read_bytes())
    proc = run_cli("check", str(plan), str(golden))
    assert proc.returncode == ExitCode.DRIFT and "not UTF-8" in proc.stderr


@pytest.mark.parametrize("signum", ["SIGTERM", "SIGHUP", "SIGINT"])
def test_a_signal_during_a_write_leaves_no_temporary_file(tmp_path, signum):
    """The signal arrives while the file is being written (os.fsync is held up)."""
    import signal

    out = tmp_path / "out" / "docker-compose.yml"
    out.parent.mkdir()
    out.write_text("old\n")
    plan = write_plan(tmp_path, minimal_plan())
    script = (
        "import os, signal, sys\n"
        "from bottlegen import cli\n"
        f"os.fsync = lambda fd: os.kill(os.getpid(), signal.{signum})\n"
        f"sys.exit(cli.main(['render', {str(plan)!r}, '-o', {str(out)!r}]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 128 + getattr(signal, signum), proc.stderr
    assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in out.parent.iterdir()) == ["docker-compose.yml"] and out.read_text() == "old\n"


def test_a_temporary_file_a_killed_render_left_is_cleaned(tmp_path):
    plan = write_plan(tmp_path, minimal_plan())
    out = tmp_path / "docker-compose.yml"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    stale = tmp_path / f".docker-compose.yml.{dead.stdout.strip()}.abc123.tmp"
    alive = tmp_path / f".docker-compose.yml.{os.getpid()}.abc123.tmp"  # a render still running
    stale.write_text("half")
    alive.write_text("half")
    assert run_cli("render", str(plan), "-o", str(out)).returncode == 0
    assert not stale.exists() and alive.exists()
