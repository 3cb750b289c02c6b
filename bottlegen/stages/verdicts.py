"""Stage 8: what a target's policy found, as the problems a user reads, and the error they raise.

Both targets' policies (bottlegen/compose/policy.py, bottlegen/kubernetes/policy.py) judge the
merged document by rules and return Findings; this stage says where each is (at the plan's key
when the value at fault is, verbatim, a value of the plan: exit 3; else at the document's key
path and the template that wrote it: exit 5), which rule it breaks, and whether a manifest may
relax that rule. The relaxable rules are the same names on both targets, and the manifest
schema's `relax:` lists exactly them.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ..errors import DocumentError, PlanError, Problem
from ..paths import json_path
from .merge import Merged


class Finding(NamedTuple):
    """A broken rule: the message, the value at fault (to find it in the plan, if it is
    there), the key path in the document, and (filled in by judge) the rule."""

    message: str
    value: Any = None
    at: tuple[Any, ...] | None = None
    rule: str | None = None


# The rules a manifest's `relax:` may turn off, with a reason; the others always hold.
RELAXABLE = (
    "agent-networks",
    "agent-ports",
    "agent-keys",
    "agent-privileges",
    "agent-host-namespaces",
    "service-namespaces",
    "agent-host-mounts",
    "gateways",
)


def plan_paths(context: dict[str, Any]) -> dict[Any, tuple[Any, ...]]:
    """Every string of the resolved plan and settings, with its key path in the plan file."""
    found: dict[Any, tuple[Any, ...]] = {}
    stack: list[tuple[Any, tuple[Any, ...]]] = [(context["plan"], ()), (context["settings"], ("settings",))]
    while stack:
        value, path = stack.pop()
        if path == ("egress", "token_env_names"):
            for variable in value:
                found.setdefault(variable, ("egress", "token_env_map", variable))
        elif isinstance(value, dict):
            stack += [(v, (*path, k)) for k, v in value.items()]
        elif isinstance(value, list):
            stack += [(v, (*path, i)) for i, v in enumerate(value)]
        elif isinstance(value, str):
            found.setdefault(value, path)
    return found


def _rule_note(rule: str) -> str:
    if rule in RELAXABLE:
        return f"[rule {rule}; a manifest may relax it: `relax: {{{rule}: <the reason>}}`]"
    return f"[rule {rule}, which always holds]"


def located(
    findings: list[Finding], merged: Merged, context: dict[str, Any], source: str
) -> tuple[list[Problem], bool]:
    """Each finding as a problem record, at the plan's key path when its value at fault is,
    verbatim, a value of the plan (then the document's place is said in the message); and
    whether every one of them is. Each names its rule, and the relax that would allow it."""
    in_plan = plan_paths(context)
    records = []
    from_plan = bool(findings) and all(isinstance(f.value, str) and f.value in in_plan for f in findings)
    for finding in findings:
        at = finding.at or ()
        template = merged.source_of(at)
        note = _rule_note(finding.rule) if finding.rule else None
        if from_plan:
            where = json_path(at) + (f" in template {template}" if template else "")
            plan_path = json_path(in_plan[finding.value])
            records.append(Problem(f"{where}: {finding.message}", source, plan_path, rule=finding.rule, hint=note))
        else:
            records.append(
                Problem(finding.message, path=json_path(at), template=template, rule=finding.rule, hint=note)
            )
    return records, from_plan


def refuse(findings: list[Finding], merged: Merged, context: dict[str, Any], source: str, what: str) -> None:
    """Raise what the findings make, if any: PlanError when each comes from a plan value (the
    plan has to change, whatever the templates), else DocumentError; `what` the rendered
    thing is (the document, the objects), for the message."""
    if not findings:
        return
    problems, from_plan = located(findings, merged, context, source)
    if from_plan:
        raise PlanError("invalid plan: a value would break the sandbox's rules; change it:", problems)
    raise DocumentError(
        f"the rendered {what} {'break' if what.endswith('s') else 'breaks'} the sandbox's rules (bottlegen's "
        "policy); fix the template named, or, for a rule that may be relaxed, say so in the manifest's `relax:`:",
        problems,
    )
