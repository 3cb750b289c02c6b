"""`pip install .` (not editable) gives a bottlegen that finds its templates and schemas."""

from __future__ import annotations

import subprocess
import sys
import venv

import pytest
from helpers import EXAMPLES, REPO


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


def installed_python(venv, code: str, cwd) -> str:
    """What Python code prints in the new environment, run from cwd (not this checkout)."""
    return subprocess.run(
        [str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, cwd=cwd, check=True
    ).stdout


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
    where = installed_python(
        installed,
        "from bottlegen import resources; print(resources.templates_dir()); print(resources.schema_dir())",
        tmp_path,
    ).split()
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
    code = "from bottlegen import schemas\nprint([schemas.compiled_check(s) is not None for s in schemas.COMPILED])"
    assert installed_python(installed, code, tmp_path).strip() == "[True, True, True]"


@pytest.fixture(scope="module")
def distributions(installed, tmp_path_factory):
    """The wheel and the sdist, built from this checkout by the build backend itself."""
    out = tmp_path_factory.mktemp("dist")
    python = str(installed / "bin" / "python")
    import tomllib

    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["build-system"]["requires"]
    pip = subprocess.run(
        [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", *requires],
        capture_output=True,
        text=True,
        check=False,
    )
    assert pip.returncode == 0, pip.stderr
    script = (
        "import sys\nfrom hatchling.build import build_sdist, build_wheel\n"
        "print(build_wheel(sys.argv[1]), build_sdist(sys.argv[1]))"
    )
    built = subprocess.run([python, "-c", script, str(out)], capture_output=True, text=True, cwd=REPO, check=False)
    assert built.returncode == 0, built.stderr
    wheel, sdist = built.stdout.split()
    return out / wheel, out / sdist


def test_the_distributions_carry_the_license_and_the_type_marker(distributions):
    import tarfile
    import zipfile

    wheel, sdist = distributions
    names = zipfile.ZipFile(wheel).namelist()
    license_text = (REPO / "LICENSE").read_text()
    assert "Apache License" in license_text and "Version 2.0" in license_text
    info = next(n for n in names if n.endswith(".dist-info/licenses/LICENSE"))
    assert zipfile.ZipFile(wheel).read(info).decode() == license_text
    assert "bottlegen/py.typed" in names
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "License-Expression: Apache-2.0" in metadata
    with tarfile.open(sdist) as tar:
        top = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    assert {"LICENSE", "CHANGELOG.md", "CONTRIBUTING.md", "README.md", "docs/reference.md"} <= top


def test_the_version_is_the_changelogs_next_or_latest_release():
    """A release moves [Unreleased] under the version pyproject.toml says (CONTRIBUTING.md)."""
    import re
    import tomllib

    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    changelog = (REPO / "CHANGELOG.md").read_text()
    released = re.findall(r"^## \[(\d+\.\d+\.\d+)\] - \d{4}-\d{2}-\d{2}$", changelog, re.MULTILINE)
    assert "## [Unreleased]" in changelog
    if released:  # the newest release is this version, or this version is the one after it
        newest = tuple(map(int, released[0].split(".")))
        assert tuple(map(int, version.split("."))) >= newest, (version, released[0])
    else:
        assert f"`pyproject.toml` says {version}" in changelog


def test_the_man_page_is_generated_from_the_parser_and_installed_under_share_man(installed, distributions):
    """bottlegen.1, from the command's own parser at build time: in the wheel's data, and in
    share/man/man1 of an environment it is installed into, naming every command and option."""
    import zipfile

    from bottlegen.cli import build_parser

    wheel, sdist = distributions
    [inside] = [n for n in zipfile.ZipFile(wheel).namelist() if n.endswith(".data/data/share/man/man1/bottlegen.1")]
    page = (installed / "share" / "man" / "man1" / "bottlegen.1").read_text()
    assert page == zipfile.ZipFile(wheel).read(inside).decode()
    import tomllib

    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert page.startswith(".TH BOTTLEGEN") and f"bottlegen {version}" in page.splitlines()[0]
    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for name, sub in commands.items():
        assert f"bottlegen {name}" in page, name
        for option in (o for a in sub._actions for o in a.option_strings if o.startswith("--") and o != "--help"):
            assert option.replace("-", "\\-") in page, (name, option)
    import tarfile

    with tarfile.open(sdist) as tar:
        assert any(n.endswith("/hatch_build.py") for n in tar.getnames())  # an sdist builds its man page too
