"""`bottlegen render --out-dir DIR PLAN...`: a fleet's plans in one process."""

from __future__ import annotations

import os

from helpers import EXAMPLES, full_plan, minimal_plan, run_cli, write_plan

from bottlegen import batch


def test_every_plan_renders_to_its_slug_and_matches_a_single_render(tmp_path):
    plans = [write_plan(tmp_path, minimal_plan(slug=f"team-{i}"), f"p{i}.yml") for i in range(3)]
    plans.append(EXAMPLES / "upstreams.yml")
    out = tmp_path / "out"
    proc = run_cli("render", "--out-dir", str(out), *map(str, plans))
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["team-0.yml", "team-1.yml", "team-2.yml", "upstreams.yml"]
    for plan, name in [(plans[1], "team-1.yml"), (plans[3], "upstreams.yml")]:
        assert (out / name).read_text() == run_cli("render", str(plan)).stdout
    assert "rendered 4 of 4 plan(s)" in proc.stderr


def test_a_bad_plan_is_reported_and_the_others_still_render(tmp_path):
    bad = full_plan(slug="bad")
    bad["proxy"].pop("yaml_path")
    plans = [
        write_plan(tmp_path, minimal_plan(slug="good-a"), "a.yml"),
        write_plan(tmp_path, bad, "bad.yml"),
        write_plan(tmp_path, minimal_plan(slug="good-b"), "b.yml"),
    ]
    out = tmp_path / "out"
    proc = run_cli("render", "--out-dir", str(out), *map(str, plans))
    assert proc.returncode == 3
    assert f"{plans[1]}: invalid plan" in proc.stderr and "'yaml_path' is required here" in proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["good-a.yml", "good-b.yml"]
    assert "rendered 2 of 3 plan(s)" in proc.stderr


def test_two_plans_with_one_slug_do_not_overwrite_each_other(tmp_path):
    plans = [write_plan(tmp_path, minimal_plan(runtime_image=f"img-{i}"), f"p{i}.yml") for i in range(2)]
    out = tmp_path / "out"
    proc = run_cli("render", "--out-dir", str(out), *map(str, plans))
    assert proc.returncode == 7 and "slug 'demo' was already rendered from" in proc.stderr
    assert "img-0" in (out / "demo.yml").read_text()


def test_output_options_do_not_mix(tmp_path):
    plan = str(write_plan(tmp_path, minimal_plan()))
    twice = run_cli("render", "-q", plan, plan)  # without --out-dir, a second PLAN is a layer over the first
    assert (
        twice.returncode == 0
        and twice.stdout.replace("plan.yml + plan.yml", "plan.yml") == run_cli("render", "-q", plan).stdout
    )
    assert run_cli("render", plan, "-o", str(tmp_path / "x"), "--out-dir", str(tmp_path)).returncode == 2


def test_a_file_whose_bytes_are_unchanged_is_not_rewritten(tmp_path):
    import os

    plans = [write_plan(tmp_path, minimal_plan(slug=f"s{i}"), f"p{i}.yml") for i in range(2)]
    out = tmp_path / "out"
    assert run_cli("render", "-q", "--out-dir", str(out), *map(str, plans)).returncode == 0
    old = 1_000_000_000
    for name in ("s0.yml", "s1.yml"):
        os.utime(out / name, (old, old))
    write_plan(tmp_path, minimal_plan(slug="s1", runtime_image="other:1"), "p1.yml")  # s1 changes, s0 does not
    proc = run_cli("render", "-q", "--out-dir", str(out), *map(str, plans))
    assert proc.returncode == 0 and f"{plans[0]} -> {out / 's0.yml'} (unchanged)" in proc.stdout
    assert (out / "s0.yml").stat().st_mtime == old and (out / "s1.yml").stat().st_mtime != old
    assert "other:1" in (out / "s1.yml").read_text()
    (out / "s0.yml").chmod(0o600)  # same bytes, another mode: written again, 0644
    assert run_cli("render", "-q", str(plans[0]), "-o", str(out / "s0.yml")).returncode == 0
    assert (out / "s0.yml").stat().st_mode & 0o777 == 0o644
    os.utime(out / "s0.yml", (old, old))
    assert run_cli("render", "-q", str(plans[0]), "-o", str(out / "s0.yml")).returncode == 0
    assert (out / "s0.yml").stat().st_mtime == old  # -o too


def test_every_example_has_its_own_slug_so_the_examples_render_as_one_batch(tmp_path):
    examples = sorted(p for p in EXAMPLES.iterdir() if p.suffix in (".yml", ".json"))
    proc = run_cli("render", "-q", "--out-dir", str(tmp_path / "out"), *map(str, examples))
    assert proc.returncode == 0, proc.stderr
    assert len(list((tmp_path / "out").iterdir())) == len(examples)


def test_a_batch_flushes_each_folder_once_per_64_files_and_says_a_file_is_written_only_after(tmp_path, monkeypatch):
    """One fsync per file (before its rename) and one per folder per 64 files: each
    `plan -> file` line is printed only after the flush of that file's folder."""
    import subprocess
    import sys

    from bottlegen import batch, write

    out = tmp_path / "out"
    out.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = out / f".team-3.yml.{dead.stdout.strip()}.abc123.tmp"  # left by a killed render of team-3.yml
    alive = out / f".team-3.yml.{os.getpid()}.abc123.tmp"  # a render still running
    other = out / f".other.yml.{dead.stdout.strip()}.abc123.tmp"  # not a file this batch writes
    for path in (stale, alive, other):
        path.write_text("half")
    plans = [write_plan(tmp_path, minimal_plan(slug=f"team-{i}"), f"p{i}.yml") for i in range(batch.BATCH_FLUSH + 6)]
    said_before_flush: list[int] = []
    real = write._fsync_dir

    def spy(directory):
        if directory == out:
            said_before_flush.append(sys.stdout.getvalue().count("\n"))
        real(directory)

    monkeypatch.setattr(write, "_fsync_dir", spy)
    proc = run_cli("render", "--out-dir", str(out), *map(str, plans))
    assert proc.returncode == 0, proc.stderr
    assert said_before_flush == [0, batch.BATCH_FLUSH]
    assert proc.stdout.splitlines() == [f"{p} -> {out / f'team-{i}.yml'}" for i, p in enumerate(plans)]
    assert not stale.exists() and alive.exists() and other.exists()
    assert sorted(p.name for p in out.iterdir() if p.suffix == ".tmp") == sorted([alive.name, other.name])


def _fleet(tmp_path):
    """Plans with a bad one and a repeated slug among them, as a real fleet may have."""
    bad = full_plan(slug="bad")
    bad["proxy"].pop("yaml_path")
    plans = [write_plan(tmp_path, minimal_plan(slug=f"team-{i}"), f"p{i:02d}.yml") for i in range(9)]
    plans.insert(3, write_plan(tmp_path, bad, "bad.yml"))
    plans.insert(6, write_plan(tmp_path, minimal_plan(slug="team-1"), "again.yml"))
    return plans


def test_rendering_in_worker_processes_gives_what_one_process_gives(tmp_path):
    plans = _fleet(tmp_path)
    results = {}
    for jobs in ("1", "2", "3"):
        out = tmp_path / f"out-{jobs}"
        proc = run_cli("render", "--jobs", jobs, "--out-dir", str(out), *map(str, plans))
        files = {p.name: p.read_bytes() for p in out.iterdir()}
        assert not [name for name in files if name.endswith(".tmp")]
        results[jobs] = (
            proc.returncode,
            proc.stdout.replace(str(out), "OUT"),
            proc.stderr.replace(str(out), "OUT"),
            files,
        )
    assert results["1"][0] == 7 and "bad.yml: invalid plan" in results["1"][2] and "already rendered" in results["1"][2]
    assert results["2"] == results["1"] and results["3"] == results["1"]


def test_a_worker_that_dies_costs_its_plans_an_error_each_and_never_a_hang(tmp_path, monkeypatch):
    from bottlegen import batch

    plans = [write_plan(tmp_path, minimal_plan(slug=f"team-{i}"), f"p{i}.yml") for i in range(7)]
    real = batch.outcome_of

    def dies_on_p3(plan):
        if plan.name == "p3.yml":
            os._exit(9)  # as the kernel's OOM killer would end it
        return real(plan)

    monkeypatch.setattr(batch, "outcome_of", dies_on_p3)
    out = tmp_path / "out"
    proc = run_cli("render", "--jobs", "2", "--out-dir", str(out), *map(str, plans))
    assert proc.returncode == 70, proc.stderr  # ExitCode.INTERNAL
    # p0 renders in this process; p1, p3, p5 in the first worker, which dies at p3.
    lost = [f"{tmp_path / name}: " for name in ("p3.yml", "p5.yml")]
    assert all(
        f"internal error: {where}RuntimeError: the worker process rendering it ended early" in proc.stderr
        for where in lost
    )
    assert sorted(p.name for p in out.iterdir()) == [
        "team-0.yml",
        "team-1.yml",
        "team-2.yml",
        "team-4.yml",
        "team-6.yml",
    ]
    assert "rendered 5 of 7 plan(s)" in proc.stderr


def test_how_many_processes_render_a_batch(monkeypatch):
    monkeypatch.setattr(batch.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.setattr(batch.sys, "platform", "linux")
    assert batch.jobs_for(None, batch.PARALLEL_FROM - 1) == 1  # too few plans to repay the forks
    assert batch.jobs_for(None, batch.PARALLEL_FROM) == 4  # one per core
    assert batch.jobs_for(3, 10) == 3 and batch.jobs_for(8, 5) == 5 and batch.jobs_for(4, 1) == 1
    monkeypatch.setattr(batch.sys, "platform", "darwin")
    assert batch.jobs_for(4, 100) == 1  # workers are forked, which only Linux does safely here


def test_jobs_must_be_a_whole_number_of_one_or_more(tmp_path):
    for bad in ("0", "two"):
        proc = run_cli("render", "--jobs", bad, "--out-dir", str(tmp_path), str(EXAMPLES / "minimal.yml"))
        assert proc.returncode == 2 and "--jobs" in proc.stderr
