"""The templates' manifest (`manifest.yaml`): which template makes the document's top level,
which services exist, in what order, when (a Jinja expression over the context), and what
each is to the sandbox (its role); and the sandbox rules it relaxes, with a reason.

The conditions are compiled as one template that bottlegen makes and its loader serves, so
they come from Jinja's bytecode cache like every template: no Jinja lexer is built on a
launch. Each condition is on its own line of it, which is how an error names its service.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple

import jinja2
from jinja2 import TemplateNotFound

from .. import host, resources
from ..errors import TemplateError
from ..roles import AGENT, GATEWAY
from ..schemas import format_errors, violations
from ..yamlsubset import load_data
from ..yamltext import YAMLSyntaxError
from . import resolve
from .templating import MANIFEST, TEMPLATE_FAILURES, loader_of

CONDITIONS = "/manifest.yaml: when"  # the generated template's name (no file is named so)
_FIRST_LINE = 2  # the line of the first service's condition in it
_DELIMITERS = ("{{", "}}", "{%", "%}", "{#", "#}")


class ServiceEntry(NamedTuple):
    name: str
    template: str
    when: str
    role: str | None = None  # "agent", "gateway", or None: what the policy lets it do


class Manifest(NamedTuple):
    document: str
    services: list[ServiceEntry]
    path: Path  # the manifest file in effect (packaged or an operator's), for messages
    relax: dict[str, str]  # sandbox rules turned off, with the reason given
    settings_schema: dict[str, Any]  # the operator's services' settings, merged into the plan schema

    @property
    def agent(self) -> str:
        return next(entry.name for entry in self.services if entry.role == AGENT)

    @property
    def gateways(self) -> frozenset[str]:
        return frozenset(entry.name for entry in self.services if entry.role == GATEWAY)


def read_manifest(env: jinja2.Environment) -> Manifest:
    """The manifest in effect (the first templates folder that has one), checked."""
    try:
        _, path = loader_of(env).locate(MANIFEST)
    except TemplateNotFound as e:
        raise TemplateError(f"{MANIFEST} not found in the templates folders: {e.message or e}") from None
    try:
        data = load_data(host.read_bytes(path).decode("utf-8"))
    except (YAMLSyntaxError, OSError, UnicodeDecodeError) as e:
        raise TemplateError(f"{path}: cannot read the manifest: {e}") from None
    errors = violations(resources.MANIFEST_SCHEMA, data)
    if errors:
        raise TemplateError(f"{path}: invalid manifest:", format_errors(str(path), errors))
    entries = [
        ServiceEntry(s["name"], s["template"], str(s.get("when", "true")), s.get("role")) for s in data["services"]
    ]
    seen: set[str] = set()
    for entry in entries:
        if entry.name in seen:
            raise TemplateError(f"{path}: service {entry.name!r} is declared twice")
        seen.add(entry.name)
    agents = [entry.name for entry in entries if entry.role == AGENT]
    if len(agents) != 1:
        raise TemplateError(
            f"{path}: exactly one service must have `role: agent` (the sandboxed agent the policy protects); "
            + (f"found {', '.join(agents)}" if agents else "none has it")
        )
    return Manifest(
        document=data["document"],
        services=entries,
        path=path,
        relax=dict(data.get("relax") or {}),
        settings_schema=dict(data.get("settings_schema") or {}),
    )


class Conditions(NamedTuple):
    manifest: Manifest
    template: jinja2.Template


def compile_conditions(env: jinja2.Environment, manifest: Manifest) -> Conditions:
    """Every service's `when`, compiled once, as one template: line by line, each condition
    adds its service to `services` when it holds, so the next one sees the services above."""
    lines = ["{%- set services = [] -%}"]
    for entry in manifest.services:
        if any(d in entry.when for d in _DELIMITERS) or "\n" in entry.when:
            raise _condition_error(
                manifest,
                entry,
                "must be one Jinja expression on one line, without {{ }}, {% %} or {# #}",
            )
        lines.append(
            f"{{% if ({entry.when}) %}}{{% set services = services + [{json.dumps(entry.name)}] %}}{{% endif %}}"
        )
    loader_of(env).generated[CONDITIONS] = "\n".join(lines) + "\n"
    try:
        return Conditions(manifest, env.get_template(CONDITIONS))
    except jinja2.TemplateSyntaxError as e:
        raise _condition_error(manifest, _entry_at(manifest, e.lineno), e) from None


def enable(conditions: Conditions, context: dict[str, Any]) -> None:
    """Complete a resolved plan's context with what the manifest decides: `services`, the
    enabled services in manifest order, and the facts that depend on them (service_facts)."""
    context["services"] = enabled_services(conditions, context)
    context["facts"].update(service_facts(context["settings"], context["services"]))


def service_facts(settings: dict[str, Any], services: list[str]) -> dict[str, Any]:
    """The facts that depend on which services are enabled (known once the manifest's
    conditions are evaluated): `no_proxy`, what the agent reaches without its proxy
    (loopback, and supervise when it is enabled: its MCP long-poll must bypass pipelock's
    idle timeout), and `healthchecked`, the enabled services with a healthcheck."""
    hosts = ["localhost", "127.0.0.1"]
    if resolve.SUPERVISE in services:
        hosts.append(settings["hostnames"]["supervise"])
    checks = settings["healthchecks"]
    return {"no_proxy": ",".join(hosts), "healthchecked": [name for name in services if checks.get(name)]}


def enabled_services(conditions: Conditions, context: dict[str, Any]) -> list[str]:
    """The names of the manifest's services whose `when` holds, in manifest order.

    A condition sees the context and `services`: the services enabled above it.
    """
    try:
        enabled = getattr(conditions.template.make_module(context), "services")  # noqa: B009 (a module attribute)
    except TEMPLATE_FAILURES as e:
        line = _failing_line(conditions.template, e.__traceback__)
        raise _condition_error(conditions.manifest, _entry_at(conditions.manifest, line), e) from None
    return list(enabled)


def _entry_at(manifest: Manifest, line: int | None) -> ServiceEntry | None:
    index = (line or 0) - _FIRST_LINE
    return manifest.services[index] if 0 <= index < len(manifest.services) else None


def _failing_line(template: jinja2.Template, tb: TracebackType | None) -> int | None:
    """The line of template that the innermost of its frames in a traceback was running."""
    line = None
    while tb is not None:
        if tb.tb_frame.f_globals.get("__jinja_template__") is template:
            line = template.get_corresponding_lineno(tb.tb_lineno)
        tb = tb.tb_next
    return line


def _condition_error(manifest: Manifest, entry: ServiceEntry | None, error: BaseException | str) -> TemplateError:
    message = error if isinstance(error, str) else f"{type(error).__name__}: {getattr(error, 'message', None) or error}"
    if entry is None:
        return TemplateError(f"{manifest.path}: a service's condition: {message}")
    return TemplateError(f"{manifest.path}: service {entry.name!r}: condition {entry.when!r}: {message}")
