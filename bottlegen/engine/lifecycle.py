"""A bottle's commands on the engine: up, logs, ps, down. They return what happened and raise
what went wrong (errors.py); the CLI prints and chooses the exit code.

Secret values never appear on a command line or in a file: the compose file names variables
bare, and compose reads them from the environment it inherits from us.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shlex
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import host
from ..composefile import mounts
from ..errors import ComposeError, ConflictError, Stopped, UserError
from ..lints import Lint, lint
from ..write import write_atomic
from . import firewall, probe
from .docker import (
    Engine,
    EngineAddress,
    checked,
    context_of,
    data_root,
    listed,
    long,
    run,
    vulnerability_warning,
)
from .networks import (
    LABEL_CREATED_BY,
    LABEL_PROJECT,
    AddressPool,
    create_argv,
    create_networks,
    free_subnets,
    remove_networks,
    survey,
    taken_subnets,
)

if TYPE_CHECKING:
    from ..pipeline import Rendered

from .api import CONFIG_FILES_LABEL, PROJECT_LABEL, current_context, labelled
from .services import mask, ps
from .state import (
    COMPOSE_FILE,
    COMPOSE_LOG,
    PROMISES_FILE,
    Bottle,
    bare_variables,
    bottle_of,
    locked,
    promises_of,
    read_bottle,
    write_engine,
)


@dataclass
class Outcome:
    """What a command did: the bottle, and the notes and warnings the operator should read."""

    bottle: Bottle
    notes: list[str] = field(default_factory=list)  # what was left alone, and why
    warnings: list[str] = field(default_factory=list)  # what went wrong but did not stop it
    log: Path | None = None  # down: where the merged log is, when there is one


WAIT_SECONDS = 120  # how long up waits, by default, for every service to run (and be healthy)


@dataclass(frozen=True)
class UpOptions:
    """What `up` passes on to compose: how long to wait, whether to build, when to pull."""

    wait: int = WAIT_SECONDS
    build: bool = False
    pull: str | None = None  # always, missing, never
    pool: AddressPool | None = None  # where the networks it creates get their subnets (not compose's)
    progress: bool = True  # compose's progress to our stderr as it happens (the command); else kept

    def flags(self) -> list[str]:
        return [
            "--wait",
            "--wait-timeout",
            str(self.wait),
            *(["--build"] if self.build else []),
            *(["--pull", self.pull] if self.pull else []),
        ]


def up(
    engine: Engine,
    rendered: Rendered,
    state_dir: Path,
    options: UpOptions = UpOptions(),
    before: Callable[[Changes], None] | None = None,
) -> Outcome:
    """Put a rendered bottle into state_dir, create its networks, and start it.

    Under the state directory's lock. Refused before anything changes (ConflictError) when
    the folder holds another bottle that is running, the project runs from another folder,
    or a network is not fit to be this bottle's. If compose fails or a signal stops it,
    what this call did is taken back (see _take_back). When the bottle runs already, before
    is told what this up will change on it, once the host paths are judged.
    """
    bottle = bottle_of(rendered.document, _absolute(state_dir) / COMPOSE_FILE)
    if bottle.sealed:
        firewall.require()  # root and iptables, before anything starts
    with locked(state_dir):
        running_before = _may_start(engine, bottle)
        rendered = pinned(engine, rendered)
        if before is not None and running_before:
            before(_changes(engine, rendered, bottle.compose_file))
        return _up(engine, rendered, bottle, options, running_before)


def pinned(engine: Engine, rendered: Rendered) -> Rendered:
    """The render, its host paths judged again as the engine's host resolves them now (a path
    missing at render time, a symlink swapped since, the engine's own data root) and written
    as they resolved, so that what was judged is what the engine mounts; a ConflictError
    (exit 10, before anything is created) naming each plan key or template, the path and
    what it resolves to. On a remote engine they are read on that engine's host, by a probe
    container (probe.host_view): this machine's files say nothing of it."""
    root = data_root(engine)
    if engine.remote:
        view = probe.host_view(engine, probe.image(engine), rendered.host_paths(), root)
    else:
        view = host.local(root)
    problems, result = rendered.pinned(view)
    if problems:
        raise ConflictError(
            "a host path of the bottle is not fit to be mounted now (judged again right before up, as the engine's "
            "host resolves it); nothing was started:",
            problems,
        )
    return result


def up_warnings(engine: Engine, rendered: Rendered, environment: Mapping[str, str]) -> list[Lint]:
    """What `up` warns of besides the render's warnings, and those of them that hold on this
    engine: a variable the bottle takes from the environment that is not set there (BG104);
    on a remote engine, bind sources that are paths on its host (BG106) instead of what this
    machine's files say (BG102); an engine without the fix for CVE-2024-29018 (BG107)."""
    found = list(rendered.warnings)
    if engine.remote:  # what BG102 says of this machine's files is no fact about the engine's host
        found = [w for w in found if w.kind.code != "BG102"]
        binds = sum(1 for s in rendered.document["services"].values() for m in mounts(s) if m[1] == "bind")
        if binds:
            found.append(
                lint(
                    "BG106",
                    f"the engine ({engine.where.describe()}, {engine.where.endpoint(engine.docker)}) is on another "
                    f"host: the bottle's {binds} bind source(s) are paths there, which bottlegen does not copy; up "
                    "judges them on that host through a probe container, but whether each is the file you mean is "
                    "yours to make sure of before up",
                )
            )
    leak = vulnerability_warning(engine)
    if leak:
        found.append(lint("BG107", leak))
    found += [
        lint(
            "BG104",
            f"{name} is not set in this environment: compose would start the bottle without it (an empty value)",
            item=f"{name} is not set",
        )
        for name in bare_variables(rendered.document)
        if name not in environment
    ]
    return found


@dataclass(frozen=True)
class Changes:
    """What an up of a new compose file would change on a bottle: the file's unified diff,
    the services compose would create, recreate (their definition changed) or remove, and the
    networks up would create or down would no longer have."""

    diff: str
    create: tuple[str, ...] = ()
    recreate: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    networks_create: tuple[str, ...] = ()
    networks_remove: tuple[str, ...] = ()

    @property
    def any(self) -> bool:
        return bool(self.diff)

    def summary(self) -> list[str]:
        said = [
            f"{what}: {', '.join(names)}"
            for what, names in (
                ("would create", self.create),
                ("would recreate", self.recreate),
                ("would remove", self.remove),
                ("would create network", self.networks_create),
                ("would no longer use network", self.networks_remove),
            )
            if names
        ]
        if self.diff and not said:
            said.append("would rewrite the compose file; no service changes")
        return said or ["nothing would change"]


def changes(engine: Engine, rendered: Rendered, state_dir: Path) -> Changes:
    """What `up` of this render (its host paths judged and pinned as up pins them) would
    change on the bottle in state_dir (all of it, when there is none)."""
    return _changes(engine, pinned(engine, rendered), _absolute(state_dir) / COMPOSE_FILE)


def _changes(engine: Engine, new: Rendered, compose_file: Path) -> Changes:
    """What a render already pinned would change on the bottle whose compose file is compose_file."""
    import difflib

    from ..yamlfull import load_yaml

    try:
        old_text = compose_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        old_text = ""
    except OSError as e:
        raise ComposeError(f"{compose_file}: cannot read the bottle's compose file: {e}", 1, []) from None
    old = load_yaml(old_text) if old_text.strip() else {}
    old_services = (old.get("services") or {}) if isinstance(old, dict) else {}
    new_services = new.document.get("services") or {}
    running = {s.service for s in ps(engine, bottle_of(new.document, compose_file))} if old_text else set()
    diff = "".join(
        difflib.unified_diff(
            old_text.splitlines(keepends=True),
            new.text.splitlines(keepends=True),
            fromfile=f"{compose_file} (running)",
            tofile=f"{compose_file} (up)",
        )
    )
    old_bottle = bottle_of(old, compose_file) if old else None
    new_bottle = bottle_of(new.document, compose_file)
    missing, _ = survey(engine, new_bottle)
    gone = sorted(set(old_bottle.networks.values()) - set(new_bottle.networks.values())) if old_bottle else []
    return Changes(
        diff,
        create=tuple(s for s in new_services if s not in running),
        recreate=tuple(s for s in new_services if s in running and old_services.get(s) != new_services[s]),
        remove=tuple(s for s in sorted(running) if s not in new_services),
        networks_create=tuple(missing),
        networks_remove=tuple(gone),
    )


def _absolute(state_dir: Path) -> Path:
    """The state directory as compose labels a project's containers with it: absolute, so
    that a second up given it relative finds the bottle it started (a re-up, not a refusal)."""
    return Path(os.path.abspath(state_dir))


def _may_start(engine: Engine, bottle: Bottle) -> bool:
    """Whether the bottle runs now (it is then updated, never taken down); a ConflictError
    when its state directory holds another running bottle, or it runs from another folder."""
    state_dir = bottle.compose_file.parent
    there = read_bottle(state_dir)
    if there is not None and there.project != bottle.project and containers(engine, there):
        raise ConflictError(
            f"{state_dir} holds bottle {there.project}, which is running: `bottlegen down --state-dir "
            f"{state_dir}` first, or give {bottle.project} a state directory of its own"
        )
    existing = project_containers(engine, bottle.project)  # running or stopped
    elsewhere = sorted({f for files in existing.values() for f in files if Path(f) != bottle.compose_file})
    if elsewhere:
        raise ConflictError(
            f"bottle {bottle.project} is running from {', '.join(elsewhere)}, not from {bottle.compose_file}: "
            "two plans resolve to one compose project. Use that state directory, or give this plan another slug"
        )
    return bool(existing)


def dry_run(engine: Engine, rendered: Rendered, state_dir: Path, options: UpOptions = UpOptions()) -> list[str]:
    """What `up` would do, as lines to print; it changes nothing (no folder, file, network or
    rule). Raises what up would refuse with, before anything."""
    state_dir = _absolute(state_dir)
    bottle = bottle_of(rendered.document, state_dir / COMPOSE_FILE)
    if bottle.sealed:
        firewall.require()
    running = _may_start(engine, bottle)
    rendered = pinned(engine, rendered)
    missing, fit = survey(engine, bottle)
    lines = [
        f"would write {bottle.compose_file} ({len(rendered.text.encode())} bytes) and "
        f"{state_dir / PROMISES_FILE}" + ("; the bottle runs now: it would be updated in place" if running else "")
    ]
    lines += [
        f"would use network {name} ({network.id[:12]}): bottlegen made it for {bottle.project}"
        for name, network in sorted(fit.items())
    ]
    subnets: list[str | None] = [None] * len(missing)
    if options.pool and missing:  # the subnets up would take now (another up may take them first)
        subnets = list(free_subnets(options.pool, taken_subnets(engine), len(missing)))
    lines += [
        f"would run: {shlex.join(create_argv(engine, bottle, name, subnet))}"
        for name, subnet in zip(missing, subnets, strict=True)
    ]
    if bottle.sealed:
        for name in sorted(bottle.internal):
            bridge = fit[name].bridge if name in fit else "br-<the new network's ID>"
            for tool in ("iptables", "ip6tables") if name in fit and fit[name].ipv6 else ("iptables",):
                lines.append(f"would run: {shlex.join([tool, '-I', *firewall.rule_spec(bridge, bottle.project)])}")
    lines.append(f"would run: {shlex.join(_compose_up(engine, bottle, options))}")
    return lines


def _up(engine: Engine, rendered: Rendered, bottle: Bottle, options: UpOptions, running_before: bool) -> Outcome:
    previous = bottle.compose_file.read_bytes() if running_before and bottle.compose_file.is_file() else None
    created, subnets = create_networks(engine, bottle, options.pool)  # each is checked before any is made
    try:
        if bottle.sealed:
            firewall.seal(firewall.bridges_of(engine, bottle), bottle.project)
        write_atomic(bottle.compose_file, rendered.text)
        write_engine(bottle.compose_file.parent, _recorded(engine))
    except BaseException:
        if not running_before:
            firewall.unseal(bottle.project)
        remove_networks(engine, bottle, only=created)
        raise
    try:
        proc = run(
            _compose_up(engine, bottle, options),
            output="progress" if options.progress else "capture",
            timeout=long(),
            env=engine.env,
        )
    except (KeyboardInterrupt, Stopped):  # compose is killed by now; undo what this up did, then stop
        with contextlib.suppress(UserError):
            _take_back(engine, bottle, created, previous, running_before)
        raise
    if proc.returncode == 0:  # what verify checks: written once the bottle runs this compose file
        promises = promises_of(rendered.context, rendered.agent, subnets)
        write_atomic(bottle.compose_file.parent / PROMISES_FILE, promises.to_json() + "\n")
        return Outcome(bottle)
    # compose's progress and its own error went to our stderr as they happened (a slow start
    # is never silent); the error says again which services are not running, and why.
    error = ComposeError(
        f"docker compose up for {bottle.project} failed (exit {proc.returncode})",
        proc.returncode,
        proc.args,
        "" if options.progress else mask(proc.stderr or "", bottle.variables, os.environ),
    )
    error.details += _missing_images(engine, rendered)
    error.details += _port_clashes(engine, rendered, bottle)
    error.details += _not_running(engine, bottle)
    error.details += _take_back(engine, bottle, created, previous, running_before)
    raise error


def _missing_images(engine: Engine, rendered: Rendered) -> list[str]:
    """After a failed up: each service whose image is not on the engine and that has nothing
    to build it from, with the plan key that gave the image (compose names neither)."""
    services = rendered.document.get("services") or {}
    wanted = {name: s["image"] for name, s in services.items() if isinstance(s.get("image"), str) and "build" not in s}
    if not wanted:
        return []
    present = run(
        [engine.docker, "image", "inspect", "--format", "{{.Id}}", *sorted(set(wanted.values()))], env=engine.env
    )
    if present.returncode == 0:
        return []
    found = []
    for name, image in wanted.items():
        if run([engine.docker, "image", "inspect", "--format", "{{.Id}}", image], env=engine.env).returncode == 0:
            continue
        key = plan_key_of(rendered.context, image)
        source = rendered.basis.source if rendered.basis else "the plan"
        given = f"{source}::{key} gives it" if key else "its template gives it"
        found.append(
            f"service {name}'s image {image!r} is not on the engine ({given}); pull or load it there "
            "(a registry's image: up pulls it unless --pull never), or name an image the engine has"
        )
    return found


def published_ports(service: Mapping[str, Any]) -> list[tuple[str, int]]:
    """The host addresses a service publishes (ip, port; ip "" for every address): the short
    form `[IP:]HOST:CONTAINER[/PROTO]` and the long one; ranges and random ports left out."""
    found = []
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            ip, port = str(entry.get("host_ip") or ""), str(entry.get("published") or "")
        else:
            parts = str(entry).split("/")[0].rsplit(":", 2)
            if len(parts) < 2:
                continue
            ip, port = (parts[0], parts[1]) if len(parts) == 3 else ("", parts[0])
        if port.isdigit():
            found.append((ip.strip("[]"), int(port)))
    return found


def _port_clashes(engine: Engine, rendered: Rendered, bottle: Bottle) -> list[str]:
    """After a failed up: each host port a service publishes that something else holds: a
    container of the engine's (named), or, on a local engine, a process of this host."""
    services = rendered.document.get("services") or {}
    wanted = {name: published_ports(s) for name, s in services.items() if isinstance(s, dict)}
    if not any(wanted.values()):
        return []
    listing = run([engine.docker, "ps", "--format", "{{.Names}}\t{{.Ports}}"], env=engine.env)
    holders: dict[int, str] = {}
    ours = {str(s.get("container_name")) for s in services.values() if isinstance(s, dict)}
    for line in listing.stdout.splitlines() if listing.returncode == 0 else []:
        name, _, ports = line.partition("\t")
        if name not in ours:
            for match in re.finditer(r":(\d+)->", ports):
                holders.setdefault(int(match[1]), f"container {name}")
    found = []
    for name, addresses in wanted.items():
        for ip, port in addresses:
            holder = holders.get(port) or (None if engine.remote else _held_here(ip, port))
            if holder:
                found.append(
                    f"service {name} publishes host port {ip + ':' if ip else ''}{port}, which {holder} holds "
                    f"already (template {rendered.sources.get(name, '?')}); free it, or publish another port"
                )
    return found


def _held_here(ip: str, port: int) -> str | None:
    """Whether a process of this host holds the address (binding it fails: in use)."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    probe = socket.socket(family, socket.SOCK_STREAM)
    try:
        probe.bind((ip or ("::" if family == socket.AF_INET6 else "0.0.0.0"), port))
    except OSError as e:
        return "a process of this host" if e.errno == errno.EADDRINUSE else None
    finally:
        probe.close()
    return None


def plan_key_of(context: Mapping[str, Any], value: str) -> str | None:
    """The key path of the plan (or of the settings it left to their defaults) that holds value."""
    for root, prefix in ((context.get("plan"), "$"), (context.get("settings"), "$.settings")):
        found = _path_to(root, value, prefix)
        if found:
            return found
    return None


def _path_to(node: Any, value: str, at: str) -> str | None:
    if node == value:
        return at
    if isinstance(node, dict):
        items: Any = ((f"{at}.{k}", v) for k, v in node.items() if k != "settings" or at != "$")
    elif isinstance(node, list):
        items = ((f"{at}[{i}]", v) for i, v in enumerate(node))
    else:
        return None
    return next((found for path, child in items if (found := _path_to(child, value, path))), None)


def _recorded(engine: Engine) -> EngineAddress:
    """The engine as the state directory records it: by name, even when it is docker's
    current context (which may change later)."""
    where = engine.where
    if where.host or where.context:
        return where
    name = current_context(engine.env) if engine.api is not None else context_of(engine.docker, None)[0]
    return EngineAddress(context=name) if name else where


def _take_back(
    engine: Engine, bottle: Bottle, created: list[str], previous: bytes | None, running_before: bool
) -> list[str]:
    """Undo an up that failed or was stopped; say what was done.

    A bottle that ran before is never taken down: its previous compose file is put back and
    started again. One that did not is removed, with the networks this up created (the
    compose file is kept, for the post-mortem).
    """
    if running_before:
        return [_restore(engine, bottle, previous)]
    run(
        engine.compose_argv(bottle.project, bottle.compose_file, "down", "--remove-orphans"),
        timeout=long(),
        env=engine.env,
    )
    problems = firewall.unseal(bottle.project)
    network_problems, notes = remove_networks(engine, bottle, only=created)
    return [
        *problems,
        *network_problems,
        *notes,
        f"removed what this up created; the compose file is kept: {bottle.compose_file}",
    ]


def _restore(engine: Engine, bottle: Bottle, previous: bytes | None) -> str:
    """Bring a bottle that ran before a failed up back to its previous compose file; say how it went."""
    if previous is None:
        return f"{bottle.project} was running before this up; it was left as it is now (see `bottlegen ps`)"
    write_atomic(bottle.compose_file, previous.decode("utf-8"))
    again = run(_compose_up(engine, bottle, UpOptions()), timeout=long(), env=engine.env)
    outcome = (
        "its services run it again" if again.returncode == 0 else "starting it again failed too: see `bottlegen ps`"
    )
    return (
        f"{bottle.project} was running before this up, and was not taken down: its previous compose file is "
        f"back in {bottle.compose_file}, and {outcome}"
    )


def _compose_up(engine: Engine, bottle: Bottle, options: UpOptions) -> list[str]:
    """compose up, detached, waiting until every service runs (healthy, where it has a
    healthcheck) for at most options.wait seconds; a service no longer in the file (an
    orphan) goes."""
    return engine.compose_argv(bottle.project, bottle.compose_file, "up", "-d", "--remove-orphans", *options.flags())


def _not_running(engine: Engine, bottle: Bottle, lines: int = 10) -> list[str]:
    """Each service that is not running (or not healthy), with its last log lines, masked."""
    found = []
    for service in ps(engine, bottle):
        if service.state == "running" and service.health in ("", "healthy"):
            continue
        if service.state == "created":  # compose stopped before starting it: it has no log
            found.append(f"service {service.service} was created, never started")
            continue
        how = service.state + (f", {service.health}" if service.health else "")
        how += f", exit {service.exit_code}" if service.state == "exited" else ""
        found.append(f"service {service.service} is {how}; its last log lines:")
        log = run(
            engine.compose_argv(
                bottle.project, bottle.compose_file, "logs", "--no-color", "--tail", str(lines), service.service
            ),
            env=engine.env,
        )
        text = mask(log.stdout, bottle.variables, os.environ)
        found += [f"  {line}" for line in text.splitlines()[-lines:]] or ["  (none)"]
    return found


def down(engine: Engine, bottle: Bottle, stop_timeout: int | None = None) -> Outcome:
    """Save the merged log beside the compose file, stop the bottle, remove its networks.

    A ComposeError when anything of the bottle is left (containers, networks bottlegen made).
    Under the state directory's lock.
    """
    with locked(bottle.compose_file.parent):
        return _down(engine, bottle, stop_timeout)


def _down(engine: Engine, bottle: Bottle, stop_timeout: int | None) -> Outcome:
    outcome = Outcome(bottle)
    state_dir = bottle.compose_file.parent
    if containers(engine, bottle):
        warning = _save_log(engine, bottle, state_dir / COMPOSE_LOG)
        outcome.warnings += [warning] if warning else []
    else:  # already down (or never up): keep the log a previous down saved
        outcome.notes.append(f"{bottle.project} has no containers; keeping any {COMPOSE_LOG} saved before")
    flags = ["--remove-orphans", *(["--timeout", str(stop_timeout)] if stop_timeout is not None else [])]
    proc = run(engine.compose_argv(bottle.project, bottle.compose_file, "down", *flags), timeout=long(), env=engine.env)
    problems = [] if proc.returncode == 0 else [f"docker compose down: {proc.stderr.strip()}"]
    problems += firewall.unseal(bottle.project)  # whatever the compose file says now
    removal_problems, notes = remove_networks(engine, bottle)
    problems += removal_problems
    outcome.notes += notes
    left = containers(engine, bottle)
    if left:
        problems.append(
            f"{len(left)} container(s) of {bottle.project} are still there: "
            f"docker ps -a --filter label={PROJECT_LABEL}={bottle.project}"
        )
    if problems:
        raise ComposeError(
            f"teardown of {bottle.project} is incomplete", 1, ["docker", "compose", "down"], "\n".join(problems)
        )
    log = state_dir / COMPOSE_LOG
    outcome.log = log if log.exists() else None
    return outcome


def down_by_labels(engine: Engine, project: str) -> Outcome:
    """Take down a bottle whose state directory is gone: exactly what bottlegen made for it,
    found by labels (its containers, by compose's project label; its networks, by
    bottlegen's; its seal's rules, by their comment), nothing else. No log is saved: compose's
    file is gone with the folder. A ComposeError when anything of it is left."""
    outcome = Outcome(Bottle(project, Path(os.devnull), {}))
    ids = list(project_containers(engine, project))
    problems = []
    if ids:
        proc = run([engine.docker, "rm", "-f", *ids], timeout=long(), env=engine.env)
        if proc.returncode != 0:
            problems.append(f"docker rm: {proc.stderr.strip()}")
    problems += firewall.unseal(project)
    label_filters = ["--filter", f"label={LABEL_CREATED_BY}=bottlegen", "--filter", f"label={LABEL_PROJECT}={project}"]
    networks = listed(engine, ["network", "ls", "-q", "--no-trunc", *label_filters], "docker network ls")
    if networks:
        proc = run([engine.docker, "network", "rm", *networks], env=engine.env)
        if proc.returncode != 0:
            problems.append(f"docker network rm: {proc.stderr.strip()}")
    outcome.notes.append(
        f"{project} had no state directory: removed by labels its {len(ids)} container(s) and the "
        f"{len(networks)} network(s) bottlegen made for it; no log was saved"
    )
    if project_containers(engine, project):
        problems.append(
            f"containers of {project} are still there: docker ps -a --filter label={PROJECT_LABEL}={project}"
        )
    if problems:
        raise ComposeError(f"teardown of {project} is incomplete", 1, ["docker", "rm"], "\n".join(problems))
    return outcome


def project_containers(engine: Engine, project: str) -> dict[str, list[str]]:
    """The project's containers, running or not: each ID, and the compose files it was
    started from (compose labels each container so)."""
    if engine.api is not None:
        rows = engine.api.get("/containers/json", all="1", filters=labelled(f"{PROJECT_LABEL}={project}"))
        return {
            str(row.get("Id", "")): [
                f for f in str((row.get("Labels") or {}).get(CONFIG_FILES_LABEL, "")).split(",") if f.strip()
            ]
            for row in rows
        }
    listing = f'{{{{.ID}}}} {{{{.Label "{CONFIG_FILES_LABEL}"}}}}'
    argv = [engine.docker, "ps", "-a", "--filter", f"label={PROJECT_LABEL}={project}", "--format", listing]
    proc = checked(argv, "docker ps", env=engine.env, engine=engine)
    found = {}
    for line in proc.stdout.splitlines():
        container, _, files = line.partition(" ")
        found[container] = [f for f in files.split(",") if f.strip()]
    return found


def containers(engine: Engine, bottle: Bottle) -> list[str]:
    """The IDs of the bottle's containers, running or not."""
    return list(project_containers(engine, bottle.project))


LOG_MODE = 0o600  # the log may hold what a container printed: only its owner reads it


def _save_log(engine: Engine, bottle: Bottle, path: Path) -> str | None:
    """The merged log into path (0600 whatever the umask, atomic), with the value of every
    variable the bottle takes from our environment masked. An empty log never replaces a
    saved one. Best effort: a failure is a warning, returned."""
    log = run(
        engine.compose_argv(bottle.project, bottle.compose_file, "logs", "--no-color", "--timestamps"),
        timeout=long(),
        env=engine.env,
    )
    try:
        if log.returncode != 0:
            raise OSError(log.stderr.strip() or f"docker compose logs exited {log.returncode}")
        if not log.stdout.strip() and path.exists():
            return None  # nothing new to say: keep what an earlier down saved
        write_atomic(path, mask(log.stdout, bottle.variables, os.environ), mode=LOG_MODE)
    except (OSError, UserError) as e:
        return f"could not save the merged log to {path}: {e}; tearing down anyway"
    return None
