"""The stages in order: load, validate, resolve, render, merge, check, emit.

A Renderer builds what is costly once (the Jinja environment and its compiled templates,
the manifest and its conditions, the schema validators) and renders any number of plans
with it. It adds up the seconds spent in each stage in `stage_seconds` (benchmarks/ reads
them; the cost is a clock read per stage).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

from jinja2 import TemplateNotFound

from . import host, resources, schemas
from .compose import check, policy, relocate
from .composefile import host_paths
from .errors import PlanError, Problem, TemplateError
from .kubernetes import check as kubernetes_check
from .kubernetes import emit as kubernetes_emit
from .kubernetes import policy as kubernetes_policy
from .lints import Lint
from .resources import COMPOSE, KUBERNETES, templates_dir
from .stages import emit, layers, load, manifest, resolve, templating, validate, verdicts
from .stages.merge import Fragment, Merged, ValueNotWhole, merge
from .stages.templating import PACKAGED, Root
from .yamltext import copy_plain

TEMPLATES_ENV = "BOTTLEGEN_TEMPLATES"


class Basis(NamedTuple):
    """What a render judged and wrote its text from, kept so that `up` can judge the host
    again right before it starts the bottle, and write the paths it judged (Rendered.pinned)."""

    merged: Merged
    gateways: frozenset[str]
    relax: dict[str, str]
    source: str
    plan_name: str
    relaxed: list[str]
    writable: list[str]


class Rendered(NamedTuple):
    """A render's result: the file's text, the document and context it came from, warnings,
    which service is the agent (the manifest's `role: agent`), and which template wrote each
    service."""

    text: str
    document: dict[str, Any]
    context: dict[str, Any]
    warnings: list[Lint]
    agent: str
    sources: dict[str, str]  # service -> the template that wrote it, as the file's comments name it
    basis: Basis | None = None

    def host_paths(self) -> list[str]:
        """Every host path the document hands a container, as the engine's host will read it
        (`$$` unescaped, `~` expanded); those compose would interpolate are left out."""
        if self.basis is None:
            return []
        found = []
        for place in host_paths(self.basis.merged.document):
            text = policy.literal(place.value)
            if text is not None and os.path.expanduser(text).startswith("/"):
                found.append(os.path.expanduser(text))
        return found

    def pinned(self, view: host.HostView) -> tuple[list[Problem], Rendered]:
        """Judge every host path again as view resolves it now (the rules that read the host),
        and this render with each host path written as it resolved, so that what was judged
        is what the engine mounts: (the problems, each at its plan key or template; the render)."""
        if self.basis is None:
            return [], self
        b = self.basis
        facts = policy.facts_of(b.merged, self.agent, b.gateways, self.context, view, b.writable)
        findings = policy.judge(facts, b.relax, policy.HOST_RULES)
        if findings:
            return verdicts.located(findings, b.merged, self.context, b.source)[0], self
        resolved = {}
        for place in facts.places:
            found = facts.resolved(place.value)
            if found is not None and found.path.replace("$", "$$") != place.value:
                resolved[place.value] = found.path.replace("$", "$$")
        document = relocate.relocate(b.merged.document, resolved) if resolved else b.merged.document
        text = emit.emit(document, self.sources, b.plan_name, b.relaxed) if resolved else self.text
        return [], self._replace(text=text, document=document)


def plan_data(plan: str) -> tuple[Any, str, Path]:
    """PLAN's data, its name in messages, and the folder its relative host paths resolve
    against: `-` is a plan on standard input, whose relative host paths resolve against the
    current folder (there is no plan file to resolve them against)."""
    if plan == "-":
        return load.read_plan_stream(sys.stdin.buffer), load.STDIN, Path.cwd()
    return load.read_plan(Path(plan)), plan, Path(host.realpath(plan)).parent


def template_roots(override_dirs: Sequence[str | os.PathLike[str]] = (), target: str = COMPOSE) -> list[Root]:
    """Override folders first, in the order given, then the target's packaged templates."""
    roots = [Root(Path(d), f"override {canonical_folder(d)}") for d in override_dirs]
    return [*roots, Root(templates_dir(target), PACKAGED)]


def canonical_folder(folder: str | os.PathLike[str]) -> str:
    """How the file's comments name an override folder, whatever the spelling: relative to the
    current folder when inside it (`ops/t` for `./ops/t` and for its absolute path), else
    absolute; so two clones render the same bytes when run from their roots."""
    absolute = Path(os.path.abspath(folder))
    try:
        return absolute.relative_to(Path.cwd()).as_posix() or "."
    except ValueError:
        return absolute.as_posix()


def override_dirs_from_env(variable: str = TEMPLATES_ENV) -> list[str]:
    value = os.environ.get(variable, "")
    return [part for part in value.split(os.pathsep) if part]


class Renderer:
    STAGES = (
        "load and validate plan",
        "render templates",
        "parse and merge",
        "schema and semantic checks",
        "sandbox policy",
        "emit",
    )

    def __init__(
        self,
        override_dirs: Sequence[str | os.PathLike[str]] = (),
        view: host.HostView | None = None,
        check_host: bool = True,
        target: str = COMPOSE,
    ):
        # Whether a render reads this machine: host paths judged as they resolve here now, the
        # env file looked at, missing bind sources warned of. Without, host paths are judged as
        # written (host.lexical()) and the same plan gives the same result on any machine.
        self.check_host = check_host
        self.target = target  # compose, or kubernetes: which templates, checks, policy and writer
        self.host = view or (host.local() if check_host else host.lexical())
        self.env = templating.make_environment(template_roots(override_dirs, target))
        self.manifest = manifest.read_manifest(self.env)
        self.conditions = manifest.compile_conditions(self.env, self.manifest)
        # The plan schema in effect: bottlegen's, or with the manifest's settings_schema merged in
        # (then checked by jsonschema, built once here; bottlegen's own has a compiled check).
        fragment = self.manifest.settings_schema
        where = str(self.manifest.path)
        self.plan_schema = (
            schemas.extended_plan_schema(fragment, where) if fragment else resources.load_schema(resources.PLAN_SCHEMA)
        )
        self._plan_check = schemas.checker(self.plan_schema) if fragment else None
        # Each relaxed rule, as the header of every rendered file names it.
        self._relaxed = [f"{rule}: {reason}" for rule, reason in sorted(self.manifest.relax.items())]
        self.stage_seconds: dict[str, float] = defaultdict(float)
        self._overlays: dict[Path, tuple[str, Any, Path]] = {}
        self._labels: dict[str, str] = {}  # template name -> how messages and comments name it

    @contextmanager
    def _stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.stage_seconds[name] += time.perf_counter() - start

    # -- the context ------------------------------------------------------------------

    def context_for(self, data: Any, source: str, base_dir: Path) -> dict[str, Any]:
        """The full template context of a parsed plan (validated here)."""
        return self._resolved(data, source, base_dir)[0]

    def _resolved(self, data: Any, source: str, base_dir: Path) -> tuple[dict[str, Any], resolve.PlanHostPaths]:
        """The plan validated and resolved, once: its template context, and what resolving its
        host paths learned for the stages after the templates (policy, relocate)."""
        validate.validate_plan(data, source, self._plan_check)
        names = [entry.name for entry in self.manifest.services]
        context, paths = resolve.resolve_plan(data, base_dir, source, names, self.plan_schema, self.check_host)
        manifest.enable(self.conditions, context)
        return context, paths

    @staticmethod
    def service_context(context: dict[str, Any], name: str) -> dict[str, Any]:
        """The context of one enabled service's template: the plan's, and `service`."""
        service = {
            "name": name,
            "container_name": context["container_names"][name],
            "before": context["services"][: context["services"].index(name)],  # enabled above it
        }
        return {**context, "service": service}

    def context(self, plan_path: Path) -> dict[str, Any]:
        return self.context_for(load.read_plan(plan_path), str(plan_path), Path(host.realpath(plan_path)).parent)

    # -- rendering --------------------------------------------------------------------

    def render(self, plan_path: Path, output_dir: Path | None = None) -> Rendered:
        """The plan's compose file; with output_dir (where the file is written), the plan's
        relative host paths are written relative to it (relocate.py)."""
        with self._stage(self.STAGES[0]):
            data = load.read_plan(plan_path)
        try:
            return self.render_data(
                data, str(plan_path), Path(host.realpath(plan_path)).parent, plan_path.name, output_dir
            )
        except PlanError as e:  # each problem at the line the plan writes its value
            raise layers.in_files(e) from None

    def layered(
        self,
        data: Any,
        source: str,
        base_dir: Path,
        overlays: Sequence[Path] = (),
        sets: Sequence[str | tuple[str, str]] = (),
    ) -> layers.Layered:
        """A plan (data, read from source in base_dir) with `-f` overlay files and `--set`
        assignments over it (layers.py). Render or take its context inside `with
        plan.blamed():`, so that each plan error names the layer at fault."""
        files = [self._overlay(p) for p in overlays]
        return layers.layered(data, source, base_dir, files, sets, self.plan_schema)

    def _overlay(self, path: Path) -> tuple[str, Any, Path]:
        """An overlay file, read once per process: a fleet lays the same files over each plan."""
        if path not in self._overlays:
            self._overlays[path] = (str(path), load.read_plan(path), Path(host.realpath(path)).parent)
        return self._overlays[path]

    def render_plan(
        self,
        plan: str,
        overlays: Sequence[Path] = (),
        sets: Sequence[str | tuple[str, str]] = (),
        output_dir: Path | None = None,
    ) -> Rendered:
        """PLAN (a plan file's path, or `-` for the plan on standard input) with the overlay
        files and `--set` values laid over it. With output_dir, where the file will be,
        relative host paths are written relative to it."""
        if plan != "-" and not overlays and not sets:
            return self.render(Path(plan), output_dir)
        data, source, base_dir = plan_data(plan)
        return self.render_layers(self.layered(data, source, base_dir, overlays, sets), base_dir, output_dir)

    def context_of_plan(
        self, plan: str, overlays: Sequence[Path] = (), sets: Sequence[str | tuple[str, str]] = ()
    ) -> dict[str, Any]:
        """The template context of PLAN with its layers (as render_plan takes them)."""
        data, source, base_dir = plan_data(plan)
        layered = self.layered(data, source, base_dir, overlays, sets)
        with layered.blamed():
            return self.context_for(layered.data, layered.label, base_dir)

    def render_layers(self, plan: layers.Layered, base_dir: Path, output_dir: Path | None = None) -> Rendered:
        with plan.blamed():
            return self.render_data(plan.data, plan.label, base_dir, plan.name, output_dir)

    def render_data(
        self, data: Any, source: str, base_dir: Path, plan_name: str, output_dir: Path | None = None
    ) -> Rendered:
        load_plan, render_templates, parse_merge, checks, sandbox, write_yaml = self.STAGES
        with self._stage(load_plan):
            context, paths = self._resolved(data, source, base_dir)
        with self._stage(render_templates):
            fragments = [
                Fragment(
                    self._label(self.manifest.document),
                    *templating.render_fragment(self.env, self.manifest.document, context),
                )
            ]
            inputs = {fragments[0].source: (self.manifest.document, context)}
            sources: dict[str, str] = {}
            for entry in self.manifest.services:
                if entry.name not in context["services"]:
                    continue
                label = self._label(entry.template)
                service_context = self.service_context(context, entry.name)
                fragments.append(
                    Fragment(label, *templating.render_fragment(self.env, entry.template, service_context))
                )
                inputs[label] = (entry.template, service_context)
                sources[entry.name] = label
        with self._stage(parse_merge):
            try:
                merged = merge(fragments)
            except ValueNotWhole as e:
                raise self._located(e, *inputs[e.fragment.source]) from None
        if self.target == KUBERNETES:
            return self._kubernetes(merged, context, source, plan_name, sources)
        with self._stage(checks):
            check.check_schema(merged)
            check.check_rules(merged)
            warnings = check.plan_lints(context, source) + check.lints(merged, self.check_host)
        with self._stage(sandbox):
            agent, gateways, relax = self.manifest.agent, self.manifest.gateways, self.manifest.relax
            policy.enforce(merged, agent, gateways, relax, context, source, self.host, paths.writable)
        with self._stage(write_yaml):
            document = merged.document
            if output_dir is not None:
                document = relocate.relocate(document, relocate.relative_to(paths.relative, output_dir))
            text = emit.emit(document, sources, plan_name, self._relaxed)
        basis = Basis(merged, gateways, relax, source, plan_name, self._relaxed, paths.writable)
        return Rendered(text, document, context, warnings, self.manifest.agent, sources, basis)

    def _kubernetes(
        self, merged: Merged, context: dict[str, Any], source: str, plan_name: str, sources: dict[str, str]
    ) -> Rendered:
        """The kubernetes target's stages after merge (bottlegen/kubernetes/)."""
        _, _, _, checks, sandbox, write_yaml = self.STAGES
        with self._stage(checks):
            kubernetes_check.compose_only(context, source)
            objects = kubernetes_check.read_objects(merged)
            warnings = check.plan_lints(context, source)
        with self._stage(sandbox):
            agent, gateways, relax = self.manifest.agent, self.manifest.gateways, self.manifest.relax
            kubernetes_policy.enforce(merged, objects, agent, gateways, relax, context, source)
        with self._stage(write_yaml):
            text = kubernetes_emit.emit(objects, merged, plan_name, self._relaxed)
        document = {obj.handle: obj.body for obj in kubernetes_emit.ordered(objects)}
        return Rendered(text, document, context, warnings, self.manifest.agent, sources)

    def _located(self, error: ValueNotWhole, template: str, context: dict[str, Any]) -> TemplateError:
        """The error, naming the template line that wrote the value (found by rendering again)."""
        origin = next(
            (where for where, text in templating.value_origins(self.env, template, context) if text == error.value),
            None,
        )
        return TemplateError(error.describe(origin), error.shown)

    def _label(self, name: str) -> str:
        """A template's name and the root it comes from, looked up once per process: Jinja
        too reads each template once (auto_reload is off)."""
        label = self._labels.get(name)
        if label is None:
            try:
                root, _ = templating.loader_of(self.env).locate(name)
            except TemplateNotFound:  # rendering it reports that properly, every time
                return name
            label = self._labels[name] = f"{name} ({root.origin})"
        return label


_renderers: dict[tuple[tuple[str, ...], bool, str], Renderer] = {}
_renderers_lock = threading.Lock()


def _renderer_for(templates: Sequence[str | os.PathLike[str]], check_host: bool, target: str = COMPOSE) -> Renderer:
    """One Renderer per set of template folders, host reading and target, made once per
    process: a Renderer is safe to use from many threads."""
    key = (tuple(os.path.abspath(t) for t in templates), check_host, target)
    with _renderers_lock:
        found = _renderers.get(key)
        if found is None:
            found = _renderers[key] = Renderer(list(key[0]), check_host=check_host, target=target)
    return found


def render(
    plan: Mapping[str, Any] | str | os.PathLike[str],
    *,
    templates: Sequence[str | os.PathLike[str]] | None = None,
    base_dir: str | os.PathLike[str] | None = None,
    check_host: bool = False,
    target: str = COMPOSE,
) -> Rendered:
    """A bottle's compose document from its plan: plain data (a mapping, as a plan file
    holds it) or the path of a plan file (YAML or JSON); with target="kubernetes", its
    Kubernetes objects (`.document`: handle -> object, in apply order).

    templates: override folders, looked in first, before the packaged templates.
    base_dir: what the plan's relative host paths are relative to (default: the plan file's
    folder, or the current folder for a mapping).
    check_host: read this machine as `bottlegen render` does (host paths judged as they
    resolve, the env file looked at, missing bind sources warned of). Without it (the
    default) nothing is read but the templates: the same plan and templates give the same
    result on any machine.

    Returns a Rendered: `.document` (a plain dict, services in order), `.text` (the exact
    bytes `bottlegen render` writes), `.warnings` (each a Lint, with `.kind.code`). Raises
    PlanError, TemplateError or DocumentError (all UserError, with `.exit_code`). Safe to call
    from many threads.
    """
    renderer = _renderer_for(templates or (), check_host, target)
    if isinstance(plan, Mapping):
        folder = Path(base_dir) if base_dir is not None else Path.cwd()
        return renderer.render_data(copy_plain(dict(plan)), "<plan>", folder.absolute(), "<plan>")
    path = Path(plan)
    data = load.read_plan(path)
    folder = Path(base_dir) if base_dir is not None else path.absolute().parent
    return renderer.render_data(data, str(path), folder.absolute(), path.name)
