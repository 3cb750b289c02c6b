"""What the compose schema cannot say, bottlegen checks itself, and the lints."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from helpers import REPO, compose_config_run, full_plan, minimal_plan, parse_yaml, run_cli, write_plan, write_tree

from bottlegen import DocumentError, Renderer
from bottlegen.compose import check, policy

PIPELOCK = (REPO / "templates" / "pipelock.yaml.j2").read_text()
AGENT = (REPO / "templates" / "agent.yaml.j2").read_text()


def override(tmp_path: Path, **templates: str) -> Path:
    return write_tree(tmp_path / "ovr", templates)


def compose_verdict(renderer: Renderer, plan, tmp_path: Path, monkeypatch) -> subprocess.CompletedProcess:
    """What the real compose says of the document when bottlegen's own rules are skipped."""
    monkeypatch.setattr(check, "check_rules", lambda merged: None)
    monkeypatch.setattr(policy, "enforce", lambda *args: None)
    text = renderer.render_data(plan, "plan.yml", tmp_path, "plan.yml").text
    monkeypatch.undo()
    path = tmp_path / "unchecked.yml"
    path.write_text(text)
    return compose_config_run(path)


CASES = {
    "depends_on a service not rendered": (
        {"agent.yaml.j2": AGENT.replace("    depends_on: {{", "    depends_on: {{ ['ghost'] + ")},
        minimal_plan(),
        r"\$\.services\.agent\.depends_on in template agent\.yaml\.j2 \(override .*\): depends on 'ghost', which is not rendered",
        "depends on undefined service",
    ),
    "a network that is not declared": (
        {
            "pipelock.yaml.j2": PIPELOCK.replace(
                "    networks: {{ m.both_networks(service.container_name) }}", "    networks: [internal, outside]"
            )
        },
        minimal_plan(),
        r"\$\.services\.pipelock\.networks\.outside .*: network 'outside' is not declared",
        "undefined network",
    ),
    "a relative bind source": (
        {"pipelock.yaml.j2": PIPELOCK + "      - {type: bind, source: ./conf, target: /conf}\n"},
        minimal_plan(),
        r"\$\.services\.pipelock\.volumes\[3\] .*: bind source './conf' is relative",
        None,
    ),
    "a dependency cycle": (
        {"pipelock.yaml.j2": PIPELOCK.replace("    command:", "    depends_on: [agent]\n    command:")},
        minimal_plan(),
        r"dependency cycle pipelock -> agent -> pipelock",
        "cycle",
    ),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_rule_from_a_template(case, tmp_path, monkeypatch):
    templates, plan, message, compose_says = CASES[case]
    renderer = Renderer([override(tmp_path, **templates)])
    with pytest.raises(DocumentError, match=message):
        renderer.render_data(plan, "plan.yml", tmp_path, "plan.yml")
    verdict = compose_verdict(renderer, plan, tmp_path, monkeypatch)
    if compose_says:  # the real compose refuses it too
        assert verdict.returncode != 0 and compose_says in verdict.stderr, verdict.stderr
    else:  # compose takes it, relative to wherever the file is: the check is ours
        assert verdict.returncode == 0


def test_every_dependency_cycle_is_named_once():
    """Each cycle from the service first in the document, at the depends_on that closes it."""
    from bottlegen.stages.merge import Merged

    merged = Merged()
    merged.document = {
        "services": {
            "a": {"depends_on": ["b"]},
            "b": {"depends_on": {"a": {"condition": "service_started"}}},
            "c": {"depends_on": ["c"]},
            "d": {"depends_on": ["e"]},
            "e": {"depends_on": ["f"]},
            "f": {"depends_on": ["d", "a"]},
        }
    }
    found = [str(p) for p in check.no_dependency_cycles(merged)]
    assert sorted(found) == sorted(
        f"$.services.{closing}.depends_on: dependency cycle {cycle}; depends_on comes from template(s) None"
        for closing, cycle in (("b", "a -> b -> a"), ("c", "c -> c"), ("f", "d -> e -> f -> d"))
    )
    merged.document["services"]["f"]["depends_on"] = ["a"]
    merged.document["services"]["b"] = {}
    merged.document["services"]["c"] = {}
    assert list(check.no_dependency_cycles(merged)) == []


def test_duplicate_container_name_from_the_plan(renderer, tmp_path, monkeypatch):
    plan = minimal_plan(container_name="claude-bottle-demo-pipelock")
    with pytest.raises(
        DocumentError, match=r"\$\.services\.agent\.container_name .*is also the container name of service 'pipelock'"
    ):
        renderer.render_data(plan, "plan.yml", tmp_path, "plan.yml")
    verdict = compose_verdict(renderer, plan, tmp_path, monkeypatch)
    assert verdict.returncode != 0 and "container name" in verdict.stderr, verdict.stderr


def test_two_mounts_on_one_target(renderer, tmp_path, monkeypatch):
    plan = minimal_plan(settings={"paths": {"pipelock_ca_cert": "/etc/pl/ca", "pipelock_ca_key": "/etc/pl/ca"}})
    with pytest.raises(
        DocumentError,
        match=r"volumes\[2\] .*target '/etc/pl/ca' is also mounted by volumes\[1\]; compose would silently keep only the last",
    ):
        renderer.render_data(plan, "plan.yml", tmp_path, "plan.yml")
    verdict = compose_verdict(renderer, plan, tmp_path, monkeypatch)
    assert verdict.returncode == 0  # compose accepts it ...
    volumes = json.loads(verdict.stdout)["services"]["pipelock"]["volumes"]
    assert [v["source"] for v in volumes if v["target"] == "/etc/pl/ca"] == ["/srv/b/ca-key.pem"]  # ... and drops one


# --- lints --------------------------------------------------------------------------------


def test_unpinned_pipelock_warns_and_pinned_does_not(renderer, tmp_path):
    warnings = renderer.render_data(minimal_plan(), "p", tmp_path, "p").warnings
    [unpinned] = [w for w in warnings if w.kind.code == "BG101"]
    assert unpinned.kind.name == "unpinned-image"
    assert "pipelock's image 'claude-bottle/pipelock:latest' is not pinned by digest" in unpinned.message
    pinned = minimal_plan(settings={"images": {"pipelock": "pl@sha256:" + "a" * 64}})
    assert not any(w.kind.code == "BG101" for w in renderer.render_data(pinned, "p", tmp_path, "p").warnings)


def test_missing_bind_source_warns(renderer, tmp_path):
    plan = minimal_plan()
    (tmp_path / "pipelock.yaml").write_text("x")
    plan["proxy"]["yaml_path"] = "pipelock.yaml"
    warnings = renderer.render_data(plan, "p", tmp_path, "p").warnings
    missing = [w.message for w in warnings if w.kind.code == "BG102"]
    assert len(missing) == 2 and all("does not exist now" in w for w in missing)  # the CA cert and key
    assert all("pipelock.yaml'" not in w for w in missing)  # not the config, which exists


def test_runsc_warns_about_dns(renderer, tmp_path):
    warnings = renderer.render_data(full_plan(use_runsc=True), "p", tmp_path, "p").warnings
    [runsc] = [w for w in warnings if w.kind.code == "BG103"]
    assert "runs under gVisor (runsc) and finds pipelock, git-gate, egress, supervise only by name" in runsc.message
    assert not any(w.kind.code == "BG103" for w in renderer.render_data(full_plan(), "p", tmp_path, "p").warnings)


def test_strict_turns_warnings_into_exit_6_and_writes_nothing(tmp_path):
    plan = write_plan(tmp_path, minimal_plan())
    out = tmp_path / "out.yml"
    proc = run_cli("render", "--strict", str(plan), "-o", str(out))
    assert proc.returncode == 6 and not out.exists()
    assert "warning:" in proc.stderr
    proc = run_cli("render", str(plan), "-o", str(out))
    assert proc.returncode == 0 and out.exists()  # without --strict, warnings only warn
    assert parse_yaml(out.read_text())["name"] == "claude-bottle-demo"


def test_warnings_carry_their_code_and_ignore_silences_a_kind_so_strict_passes(tmp_path):
    plan = write_plan(tmp_path, minimal_plan())  # unpinned pipelock, and bind sources that are missing
    out = tmp_path / "out.yml"
    proc = run_cli("render", str(plan), "-o", str(out))
    assert "warning: BG101 unpinned-image: $.services.pipelock.image" in proc.stderr
    assert "warning: BG102 missing-bind-source, 3 times: " in proc.stderr
    proc = run_cli(
        "render", "--strict", "--ignore", "BG101", "--ignore", "missing-bind-source", str(plan), "-o", str(out)
    )
    assert proc.returncode == 0 and "warning" not in proc.stderr, proc.stderr
    proc = run_cli("render", "--strict", "--ignore", "BG101", str(plan), "-o", str(tmp_path / "no.yml"))
    assert proc.returncode == 6 and "BG102" in proc.stderr and "BG101" not in proc.stderr
    assert not (tmp_path / "no.yml").exists()
    proc = run_cli("render", "--strict", str(plan), "-o", str(out), env={"BOTTLEGEN_IGNORE": "bg101,BG102"})
    assert proc.returncode == 0, proc.stderr


def test_a_render_lists_many_warnings_of_one_kind_as_one_entry(tmp_path):
    """Three missing bind sources are one BG102 entry naming each place; -v says each in full,
    and JSON is one object per warning, with where it is."""
    plan = write_plan(tmp_path, minimal_plan())
    proc = run_cli("render", str(plan))
    entries = [line for line in proc.stderr.splitlines() if line.startswith("bottlegen: warning:")]
    assert [e.split()[2] for e in entries] == ["BG101", "BG102"]
    listed = proc.stderr.split("BG102 missing-bind-source, 3 times: ")[1].splitlines()[1:]
    assert [line.split(":")[0].strip() for line in listed] == [
        "$.services.pipelock.volumes[0] in template pipelock.yaml.j2 (packaged)",
        "$.services.pipelock.volumes[1] in template pipelock.yaml.j2 (packaged)",
        "$.services.pipelock.volumes[2] in template pipelock.yaml.j2 (packaged)",
    ]
    assert all(": bind source '/" in line for line in listed)
    verbose = run_cli("render", "-v", str(plan))
    assert verbose.stderr.count("warning: BG102 missing-bind-source: $.services.pipelock.volumes[") == 3
    as_json = [json.loads(line) for line in run_cli("render", "--error-format", "json", str(plan)).stderr.splitlines()]
    assert [w["where"] for w in as_json if w["warning"] == "BG102"] == [
        line.split(": bind")[0].strip() for line in listed
    ]


def test_an_unknown_warning_code_is_a_usage_error_that_lists_them(tmp_path):
    plan = write_plan(tmp_path, minimal_plan())
    proc = run_cli("render", "--ignore", "BG999", str(plan))
    assert proc.returncode == 2 and "BG101 unpinned-image" in proc.stderr and proc.stdout == ""
    proc = run_cli("render", str(plan), env={"BOTTLEGEN_IGNORE": "nope"})
    assert proc.returncode == 2 and "$BOTTLEGEN_IGNORE 'nope'" in proc.stderr


def test_quiet_hides_warnings_but_strict_still_shows_and_fails(tmp_path):
    plan = write_plan(tmp_path, minimal_plan())
    proc = run_cli("render", "-q", str(plan))
    assert proc.returncode == 0 and proc.stderr == "" and proc.stdout.startswith("# Generated by bottlegen")
    proc = run_cli("render", "-q", "--strict", str(plan))
    assert proc.returncode == 6 and "BG101" in proc.stderr


def test_a_batch_counts_each_kind_of_warning_once_and_verbose_lists_each(tmp_path):
    plans = []
    for n in range(3):
        (tmp_path / f"p{n}").mkdir()
        plans.append(write_plan(tmp_path / f"p{n}", minimal_plan(slug=f"s{n}")))
    proc = run_cli("render", "--out-dir", str(tmp_path / "out"), *map(str, plans))
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "warning:" in line]
    assert len(lines) == 2, lines  # one per kind, not one per plan and warning
    [unpinned] = [line for line in lines if "BG101" in line]
    assert "3 time(s), the first: " in unpinned and str(plans[0]) in unpinned and "--ignore BG101" in unpinned
    [missing] = [line for line in lines if "BG102" in line]
    assert f"{3 * 3} time(s)" in missing  # pipelock.yaml, the CA cert and its key, of each plan
    quiet = run_cli("render", "-q", "--out-dir", str(tmp_path / "out"), *map(str, plans))
    assert quiet.returncode == 0 and "warning" not in quiet.stderr, quiet.stderr  # -q: no summary either
    verbose = run_cli("render", "-v", "--out-dir", str(tmp_path / "out"), *map(str, plans))
    assert len([line for line in verbose.stderr.splitlines() if "warning:" in line]) == 3 * (1 + 3)


DURATION_TEMPLATE = PIPELOCK + "    stop_grace_period: 5x\n"
RETRIES_TEMPLATE = PIPELOCK + "    healthcheck:\n      test: [CMD, 'true']\n      retries: -2\n"


@pytest.mark.parametrize(
    ("template", "message", "compose_says"),
    [
        (DURATION_TEMPLATE, r"stop_grace_period .*: '5x' is not a duration compose reads", 'unknown unit "x"'),
        (RETRIES_TEMPLATE, r"healthcheck\.retries .*: -2 is not a count compose reads", "overflows uint"),
    ],
)
def test_durations_and_counts_that_compose_refuses(tmp_path, monkeypatch, template, message, compose_says):
    renderer = Renderer([override(tmp_path, **{"pipelock.yaml.j2": template})])
    with pytest.raises(DocumentError, match=message):
        renderer.render_data(minimal_plan(), "plan.yml", tmp_path, "plan.yml")
    verdict = compose_verdict(renderer, minimal_plan(), tmp_path, monkeypatch)
    assert verdict.returncode != 0 and compose_says in verdict.stderr, verdict.stderr


def test_what_is_a_duration_is_what_compose_says(tmp_path):
    """Differential: tricky and random strings, each a service's stop_grace_period in one file."""
    import random
    import re

    chosen = ["5x", "90", "1m30s", "0", "-5s", "+0", "00", "1.s", ".5s", "1µs", "1μs", "1e3s", "1S", "5m5", ""]
    chosen += [" 5s", "5s ", "1h-2m", "1_000s", "\u0663s", "0.0s", "1h2m3s4ms5us6ns", ".s", "-.5h"]
    rng = random.Random(1)
    chosen += ["".join(rng.choice("0123456789.smhun+-") for _ in range(rng.randint(1, 6))) for _ in range(300)]
    values = sorted(set(chosen))
    document = {"services": {f"s{i}": {"image": "x", "stop_grace_period": v} for i, v in enumerate(values)}}
    (tmp_path / "d.yml").write_text(json.dumps(document))
    verdict = compose_config_run(tmp_path / "d.yml")
    refused = {int(n) for n in re.findall(r"'services\[s(\d+)\]\.stop_grace_period'", verdict.stderr)}
    ours = {i for i, v in enumerate(values) if not check.GO_DURATION.fullmatch(v)}
    assert ours == refused, [(values[i], i in ours) for i in ours ^ refused]


def test_render_verify_runs_the_real_compose_and_names_the_template(tmp_path):
    """A value compose refuses that bottlegen's own checks let through: --verify catches it."""
    ovr = override(tmp_path, **{"pipelock.yaml.j2": PIPELOCK + "    cpus: abc\n"})
    plan = write_plan(tmp_path, minimal_plan())
    out = tmp_path / "out.yml"
    assert run_cli("render", "-q", "--templates", str(ovr), str(plan), "-o", str(out)).returncode == 0
    out.write_text("before\n")
    proc = run_cli("render", "-q", "--verify", "--templates", str(ovr), str(plan), "-o", str(out))
    assert proc.returncode == 5 and 'parsing "abc"' in proc.stderr, proc.stderr
    assert "service pipelock comes from template pipelock.yaml.j2 (override" in proc.stderr
    assert out.read_text() == "before\n"  # nothing written
    check = run_cli("check", "--verify", "--templates", str(ovr), str(plan), str(out))
    assert check.returncode == 5 and "pipelock.yaml.j2" in check.stderr
    good = run_cli("render", "-q", "--verify", str(plan), "-o", str(out))
    assert good.returncode == 0 and out.read_text().startswith("# Generated by bottlegen")
    assert run_cli("check", "--verify", str(plan), str(out)).returncode == 0
    batch = run_cli("render", "-q", "--verify", "--templates", str(ovr), "--out-dir", str(tmp_path / "o"), str(plan))
    assert batch.returncode == 5 and not (tmp_path / "o" / "demo.yml").exists()
