"""Stage 2: a parsed plan against the plan schema, then the plan's rules that a JSON schema
cannot say (upstream names unique, one address per extra host, healthcheck forms), every problem reported as
`<source>::$.json.path: message`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import resources
from ..errors import PlanError, Problem
from ..paths import json_path, shorten
from ..schemas import format_errors, violations

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError


def validate_plan(data: Any, source: str, check: Callable[[Any], list[ValidationError]] | None = None) -> None:
    """Raise PlanError listing every schema violation of a parsed plan (against the plan
    schema, or what check finds: an extended schema's), or else every problem with its rules
    across fields."""
    errors = check(data) if check is not None else violations(resources.PLAN_SCHEMA, data)
    if errors:
        lines = format_errors(source, errors)
        count = f"{len(errors)} problem{'s' if len(errors) > 1 else ''}"
        raise PlanError(f"invalid plan ({count}); fix the plan file and render again:", lines)
    upstreams = (data.get("git_gate") or {}).get("upstreams") or []
    _unique_upstream_names(upstreams, source)
    _one_address_per_host(upstreams, source)
    _healthcheck_forms(((data.get("settings") or {}).get("healthchecks")) or {}, source)


def _unique_upstream_names(upstreams: list[dict[str, Any]], source: str) -> None:
    first: dict[str, int] = {}
    for index, upstream in enumerate(upstreams):
        name = upstream["name"]
        if name in first:
            where = json_path(("git_gate", "upstreams", index, "name"))
            raise PlanError(
                "invalid plan: upstream names must be unique (each key is mounted as <name>-key):",
                [Problem(f"upstream name {shorten(name)} is already used by upstreams[{first[name]}]", source, where)],
            )
        first[name] = index


def _one_address_per_host(upstreams: list[dict[str, Any]], source: str) -> None:
    """The same host in two upstreams' extra_hosts must have the same address."""
    seen: dict[str, tuple[str, int]] = {}
    problems = []
    for index, upstream in enumerate(upstreams):
        for host, ip in (upstream.get("extra_hosts") or {}).items():
            if host in seen and seen[host][0] != ip:
                first_ip, first_index = seen[host]
                where = json_path(("git_gate", "upstreams", index, "extra_hosts", host))
                problems.append(
                    Problem(
                        f"host {shorten(host)} is {shorten(ip)} here but {shorten(first_ip)} "
                        f"in upstreams[{first_index}]: give it one address",
                        source,
                        where,
                    )
                )
            seen.setdefault(host, (ip, index))
    if problems:
        raise PlanError("invalid plan: conflicting extra_hosts:", problems)


def _healthcheck_forms(healthchecks: dict[str, Any], source: str) -> None:
    """A healthcheck's test is [CMD, program, ...] or [CMD-SHELL, command], as compose wants."""
    problems = [
        Problem(
            f"{shorten(check['test'][0])} is not CMD or CMD-SHELL: write [CMD, program, args...] or [CMD-SHELL, command]",
            source,
            json_path(("settings", "healthchecks", service, "test", 0)),
        )
        for service, check in healthchecks.items()
        if check and check["test"][0] not in ("CMD", "CMD-SHELL")
    ]
    if problems:
        raise PlanError("invalid plan: healthchecks compose would refuse:", problems)
