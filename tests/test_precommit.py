"""The shipped pre-commit hooks, run by the real pre-commit (`pre-commit try-repo`) on a
scratch repository of plans and goldens, with no args: the convention is plans/ and goldens/.

pre-commit builds the hooks' environment from this repository (pip, from PyPI, once per
session); the scratch repository is committed, so each run sees exactly its files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO, minimal_plan, write_plan

PRE_COMMIT = Path(sys.executable).parent / "pre-commit"


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """pre-commit's cache of hook environments, shared by this module's runs."""
    return tmp_path_factory.mktemp("pre-commit-home")


@pytest.fixture
def repo(tmp_path) -> Path:
    """A git repository with two plans and their goldens, rendered and committed."""
    repo = tmp_path / "ops"
    (repo / "plans").mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "ops@example.com")
    git(repo, "config", "user.name", "ops")
    for slug in ("red", "blue"):
        write_plan(repo / "plans", minimal_plan(slug=slug), f"{slug}.yml")
    subprocess.run(
        [Path(sys.executable).parent / "bottlegen", "render", "-q", "--plans", "plans", "--out-dir", "goldens"],
        cwd=repo,
        check=True,
    )
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "plans and goldens")
    return repo


def try_repo(repo: Path, home: Path, hook: str) -> subprocess.CompletedProcess[str]:
    """`pre-commit try-repo` of this repository's hooks, on every file of repo."""
    env = {**os.environ, "PRE_COMMIT_HOME": str(home), "PATH": f"{PRE_COMMIT.parent}:{os.environ['PATH']}"}
    env.pop("BOTTLEGEN_TEMPLATES", None)
    argv = [str(PRE_COMMIT), "try-repo", str(REPO), hook, "--all-files", "--color", "never"]
    return subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True, timeout=900)


def commit_all(repo: Path) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", "change")


def test_the_hooks_pass_on_matching_goldens_fail_on_drift_and_fix_rewrites(repo, home):
    if not PRE_COMMIT.exists() or shutil.which("git") is None:
        pytest.fail("pre-commit and git are needed: pip install -e '.[test]' installs pre-commit")
    passed = try_repo(repo, home, "bottlegen-check")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "Passed" in passed.stdout

    # A plan changes, its golden does not: the check fails with the diff.
    write_plan(repo / "plans", minimal_plan(slug="red", runtime_image="agent:2"), "red.yml")
    commit_all(repo)
    drift = try_repo(repo, home, "bottlegen-check")
    assert drift.returncode == 1 and "Failed" in drift.stdout, drift.stdout
    assert "+    image: agent:2" in drift.stdout and "goldens/red.yml has drifted from plans/red.yml" in drift.stdout
    assert "goldens/blue.yml" not in drift.stdout.replace("checked", "")  # only what drifted is named

    # The fix hook rewrites the golden and fails, as formatters do; then all passes.
    before = (repo / "goldens" / "blue.yml").stat().st_mtime_ns
    fixed = try_repo(repo, home, "bottlegen-fix")
    assert fixed.returncode == 1 and "files were modified by this hook" in fixed.stdout, fixed.stdout
    assert "image: agent:2" in (repo / "goldens" / "red.yml").read_text()
    assert (repo / "goldens" / "blue.yml").stat().st_mtime_ns == before  # unchanged bytes: not rewritten
    commit_all(repo)
    assert try_repo(repo, home, "bottlegen-fix").returncode == 0
    assert try_repo(repo, home, "bottlegen-check").returncode == 0


def test_an_ejected_template_named_by_the_project_file_is_checked_with_no_args(repo, home):
    """bottlegen.toml names the ejected templates: an edit to one fails the check with the
    diff (no --templates in the hook's args), and undoing it passes again."""
    ejected = repo / "ops-templates"
    shutil.copytree(REPO / "templates", ejected)
    (repo / "bottlegen.toml").write_text('templates = ["ops-templates"]\n')
    commit_all(repo)
    assert try_repo(repo, home, "bottlegen-check").returncode == 1  # the goldens now name the override
    assert try_repo(repo, home, "bottlegen-fix").returncode == 1  # which the fix hook writes
    commit_all(repo)
    assert try_repo(repo, home, "bottlegen-check").returncode == 0
    agent = ejected / "agent.yaml.j2"
    pristine = agent.read_text()
    agent.write_text(pristine.replace("    image:", "    labels: [team=ops]\n    image:", 1))
    commit_all(repo)
    drift = try_repo(repo, home, "bottlegen-check")
    assert drift.returncode == 1 and "team=ops" in drift.stdout, drift.stdout
    agent.write_text(pristine)
    commit_all(repo)
    assert try_repo(repo, home, "bottlegen-check").returncode == 0
