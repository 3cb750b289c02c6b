"""`pip install .` (not editable) gives a bottlegen that finds its templates and schemas."""

from __future__ import annotations

import subprocess
import sys
import venv

import pytest
from conftest import EXAMPLES, REPO


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A new virtual environment with bottlegen installed from this checkout, not editable."""
    where = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(with_pip=True).create(where)
    proc = subprocess.run(
        [str(where / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(REPO)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return where


def test_installed_bottlegen_renders_like_the_checkout(installed, tmp_path):
    plan = EXAMPLES / "all-sidecars.yml"
    ours = subprocess.run(
        [sys.executable, "-m", "bottlegen.cli", "render", str(plan)], capture_output=True, text=True, check=True
    )
    theirs = subprocess.run(
        [str(installed / "bin" / "bottlegen"), "render", str(plan)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert theirs.returncode == 0, theirs.stderr
    assert theirs.stdout == ours.stdout


def test_installed_bottlegen_uses_its_packaged_data(installed, tmp_path):
    where = subprocess.run(
        [
            str(installed / "bin" / "python"),
            "-c",
            "from bottlegen import resources; print(resources.templates_dir()); print(resources.schema_dir())",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    ).stdout.split()
    assert all(str(installed) in p and str(REPO) not in p for p in where), where
    listing = subprocess.run(
        [str(installed / "bin" / "bottlegen"), "templates", "list"], capture_output=True, text=True, check=True
    ).stdout
    assert "manifest.yaml" in listing and "packaged" in listing
    schema = subprocess.run(
        [str(installed / "bin" / "bottlegen"), "schema"], capture_output=True, text=True, check=True
    ).stdout
    assert '"title": "bottlegen plan"' in schema
    assert list(installed.glob("lib/python*/site-packages/bottlegen/schema/compose-spec/LICENSE"))


def test_installed_bottlegen_uses_its_compiled_schema_checks(installed, tmp_path):
    """The wheel's schemas are the ones bottlegen/_compiled/ was made from, so they are used."""
    proc = subprocess.run(
        [
            str(installed / "bin" / "python"),
            "-c",
            "from bottlegen import validate\n"
            "print([validate.compiled_check(s) is not None for s in validate.COMPILED])",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    )
    assert proc.stdout.strip() == "[True, True, True]"
