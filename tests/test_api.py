"""The library's API as docs/api.md shows it: its examples run as doctests, and what they do
not pin is pinned here."""

from __future__ import annotations

import doctest
import json
import subprocess
import sys

from helpers import REPO, full_plan, run_cli

import bottlegen


def test_the_api_page_examples_run():
    failures, tried = doctest.testfile(
        str(REPO / "docs" / "api.md"), module_relative=False, optionflags=doctest.ELLIPSIS
    )
    assert tried > 10 and failures == 0


def test_render_gives_what_the_command_writes_for_a_plan_file(tmp_path):
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(full_plan()), encoding="utf-8")
    cli = run_cli("render", str(path))
    assert cli.returncode == 0, cli.stderr
    assert bottlegen.render(path, check_host=True).text == cli.stdout
    # a mapping with the file's folder as its base gives the same document
    assert bottlegen.render(full_plan(), base_dir=tmp_path).document == bottlegen.render(path).document


def test_without_check_host_nothing_of_the_host_is_read(tmp_path):
    env_file = tmp_path / "missing.env"  # not there: the plan's word is taken
    plan = full_plan(env_file=str(env_file))
    pure = bottlegen.render(plan)
    assert pure.document["services"]["agent"]["env_file"] == [str(env_file)]
    assert [w.kind.code for w in pure.warnings] == ["BG101"]  # no BG102 for the missing binds
    checked = bottlegen.render(plan, check_host=True)
    assert "env_file" not in checked.document["services"]["agent"]
    assert "BG102" in {w.kind.code for w in checked.warnings}


def test_import_bottlegen_does_not_import_the_render_stages():
    code = "import sys, bottlegen; print(sorted(m for m in sys.modules if m.startswith(('jinja2', 'bottlegen.'))))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "['bottlegen.errors']"
