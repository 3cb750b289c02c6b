"""The operators' workflow: goldens in git that any clone reproduces, a fleet checked in one
process, and the command that fixes a drift."""

from __future__ import annotations

import shlex
import shutil

from helpers import compose_config, minimal_plan, run_cli, write_plan

from bottlegen.resources import templates_dir


def test_an_override_folder_is_named_one_way_however_it_is_spelled(tmp_path):
    (tmp_path / "ops" / "t").mkdir(parents=True)
    shutil.copy(templates_dir() / "agent.yaml.j2", tmp_path / "ops" / "t" / "agent.yaml.j2")
    plan = write_plan(tmp_path, minimal_plan())
    outputs = {
        spelling: run_cli("render", "-q", "--templates", spelling, str(plan), cwd=tmp_path).stdout
        for spelling in ("ops/t", "./ops/t", "ops/t/", str(tmp_path / "ops" / "t"), "ops/../ops/t")
    }
    assert len(set(outputs.values())) == 1, outputs
    assert "# from template agent.yaml.j2 (override ops/t)" in outputs["ops/t"]


def test_the_drift_hint_is_the_exact_command_that_fixes_it(tmp_path):
    (tmp_path / "my templates").mkdir()
    plan = write_plan(tmp_path, minimal_plan(), "team plan.yml")
    golden = tmp_path / "golden dir" / "out.yml"
    golden.parent.mkdir()
    golden.write_text("stale\n")
    proc = run_cli("check", "--templates", "my templates", str(plan), str(golden), cwd=tmp_path)
    assert proc.returncode == 1
    [hint] = [line for line in proc.stderr.splitlines() if "has drifted" in line]
    command = hint.split("run `", 1)[1].rstrip("`")
    words = shlex.split(command)
    assert words == ["bottlegen", "render", "--templates", "my templates", str(plan), "-o", str(golden)]
    fixed = run_cli(*words[1:], "-q", cwd=tmp_path)  # run as the hint says
    assert fixed.returncode == 0, fixed.stderr
    assert run_cli("check", "--templates", "my templates", str(plan), str(golden), cwd=tmp_path).returncode == 0


def test_check_out_dir_checks_a_fleet_in_one_process(tmp_path):
    plans = [write_plan(tmp_path, minimal_plan(slug=f"team-{i}"), f"p{i}.yml") for i in range(4)]
    out = tmp_path / "goldens"
    assert run_cli("render", "-q", "--out-dir", str(out), *map(str, plans)).returncode == 0
    proc = run_cli("check", "--out-dir", str(out), *map(str, plans))
    assert proc.returncode == 0 and "checked 4 plan(s): 0 drifted" in proc.stderr and proc.stdout == ""
    (out / "team-1.yml").write_text("edited by hand\n")
    (out / "team-3.yml").unlink()
    proc = run_cli("check", "--out-dir", str(out), *map(str, plans))
    assert proc.returncode == 1 and proc.stdout == ""  # one line each, no diff (-v shows it)
    drifted = [line for line in proc.stderr.splitlines() if "has drifted" in line]
    assert len(drifted) == 2 and "(it does not exist)" in drifted[1]
    assert all(f"bottlegen render --out-dir {out} " in line for line in drifted)
    assert "checked 4 plan(s): 2 drifted" in proc.stderr
    assert run_cli("check", "-v", "--out-dir", str(out), *map(str, plans)).stdout.startswith("--- ")
    bad = write_plan(tmp_path, minimal_plan(slug="BAD"), "bad.yml")
    proc = run_cli("check", "--out-dir", str(out), str(plans[0]), str(bad))
    assert proc.returncode == 3 and f"{bad}: " in proc.stderr  # a bad plan is its own error; the rest is checked


def test_check_takes_plan_and_file_or_a_fleet(tmp_path):
    plan = write_plan(tmp_path, minimal_plan())
    assert run_cli("check", str(plan)).returncode == 2
    assert run_cli("check", str(plan), "a.yml", "b.yml").returncode == 2


def test_goldens_are_reproduced_by_a_clone_at_another_path(tmp_path):
    """The same plans, templates and command in two clones: the same bytes. A plan's
    relative host paths are written relative to the golden's folder, as compose reads them."""
    first = tmp_path / "clone-a" / "repo"
    (first / "plans" / "files").mkdir(parents=True)
    (first / "ops").mkdir()
    shutil.copy(templates_dir() / "agent.yaml.j2", first / "ops" / "agent.yaml.j2")
    for name in ("pipelock.yaml", "ca.pem", "agent.env"):
        (first / "plans" / "files" / name).write_text("stand-in\n")
    plan = minimal_plan(slug="team", env_file="files/agent.env", settings={"build_context": "files"})
    plan["proxy"].update(yaml_path="files/pipelock.yaml", ca_cert_host_path="files/ca.pem")
    write_plan(first / "plans", plan, "team.yml")
    render = ("render", "-q", "--templates", "ops", "--out-dir", "goldens", "plans/team.yml")
    assert run_cli(*render, cwd=first).returncode == 0
    golden = (first / "goldens" / "team.yml").read_text()
    assert "source: ../plans/files/pipelock.yaml" in golden and "source: ../plans/files/ca.pem" in golden
    assert "env_file:\n      - ../plans/files/agent.env\n" in golden
    assert "source: /srv/b/ca-key.pem" in golden  # given absolute: kept absolute
    assert str(tmp_path) not in golden
    second = tmp_path / "elsewhere" / "deeper" / "repo"
    shutil.copytree(first, second)
    proc = run_cli("check", "--templates", "ops", "--out-dir", "goldens", "plans/team.yml", cwd=second)
    assert proc.returncode == 0, proc.stderr
    one = run_cli("check", "--templates", "ops", "plans/team.yml", "goldens/team.yml", cwd=second)
    assert one.returncode == 0, one.stderr
    model = compose_config(second / "goldens" / "team.yml")  # compose reads them against the golden's folder
    sources = [v["source"] for v in model["services"]["pipelock"]["volumes"]]
    assert sources[:2] == [str(second / "plans" / "files" / n) for n in ("pipelock.yaml", "ca.pem")]


def test_a_plan_outside_the_current_folder_keeps_absolute_paths(tmp_path):
    """Relative paths only within the folder bottlegen runs from (a repository's root)."""
    (tmp_path / "files").mkdir()
    plan = minimal_plan()
    plan["proxy"]["yaml_path"] = "files/pipelock.yaml"
    path = write_plan(tmp_path, plan)
    elsewhere = tmp_path / "run-from"
    elsewhere.mkdir()
    out = tmp_path / "out" / "x.yml"
    assert run_cli("render", "-q", str(path), "-o", str(out), cwd=elsewhere).returncode == 0
    assert f"source: {tmp_path / 'files' / 'pipelock.yaml'}" in out.read_text()
