"""Every class of error: where it is, what to do, a documented exit code, nothing written.

The README's table of error classes is generated from the scenarios below: a test fails
when it is stale, and `BOTTLEGEN_UPDATE_DOCS=1 tests/run tests/test_errors.py` rewrites it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import REPO, check_generated, full_plan, minimal_plan, run_cli

PINNED = "claude-bottle/pipelock@sha256:" + "0" * 64


def pinned(plan):
    plan.setdefault("settings", {})["images"] = {"pipelock": PINNED}
    return plan


@dataclass
class Scenario:
    title: str
    code: int
    args: list[str]
    files: dict[str, str]
    expect: list[str]  # regexes the error output must match


def plan_text(plan) -> str:
    return json.dumps(plan, indent=2)


AGENT = (REPO / "templates" / "agent.yaml.j2").read_text()
PIPELOCK = (REPO / "templates" / "pipelock.yaml.j2").read_text()
IMAGE_LINE = next(n for n, line in enumerate(AGENT.splitlines(), 1) if "plan.runtime_image" in line)

SCENARIOS = [
    Scenario("usage", 2, ["render"], {}, [r"usage: bottlegen render ", r"render takes a PLAN"]),
    Scenario(
        "invalid plan: YAML syntax",
        3,
        ["render", "plan.yml"],
        {"plan.yml": "slug: demo\nproxy: [unclosed\n"},
        [r"plan\.yml:3:1: invalid YAML"],
    ),
    Scenario(
        "invalid plan: schema (every violation listed)",
        3,
        ["render", "plan.yml"],
        {"plan.yml": plan_text(minimal_plan(slug="Demo Bottle", use_runsc="yes", colour="blue"))},
        [
            r"invalid plan \(3 problems\)",
            r"plan\.yml:\d+::\$\.slug: \"Demo Bottle\" is not allowed here",
            r"plan\.yml:\d+::\$\.use_runsc: \"yes\" is not of type 'boolean'",
            r"plan\.yml:\d+::\$: unknown key \"colour\"",
        ],
    ),
    Scenario(
        "invalid plan: conflicting extra_hosts",
        3,
        ["render", "plan.yml"],
        {
            "plan.yml": plan_text(
                {
                    **full_plan(),
                    "git_gate": {
                        **full_plan()["git_gate"],
                        "upstreams": [
                            {"name": "a", "identity_file": "/k/a", "extra_hosts": {"git.example": "10.0.0.1"}},
                            {"name": "b", "identity_file": "/k/b", "extra_hosts": {"git.example": "10.0.0.2"}},
                        ],
                    },
                }
            )
        },
        [
            r"plan\.yml:\d+::\$\.git_gate\.upstreams\[1\]\.extra_hosts\[\"git\.example\"\]: host \"git\.example\" is \"10\.0\.0\.2\" here but \"10\.0\.0\.1\""
        ],
    ),
    Scenario(
        "template error: undefined name",
        4,
        ["render", "--templates", "ovr", "plan.yml"],
        {
            "plan.yml": plan_text(pinned(minimal_plan())),
            "ovr/agent.yaml.j2": AGENT.replace("plan.runtime_image", "plan.runtime_imag"),
        },
        [rf"ovr/agent\.yaml\.j2:{IMAGE_LINE}: UndefinedError: 'dict object' has no attribute 'runtime_imag'"],
    ),
    Scenario(
        "template error: syntax",
        4,
        ["render", "--templates", "ovr", "plan.yml"],
        {
            "plan.yml": plan_text(pinned(minimal_plan())),
            "ovr/agent.yaml.j2": AGENT.replace("{% endif %}", "{% endfor %}", 1),
        },
        [r"ovr/agent\.yaml\.j2:\d+: Encountered unknown tag 'endfor'"],
    ),
    Scenario(
        "template error: output is not YAML",
        4,
        ["render", "--templates", "ovr", "plan.yml"],
        {
            "plan.yml": plan_text(pinned(minimal_plan())),
            "ovr/pipelock.yaml.j2": PIPELOCK.replace(
                "    command:", "    labels: {{ 'team: a: b' | raw }}\n    command:"
            ),
        },
        [
            r"template pipelock\.yaml\.j2 \(override ovr\): what it rendered is not valid YAML at line 5 of the output",
            r"   5 \|     labels: team: a: b",
        ],
    ),
    Scenario(
        "template error: two templates disagree",
        4,
        ["render", "--templates", "ovr", "plan.yml"],
        {
            "plan.yml": plan_text(pinned(minimal_plan())),
            "ovr/pipelock.yaml.j2": PIPELOCK + "networks:\n  internal:\n    name: elsewhere\n",
        },
        [
            r"templates conflict at \$\.networks\.internal\.name: templates document\.yaml\.j2 \(packaged\) and pipelock\.yaml\.j2 \(override ovr\)"
        ],
    ),
    Scenario(
        "invalid document: compose schema",
        5,
        ["render", "--templates", "ovr", "plan.yml"],
        {
            "plan.yml": plan_text(pinned(minimal_plan())),
            "ovr/pipelock.yaml.j2": PIPELOCK.replace("    command:", "    privilegd: true\n    command:"),
        },
        [
            r"\$\.services\.pipelock in template pipelock\.yaml\.j2 \(override ovr\): unknown key \"privilegd\" \(did you mean \"privileged\"\?\)"
        ],
    ),
    Scenario(
        "invalid document: compose rules",
        5,
        ["render", "--templates", "ovr", "plan.yml"],
        {
            "plan.yml": plan_text(pinned(minimal_plan())),
            "ovr/pipelock.yaml.j2": PIPELOCK.replace("    networks:", "    depends_on: [agent]\n    networks:"),
        },
        [
            r"dependency cycle pipelock -> agent -> pipelock; depends_on comes from template\(s\) agent\.yaml\.j2 \(packaged\), pipelock\.yaml\.j2 \(override ovr\)"
        ],
    ),
    Scenario(
        "warnings with --strict",
        6,
        ["render", "--strict", "plan.yml", "-o", "out.yml"],
        {"plan.yml": plan_text(minimal_plan())},
        [
            r"warning: BG101 unpinned-image: \$\.services\.pipelock\.image in template pipelock\.yaml\.j2 \(packaged\): pipelock's image 'claude-bottle/pipelock:latest' is not pinned by digest",
            r"\d+ warning\(s\) and --strict: nothing was written",
        ],
    ),
    Scenario(
        "I/O: output cannot be written",
        7,
        ["render", "plan.yml", "-o", "plan.yml/out.yml"],
        {"plan.yml": plan_text(pinned(minimal_plan()))},
        [r"plan\.yml/out\.yml: cannot write here: plan\.yml is a file, not a directory"],
    ),
    Scenario(
        "drift (check)",
        1,
        ["check", "plan.yml", "out.yml"],
        {"plan.yml": plan_text(pinned(minimal_plan())), "out.yml": "name: stale\n"},
        [r"out\.yml has drifted from plan\.yml; run `bottlegen render plan\.yml -o out\.yml`"],
    ),
]


def run_scenario(scenario: Scenario, tmp_path: Path):
    for name, text in scenario.files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    proc = run_cli(*scenario.args, cwd=tmp_path)
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    return proc, before, after


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.title for s in SCENARIOS])
def test_error_is_located_and_has_its_exit_code(scenario, tmp_path):
    proc, before, after = run_scenario(scenario, tmp_path)
    assert proc.returncode == scenario.code, proc.stderr
    for pattern in scenario.expect:
        assert re.search(pattern, proc.stderr), f"{pattern!r} not in:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr
    if scenario.code != 0:
        assert after == before, "a failed command created or changed a file"


def example_message(stderr: str) -> str:
    """The error line and its first detail, as a user sees them first."""
    lines = stderr.splitlines()
    at = next((i for i, line in enumerate(lines) if ": error:" in line), len(lines) - 1)
    shown = [lines[at]] + [line.strip() for line in lines[at + 1 : at + 2] if line.startswith("  ")]
    text = " ".join(shown)
    return text if len(text) <= 240 else text[:237] + "..."


def error_table(tmp_path_factory) -> str:
    rows = ["| class | exit | example message |", "| --- | --- | --- |"]
    for scenario in SCENARIOS:
        proc, _, _ = run_scenario(scenario, tmp_path_factory.mktemp("s"))
        message = example_message(proc.stderr).replace("|", "\\|")
        rows.append(f"| {scenario.title} | {proc.returncode} | `` {message} `` |")
    return "\n".join(rows)


def test_readme_error_table_is_current(tmp_path_factory):
    check_generated(REPO / "README.md", "errors", error_table(tmp_path_factory), "tests/test_errors.py")


def test_readme_exit_codes_are_errors_py_s():
    """The exit codes' meanings are written once, in errors.py; the README shows them."""
    from bottlegen.errors import MEANINGS

    rows = ["| exit | meaning |", "| --- | --- |"] + [f"| {int(code)} | {text} |" for code, text in MEANINGS.items()]
    check_generated(REPO / "README.md", "exit-codes", "\n".join(rows), "tests/test_errors.py")


def test_readme_warning_kinds_are_lints_py_s():
    """The warnings' codes, names and meanings are written once, in lints.py; the README shows them."""
    from bottlegen.lints import KINDS

    rows = ["| code | name | warns when |", "| --- | --- | --- |"]
    rows += [f"| {k.code} | `{k.name}` | {k.summary} |" for k in KINDS]
    check_generated(REPO / "README.md", "warnings", "\n".join(rows), "tests/test_errors.py")


def test_yaml_errors_in_json_plans_have_line_and_column(tmp_path):
    (tmp_path / "plan.json").write_text('{"slug": "a",\n "proxy": }')
    proc = run_cli("render", "plan.json", cwd=tmp_path)
    assert proc.returncode == 3 and "plan.json:2:11: invalid JSON" in proc.stderr


def test_duplicate_keys_are_plan_errors(tmp_path):
    (tmp_path / "plan.yml").write_text("slug: a\nslug: b\n")
    proc = run_cli("render", "plan.yml", cwd=tmp_path)
    assert proc.returncode == 3 and "plan.yml:2:1" in proc.stderr and "duplicate" in proc.stderr


def test_long_values_are_shortened_in_messages(tmp_path):
    plan = minimal_plan(slug="X" * 500)
    (tmp_path / "plan.yml").write_text(json.dumps(plan))
    proc = run_cli("render", "plan.yml", cwd=tmp_path)
    assert proc.returncode == 3
    assert "X" * 60 not in proc.stderr and "..." in proc.stderr


def test_unquoted_numbers_get_a_hint(tmp_path):
    (tmp_path / "plan.yml").write_text(plan_text(minimal_plan()).replace('"claude-bottle/agent:latest"', "1.10"))
    proc = run_cli("render", "plan.yml", cwd=tmp_path)
    assert ":3::$.runtime_image: 1.10 is a number, not a string: quote it in the plan" in proc.stderr  # as written


def test_missing_plan_file(tmp_path):
    proc = run_cli("render", "nope.yml", cwd=tmp_path)
    assert proc.returncode == 3 and "nope.yml: no such plan file" in proc.stderr


def test_the_exception_tree():
    import subprocess

    from bottlegen import ComposeError, DocumentError, OutputError, PlanError, UserError

    proc = subprocess.CompletedProcess(["docker", "compose", "up"], 17, "", "line one\nline two\n")
    error = ComposeError.from_process("docker compose up", proc)
    assert isinstance(error, UserError)
    assert (error.returncode, error.cmd, error.exit_code) == (17, ["docker", "compose", "up"], 9)
    assert error.stderr == "line one\nline two\n"
    assert str(error) == "docker compose up failed (exit 17)\n  line one\n  line two"
    assert isinstance(PlanError("x"), ValueError) and isinstance(DocumentError("x"), ValueError)
    assert isinstance(OutputError("x"), OSError) and str(OutputError("x", ["d"])) == "x\n  d"


def test_a_trailing_newline_does_not_slip_past_an_anchored_pattern(tmp_path):
    """JSON Schema's `$` is ECMA-262's: end of string, not 'before a final newline'."""
    plan = {**minimal_plan(slug="demo\n"), "forwarded_env": ["TOKEN\n"]}
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    proc = run_cli("render", "plan.json", cwd=tmp_path)
    assert proc.returncode == 3
    assert "$.slug" in proc.stderr and "$.forwarded_env[0]" in proc.stderr


def test_a_key_path_reads_back_into_its_parts():
    """layers.py reads the paths of messages back to find the layer that gave a value."""
    from bottlegen.paths import json_path, parts_of

    for parts in [(), ("a", "b", 0), ("settings", "git-gate", "x_y"), ("$schema",), ('q"uote',), ("back\\slash",)]:
        assert parts_of(json_path(parts)) == parts
    assert parts_of(json_path(("é\n", "a.b", 3))) == ("é\n", "a.b", 3)


def test_json_is_built_from_records_never_read_back_from_text(tmp_path):
    from bottlegen.errors import PlanError, Problem, as_json

    error = PlanError("invalid plan:", [Problem("looks:12: like a location"), Problem("bad", "p.yml", "$.slug")])
    assert as_json(error)["problems"] == [
        {"message": "looks:12: like a location"},
        {"message": "bad", "file": "p.yml", "path": "$.slug"},
    ]
    assert str(error) == "invalid plan:\n  looks:12: like a location\n  p.yml::$.slug: bad"
    (tmp_path / "plan.json").write_text('{"slug": "a",\n "proxy": }')
    proc = run_cli("render", "plan.json", "--error-format", "json", cwd=tmp_path)
    [problem] = json.loads(proc.stderr)["problems"]
    assert problem == {"message": "invalid JSON: Expecting value", "file": "plan.json", "line": 2, "column": 11}
