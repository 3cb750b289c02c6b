"""The project file (bottlegen.toml, or [tool.bottlegen] in pyproject.toml): found upward,
used by every command (templates, the fleet, the state root), overridden by flags and the
environment, and refused with its file and line when it says what bottlegen does not read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import REPO, minimal_plan, run_cli, write_plan


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A repository with a project file, a plan and an ejected, edited agent template."""
    root = tmp_path / "ops"
    (root / "plans").mkdir(parents=True)
    (root / "templates").mkdir()
    (root / "deep" / "er").mkdir(parents=True)
    write_plan(root / "plans", minimal_plan(slug="red"), "red.yml")
    source = (REPO / "templates" / "agent.yaml.j2").read_text()
    (root / "templates" / "agent.yaml.j2").write_text(
        source.replace("    image:", "    labels: [edited=yes]\n    image:", 1)
    )
    (root / "bottlegen.toml").write_text(
        '# the ops repository\ntemplates = ["templates"]\nplans = "plans"\ngoldens = "goldens"\nstate_dir = "state"\n'
    )
    return root


def test_every_setting_is_found_upward_and_says_where_it_came_from(project: Path):
    proc = run_cli("config", "--format", "json", cwd=project / "deep" / "er")
    assert proc.returncode == 0, proc.stderr
    said = json.loads(proc.stdout)
    assert said["project file"]["value"] == str(project / "bottlegen.toml")
    assert said["templates"] == {"value": [str(project / "templates")], "from": f"{project / 'bottlegen.toml'}:2"}
    assert said["goldens"] == {"value": str(project / "goldens"), "from": f"{project / 'bottlegen.toml'}:4"}
    assert said["state_dir"]["value"] == str(project / "state") and said["state_dir"]["from"].endswith("toml:5")
    text = run_cli("config", cwd=project).stdout
    assert f"templates:     {project / 'templates'}  ({project / 'bottlegen.toml'}:2)" in text


def test_flags_and_the_environment_win_over_the_file(project: Path, tmp_path: Path):
    other = tmp_path / "other"
    other.mkdir()
    said = json.loads(run_cli("config", "--format", "json", "--templates", str(other), cwd=project).stdout)
    assert said["templates"] == {"value": [str(other)], "from": "--templates"}
    said = json.loads(
        run_cli("config", "--format", "json", cwd=project, env={"BOTTLEGEN_TEMPLATES": str(other)}).stdout
    )
    assert said["templates"]["from"] == "$BOTTLEGEN_TEMPLATES"


def test_render_and_check_use_the_projects_templates_and_fleet_with_no_args(project: Path):
    rendered = run_cli("render", "-q", cwd=project)  # the fleet: plans/ into goldens/
    assert rendered.returncode == 0, rendered.stderr
    golden = project / "goldens" / "red.yml"
    assert "edited=yes" in golden.read_text()  # the project's ejected template, with no --templates
    assert run_cli("check", "-q", cwd=project).returncode == 0
    template = project / "templates" / "agent.yaml.j2"
    template.write_text(template.read_text().replace("edited=yes", "edited=again"))
    drift = run_cli("check", "-q", "--fleet", "--diff", cwd=project / "deep")  # the hooks' way, from anywhere below
    assert drift.returncode == 1 and "edited=again" in drift.stdout
    one = run_cli("render", "plans/red.yml", cwd=project)  # a PLAN given: rendered alone, to stdout
    assert one.returncode == 0 and "edited=again" in one.stdout


def test_pyproject_tool_table_works_the_same(tmp_path: Path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "ops"\n\n[tool.bottlegen]\ngoldens = "out"\n')
    said = json.loads(run_cli("config", "--format", "json", cwd=tmp_path).stdout)
    assert said["goldens"] == {"value": str(tmp_path / "out"), "from": f"{tmp_path / 'pyproject.toml'}:5"}
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "ops"\n')  # no table: not a project file
    assert json.loads(run_cli("config", "--format", "json", cwd=tmp_path).stdout)["project file"]["value"] is None


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (
            'plans = "plans"\ncolour = "red"\n',
            ":2: unknown key 'colour'; a project file has templates, plans, goldens, state_dir",
        ),
        ('templates = "one"\n', ":1: templates is str, not a list of folders"),
        ("goldens = [1]\n", ":1: goldens is list, not a folder (a string)"),
        ("plans = \n", "not TOML"),
    ],
)
def test_what_the_file_says_wrong_is_exit_2_at_its_line(tmp_path: Path, text: str, says: str):
    (tmp_path / "bottlegen.toml").write_text(text)
    write_plan(tmp_path, minimal_plan())
    proc = run_cli("render", "plan.yml", cwd=tmp_path)
    assert proc.returncode == 2 and says in proc.stderr, proc.stderr
    assert proc.stdout == ""  # nothing rendered
