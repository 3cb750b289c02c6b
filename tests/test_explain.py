"""`bottlegen explain`: every key of the plan schema explained from the schema itself, an
example that is the key in place, and an unknown key a usage error naming the nearest."""

from __future__ import annotations

import pytest
from helpers import parse_yaml, run_cli

from bottlegen import explain, resources

SCHEMA = resources.load_schema(resources.PLAN_SCHEMA)
KEYS = list(explain.key_paths(SCHEMA))


def test_the_schema_has_keys_at_every_depth():
    assert {"slug", "proxy.yaml_path", "git_gate.upstreams[].name", "git_gate.upstreams[].extra_hosts.*"} <= set(KEYS)
    assert "settings.hardening.agent.writable" in KEYS and len(KEYS) > 100


@pytest.mark.parametrize("key", KEYS)
def test_every_key_is_explained_with_its_description_type_and_an_example_in_place(key):
    found = explain.explain(SCHEMA, key)
    text = found.text()
    assert text.startswith(f"KEY:         {key}\n")
    description = str(found.schema.get("description", "(none)")).split()
    assert " ".join(description[:4]) in " ".join(text.split())
    assert f"TYPE:        {found.type_text()}" in text
    if "default" in found.schema:
        assert "DEFAULT:" in text
    example = parse_yaml(found.example())
    node = example
    for word in key.split("."):  # the example holds the key where the plan holds it
        name = word.split("[")[0]
        node = node["<key>" if name == "*" else name]
        for _ in range(word.count("[]")):
            assert isinstance(node, list) and len(node) == 1
            node = node[0]
    if "enum" in found.schema:
        assert node in found.schema["enum"]


def test_indexes_and_key_paths_as_errors_write_them_name_the_same_key():
    assert explain.explain(SCHEMA, "git_gate.upstreams[0].name").path == "git_gate.upstreams[].name"
    assert explain.explain(SCHEMA, "$.proxy.yaml_path").path == "proxy.yaml_path"
    assert explain.explain(SCHEMA, "supervise.queue_dir").required  # required within its section


def test_the_command_explains_lists_and_refuses_an_unknown_key_with_the_nearest():
    proc = run_cli("explain", "hardening")
    assert proc.returncode == 0 and 'TYPE:        one of "none", "strict"' in proc.stdout
    assert 'DEFAULT:     "none"' in proc.stdout and "hardening: none" in proc.stdout
    listed = run_cli("explain", "--recursive").stdout.splitlines()
    assert [line.split()[0] for line in listed] == KEYS
    top = run_cli("explain").stdout
    assert "FIELDS:" in top and "slug (required)" in top
    unknown = run_cli("explain", "proxy.yml_path")
    assert unknown.returncode == 2 and unknown.stdout == ""
    assert "no plan key 'proxy.yml_path'; the nearest: proxy.yaml_path" in unknown.stderr


def test_a_manifests_settings_are_explained_with_its_templates(tmp_path):
    ovr = tmp_path / "ovr"
    assert run_cli("templates", "eject", "manifest.yaml", "--to", str(ovr)).returncode == 0
    manifest = ovr / "manifest.yaml"
    manifest.write_text(
        manifest.read_text()
        + "settings_schema:\n  metrics:\n    type: object\n    description: Where the metrics sidecar sends.\n"
        "    properties:\n      port: {type: integer, default: 9100, description: Its port.}\n"
    )
    proc = run_cli("explain", "settings.metrics.port", "--templates", str(ovr))
    assert proc.returncode == 0, proc.stderr
    assert "DEFAULT:     9100" in proc.stdout and "Its port." in proc.stdout
    assert run_cli("explain", "settings.metrics.port").returncode == 2  # not without its templates
