"""The render commands: render, check, context, schema. Each parses its arguments, calls the
library and says what it found."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .. import batch, goldens, lints, memo, resources, yamltext
from ..errors import ExitCode, UsageError, UserError
from ..lints import Lint
from ..pipeline import Rendered, Renderer
from ..write import write_if_changed

if TYPE_CHECKING:
    pass
from .options import (
    Layering,
    override_dirs,
    project_of_args,
    render_plan,
    renderer_of,
    selected_plans,
    take_layers,
    templates_setting,
)
from .output import Warnings, report, report_failure, say


def verifying_renderer(args: argparse.Namespace) -> Renderer:
    """The renderer of render and check, which take --verify for the compose target only."""
    renderer = renderer_of(args)
    if args.verify and renderer.target != resources.COMPOSE:
        raise UsageError("--verify asks docker compose to read the file: it goes with the compose target only")
    return renderer


def cmd_render(args: argparse.Namespace) -> int:
    renderer = verifying_renderer(args)
    args.plans = selected_plans(args)
    if args.out_dir is None:
        if not args.plans:
            raise UsageError("render takes a PLAN (and the plan files laid over it), or several with --out-dir DIR")
        plan = take_layers(args, args.plans)
        if args.output:
            batch.not_the_plan(Path(args.output), batch.file_ids([Path(p) for p in [plan, *args.values]]))
        rendered = render_plan(renderer, plan, Path(args.output).parent if args.output else None, Layering.of(args))
        Warnings(args).report(rendered.warnings)
        if args.verify:
            compose_verify(rendered)
        if args.output:
            write_if_changed(Path(args.output), rendered.text)
        else:
            sys.stdout.write(rendered.text)
        if plan != "-" and not args.verify:  # what it read, it read through bottlegen.host
            memo.keep(Path(args.output) if args.output else None)
        return ExitCode.OK
    if args.output:
        raise UsageError("-o and --out-dir do not go together")
    if "-" in args.plans:
        raise UsageError("- (a plan on standard input) is one plan: render it without --out-dir")
    plans = [Path(p) for p in args.plans]
    jobs = batch.jobs_for(args.jobs, len(plans))
    return render_batch(renderer, plans, Path(args.out_dir), Warnings(args), args.verify, Layering.of(args), jobs)


class BatchReport:
    """How `render --out-dir` says what its batch does (batch.Reporter)."""

    def __init__(self, warnings: Warnings):
        self._warnings = warnings

    def warnings(self, plan: Path, found: Sequence[Lint]) -> None:
        self._warnings.report(found, where=f"{plan}: ", batch=True)

    def failure(self, plan: Path, failure: batch.Failure) -> None:
        report_failure(failure, str(plan))

    def written(self, lines: Sequence[str]) -> None:
        for line in lines:
            print(line)


def render_batch(
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
        rendered = render_plan(renderer, str(plan), out_dir, layering)
        if verify and not (warnings.strict and lints.kept(rendered.warnings, warnings.ignore)):  # --strict fails first
            try:
                compose_verify(rendered)
            except UserError as e:
                e.warnings = rendered.warnings  # type: ignore[attr-defined]  # still said, in plan order
                raise
        return rendered

    count, worst = batch.render_into(render_one, plans, out_dir, BatchReport(warnings), jobs)
    warnings.summary()
    print(f"rendered {count} of {len(plans)} plan(s)", file=sys.stderr)
    return worst


def cmd_context(args: argparse.Namespace) -> int:
    from ..engine import state

    plan = take_layers(args, args.plans)
    layering = Layering.of(args)
    context = renderer_of(args).context_of_plan(plan, layering.overlays, layering.sets)
    subnets = state.chosen_subnets(Path(args.state_dir) if args.state_dir else None, context["project"])
    if subnets:  # after the templates' context: what the engine gave, which no render depends on
        context = {**context, "engine": {"subnets": subnets}}
    if args.format == "json":
        sys.stdout.write(json.dumps(context, indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(yamltext.dump_plain(context))
    return ExitCode.OK


def compose_verify(rendered: Rendered) -> None:
    from ..engine import docker

    docker.compose_accepts(rendered.text, rendered.sources)


def cmd_check(args: argparse.Namespace) -> int:
    renderer = verifying_renderer(args)
    args.plans = selected_plans(args)
    if args.out_dir is None:
        if len(args.plans) < 2:
            raise UsageError("check takes PLAN [PLAN...] FILE (or --out-dir DIR PLAN... for a fleet)")
        plan = take_layers(args, args.plans[:-1])
        return check_one(renderer, args, plan, Path(args.plans[-1]), diff=True)
    if "-" in args.plans:
        raise UsageError("- (a plan on standard input) is one plan: check it as `check - FILE`")
    worst: int = ExitCode.OK
    drifted = 0
    for plan in args.plans:
        try:
            code = check_one(renderer, args, plan, None, diff=args.diff or args.verbose, out_dir=Path(args.out_dir))
            drifted += code == ExitCode.DRIFT
            worst = max(worst, code)
        except UserError as e:
            report(e, plan=plan)
            worst = max(worst, e.exit_code)
    say(f"bottlegen: checked {len(args.plans)} plan(s): {drifted} drifted")
    return worst


def check_one(
    renderer: Renderer, args: argparse.Namespace, plan: str, path: Path | None, diff: bool, out_dir: Path | None = None
) -> int:
    """Compare one plan's render with its file (out_dir/<slug>.yml in a fleet): OK, or DRIFT
    with one line that gives the command that fixes it (and the diff, when asked)."""
    rendered = render_plan(renderer, plan, path.parent if path is not None else out_dir, Layering.of(args))
    if args.verify:
        compose_verify(rendered)
    if path is None:
        path = (out_dir or Path()) / f"{rendered.context['plan']['slug']}.yml"
    drift = goldens.compare(rendered.text, path, f"bottlegen render {plan}")
    if drift is None:
        return ExitCode.OK
    if diff:
        sys.stdout.write(drift.diff)
    fix = goldens.fix_command(render_flags(args), plan, path=path if out_dir is None else None, out_dir=out_dir)
    say(f"bottlegen: {path} has drifted from {plan}{drift.why}; run `{fix}`")
    return ExitCode.DRIFT


def render_flags(args: argparse.Namespace) -> list[str]:
    """`bottlegen render` with the templates, layers and --verify of this command."""
    words = ["bottlegen", "render", *(w for d in args.templates or () for w in ("--templates", d))]
    if getattr(args, "target", resources.COMPOSE) != resources.COMPOSE:
        words += ["--target", args.target]
    return [*words, *Layering.of(args).flags(), *(["--verify"] if args.verify else [])]


def cmd_schema(args: argparse.Namespace) -> int:
    schema = renderer_of(args).plan_schema if override_dirs(args) else resources.load_schema(resources.PLAN_SCHEMA)
    json.dump(schema, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    return ExitCode.OK


def cmd_explain(args: argparse.Namespace) -> int:
    from .. import explain

    schema = renderer_of(args).plan_schema if override_dirs(args) else resources.load_schema(resources.PLAN_SCHEMA)
    key = explain.explain(schema, args.key)
    if args.recursive:
        prefix = "" if key.path == explain.ROOT else key.path
        width = max((len(p) for p in explain.key_paths(key.schema, prefix)), default=0)
        for path in explain.key_paths(key.schema, prefix):
            print(f"{path:<{width}}  {explain.explain(schema, path).type_text()}")
        return ExitCode.OK
    sys.stdout.write(key.text())
    return ExitCode.OK


def cmd_config(args: argparse.Namespace) -> int:
    from .. import project
    from ..engine import state

    found = project_of_args(args)
    dirs, source = templates_setting(args)
    settings = {"project file": project.Setting(str(found.path) if found.path else None, "found upward from here")}
    settings["templates"] = project.Setting(dirs, source)
    for key, default in (("plans", project.DEFAULT_PLANS), ("goldens", project.DEFAULT_GOLDENS)):
        settings[key] = found.setting(key) or project.Setting(default, "default (the pre-commit hooks' convention)")
    root = project.STATE_ROOT_ENV
    from_file = found.setting("state_dir")
    if from_file is not None and getattr(args, "state_root_from_file", False):
        settings["state_dir"] = from_file
    elif os.environ.get(root):
        settings["state_dir"] = project.Setting(os.environ[root], f"${root}")
    else:
        settings["state_dir"] = project.Setting(str(state.state_root()), "default ($XDG_STATE_HOME/bottlegen)")
    if args.format == "json":
        print(json.dumps({k: {"value": v.value, "from": v.source} for k, v in settings.items()}, indent=2))
        return ExitCode.OK
    for key, (value, where) in settings.items():
        shown = ", ".join(value) if isinstance(value, list) else ("-" if value is None else value)
        print(f"{key + ':':<14} {shown or '-'}  ({where})")
    return ExitCode.OK


def cmd_init(args: argparse.Namespace) -> int:
    from .. import starter

    for path in starter.init(Path(args.folder)):
        print(f"wrote {path}{'/' if path.is_dir() else ''}")
    there = "" if Path(args.folder) == Path() else f"cd {shlex.quote(args.folder)} && "
    print(f"next: {there}bottlegen render   # the starter plan into goldens/, as the hooks check it")
    return ExitCode.OK
