"""The command line: its parser, and main(), which runs one command and turns every outcome
into an exit code."""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

from .. import batch
from ..errors import ExitCode, Stopped, UsageError, UserError
from ..project import STATE_ROOT_ENV
from . import output
from .options import (
    COMMAND_EXIT_CODES,
    FLEET_HELP,
    LAYERED_PLAN_HELP,
    PLAN_HELP,
    PLANS_DIR_HELP,
    VERIFY_HELP,
    Parser,
    Version,
    address_pool_option,
    bottle_option,
    context_option,
    exit_codes_help,
    layers_options,
    output_options,
    positive_int,
    probe_options,
    project_of_args,
    seconds,
    strict_option,
    target_option,
    templates_option,
)
from .output import flush_stdout, internal_error, report, say, silence_stdout, wants_json_errors


def _command(module: str, name: str) -> Callable[[argparse.Namespace], int]:
    """A command of cli/<module>.py, imported when it runs: `ps` never loads the render's
    modules (Jinja among them), nor `render` the engine's."""

    def command(args: argparse.Namespace) -> int:
        return int(getattr(importlib.import_module(f".{module}", __package__), name)(args))

    command.__name__ = name
    return command


cmd_render, cmd_check, cmd_context, cmd_schema, cmd_explain, cmd_config, cmd_init = (
    _command("render", n)
    for n in ("cmd_render", "cmd_check", "cmd_context", "cmd_schema", "cmd_explain", "cmd_config", "cmd_init")
)
cmd_completion, cmd_templates_eject, cmd_templates_list = (
    _command("templates", n) for n in ("cmd_completion", "cmd_templates_eject", "cmd_templates_list")
)
cmd_diff, cmd_down, cmd_exec, cmd_logs, cmd_ls, cmd_networks_create, cmd_ps, cmd_shell, cmd_up, cmd_verify = (
    _command("bottles", n)
    for n in (
        "cmd_diff", "cmd_down", "cmd_exec", "cmd_logs", "cmd_ls", "cmd_networks_create", "cmd_ps", "cmd_shell",
        "cmd_up", "cmd_verify",
    )
)  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="bottlegen",
        description="Render a bottle's plan into its docker-compose.yml, and run it.",
        epilog=exit_codes_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=Version, nargs=0, help="show bottlegen's version and exit")
    parser.set_defaults(root_parser=parser)  # what `completion` describes
    templates, strict, which, output = templates_option(), strict_option(), bottle_option(), output_options()
    target = target_option()
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
        "render a plan into a compose file, or Kubernetes objects (stdout, -o FILE, or --out-dir DIR for many)",
        [templates, target, strict, layering],
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
        type=positive_int,
        metavar="N",
        help=f"with --out-dir: render in N processes (default: one per core for {batch.PARALLEL_FROM} plans or more); "
        "the output is the same",
    )
    p.add_argument("--plans", dest="plans_dir", metavar="DIR", help=PLANS_DIR_HELP)
    p.add_argument("--fleet", action="store_true", help=FLEET_HELP)
    p.add_argument("--verify", action="store_true", help=VERIFY_HELP)

    p = add(
        "context",
        cmd_context,
        "print the resolved template context of a plan, as YAML or JSON",
        [templates, target, layering],
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
        [templates, target, layering],
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
    p.add_argument("--fleet", action="store_true", help=FLEET_HELP)
    p.add_argument("--diff", action="store_true", help="with --out-dir: print the diff of each drifted plan too")
    p.add_argument("--verify", action="store_true", help=VERIFY_HELP)

    add(
        "schema",
        cmd_schema,
        "print the plan's JSON schema (with --templates: with the settings its manifest's settings_schema adds)",
        [templates],
    )

    p = add(
        "init",
        cmd_init,
        "start a repository of plans: DIR/bottlegen.toml, DIR/plans/<name>.yml (every key of a plan, the required "
        "ones set, the rest commented out with their defaults) and DIR/goldens/; never overwrites a file",
    )
    p.add_argument("folder", nargs="?", default=".", metavar="DIR", help="where (default: the current folder)")

    p = add(
        "config",
        cmd_config,
        "print the settings in effect (templates, plans, goldens, state root) and where each comes from: "
        "a flag, the environment, the project file (bottlegen.toml, or [tool.bottlegen] in pyproject.toml) or a default",
        [templates],
    )
    p.add_argument("--format", choices=["text", "json"], default="text", help="one line per setting, or JSON")

    p = add(
        "explain",
        cmd_explain,
        "what a plan key is: its description, type, default, allowed values and an example, from the plan "
        "schema (with --templates: with the settings its manifest adds); no KEY: the plan's top-level keys",
        [templates],
    )
    p.add_argument(
        "key",
        nargs="?",
        default="",
        metavar="KEY.PATH",
        help="a plan key, as proxy.yaml_path, git_gate.upstreams[].name or settings.images.egress",
    )
    p.add_argument("--recursive", action="store_true", help="list every key below KEY.PATH with its type")

    p = add("templates", None, "list the templates, or copy packaged ones out for editing")
    tsub = p.add_subparsers(dest="templates_command", required=True, metavar="SUBCOMMAND", help="list or eject")
    nested: dict[str, Any] = {
        "epilog": exit_codes_help(COMMAND_EXIT_CODES["templates"]),
        "formatter_class": argparse.RawDescriptionHelpFormatter,
    }
    what = "every template and where it resolves from"
    t = tsub.add_parser("list", parents=[templates, target, output], help=what, description=what, **nested)
    t.add_argument(
        "--format", choices=["table", "json"], default="table", help="a table (default), or a JSON list of objects"
    )
    t.set_defaults(func=cmd_templates_list, command_parser=t)
    what = "copy packaged templates into DIR for editing"
    t = tsub.add_parser("eject", parents=[target, output], help=what, description=what, **nested)
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
        type=seconds,
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
        "diff",
        cmd_diff,
        "show what `up PLAN` would change on the running bottle: the compose file's diff, the services it would "
        "create, recreate or remove, the networks; exit 1 when something would change",
        [templates, layering],
    )
    p.add_argument("plans", nargs="+", metavar="PLAN", help=LAYERED_PLAN_HELP)
    mine = p.add_mutually_exclusive_group()
    mine.add_argument("--state-dir", metavar="DIR", help="the bottle's state directory (default: the plan's project's)")
    mine.add_argument("-p", "--project", metavar="NAME", help="the bottle, by name, wherever its state directory is")
    context_option(p)
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
        "exec",
        cmd_exec,
        "run a command in one of the bottle's services (default: the agent): exec [SERVICE] -- COMMAND...",
        [which],
    )
    context_option(p)
    p.add_argument("-e", "--env", action="append", metavar="KEY=VALUE", help="set a variable for the command")
    p.add_argument("-w", "--workdir", metavar="DIR", help="the folder it runs in, in the container")
    p.add_argument("-u", "--user", metavar="USER", help="the user it runs as (name or uid[:gid])")
    p.add_argument(
        "words",
        nargs=argparse.REMAINDER,
        metavar="[SERVICE] -- COMMAND",
        help="the service (before --; default: the agent) and the command with its arguments",
    )
    p = add("shell", cmd_shell, "open a shell in the bottle's agent (bash when it has one, else sh)", [which])
    context_option(p)
    p = add(
        "ls",
        cmd_ls,
        "list every bottle on the engine, found by bottlegen's labels: services running, health, state directory",
    )
    p.add_argument(
        "--format",
        choices=["table", "json", "names"],
        default="table",
        help="a table (default), one JSON list, or the bottles' names, one per line",
    )
    context_option(p)
    p = add("ps", cmd_ps, "show the bottle's services and their state", [which])
    context_option(p)
    p.add_argument("--format", choices=["table", "json"], default="table", help="a table (default), or one JSON list")
    p.add_argument(
        "--services", action="store_true", help="only the names of the bottle's services, one per line (as compose's)"
    )
    p = add(
        "down",
        cmd_down,
        "save the merged logs to STATE_DIR/compose.log, stop the bottle, remove the networks bottlegen created",
        [which],
    )
    p.add_argument(
        "-t",
        "--timeout",
        type=seconds,
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


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; every outcome is an exit code of errors.ExitCode, never a traceback."""
    output.set_json_errors(wants_json_errors(sys.argv[1:] if argv is None else argv))
    previous = {signum: signal.signal(signum, _stop) for signum in (signal.SIGTERM, signal.SIGHUP)}
    try:
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as e:  # --help, --version, or a usage error argparse reported
            flush_stdout()
            return int(e.code or 0) if isinstance(e.code, int) else ExitCode.USAGE
        if args.verbose:
            from ..engine import docker

            docker.trace_commands(True)
        state_root = project_of_args(args).setting("state_dir")
        args.state_root_from_file = state_root is not None and not os.environ.get(STATE_ROOT_ENV)
        if args.state_root_from_file:  # engine.state.state_root() reads it, in this process and its children
            os.environ[STATE_ROOT_ENV] = state_root.value
        try:
            code = int(args.func(args))
        except UsageError as e:
            getattr(args, "command_parser", parser).print_usage(sys.stderr)
            report(e)
            return e.exit_code
        flush_stdout()
        return code
    except UserError as e:
        report(e)
        return e.exit_code
    except BrokenPipeError:  # a reader that stopped reading (`| head`): nothing more to say
        silence_stdout()
        return ExitCode.IO
    except OSError as e:  # stdout full (or another write that no command expected to fail)
        silence_stdout()
        say(f"bottlegen: error: {e.filename or 'stdout'}: {e.strerror or e}")
        return ExitCode.IO
    except KeyboardInterrupt:
        say("bottlegen: interrupted")
        return ExitCode.INTERRUPTED
    except Stopped as e:
        say(f"bottlegen: stopped by signal {e.exit_code - 128}")
        return e.exit_code
    except Exception as e:
        if os.environ.get("BOTTLEGEN_DEBUG"):
            import traceback

            traceback.print_exc()
        internal_error(e)
        return ExitCode.INTERNAL
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _stop(signum: int, frame: object) -> None:
    raise Stopped(signum)


__all__ = ["COMMAND_EXIT_CODES", "build_parser", "main"]
