"""Operators own the templates: overrides, list, eject, new sidecars, check, schema, the guide.

Everything here goes through the command line, as an operator runs it.
The guide's table of plan keys is generated from the schema: a test fails when it is stale,
and `BOTTLEGEN_UPDATE_DOCS=1 tests/run tests/test_operators_guide.py` rewrites it.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from helpers import REPO, check_generated, compose_config, full_plan, minimal_plan, parse_yaml, run_cli, write_plan

from bottlegen import TemplateError, resources

GUIDE = REPO / "templates" / "README.md"


def test_override_shadows_one_template_and_the_rest_fall_back(tmp_path):
    ovr = tmp_path / "ovr"
    ovr.mkdir()
    text = (
        (REPO / "templates" / "pipelock.yaml.j2")
        .read_text()
        .replace("    command:", "    labels:\n      team: platform\n    command:")
    )
    (ovr / "pipelock.yaml.j2").write_text(text)
    plan = write_plan(tmp_path, full_plan())
    for args, env in ([("--templates", str(ovr)), {}], [(), {"BOTTLEGEN_TEMPLATES": str(ovr)}]):
        proc = run_cli("render", *args, str(plan), env=env)
        assert proc.returncode == 0, proc.stderr
        doc = parse_yaml(proc.stdout)
        assert doc["services"]["pipelock"]["labels"] == {"team": "platform"}
        assert f"# from template pipelock.yaml.j2 (override {ovr})\n  pipelock:" in proc.stdout
        assert "# from template agent.yaml.j2 (packaged)\n  agent:" in proc.stdout


def test_templates_list_shows_where_each_resolves_from(tmp_path):
    ovr = tmp_path / "ovr"
    (ovr / "extra").mkdir(parents=True)
    (ovr / "agent.yaml.j2").write_text("services: {}\n")
    (ovr / "extra" / "metrics.yaml.j2").write_text("services: {}\n")
    (ovr / "notes.txt").write_text("not a template")
    proc = run_cli("templates", "list", "--templates", str(ovr))
    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[0]: line for line in proc.stdout.splitlines()}
    assert f"override {ovr}" in rows["agent.yaml.j2"] and str(ovr / "agent.yaml.j2") in rows["agent.yaml.j2"]
    assert f"override {ovr}" in rows["extra/metrics.yaml.j2"]
    assert (
        "packaged" in rows["pipelock.yaml.j2"]
        and "packaged" in rows["manifest.yaml"]
        and "packaged" in rows["_macros.yaml.j2"]
    )
    assert "notes.txt" not in rows and "README.md" not in rows


def test_eject_copies_and_refuses_to_overwrite_without_force(tmp_path):
    to = tmp_path / "mine"
    proc = run_cli("templates", "eject", "agent.yaml.j2", "manifest.yaml", "--to", str(to))
    assert proc.returncode == 0, proc.stderr
    assert (to / "agent.yaml.j2").read_text() == (REPO / "templates" / "agent.yaml.j2").read_text()
    (to / "agent.yaml.j2").write_text("my edits\n")
    proc = run_cli("templates", "eject", "agent.yaml.j2", "--to", str(to))
    assert proc.returncode == 7 and "--force" in proc.stderr
    assert (to / "agent.yaml.j2").read_text() == "my edits\n"
    assert run_cli("templates", "eject", "agent.yaml.j2", "--to", str(to), "--force").returncode == 0
    assert (to / "agent.yaml.j2").read_text() != "my edits\n"
    proc = run_cli("templates", "eject", "nope.j2", "--to", str(to))
    assert proc.returncode == 4 and "not a packaged template" in proc.stderr


def test_a_broken_override_names_its_own_path_and_line(tmp_path):
    ovr = tmp_path / "ovr"
    ovr.mkdir()
    (ovr / "supervise.yaml.j2").write_text("services:\n  supervise:\n    image: {{ settings.images.nope }}\n")
    proc = run_cli("render", "--templates", str(ovr), str(write_plan(tmp_path, full_plan())))
    assert proc.returncode == 4
    assert f"{ovr / 'supervise.yaml.j2'}:3: UndefinedError" in proc.stderr and "nope" in proc.stderr


def test_check_passes_on_a_fresh_render_and_fails_with_a_diff_on_drift(tmp_path):
    plan = write_plan(tmp_path, minimal_plan())
    out = tmp_path / "docker-compose.yml"
    assert run_cli("render", str(plan), "-o", str(out)).returncode == 0
    proc = run_cli("check", str(plan), str(out))
    assert proc.returncode == 0 and proc.stdout == ""
    out.write_text(out.read_text().replace("sleep", "sleepy"))
    drifted = out.read_text()
    proc = run_cli("check", str(plan), str(out))
    assert proc.returncode == 1
    assert "-      - sleepy\n+      - sleep\n" in proc.stdout
    assert "has drifted" in proc.stderr
    assert out.read_text() == drifted  # check never writes


def test_check_with_a_missing_file_is_drift(tmp_path):
    proc = run_cli("check", str(write_plan(tmp_path, minimal_plan())), str(tmp_path / "absent.yml"))
    assert proc.returncode == 1 and "+name: claude-bottle-demo" in proc.stdout


def test_each_pre_commit_hooks_entry_is_a_command_bottlegen_parses():
    """tests/test_precommit.py runs them for real; this says at once which entry broke."""
    import shlex

    from bottlegen.cli import build_parser

    hooks = parse_yaml((REPO / ".pre-commit-hooks.yaml").read_text())
    assert [h["id"] for h in hooks] == ["bottlegen-check", "bottlegen-fix"]
    for hook in hooks:
        words = shlex.split(hook["entry"])
        assert words[0] == "bottlegen" and hook["language"] == "python", hook
        build_parser().parse_args([*words[1:], "plans/a.yml"])


def test_schema_prints_the_plan_schema():
    proc = run_cli("schema")
    assert proc.returncode == 0
    assert json.loads(proc.stdout) == json.loads((REPO / "schema" / "plan.schema.json").read_text())


# --- the walk-through -------------------------------------------------------------------


def walkthrough_blocks(kind: str) -> list[str]:
    """The fenced blocks of one kind in 'Adding a sidecar', list indentation removed."""
    text = GUIDE.read_text()
    section = text[text.index("## Adding a sidecar") :]
    section = section[: section.index("\n## ", 1)]
    blocks = re.findall(rf"^( *)```{kind}\n(.*?)^\1```", section, re.S | re.M)
    return ["".join(line.removeprefix(indent) for line in body.splitlines(keepends=True)) for indent, body in blocks]


def test_the_guides_walk_through_adds_a_sidecar(tmp_path):
    """Steps 1-5 of 'Adding a sidecar', exactly as the guide writes them."""
    shell = walkthrough_blocks("sh")
    manifest_entry, settings_schema = walkthrough_blocks("yaml")
    [template] = walkthrough_blocks("jinja")
    assert len(shell) == 2
    write_plan(tmp_path, full_plan(), "plan.yml")
    outputs = []
    for step in shell:
        for line in step.strip().splitlines():
            args = line.split("#")[0].split()
            assert args[0] == "bottlegen"
            proc = run_cli(*args[1:], cwd=tmp_path)
            assert proc.returncode == 0, proc.stderr
            outputs.append(proc.stdout)
            if "eject" in args:  # steps 2, 3 and 4: the operator's edits
                manifest = tmp_path / "ops/templates/manifest.yaml"
                text = manifest.read_text().replace("  - name: agent\n", manifest_entry + "  - name: agent\n")
                manifest.write_text(text + settings_schema)
                (tmp_path / "ops/templates/metrics.yaml.j2").write_text(template)
    _, plain, strict = outputs
    out = tmp_path / "out.yml"
    out.write_text(plain)
    doc = parse_yaml(plain)
    assert list(doc["services"]) == ["pipelock", "git-gate", "egress", "supervise", "metrics", "agent"]
    assert doc["services"]["agent"]["depends_on"] == ["pipelock", "git-gate", "egress", "supervise", "metrics"]
    metrics = doc["services"]["metrics"]
    assert metrics["container_name"] == "claude-bottle-demo-metrics"
    assert metrics["image"] == "registry.example/metrics:2.1"  # the fragment's default
    assert metrics["command"] == ["--scrape", "http://egress:8080", "--listen", ":9102"]
    assert "# from template metrics.yaml.j2 (override ops/templates)\n  metrics:" in plain
    assert set(compose_config(out)["services"]) == {"pipelock", "git-gate", "egress", "supervise", "metrics", "agent"}
    hardened = parse_yaml(strict)["services"]["metrics"]
    assert hardened["command"][-1] == ":9200" and hardened["cap_drop"] == ["ALL"] and hardened["pids_limit"] == 64
    # Its settings are validated like bottlegen's own, at their key paths.
    bad = run_cli(
        "render", "plan.yml", "--templates", "ops/templates", "--set", "settings.metrics.port=high", cwd=tmp_path
    )
    assert bad.returncode == 3 and "--set settings.metrics.port::$.settings.metrics.port: " in bad.stderr, bad.stderr
    typo = run_cli(
        "render", "plan.yml", "--templates", "ops/templates", "--set", "settings.metrics.prot=1", cwd=tmp_path
    )
    assert typo.returncode == 3 and 'unknown key "prot"' in typo.stderr
    schema = json.loads(run_cli("schema", "--templates", "ops/templates", cwd=tmp_path).stdout)
    assert schema["properties"]["settings"]["properties"]["metrics"]["properties"]["port"]["default"] == 9102
    # Its condition holds only with egress.
    no_egress = write_plan(tmp_path, full_plan(egress={"routes": []}), "plan.yml")
    proc = run_cli("render", str(no_egress), "--templates", "ops/templates", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "metrics" not in parse_yaml(proc.stdout)["services"]
    assert parse_yaml(proc.stdout)["services"]["agent"]["depends_on"] == ["pipelock", "git-gate", "supervise"]


def test_a_settings_schema_may_add_but_never_change_bottlegens_settings(tmp_path):
    ovr = tmp_path / "ovr"
    assert run_cli("templates", "eject", "manifest.yaml", "--to", str(ovr)).returncode == 0
    manifest = ovr / "manifest.yaml"
    base = manifest.read_text()
    plan = write_plan(tmp_path, full_plan())
    for fragment, says in [
        ("settings_schema:\n  images:\n    properties:\n      pipelock: {type: integer}\n", "settings.images.pipelock"),
        ("settings_schema:\n  ports:\n    type: string\n", "bottlegen defines settings.ports"),
    ]:
        manifest.write_text(base + fragment)
        proc = run_cli("render", str(plan), "--templates", str(ovr))
        assert proc.returncode == 4 and says in proc.stderr, proc.stderr
    manifest.write_text(base + "settings_schema:\n  images: 3\n")
    assert run_cli("render", str(plan), "--templates", str(ovr)).returncode == 4  # the manifest schema refuses it


def test_a_new_sidecar_is_validated_like_the_rest(tmp_path):
    ovr = tmp_path / "ovr"
    assert run_cli("templates", "eject", "manifest.yaml", "--to", str(ovr)).returncode == 0
    manifest = ovr / "manifest.yaml"
    manifest.write_text(
        manifest.read_text().replace(
            "  - name: agent\n", "  - name: metrics\n    template: metrics.yaml.j2\n  - name: agent\n"
        )
    )
    (ovr / "metrics.yaml.j2").write_text("services:\n  metrics:\n    image: m\n    networks: [elsewhere]\n")
    proc = run_cli("render", "--templates", str(ovr), str(write_plan(tmp_path, full_plan())))
    assert proc.returncode == 5
    assert "$.services.metrics.networks.elsewhere in template metrics.yaml.j2 (override" in proc.stderr


# --- the generated part of the guide ------------------------------------------------------


def _type(schema: dict[str, Any]) -> str:
    if "oneOf" in schema:
        return " or ".join(_type(s) for s in schema["oneOf"])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"list of {_type(schema.get('items', {}))}"
    if kind == "object" and "propertyNames" in schema:
        return "mapping"
    return "host path" if schema.get("x-host-path") else kind


def _rows(schema: dict[str, Any], prefix: str, required: set[str]) -> list[str]:
    rows = []
    for key, sub in schema.get("properties", {}).items():
        if key == "$schema":
            continue
        path = f"{prefix}.{key}" if prefix else key
        branch = next((b for b in sub.get("oneOf", []) if b.get("type") == "object"), sub)
        default = (
            "required"
            if key in required
            else (json.dumps(sub["default"]) if "default" in sub and sub["default"] not in ({}, None) else "")
        )
        desc = sub.get("description") or branch.get("description", "")
        cells = [f"`{path}`", _type(sub), default, desc]
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        if branch.get("type") == "object" and "properties" in branch:
            rows += _rows(branch, path, set(branch.get("required", [])))
        items = sub.get("items", {})
        if items.get("type") == "object" and "properties" in items:
            rows += _rows(items, f"{path}[]", set(items.get("required", [])))
    return rows


def context_table() -> str:
    schema = resources.load_schema(resources.PLAN_SCHEMA)
    head = ["| key | type | default | description |", "| --- | --- | --- | --- |"]
    body = _rows(schema, "", set(schema["required"]))
    return "\n".join(head + body)


def test_guide_context_table_is_current():
    check_generated(GUIDE, "context", context_table(), "tests/test_operators_guide.py")


def test_every_schema_key_is_described():
    def walk(schema: Any, path: str) -> None:
        if isinstance(schema, dict):
            for key, sub in schema.get("properties", {}).items():
                assert sub.get("description"), f"{path}.{key} has no description"
                walk(sub, f"{path}.{key}")
            for branch in schema.get("oneOf", []):
                walk(branch, path)
            walk(schema.get("items"), f"{path}[]")
            if schema.get("type") == "object" and "properties" in schema:
                assert schema.get("additionalProperties") is False, f"{path} accepts unknown keys"

    walk(resources.load_schema(resources.PLAN_SCHEMA), "$")


def test_a_template_name_cannot_leave_its_folder(tmp_path):
    """Through the CLI: an operator's manifest naming a template outside the folders."""
    (tmp_path / "secret.yaml.j2").write_text("services: {agent: {privileged: true}}\n")
    ovr = tmp_path / "ovr"
    assert run_cli("templates", "eject", "manifest.yaml", "--to", str(ovr)).returncode == 0
    plan = str(write_plan(tmp_path, minimal_plan()))
    manifest = (ovr / "manifest.yaml").read_text()
    (ovr / "link.yaml.j2").symlink_to(tmp_path / "secret.yaml.j2")
    for name in ("../secret.yaml.j2", "/etc/passwd", "link.yaml.j2"):
        (ovr / "manifest.yaml").write_text(manifest.replace("template: agent.yaml.j2", f"template: {name}"))
        proc = run_cli("render", "--templates", str(ovr), plan)
        assert proc.returncode == 4, proc.stderr
        assert (
            "must be a relative path inside a templates folder" in proc.stderr
            or "resolves outside its templates folder" in proc.stderr
        )
        assert "privileged" not in proc.stdout


def test_a_broken_condition_in_an_operators_manifest_names_that_manifest(tmp_path):
    ovr = tmp_path / "ovr"
    assert run_cli("templates", "eject", "manifest.yaml", "--to", str(ovr)).returncode == 0
    manifest = ovr / "manifest.yaml"
    manifest.write_text(manifest.read_text().replace("when: plan.supervise is not none", "when: plan.slug > 1"))
    proc = run_cli("render", "--templates", str(ovr), str(write_plan(tmp_path, minimal_plan())))
    assert proc.returncode == 4, proc.stderr
    assert f"{manifest}: service 'supervise': condition 'plan.slug > 1': TypeError" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("when", "message"),
    [
        ("plan.supervise is not none %}{% set services = ['agent'] %}{% if true", "must be one Jinja expression"),
        ("plan.supervise is not none\n or true", "must be one Jinja expression"),
        ("plan.supervise is (", "TemplateSyntaxError"),
        ("plan.nothing_here", "UndefinedError"),
    ],
)
def test_a_condition_is_one_expression_and_its_errors_name_its_service(tmp_path, when, message):
    from bottlegen import Renderer

    ovr = tmp_path / "ovr"
    ovr.mkdir()
    packaged = (REPO / "templates" / "manifest.yaml").read_text()
    assert "when: plan.supervise is not none" in packaged
    (ovr / "manifest.yaml").write_text(
        packaged.replace("when: plan.supervise is not none", f"when: {json.dumps(when)}")
    )
    with pytest.raises(TemplateError) as caught:
        Renderer([ovr]).render_data(minimal_plan(), "plan.yml", tmp_path, "plan.yml")
    assert f"{ovr / 'manifest.yaml'}: service 'supervise': condition {when!r}: " in str(caught.value)
    assert message in str(caught.value)
