"""`bottlegen init`: a repository that renders and checks as it is, a starter plan generated
from the plan schema (every key, the schema's own words), and nothing ever overwritten."""

from __future__ import annotations

from pathlib import Path

from helpers import run_cli

from bottlegen import explain, resources, starter


def test_init_makes_a_repository_that_renders_and_checks_as_it_is(tmp_path: Path):
    proc = run_cli("init", "team-red", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    root = tmp_path / "team-red"
    plan = root / "plans" / "team-red.yml"
    assert (root / "bottlegen.toml").is_file() and plan.is_file() and (root / "goldens").is_dir()
    assert run_cli("render", "-q", cwd=root).returncode == 0  # the project's fleet, as the hooks render it
    assert (root / "goldens" / "team-red.yml").is_file()
    assert run_cli("check", "-q", cwd=root).returncode == 0
    schema = starter.schema_line(plan.read_text())
    assert (
        schema is not None
        and (plan.parent / schema).resolve() == (resources.schema_dir() / resources.PLAN_SCHEMA).resolve()
    )


def test_the_starter_plan_has_every_key_of_the_schema_with_its_description():
    text = starter.starter_plan("demo", "plan.schema.json")
    schema = resources.load_schema(resources.PLAN_SCHEMA)
    for path in explain.key_paths(schema):
        name = path.rsplit(".", 1)[-1].removesuffix("[]")
        if name in ("*", "$schema"):
            continue
        assert f"# {name}:" in text or f"- {name}:" in text or f"  {name}:" in text, path
    described = explain.explain(schema, "hardening").schema["description"].split(".")[0]
    assert f"# hardening: {described}" in text and "# hardening: none" in text  # the note, then the default


def test_init_never_overwrites_and_says_which_file(tmp_path: Path):
    assert run_cli("init", cwd=tmp_path).returncode == 0
    project = tmp_path / "bottlegen.toml"
    project.write_text("# mine\n")
    again = run_cli("init", cwd=tmp_path)
    assert again.returncode == 7 and f"{Path('.') / 'bottlegen.toml'} exists" in again.stderr
    assert project.read_text() == "# mine\n"
