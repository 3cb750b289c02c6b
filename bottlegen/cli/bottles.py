"""The engine commands: up, ps, logs, verify, down, ls, networks create. Each reaches its
engine, calls the library (bottlegen.engine) and prints what it returns."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ExitCode, UsageError

if TYPE_CHECKING:
    from ..engine.docker import Engine
    from ..engine.state import Bottle
    from ..engine.verify import VerifyOptions
from .options import Layering, project_of, render_plan, renderer_of, state_dir_of, take_layers
from .output import Warnings, print_outcome, say

# The engine commands load the engine package only when they run: `render` never needs it.


def engine_of(args: argparse.Namespace, state_dir: Path | None = None, check: bool = True) -> Engine:
    """The engine: the one --context names, else the one the bottle in state_dir was started
    on (what `up` recorded there), else the one docker itself would use (DOCKER_HOST,
    DOCKER_CONTEXT, the current context). check: its preflight first, as every command that
    changes anything runs before it does; ps, ls, logs and exec ask only what they need."""
    from ..engine import bottles

    return bottles.connect(getattr(args, "context", None), state_dir, check)


def address_pool(args: argparse.Namespace) -> Any:
    """--address-pool, else $BOTTLEGEN_ADDRESS_POOL, else the default pool."""
    from ..engine import networks

    if args.address_pool:
        return networks.AddressPool.parse(args.address_pool, "--address-pool")
    if os.environ.get(networks.POOL_ENV):
        return networks.AddressPool.parse(os.environ[networks.POOL_ENV], f"${networks.POOL_ENV}")
    return networks.AddressPool.parse(networks.DEFAULT_POOL, "the default pool")


def cmd_networks_create(args: argparse.Namespace) -> int:
    from ..engine import networks, state

    pool = address_pool(args)
    engine = engine_of(args)
    plan = take_layers(args, args.plans)
    rendered = render_plan(renderer_of(args), plan, layering=Layering.of(args))
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


def cmd_up(args: argparse.Namespace) -> int:
    from ..engine import lifecycle, state

    pool = address_pool(args)  # a malformed pool is a usage error before anything else
    plan = take_layers(args, args.plans)
    rendered = render_plan(renderer_of(args), plan, layering=Layering.of(args))
    state_dir = Path(args.state_dir) if args.state_dir else state.default_state_dir(rendered.document["name"])
    # Before anything is written: the engine the bottle already runs on, if it ran before (so
    # that a second up never starts it again on another engine), else --context or docker's.
    engine = engine_of(args, state_dir)
    Warnings(args).report(lifecycle.up_warnings(engine, rendered, os.environ))
    options = lifecycle.UpOptions(wait=args.wait_timeout, build=args.build, pull=args.pull, pool=pool)
    if args.dry_run:
        for line in lifecycle.dry_run(engine, rendered, state_dir, options):
            print(line)
        if args.verify:
            print(f"would run: bottlegen verify --state-dir {shlex.quote(str(state_dir))}")
        return ExitCode.OK
    checks = verify_options(engine, args) if args.verify else None  # the probe image too, before anything starts

    def say_changes(found: lifecycle.Changes) -> None:  # the bottle runs: what this up changes on it
        for line in [] if args.quiet else found.summary():
            say(f"bottlegen: {line}")

    outcome = lifecycle.up(engine, rendered, state_dir, options, before=say_changes)
    print_outcome(outcome)
    print(f"bottle {outcome.bottle.project} is up; state in {state_dir}")
    if checks is None:
        return ExitCode.OK
    try:
        code = verify_bottle(engine, outcome.bottle, checks, "text")
    except BaseException:
        say(f"bottlegen: {outcome.bottle.project} could not be verified: taking it down (its compose file stays)")
        print_outcome(lifecycle.down(engine, outcome.bottle))
        raise
    if code != ExitCode.OK:
        say(f"bottlegen: {outcome.bottle.project} failed verification: taking it down (its compose file stays)")
        print_outcome(lifecycle.down(engine, outcome.bottle))
    return code


def cmd_diff(args: argparse.Namespace) -> int:
    """What `up` of PLAN would change on the bottle: exit 0 when nothing, 1 when something (as kubectl diff)."""
    from ..engine import lifecycle, state

    plan = take_layers(args, args.plans)
    rendered = render_plan(renderer_of(args), plan, layering=Layering.of(args))
    if args.state_dir or args.project:
        folder = state_dir_of(args)
    else:
        folder = state.default_state_dir(rendered.document["name"])
    found = lifecycle.changes(engine_of(args, folder), rendered, folder)
    sys.stdout.write(found.diff)
    for line in found.summary():
        print(line)
    return ExitCode.DRIFT if found.any else ExitCode.OK


def cmd_verify(args: argparse.Namespace) -> int:
    from ..engine import state

    bottle = state.require_bottle(state_dir_of(args))
    engine = engine_of(args, state_dir_of(args))
    return verify_bottle(engine, bottle, verify_options(engine, args), args.format)


def verify_options(engine: Engine, args: argparse.Namespace) -> VerifyOptions:
    """verify's options from the command line, checked, with the probe image found (or built)."""
    from ..engine import probe, verify

    options = verify.VerifyOptions(args.probe_image, args.probe_dns or (), args.probe_address or ())
    verify.check_options(options)
    return dataclasses.replace(options, image=probe.image(engine, options.image))


def verify_bottle(engine: Engine, bottle: Bottle, options: VerifyOptions, form: str) -> int:
    """Run verify's probes and print one line each (or one JSON object); exit 11 when one failed."""
    from ..engine import verify

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
    from ..engine import services as running
    from ..engine import state

    bottle = state.require_bottle(state_dir_of(args))
    known = state.service_names(bottle)
    unknown = [s for s in args.services if s not in known]
    if unknown:  # before the engine is asked anything: compose would only say "no such service"
        raise UsageError(
            f"no service {', '.join(unknown)} in bottle {bottle.project}; its services: {', '.join(known)}"
        )
    selection = running.LogOptions(args.services, args.follow, args.tail, args.since)
    running.logs(engine_of(args, state_dir_of(args), check=False), bottle, selection)
    return ExitCode.OK


def cmd_exec(args: argparse.Namespace) -> int:
    """exec [SERVICE] -- COMMAND...: without --, every word is the command, run in the agent."""
    words = list(args.words)
    if "--" in words:
        at = words.index("--")
        named, command = words[:at], words[at + 1 :]
    else:
        named, command = [], words
    if len(named) > 1:
        raise UsageError(f"exec takes one SERVICE before --, not {' '.join(named)}")
    if not command:
        raise UsageError("exec needs a command: exec [SERVICE] -- COMMAND [ARG...]")
    return _exec(args, named[0] if named else None, command)


def cmd_shell(args: argparse.Namespace) -> int:
    args.env, args.workdir, args.user = None, None, None
    return _exec(args, None, ["sh", "-c", "command -v bash >/dev/null 2>&1 && exec bash -l || exec sh -l"])


def _exec(args: argparse.Namespace, service: str | None, command: list[str]) -> int:
    from ..engine import services as running
    from ..engine import state

    bottle = state.require_bottle(state_dir_of(args))
    known = state.service_names(bottle)
    chosen = service or running.agent_of(bottle)
    if chosen not in known:  # before the engine is asked anything
        raise UsageError(f"no service {chosen} in bottle {bottle.project}; its services: {', '.join(known)}")
    options = running.ExecOptions(tuple(args.env or ()), args.workdir, args.user, tty=sys.stdin.isatty())
    return running.exec_in(engine_of(args, state_dir_of(args), check=False), bottle, chosen, command, options)


def cmd_ps(args: argparse.Namespace) -> int:
    from ..engine import services as running
    from ..engine import state

    bottle = state.require_bottle(state_dir_of(args))
    if args.services:  # from the bottle's compose file: the engine is not asked
        for name in state.service_names(bottle):
            print(name)
        return ExitCode.OK
    services = running.ps(engine_of(args, state_dir_of(args), check=False), bottle)
    if args.format == "json":
        rows = [
            {
                "service": s.service,
                "container": s.name,
                "state": s.state,
                "health": s.health or None,  # no healthcheck: null, as `ls --format json` says it
                "exit_code": s.exit_code,
            }
            for s in services
        ]
        print(json.dumps(rows, indent=2))
        return ExitCode.OK
    print(f"{'SERVICE':<12} {'STATE':<10} {'HEALTH':<10} NAME")
    for row in services:
        print(f"{row.service:<12} {row.state:<10} {row.health or '-':<10} {row.name}")
    return ExitCode.OK


def cmd_ls(args: argparse.Namespace) -> int:
    from ..engine import listing

    found = listing.bottles(engine_of(args, check=False))
    if args.format == "names":
        for b in found:
            print(b.project)
        return ExitCode.OK
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
    from ..engine import lifecycle, state

    state_dir = state_dir_of(args)
    bottle = state.read_bottle(state_dir)
    if bottle is None and not args.state_dir:  # named, but its state directory is gone
        name = project_of(args)
        outcome = lifecycle.down_by_labels(engine_of(args), name)
        print_outcome(outcome)
        print(f"bottle {name} is down")
        return ExitCode.OK
    if bottle is None:
        say(f"bottlegen: no bottle in {state_dir}; nothing to tear down")
        return ExitCode.OK
    outcome = lifecycle.down(engine_of(args, state_dir), bottle, args.timeout)
    print_outcome(outcome)
    where = f"; its log is in {outcome.log}" if outcome.log else "; no log was saved"
    print(f"bottle {bottle.project} is down{where}")
    return ExitCode.OK
