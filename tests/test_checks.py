"""What the compose schema cannot say, bottlegen checks itself, and the lints."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from helpers import REPO, compose_config_run, full_plan, minimal_plan, parse_yaml, run_cli, write_plan, write_tree

from bottlegen import DocumentError, Renderer, check, policy

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
    from bottlegen.merge import Merged

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
    found = list(check.no_dependency_cycles(merged))
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
    assert any("pipelock's image 'claude-bottle/pipelock:latest' is not pinned by digest" in w for w in warnings)
    pinned = minimal_plan(settings={"images": {"pipelock": "pl@sha256:" + "a" * 64}})
    assert not any("pinned" in w for w in renderer.render_data(pinned, "p", tmp_path, "p").warnings)


def test_missing_bind_source_warns(renderer, tmp_path):
    plan = minimal_plan()
    (tmp_path / "pipelock.yaml").write_text("x")
    plan["proxy"]["yaml_path"] = "pipelock.yaml"
    warnings = renderer.render_data(plan, "p", tmp_path, "p").warnings
    missing = [w for w in warnings if "does not exist now" in w]
    assert len(missing) == 2  # the CA cert and key, not the config that exists
    assert all("pipelock.yaml'" not in w for w in missing)


def test_runsc_warns_about_dns(renderer, tmp_path):
    warnings = renderer.render_data(full_plan(use_runsc=True), "p", tmp_path, "p").warnings
    assert any(
        "runs under gVisor (runsc) and finds pipelock, git-gate, egress, supervise only by name" in w for w in warnings
    )
    assert not any("gVisor" in w for w in renderer.render_data(full_plan(), "p", tmp_path, "p").warnings)


def test_strict_turns_warnings_into_exit_6_and_writes_nothing(tmp_path):
    plan = write_plan(tmp_path, minimal_plan())
    out = tmp_path / "out.yml"
    proc = run_cli("render", "--strict", str(plan), "-o", str(out))
    assert proc.returncode == 6 and not out.exists()
    assert "warning:" in proc.stderr
    proc = run_cli("render", str(plan), "-o", str(out))
    assert proc.returncode == 0 and out.exists()  # without --strict, warnings only warn
    assert parse_yaml(out.read_text())["name"] == "claude-bottle-demo"
