"""Nothing lost: atomic writes, no secrets anywhere we write, byte-for-byte determinism."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import jinja2
import pytest
from helpers import EXAMPLES, full_plan, render_doc, run_cli, write_plan

from bottlegen import OutputError, Renderer
from bottlegen.write import write_atomic

# --- atomic writes ------------------------------------------------------------------------

STEPS = ["mkstemp", "fchmod", "write", "fsync", "close", "replace"]


@pytest.mark.parametrize("step", STEPS)
def test_a_write_failing_at_any_step_leaves_the_old_file(step, tmp_path, monkeypatch):
    target = tmp_path / "docker-compose.yml"
    target.write_text("old contents\n")
    calls = {"write": 0}

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    if step == "mkstemp":
        monkeypatch.setattr(tempfile, "mkstemp", boom)
    elif step == "write":
        real_write = os.write

        def half_then_boom(fd, data):  # a partial write, then the disk fills up
            calls["write"] += 1
            if calls["write"] == 1:
                return real_write(fd, bytes(data[: len(data) // 2]))
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(os, "write", half_then_boom)
    else:
        monkeypatch.setattr(os, step, boom)
    with pytest.raises(OutputError, match="No space left"):
        write_atomic(target, "new contents, long enough to be written in two halves\n" * 100)
    monkeypatch.undo()
    assert target.read_text() == "old contents\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["docker-compose.yml"], "a temporary file was left behind"


def test_an_interrupted_write_leaves_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "f.yml"
    target.write_text("old\n")
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, "new\n")
    monkeypatch.undo()
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["f.yml"]


def test_a_reader_sees_the_old_or_the_new_file_never_a_mix(tmp_path, monkeypatch):
    """The new file is complete on disk before the rename makes it visible."""
    target = tmp_path / "f.yml"
    target.write_text("old\n")
    seen = []
    real_replace = os.replace

    def spy(src, dst):
        seen.append((Path(src).read_text(), Path(dst).read_text()))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    write_atomic(target, "new\n")
    monkeypatch.undo()
    assert seen == [("new\n", "old\n")]
    assert target.read_text() == "new\n"
    assert oct(target.stat().st_mode & 0o777) == "0o644"


# --- secrets ------------------------------------------------------------------------------

SECRETS = {
    "CLAUDE_CODE_OAUTH_TOKEN": "sk-secret-oauth-0001",
    "ZED_TOKEN": "sk-secret-zed-0002",
    "AA_TOKEN": "sk-secret-aa-0003",
    "ZZ_TOKEN": "sk-secret-zz-0004",
}


def test_secret_values_never_appear_in_output_context_or_errors(tmp_path):
    good = write_plan(tmp_path, full_plan(), "good.yml")
    bad_plan = full_plan()
    bad_plan["egress"]["routes"] = "oops"
    bad = write_plan(tmp_path, bad_plan, "bad.yml")
    out = tmp_path / "out.yml"
    runs = [
        run_cli("render", str(good), env=SECRETS),
        run_cli("render", str(good), "-o", str(out), env=SECRETS),
        run_cli("context", str(good), env=SECRETS),
        run_cli("render", str(bad), env=SECRETS),
        run_cli("check", str(good), str(tmp_path / "nope.yml"), env=SECRETS),
    ]
    assert runs[0].returncode == 0 and runs[3].returncode == 3
    everything = "".join(r.stdout + r.stderr for r in runs) + out.read_text()
    for name, value in SECRETS.items():
        assert name in runs[0].stdout  # the name is there, bare
        assert value not in everything


# --- determinism --------------------------------------------------------------------------


def test_output_is_byte_identical_across_hash_seeds_and_directories(tmp_path):
    plan = str(EXAMPLES / "all-sidecars.yml")
    outputs = set()
    for seed, cwd in [("0", tmp_path), ("1", EXAMPLES), ("4242", "/"), ("random", tmp_path)]:
        proc = run_cli("render", plan, env={"PYTHONHASHSEED": seed}, cwd=cwd)
        assert proc.returncode == 0, proc.stderr
        outputs.add(proc.stdout)
    assert len(outputs) == 1


def test_same_plan_and_templates_same_bytes_in_one_process(renderer):
    texts = {renderer.render(EXAMPLES / "upstreams.yml").text for _ in range(3)}
    assert len(texts) == 1


def test_the_template_cache_is_keyed_and_changes_no_byte(tmp_path):
    plan = str(EXAMPLES / "all-sidecars.yml")
    cache = tmp_path / "cache"
    cold = run_cli("render", plan, env={"BOTTLEGEN_CACHE_DIR": str(cache)})
    warm = run_cli("render", plan, env={"BOTTLEGEN_CACHE_DIR": str(cache)})
    off = run_cli("render", plan, env={"BOTTLEGEN_CACHE_DIR": ""})
    assert cold.returncode == warm.returncode == off.returncode == 0
    assert cold.stdout == warm.stdout == off.stdout
    [folder] = cache.iterdir()
    assert folder.name.startswith("jinja-") and oct(folder.stat().st_mode & 0o777) == "0o700"
    assert len(list(folder.iterdir())) >= 6  # the document, five services, the macros


def test_a_cache_folder_others_can_write_is_not_used(tmp_path):
    cache = tmp_path / "shared"
    cache.mkdir()
    plan = str(EXAMPLES / "minimal.yml")
    assert run_cli("render", plan, env={"BOTTLEGEN_CACHE_DIR": str(cache)}).returncode == 0
    [folder] = cache.iterdir()
    entries = len(list(folder.iterdir()))
    for entry in folder.iterdir():
        entry.unlink()
    folder.chmod(0o777)  # as if another user could plant compiled code there
    assert run_cli("render", plan, env={"BOTTLEGEN_CACHE_DIR": str(cache)}).returncode == 0
    assert entries > 0 and list(folder.iterdir()) == []


def test_manifest_conditions_come_from_the_template_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("BOTTLEGEN_CACHE_DIR", str(tmp_path))
    plan = full_plan(supervise=None)
    expected = render_doc(Renderer(), plan)  # compiles the conditions and keeps them
    with monkeypatch.context() as patched:

        def compile_again(*args, **kwargs):
            raise AssertionError("a cached template or condition was compiled again")

        patched.setattr(jinja2.Environment, "compile", compile_again)
        warm = Renderer()
        assert render_doc(warm, plan) == expected
        assert "supervise" not in expected["services"] and "egress" in expected["services"]
    # a condition that is not in the cache is compiled, cached and used
    monkeypatch.setenv("BOTTLEGEN_CACHE_DIR", str(tmp_path / "other"))
    assert render_doc(Renderer(), plan) == expected
