"""The everyday commands against compose's own, side by side on the same running bottle.

    .venv/bin/python benchmarks/everyday.py [--runs N]

Needs a running Docker engine, the docker CLI with compose (the tests' DOCKER_CONFIG works),
and a static busybox: the stand-in images of tools/standin-images are built first, and the
bottle is examples/walkthrough.yml under the slug `bench999` (as benchmarks/bottles.py makes
its bottles). Standard library only.

For each pair, the two commands take turns, one run each per round (so that a slow spell of
the machine falls on both alike), and the medians and the median of the per-round ratios
are reported:

| bottlegen | compose |
| --- | --- |
| `ps -p NAME` | `docker compose -p NAME -f FILE ps` |
| `ls` | `docker compose ls` |
| `logs --tail 5` | `docker compose ... logs --tail 5` |
| `exec -- true` (no TTY) | `docker compose ... exec -T agent true` |
| `up PLAN` of the running bottle, nothing changed | `docker compose ... up -d --remove-orphans --wait` |

It prints a Markdown report; README.md quotes the latest one. The bottle is taken down at
the end, also when a command fails.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bottles import plan_for  # benchmarks/bottles.py, beside this file

REPO = Path(__file__).resolve().parent.parent
BOTTLEGEN = str(Path(sys.executable).parent / "bottlegen")  # the installed script, as users run it
ENV = {**os.environ, "GIT_AUTHOR_NAME": "bench", "EXAMPLE_API_TOKEN": "bench-token"}


def run(argv: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, env=ENV, check=False)
    if check and proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return proc


def paired(ours: list[str], theirs: list[str], runs: int) -> tuple[float, float, float]:
    """Medians of each (seconds) and the median of the per-round ratios, after one warm-up each."""
    times: dict[str, list[float]] = {"ours": [], "theirs": []}
    for argv in (ours, theirs):
        run(argv)
    for _ in range(runs):
        for key, argv in (("ours", ours), ("theirs", theirs)):
            start = time.perf_counter()
            run(argv)
            times[key].append(time.perf_counter() - start)
    ratios = [a / b for a, b in zip(times["ours"], times["theirs"], strict=True)]
    return statistics.median(times["ours"]), statistics.median(times["theirs"]), statistics.median(ratios)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="runs of each command (after one warm-up)")
    args = parser.parse_args()
    run([str(REPO / "tools" / "standin-images")])
    work = Path(tempfile.mkdtemp(prefix="bottlegen-everyday-"))
    plan = plan_for(999, work)  # the walkthrough as bottle bench999, its host paths absolute
    state = work / "state"
    project = "claude-bottle-bench999"
    compose_file = state / "docker-compose.yml"
    up = [BOTTLEGEN, "up", str(plan), "--state-dir", str(state), "-q", "--ignore", "unpinned-image"]
    run(up)
    try:
        compose = ["docker", "compose", "-p", project, "-f", str(compose_file)]
        pairs = {
            "`ps`": ([BOTTLEGEN, "ps", "-p", project], [*compose, "ps"]),
            "`ls`": ([BOTTLEGEN, "ls"], ["docker", "compose", "ls"]),
            "`logs --tail 5`": ([BOTTLEGEN, "logs", "-p", project, "--tail", "5"], [*compose, "logs", "--tail", "5"]),
            "`exec` (no TTY)": (
                [BOTTLEGEN, "exec", "-p", project, "--", "true"],
                [*compose, "exec", "-T", "agent", "true"],
            ),
            "`up`, nothing changed": (up, [*compose, "up", "-d", "--remove-orphans", "--wait"]),
        }
        rows = []
        for label, (ours, theirs) in pairs.items():
            a, b, ratio = paired(ours, theirs, args.runs)
            rows.append(f"| {label} | {a * 1000:.0f} ms | {b * 1000:.0f} ms | **{ratio:.2f}x** |")
    finally:
        run([BOTTLEGEN, "down", "--state-dir", str(state), "-q"], check=False)
    docker_version = run(["docker", "version", "--format", "{{.Server.Version}}"], check=False).stdout.strip()
    print(
        f"""## Everyday commands against compose's own

`{" ".join([Path(sys.executable).name, "benchmarks/everyday.py", *sys.argv[1:]])}` on {platform.machine()}, {os.cpu_count()} cores,
Python {platform.python_version()}, Docker {docker_version}, {time.strftime("%Y-%m-%d")}; medians of {args.runs} runs,
taking turns; the ratio is the median of the per-round ratios.

| command | bottlegen | compose | ratio |
| --- | --- | --- | --- |
"""
        + "\n".join(rows)
    )


if __name__ == "__main__":
    main()
