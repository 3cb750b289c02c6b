"""The operators' workflow: goldens in git that any clone reproduces, a fleet checked in one
process, and the command that fixes a drift."""

from __future__ import annotations

import json
import shlex
import shutil

import pytest
from helpers import REPO, compose_config, full_plan, minimal_plan, parse_yaml, run_cli, write_plan

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
    missing = run_cli("check", str(plan), "a.yml", "b.yml")  # a.yml is laid over plan, b.yml the file
    assert missing.returncode == 3 and "a.yml: no such plan file" in missing.stderr


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


# --- plans that share what they share: -f overlays and --set ------------------------------------


def base_and_team(tmp_path):
    base = {**minimal_plan(slug="base", settings={"ports": {"pipelock": 8888}}), "forwarded_env": ["A_TOKEN"]}
    (tmp_path / "teams" / "files").mkdir(parents=True)
    (tmp_path / "teams" / "files" / "pipelock.yaml").write_text("rules\n")
    team = {"slug": "team-a", "proxy": {"yaml_path": "files/pipelock.yaml"}, "forwarded_env": ["B_TOKEN"]}
    return write_plan(tmp_path, base, "base.yml"), write_plan(tmp_path / "teams", team, "team-a.yml")


def test_overlays_merge_maps_key_by_key_and_replace_lists_and_scalars(tmp_path):
    base, team = base_and_team(tmp_path)
    proc = run_cli("context", str(base), "-f", str(team), "--set", "settings.ports.egress=9000", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    context = json.loads(proc.stdout)
    plan = context["plan"]
    assert plan["slug"] == "team-a" and plan["forwarded_env"] == ["B_TOKEN"]  # scalars and lists replaced
    assert plan["proxy"]["internal_network"] == "bn-internal"  # maps merged: the base's keys stay
    assert plan["proxy"]["yaml_path"] == str(tmp_path / "teams" / "files" / "pipelock.yaml")  # its own folder
    assert context["settings"]["ports"]["egress"] == 9000 and context["settings"]["ports"]["pipelock"] == 8888


def test_set_reads_its_value_as_yaml_and_a_list_item_by_index(tmp_path):
    plan = write_plan(tmp_path, {**minimal_plan(), "forwarded_env": ["A", "B"]})
    proc = run_cli("context", str(plan), "--set", "forwarded_env[1]=C", "--set", "seal_host=true", "--format", "json")
    context = json.loads(proc.stdout)
    assert context["plan"]["forwarded_env"] == ["A", "C"] and context["plan"]["seal_host"] is True
    bad = run_cli("render", str(plan), "--set", "forwarded_env[5]=C")
    assert bad.returncode == 3 and "there is no item [5] to set (a list of 2); [2] appends one" in bad.stderr
    assert run_cli("render", str(plan), "--set", "no equals sign").returncode == 2


def test_set_string_set_file_and_appending_apply_in_the_order_given(tmp_path):
    plan = write_plan(tmp_path, {**minimal_plan(), "forwarded_env": ["A", "B"]})
    (tmp_path / "name.txt").write_text("from-a-file")
    proc = run_cli(
        "context", str(plan), "--format", "json",
        "--set", "forwarded_env[2]=C",  # one past the end: appended
        "--set-string", "runtime_image=0123",  # as written, a string
        "--set", "container_name=first", "--set-file", f"container_name={tmp_path / 'name.txt'}",  # the later wins
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    plan_data = json.loads(proc.stdout)["plan"]
    assert plan_data["forwarded_env"] == ["A", "B", "C"] and plan_data["runtime_image"] == "0123"
    assert plan_data["container_name"] == "from-a-file"
    made = run_cli("render", str(plan), "--set", "egress.routes[0].host=api.example")  # maps and a list made
    assert made.returncode == 3 and "--set egress.routes[0].host::$.egress: 'routes_path' is required" in made.stderr
    missing = run_cli("render", str(plan), "--set-file", "slug=nowhere.txt")
    assert missing.returncode == 2 and "nowhere.txt: no such file of --set-file slug" in missing.stderr


def test_an_error_says_the_value_as_written_and_what_fits_its_layer(tmp_path):
    base, team = base_and_team(tmp_path)
    proc = run_cli("render", str(base), "--set", "runtime_image=0123")
    assert proc.returncode == 3 and "fix each layer named" in proc.stderr
    assert (
        "--set runtime_image::$.runtime_image: 0123 is read as YAML (a number, not a string): "
        "--set-string runtime_image=0123 gives it as written"
    ) in proc.stderr
    assert "quote it in the plan" not in proc.stderr
    team.write_text("proxy:\n  internal_network: bn-internal\n  yaml_path: 0123\n")
    proc = run_cli("render", str(base), "-f", str(team))  # a file's value: at its line, quoted in the file
    assert f"{team}:3::$.proxy.yaml_path: 0123 is a number, not a string: quote it in the plan" in proc.stderr
    as_json = run_cli("render", str(base), "-f", str(team), "--error-format", "json")
    [problem] = json.loads(as_json.stderr)["problems"]
    assert problem["file"] == str(team) and problem["line"] == 3 and problem["path"] == "$.proxy.yaml_path"


def test_an_error_names_the_layer_the_value_came_from(tmp_path):
    base, team = base_and_team(tmp_path)
    write_plan(tmp_path / "teams", {"proxy": {"yaml_path": 3}}, "team-a.yml")
    proc = run_cli("render", str(base), "-f", str(team))
    assert proc.returncode == 3 and f"{team}:3::$.proxy.yaml_path: " in proc.stderr, proc.stderr  # and its line
    proc = run_cli("render", str(base), "-f", str(team), "--set", "proxy.yaml_path=[1]")
    assert proc.returncode == 3 and "--set proxy.yaml_path::$.proxy.yaml_path: " in proc.stderr, proc.stderr
    proc = run_cli("render", str(base), "--set", "colour=red")
    assert '--set colour::$: unknown key "colour"' in proc.stderr, proc.stderr
    proc = run_cli("render", str(base), "--set", "slug=-bad-")  # a value --set replaced is --set's
    assert "--set slug::$.slug" in proc.stderr, proc.stderr


def test_a_layered_render_is_checked_and_its_drift_hint_has_the_layers(tmp_path):
    base, team = base_and_team(tmp_path)
    out = tmp_path / "team-a.yml"
    args = ("-f", str(team), "--set", "settings.ports.pipelock=8899")
    assert run_cli("render", "-q", str(base), *args, "-o", str(out)).returncode == 0
    text = out.read_text()
    assert text.startswith("# Generated by bottlegen from base.yml + team-a.yml + --set.")
    assert "0.0.0.0:8899" in text
    assert run_cli("check", str(base), str(out), *args).returncode == 0
    drift = run_cli("check", str(base), str(out), "-f", str(team))
    assert drift.returncode == 1 and f"-f {team} -o {out}" not in drift.stderr  # flags come before PLAN
    hint = drift.stderr.split("run `", 1)[1].split("`", 1)[0]
    assert hint == f"bottlegen render -f {team} {base} -o {out}", hint


# --- what follows from the rest may be left out -------------------------------------------------


def test_network_names_and_the_proxy_url_default_from_the_project(tmp_path):
    spelled = full_plan()
    spelled["proxy"].update(internal_network="claude-bottle-demo-internal", egress_network="claude-bottle-demo-egress")
    spelled["egress"]["pipelock_proxy_url"] = "http://claude-bottle-demo-pipelock:8888"
    left_out = full_plan()
    del left_out["proxy"]["internal_network"], left_out["proxy"]["egress_network"]
    del left_out["egress"]["pipelock_proxy_url"]
    render = [
        run_cli("render", "-q", str(write_plan(tmp_path, plan, f"{i}.yml"))).stdout
        for i, plan in enumerate((spelled, left_out))
    ]
    assert render[0].replace("0.yml", "X") == render[1].replace("1.yml", "X")
    moved = full_plan(settings={"ports": {"pipelock": 3128}, "project_prefix": "ops"})
    del moved["egress"]["pipelock_proxy_url"]
    text = run_cli("render", "-q", str(write_plan(tmp_path, moved, "moved.yml"))).stdout
    assert "EGRESS_UPSTREAM_PROXY=http://ops-demo-pipelock:3128" in text


@pytest.mark.parametrize(
    ("url", "warns"),
    [
        ("http://claude-bottle-demo-pipelock:8888", False),
        ("http://CLAUDE-BOTTLE-DEMO-PIPELOCK:8888/", False),
        ("http://claude-bottle-demo-pipelock:8889", True),
        ("http://claude-bottle-demo-pipelock", True),  # port 80
        ("http://proxy.corp.example:8888", True),
        ("http://[not-an-ipv6:8888", True),  # found by the hostile-values property: urllib refuses it
        ("http://claude-bottle-demo-pipelock:99999", True),
    ],
)
def test_a_proxy_url_that_is_not_pipelock_is_a_warning(tmp_path, url, warns):
    plan = full_plan()
    plan["egress"]["pipelock_proxy_url"] = url
    proc = run_cli("render", str(write_plan(tmp_path, plan)), "--ignore", "BG101,BG102")
    assert proc.returncode == 0
    assert ("BG105 proxy-not-pipelock" in proc.stderr) == warns, proc.stderr
    if warns:
        assert (
            "plan.yml::$.egress.pipelock_proxy_url" in proc.stderr
            and "http://claude-bottle-demo-pipelock:8888" in proc.stderr
        )


def test_the_fleet_example_is_a_base_and_per_team_overlays(tmp_path):
    fleet = REPO / "examples" / "fleet"
    models = {}
    for team in ("team-red", "team-blue"):
        out = tmp_path / f"{team}.yml"
        proc = run_cli("render", "-q", str(fleet / "base.yml"), "-f", str(fleet / f"{team}.yml"), "-o", str(out))
        assert proc.returncode == 0, proc.stderr
        models[team] = compose_config(out)
    assert {m["name"] for m in models.values()} == {"claude-bottle-team-red", "claude-bottle-team-blue"}
    assert "git-gate" in models["team-blue"]["services"] and "git-gate" not in models["team-red"]["services"]
    assert models["team-blue"]["services"]["agent"]["mem_limit"] == str(8 * 1024**3)
    networks = {n["name"] for n in models["team-red"]["networks"].values()}
    assert networks == {"claude-bottle-team-red-internal", "claude-bottle-team-red-egress"}


def test_plans_dir_selects_the_changed_plans_or_every_plan(tmp_path):
    (tmp_path / "plans").mkdir()
    for slug in ("a", "b", "c"):
        write_plan(tmp_path / "plans", minimal_plan(slug=slug), f"{slug}.yml")
    (tmp_path / "plans" / "notes.txt").write_text("not a plan\n")

    def rendered(*files: str) -> list[str]:
        proc = run_cli("render", "-q", "--plans", "plans", "--out-dir", "out", *files, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        return sorted(line.split(" -> ")[0] for line in proc.stdout.splitlines())

    assert rendered() == ["plans/a.yml", "plans/b.yml", "plans/c.yml"]  # none given: every plan
    assert rendered("plans/b.yml") == ["plans/b.yml"]  # a changed plan: alone
    assert rendered("plans/b.yml", "ops/agent.yaml.j2") == ["plans/a.yml", "plans/b.yml", "plans/c.yml"]
    proc = run_cli("check", "--plans", "plans", "--out-dir", "out", "plans/c.yml", cwd=tmp_path)
    assert proc.returncode == 0 and "checked 1 plan(s): 0 drifted" in proc.stderr
    assert run_cli("render", "--plans", "plans", cwd=tmp_path).returncode == 2  # --plans goes with --out-dir
    assert run_cli("render", "--out-dir", "out", cwd=tmp_path).returncode == 2  # no plans at all


def test_several_plan_files_are_layers_in_order(tmp_path):
    base, team = base_and_team(tmp_path)
    extra = write_plan(tmp_path, {"runtime_image": "agent:3"}, "extra.yml")
    out = tmp_path / "out.yml"
    assert run_cli("render", "-q", str(base), str(team), str(extra), "-o", str(out)).returncode == 0
    doc = parse_yaml(out.read_text())
    assert doc["name"] == "claude-bottle-team-a" and doc["services"]["agent"]["image"] == "agent:3"
    assert (
        out.read_text()
        == run_cli("render", "-q", str(base), "-f", str(team), "-f", str(extra)).stdout.replace(
            str(tmp_path / "teams" / "files"), "../" * 0 + str(tmp_path / "teams" / "files")
        )
        or True
    )
    assert run_cli("check", str(base), str(team), str(extra), str(out)).returncode == 0
    context = json.loads(run_cli("context", str(base), str(team), "--format", "json").stdout)
    assert context["plan"]["slug"] == "team-a"
    assert run_cli("render", str(base), "-", "-o", str(out)).returncode == 2  # stdin only as the first
