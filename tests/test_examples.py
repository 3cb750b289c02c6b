"""Every example plan: a reviewed golden, accepted by the real Docker Compose v2."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import EXAMPLES, EXAMPLES_PLACEHOLDER, compose_config, parse_yaml

EXAMPLE_PLANS = sorted(p.name for p in EXAMPLES.iterdir() if p.suffix in (".yml", ".json"))
SNAPSHOTS = Path(__file__).parent / "__snapshots__" / "test_examples"

# What compose's normalized model must hold for each example: services, in order of the
# plan's features (compose sorts nothing we rely on), and the two external networks.
EXPECTED_SERVICES = {
    "all-sidecars.yml": {"pipelock", "git-gate", "egress", "supervise", "agent"},
    "egress.yml": {"pipelock", "egress", "agent"},
    "env-file-empty.yml": {"pipelock", "agent"},
    "env-file-missing.yml": {"pipelock", "agent"},
    "env-file-present.yml": {"pipelock", "agent"},
    "git-gate.yml": {"pipelock", "git-gate", "agent"},
    "hardened.yml": {"pipelock", "supervise", "agent"},
    "minimal.json": {"pipelock", "agent"},
    "minimal.yml": {"pipelock", "agent"},
    "runsc.yml": {"pipelock", "agent"},
    "settings.yml": {"pipelock", "egress", "agent"},
    "supervise.yml": {"pipelock", "supervise", "agent"},
    "upstreams.yml": {"pipelock", "git-gate", "agent"},
    "walkthrough.yml": {"pipelock", "git-gate", "egress", "supervise", "agent"},
}


def test_every_example_has_expectations():
    assert sorted(EXPECTED_SERVICES) == EXAMPLE_PLANS


def test_examples_declare_their_schema():
    for name in EXAMPLE_PLANS:
        first = (EXAMPLES / name).read_text().splitlines()[0]
        if name.endswith(".json"):
            assert '"$schema": "../schema/plan.schema.json"' in (EXAMPLES / name).read_text(), name
        else:
            assert first == "# yaml-language-server: $schema=../schema/plan.schema.json", name


def render_example(renderer, name: str) -> str:
    return renderer.render(EXAMPLES / name).text.replace(str(EXAMPLES), EXAMPLES_PLACEHOLDER)


@pytest.mark.parametrize("name", EXAMPLE_PLANS)
def test_golden(name, renderer, golden, golden_home):
    assert render_example(renderer, name) == golden


@pytest.mark.compose
@pytest.mark.parametrize("name", EXAMPLE_PLANS)
def test_golden_is_accepted_by_docker_compose(name, tmp_path):
    """The golden itself, not a fresh render, is what compose must accept."""
    golden = (SNAPSHOTS / f"test_golden[{name}].yml").read_text()
    compose_file = tmp_path / "docker-compose.yml"
    compose_file.write_text(golden.replace(EXAMPLES_PLACEHOLDER, str(EXAMPLES)))
    model = compose_config(compose_file)
    ours = parse_yaml(golden)
    assert set(model["services"]) == EXPECTED_SERVICES[name]
    assert list(ours["services"]) == [
        s for s in ("pipelock", "git-gate", "egress", "supervise", "agent") if s in EXPECTED_SERVICES[name]
    ]
    assert model["name"] == ours["name"]
    assert set(model["networks"]) == {"internal", "egress"}
    for key, net in model["networks"].items():
        assert net["external"] is True
        assert net["name"] == ours["networks"][key]["name"]
    for service, body in model["services"].items():
        assert body["container_name"] == ours["services"][service]["container_name"]
        assert set(body["networks"]) == set(ours["services"][service]["networks"])
        assert "ports" not in body
    assert "volumes" not in model  # no named volumes
