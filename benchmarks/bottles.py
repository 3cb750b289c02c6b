"""Bottles on one engine: how many, how fast, and bottlegen's cost over bare docker.

    .venv/bin/python benchmarks/bottles.py [--counts 10,50,100] [--parallel 8] [--pairs 5]

Needs a running Docker engine, the docker CLI with compose (the tests' DOCKER_CONFIG works),
and a static busybox: the stand-in images of tools/standin-images are built first, and every
bottle is examples/walkthrough.yml under a slug of its own. Standard library only.

1. For each count N: `bottlegen up` of N bottles, `--parallel` at a time; the wall time per
   bottle (the whole run divided by N), each up's own time (the agent and every sidecar
   running: up returns only then), dockerd's memory and the bottles' (docker stats) once
   they all run, and where it stopped if an up failed. Then `down` of all of them.
2. `bottlegen up` + `down` of one bottle against the bare commands it stands for (`docker
   network create` twice, `docker compose up -d --wait`; `docker compose down`, `docker
   network rm` twice) on the same compose file: medians of --pairs runs each, alternating.
3. `bottlegen verify` of one running bottle (the probe image already built): the median
   wall time of --pairs runs.

It prints a Markdown report; README.md quotes the latest one. Everything it makes is named
bench<N> and removed at the end, also when it fails.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PLAN = REPO / "examples" / "walkthrough.yml"
BOTTLEGEN = [sys.executable, "-m", "bottlegen.cli"]
ENV = {**os.environ, "GIT_AUTHOR_NAME": "bench", "EXAMPLE_API_TOKEN": "bench-token"}


def plan_for(n: int, folder: Path) -> Path:
    """examples/walkthrough.yml as bottle bench<n>, its host paths made absolute."""
    from bottlegen import resources
    from bottlegen.stages import load
    from bottlegen.stages.resolve import resolve_host_paths

    schema = resources.load_schema(resources.PLAN_SCHEMA)
    data = resolve_host_paths(schema, load.read_plan(PLAN), PLAN.parent)
    slug = f"bench{n:03d}"
    data["slug"] = slug
    data["proxy"]["internal_network"], data["proxy"]["egress_network"] = f"{slug}-internal", f"{slug}-egress"
    data["egress"]["pipelock_proxy_url"] = f"http://claude-bottle-{slug}-pipelock:8888"
    path = folder / f"{slug}.json"
    path.write_text(json.dumps(data))
    return path


def timed(argv: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=ENV, check=False)
    return time.perf_counter() - start, proc


def up(n: int, folder: Path) -> tuple[float, int, str]:
    seconds, proc = timed([*BOTTLEGEN, "up", "-q", str(plan_for(n, folder)), "--state-dir", str(folder / f"s{n}")])
    reason = " ".join(line.strip() for line in proc.stderr.splitlines() if "error" in line.lower())[:300]
    return seconds, proc.returncode, reason


def down(n: int, folder: Path) -> None:
    subprocess.run(
        [*BOTTLEGEN, "down", "--state-dir", str(folder / f"s{n}")], capture_output=True, env=ENV, check=False
    )


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def dockerd_pid() -> int | None:
    found = subprocess.run(["pgrep", "-xo", "dockerd"], capture_output=True, text=True, check=False).stdout.split()
    return int(found[0]) if found else None


def containers_mib(prefix: str) -> float:
    """The memory docker stats gives the bottles' containers, summed."""
    proc = subprocess.run(
        ["docker", "stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    units = {"B": 1 / 2**20, "KiB": 1 / 1024, "MiB": 1, "GiB": 1024}
    total = 0.0
    for line in proc.stdout.splitlines():
        name, usage = line.split(" ", 1)
        if not name.startswith(prefix):
            continue
        amount = usage.split("/")[0].strip()
        number = amount.rstrip("BKMGi")
        unit = amount[len(number) :]
        total += float(number) * units.get(unit, 0)
    return total


def fleet(count: int, parallel: int, folder: Path) -> dict[str, object]:
    pid = dockerd_pid()
    before = rss_mib(pid) if pid else 0.0
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
        results = list(pool.map(lambda n: up(n, folder), range(count)))
    wall = time.perf_counter() - start
    failed = [(n, code, reason) for n, (_, code, reason) in enumerate(results) if code != 0]
    after = rss_mib(pid) if pid else 0.0
    bottles_mib = containers_mib("claude-bottle-bench")
    with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
        list(pool.map(lambda n: down(n, folder), range(count)))
    ups = [seconds for seconds, code, _ in results if code == 0]
    return {
        "count": count,
        "up": count - len(failed),
        "wall_per_bottle": wall / count,
        "median_up": statistics.median(ups) if ups else float("nan"),
        "max_up": max(ups) if ups else float("nan"),
        "dockerd_mib": after - before,
        "bottles_mib": bottles_mib,
        "failed": failed[:3],
    }


def overhead(pairs: int, folder: Path) -> tuple[float, float]:
    """Median seconds of bottlegen up+down, and of the bare commands, for one bottle."""
    plan = plan_for(999, folder)
    state = folder / "s999"
    subprocess.run(
        [*BOTTLEGEN, "up", "-q", str(plan), "--state-dir", str(state)], env=ENV, capture_output=True, check=True
    )
    subprocess.run([*BOTTLEGEN, "down", "--state-dir", str(state)], env=ENV, capture_output=True, check=True)
    compose_file = state / "docker-compose.yml"  # kept by down: the bare run uses the same file
    from bottlegen.engine.docker import find_compose

    compose = list(find_compose(shutil.which("docker")))
    project = "claude-bottle-bench999"
    ours, bare = [], []
    for _ in range(pairs):
        start = time.perf_counter()
        subprocess.run(
            [*BOTTLEGEN, "up", "-q", str(plan), "--state-dir", str(state)], env=ENV, capture_output=True, check=True
        )
        subprocess.run([*BOTTLEGEN, "down", "--state-dir", str(state)], env=ENV, capture_output=True, check=True)
        ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        for argv in (
            ["docker", "network", "create", "--internal", "bench999-internal"],
            ["docker", "network", "create", "bench999-egress"],
            [*compose, "-p", project, "-f", str(compose_file), "up", "-d", "--remove-orphans", "--wait"],
            [*compose, "-p", project, "-f", str(compose_file), "down", "--remove-orphans"],
            ["docker", "network", "rm", "bench999-internal", "bench999-egress"],
        ):
            subprocess.run(argv, env=ENV, capture_output=True, check=True)
        bare.append(time.perf_counter() - start)
    return statistics.median(ours), statistics.median(bare)


def verify_time(runs: int, folder: Path) -> tuple[float, int]:
    """Median seconds of `bottlegen verify` on one running bottle, and its last exit code."""
    plan, state = plan_for(998, folder), folder / "s998"
    subprocess.run(
        [*BOTTLEGEN, "up", "-q", str(plan), "--state-dir", str(state)], env=ENV, capture_output=True, check=True
    )
    try:
        timed([*BOTTLEGEN, "verify", "--state-dir", str(state)])  # builds the probe image if it is missing
        results = [timed([*BOTTLEGEN, "verify", "--state-dir", str(state)]) for _ in range(runs)]
    finally:
        down(998, folder)
    return statistics.median(seconds for seconds, _ in results), results[-1][1].returncode


def cleanup() -> None:
    """Whatever a failed run left: bench containers and networks."""
    ids = subprocess.run(
        ["docker", "ps", "-aq", "--filter", "name=claude-bottle-bench"], capture_output=True, text=True, check=False
    ).stdout.split()
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True, check=False)
    names = subprocess.run(
        ["docker", "network", "ls", "--format", "{{.Name}}", "--filter", "name=bench"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    for name in names:
        if name.startswith("bench") and name.endswith(("-internal", "-egress")):
            subprocess.run(["docker", "network", "rm", name], capture_output=True, check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--counts", default="10,50,100", help="bottles per run, comma separated ('' for none)")
    parser.add_argument("--parallel", type=int, default=8, help="ups (and downs) at a time")
    parser.add_argument("--pairs", type=int, default=5, help="runs of each side of the overhead comparison")
    args = parser.parse_args()
    built = subprocess.run([str(REPO / "tools" / "standin-images")], capture_output=True, text=True, check=False)
    if built.returncode != 0:
        sys.exit(f"tools/standin-images failed: {built.stderr}")
    folder = Path(tempfile.mkdtemp(prefix="bottlegen-bottles-"))
    try:
        runs = [fleet(int(c), args.parallel, folder) for c in args.counts.split(",") if c.strip()]
        ours, bare = overhead(args.pairs, folder)
        verify_seconds, verify_code = verify_time(args.pairs, folder)
    finally:
        cleanup()
        shutil.rmtree(folder, ignore_errors=True)
    engine = subprocess.run(
        ["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True, text=True
    ).stdout.strip()
    print(
        f"`python benchmarks/bottles.py --counts {args.counts} --parallel {args.parallel}` on {platform.machine()}, "
        f"{os.cpu_count()} cores, Docker {engine}, {time.strftime('%Y-%m-%d')}.\n"
    )
    print(
        "| bottles | up | wall per bottle | each up (median / max) | dockerd memory added | the bottles' containers | stopped at |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in runs:
        stopped = "; ".join(f"bottle {n}: exit {code}: {reason[:120]}" for n, code, reason in r["failed"]) or "-"  # type: ignore[union-attr]
        print(
            f"| {r['count']} | {r['up']} | {r['wall_per_bottle']:.2f} s | {r['median_up']:.2f} / {r['max_up']:.2f} s | "
            f"{r['dockerd_mib']:.0f} MiB | {r['bottles_mib']:.0f} MiB | {stopped} |"
        )
    print(
        f"\n`bottlegen up` + `down` of one bottle: {ours:.2f} s; the bare docker and compose commands: {bare:.2f} s; "
        f"**{ours / bare:.2f}x** (medians of {args.pairs})."
    )
    print(
        f"\n`bottlegen verify` of one running bottle: **{verify_seconds:.2f} s** (median of {args.pairs}; "
        f"exit {verify_code})."
    )


if __name__ == "__main__":
    main()
