"""The compiled schema checks (bottlegen/_compiled/) and jsonschema give the same verdicts.

The compiled checks decide on the launch path; jsonschema explains a rejection. So they must
agree: on the examples and goldens, on every fixture plan, and on documents mutated at random
by hypothesis (values replaced by hostile strings and arbitrary JSON, keys removed and added).
The modules must also be what their schemas compile to today, and a module that is not is
never used.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import EXAMPLES, REPO, full_plan, hostile_text, minimal_plan, parse_yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bottlegen import PlanError, resources, schemas
from bottlegen._compiled import JsonSchemaValueException
from bottlegen.stages import load, validate

GOLDENS = sorted((REPO / "tests" / "__snapshots__" / "test_examples").glob("*.yml"))
PLANS = sorted(p for p in EXAMPLES.iterdir() if p.suffix in (".yml", ".json"))


def compiled_accepts(relative: str, instance: Any) -> bool:
    check = schemas.compiled_check(relative)
    assert check is not None, f"bottlegen/_compiled/ is stale for {relative}: python tools/compile_schemas.py"
    try:
        check(instance, schemas.FORMATS)
    except JsonSchemaValueException:
        return False
    return True


def jsonschema_accepts(relative: str, instance: Any) -> bool:
    return not schemas.collect(schemas.jsonschema_validator(relative), instance)


def assert_same_verdict(relative: str, instance: Any) -> bool:
    verdict = jsonschema_accepts(relative, instance)
    assert compiled_accepts(relative, instance) == verdict, (
        f"the compiled check and jsonschema disagree on {relative}: jsonschema says "
        f"{'valid' if verdict else 'invalid'} for\n{json.dumps(instance, indent=1, default=repr)[:3000]}"
    )
    return verdict


# --- what is compiled is today's schema ----------------------------------------------------


def test_compiled_modules_are_what_the_schemas_compile_to():
    spec = importlib.util.spec_from_file_location("compile_schemas", REPO / "tools" / "compile_schemas.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    for relative, module in schemas.COMPILED.items():
        written = (REPO / "bottlegen" / "_compiled" / f"{module}.py").read_text(encoding="utf-8")
        assert written == tool.compile_one(relative), (
            f"bottlegen/_compiled/{module}.py is stale: run python tools/compile_schemas.py"
        )


def test_the_tool_reports_nothing_stale():
    proc = subprocess.run(
        [sys.executable, str(REPO / "tools" / "compile_schemas.py"), "--check"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture
def edited_plan_schema(monkeypatch):
    """The plan schema as an operator might have edited it, after the modules were compiled."""
    edited = resources.schema_bytes(resources.PLAN_SCHEMA) + b"\n"
    original = resources.schema_bytes
    monkeypatch.setattr(
        resources, "schema_bytes", lambda relative: edited if relative == resources.PLAN_SCHEMA else original(relative)
    )
    schemas.compiled_check.cache_clear()
    yield
    schemas.compiled_check.cache_clear()


def test_a_module_compiled_from_another_schema_is_not_used(edited_plan_schema):
    assert schemas.compiled_check(resources.PLAN_SCHEMA) is None
    assert schemas.compiled_check(resources.COMPOSE_SCHEMA) is not None
    # jsonschema alone decides then, both ways
    validate.validate_plan(full_plan(), "plan.yml")
    with pytest.raises(PlanError, match=r"plan.yml::\$.slug"):
        validate.validate_plan(full_plan(slug="Not A Slug"), "plan.yml")


def test_a_rejection_is_explained_by_jsonschema():
    with pytest.raises(PlanError) as caught:
        validate.validate_plan(full_plan(slug="demo\n", use_runsc="yes"), "plan.yml")
    # every violation with its key path and advice: jsonschema's report, not the compiled
    # check's (which stops at the first and knows no descriptions)
    paths = sorted(line.split("::")[1].split(":")[0] for line in caught.value.details)
    assert paths == ["$.slug", "$.use_runsc"]
    assert any("lowercase letters" in line for line in caught.value.details)


def test_a_rejection_jsonschema_cannot_explain_still_rejects(monkeypatch):
    """Should the engines ever disagree, the compiled check decides, and its message is shown."""

    def rejects_everything(instance, formats):
        raise JsonSchemaValueException("data.slug must be the compiled check's own finding")

    monkeypatch.setattr(schemas, "compiled_check", lambda relative: rejects_everything)
    with pytest.raises(PlanError) as caught:
        validate.validate_plan(full_plan(), "plan.yml")
    assert caught.value.details == ["plan.yml::$: data.slug must be the compiled check's own finding"]


def test_the_launch_path_imports_neither_jsonschema_nor_subprocess():
    """Both are start-up cost a render does not need (ComposeError imports neither); nor
    does it import the engine side, shell completion, or ruamel.yaml (the full YAML reader:
    the plan and every fragment are in the fast reader's subset)."""
    script = (
        "import sys\n"
        "from bottlegen.cli import main\n"
        "code = main(['render', sys.argv[1], '-o', sys.argv[2]])\n"
        "assert code == 0, code\n"
        "unwanted = ('jsonschema', 'fastjsonschema', 'referencing', 'subprocess', 'bottlegen.engine', 'bottlegen.completion',"
        " 'ruamel', 'bottlegen.yamlfull')\n"
        "print(sorted(m for m in sys.modules if m.startswith(unwanted)))\n"
    )
    out = Path(os.environ.get("TMPDIR", "/tmp")) / f"bottlegen-launch-{os.getpid()}.yml"
    try:
        proc = subprocess.run(
            [sys.executable, "-c", script, str(EXAMPLES / "all-sidecars.yml"), str(out)], capture_output=True, text=True
        )
    finally:
        out.unlink(missing_ok=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


# --- same verdicts -------------------------------------------------------------------------


@pytest.mark.parametrize("plan", PLANS, ids=lambda p: p.name)
def test_examples_agree(plan):
    assert assert_same_verdict(resources.PLAN_SCHEMA, load.read_plan(plan))


@pytest.mark.parametrize("golden", GOLDENS, ids=lambda p: p.name)
def test_goldens_agree(golden):
    assert assert_same_verdict(resources.COMPOSE_SCHEMA, parse_yaml(golden.read_text(encoding="utf-8")))


def test_the_packaged_manifest_agrees():
    manifest = parse_yaml((resources.templates_dir() / "manifest.yaml").read_text(encoding="utf-8"))
    assert assert_same_verdict(resources.MANIFEST_SCHEMA, manifest)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | hostile_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(hostile_text, inner, max_size=3),
    max_leaves=6,
)

NEAR_MISSES = [
    "",
    " ",
    "\n",
    "/",
    "//",
    "/.",
    "/..",
    "/x/",
    "/x/./y",
    "/x\n",
    "\n/x",
    "x",
    "-x",
    ".x",
    "X",
    "a" * 64,
    "a" * 300,
    "10.0.0.1",
    "10.0.0.01",
    "10.0.0.256",
    "10.0.0.1\n",
    "::1",
    "::1%eth0",
    "fe80::1%1",
    "1:2:3:4:5:6:7:8:9",
    "::ffff:1.2.3.4",
    "http://x",
    "https://x:8888",
    "http://x\n",
    "ftp://x",
    "git@x:y",
    "name@sha256:" + "a" * 64,
    "x:1.0",
    "x y",
    "$x",
    "{slug}",
    "{prefix}-{slug}-{service}",
    "{nope}",
    "true",
    "1",
    "1.5",
    "0",
    "-1",
    "65536",
]


def paths_of(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path in a JSON document, the root included."""
    out = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            out += paths_of(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            out += paths_of(child, (*prefix, index))
    return out


def mutate(document: Any, data: st.DataObject) -> Any:
    """The document with one to three random changes."""
    document = copy.deepcopy(document)
    for _ in range(data.draw(st.integers(1, 3), label="changes")):
        paths = paths_of(document)
        path = data.draw(st.sampled_from(paths), label="path")
        parent = document
        for part in path[:-1]:
            parent = parent[part]
        target = parent[path[-1]] if path else document
        operation = data.draw(st.sampled_from(["value", "near-miss", "delete", "add-key", "append"]), label="operation")
        if operation == "value" or (operation == "near-miss" and not isinstance(target, str)):
            new = data.draw(json_values, label="value")
        elif operation == "near-miss":
            new = data.draw(
                st.sampled_from(NEAR_MISSES)
                | st.sampled_from([target + "\n", target.upper(), target + "/", target * 2, target[1:]]),
                label="string",
            )
        elif operation == "delete" and path:
            del parent[path[-1]]
            continue
        elif operation == "add-key" and isinstance(target, dict):
            target[
                data.draw(hostile_text | st.sampled_from(["x-extra", "image", "name", "slug", "when"]), label="key")
            ] = data.draw(json_values, label="value")
            continue
        elif operation == "append" and isinstance(target, list):
            target.append(data.draw(st.sampled_from(target) if target else json_values, label="item"))
            continue
        else:
            new = data.draw(json_values, label="value")
        if path:
            parent[path[-1]] = new
        else:
            document = new
    return document


PROPERTY = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@PROPERTY
@given(data=st.data())
def test_mutated_plans_get_the_same_verdict(data):
    base = data.draw(st.sampled_from([full_plan(), minimal_plan(), *map(load.read_plan, PLANS)]), label="base")
    assert_same_verdict(resources.PLAN_SCHEMA, mutate(base, data))


@PROPERTY
@given(data=st.data())
def test_mutated_documents_get_the_same_verdict(data):
    golden = data.draw(st.sampled_from(GOLDENS), label="golden")
    assert_same_verdict(resources.COMPOSE_SCHEMA, mutate(parse_yaml(golden.read_text(encoding="utf-8")), data))


@PROPERTY
@given(data=st.data())
def test_mutated_manifests_get_the_same_verdict(data):
    manifest = parse_yaml((resources.templates_dir() / "manifest.yaml").read_text(encoding="utf-8"))
    assert_same_verdict(resources.MANIFEST_SCHEMA, mutate(manifest, data))
