"""Stage 2: check plain data against a JSON schema and report every violation.

Validators are built once per process. Errors are collected first, then reported as
`<source>::$.json.path: message`, the most relevant (jsonschema's `best_match`) first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from functools import cache
from typing import Any

from jsonschema import Draft7Validator, Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match
from jsonschema.protocols import Validator
from jsonschema.validators import extend

from . import resources
from .errors import PlanError

MAX_VALUE_CHARS = 60


@cache
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _ecma_pattern(validator: Validator, pattern: str, instance: Any, schema: dict[str, Any]) -> Iterator[ValidationError]:
    """`pattern` as JSON Schema means it (ECMA-262): `$` matches only at the very end.

    jsonschema uses Python's `re`, whose `$` also matches before a final newline, so that
    "demo\n" would pass ^[a-z0-9][a-z0-9_-]*$ (hypothesis found it).
    """
    if not validator.is_type(instance, "string"):
        return
    match = _regex(pattern).search(instance)
    if match is None or (pattern.endswith("$") and not pattern.endswith("\\$") and match.end() != len(instance)):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


_Draft2020 = extend(Draft202012Validator, {"pattern": _ecma_pattern})
_Draft7 = extend(Draft7Validator, {"pattern": _ecma_pattern})


@cache
def plan_validator() -> Validator:
    schema = resources.load_schema(resources.PLAN_SCHEMA)
    return _Draft2020(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


@cache
def manifest_validator() -> Validator:
    return _Draft2020(resources.load_schema(resources.MANIFEST_SCHEMA))


@cache
def compose_validator() -> Validator:
    # The vendored schema declares "$schema": "https://json-schema.org/draft-07/schema",
    # a form jsonschema does not recognise: choose draft 7 explicitly (schema/compose-spec/).
    return _Draft7(resources.load_schema(resources.COMPOSE_SCHEMA))


def json_path(parts: Iterable[Any]) -> str:
    """`$.egress.routes[0]` for the path ('egress', 'routes', 0)."""
    out = "$"
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.replace("_", "a").replace("-", "a").isalnum():
            out += f".{part}"
        else:
            out += "[" + _quote(part) + "]"
    return out


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def shorten(value: Any) -> str:
    """A value for a message: repr-like, on one line, at most MAX_VALUE_CHARS characters."""
    text = _quote(value) if isinstance(value, str) else repr(value)
    text = text.encode("unicode_escape").decode("ascii")
    if len(text) > MAX_VALUE_CHARS:
        text = text[: MAX_VALUE_CHARS - 3] + "..."
    return text


def describe(error: ValidationError) -> str:
    """A message for one violation that says what is wrong and, where it helps, what to do."""
    validator = error.validator
    value = error.instance
    if validator == "additionalProperties":
        known = sorted(error.schema.get("properties", {}))
        extra = sorted(set(value) - set(known)) if isinstance(value, dict) else []
        if extra:
            if len(known) <= 12:
                return f"unknown key {', '.join(map(shorten, extra))} (allowed here: {', '.join(known) or 'none'})"
            import difflib  # only on this error path: it costs start-up time

            guesses = sorted({g for key in extra for g in difflib.get_close_matches(key, known, n=2)})
            return f"unknown key {', '.join(map(shorten, extra))}" + (f" (did you mean {' or '.join(map(shorten, guesses))}?)" if guesses else "")
    if validator == "required":
        return error.message.replace("is a required property", "is required here")
    if validator == "pattern":
        hint = error.schema.get("description", "")
        return f"{shorten(value)} is not allowed here" + (f": {hint}" if hint else f" (must match {error.validator_value})")
    if validator == "type":
        wanted = error.validator_value
        if isinstance(value, (bool, int, float)) or value is None:
            if wanted == "string" or "string" in wanted:
                return f"{shorten(value)} is a {type(value).__name__}, not a string: quote it in the plan"
        return f"{shorten(value)} is not of type {wanted!r}"
    if validator == "uniqueItems" and isinstance(value, list):
        for later, item in enumerate(value):
            if item in value[:later]:
                return f"entries [{value.index(item)}] and [{later}] are the same; each may appear once"
    if validator in {"uniqueItems", "maxLength", "minLength", "minimum", "maximum", "enum", "const", "minItems"}:
        return error.message.replace(repr(value), shorten(value)) if len(repr(value)) > MAX_VALUE_CHARS else error.message
    if validator == "oneOf" and error.context:
        return describe(best_match(error.context))
    if validator == "anyOf" and isinstance(value, str):
        return f"{shorten(value)} is not a valid {'/'.join(sub.get('format', '?') for sub in error.validator_value)} address"
    if validator == "propertyNames":
        return f"key {shorten(value)} is not allowed here"
    return error.message if len(error.message) < 200 else error.message[:197] + "..."


def collect(validator: Validator, instance: Any) -> list[ValidationError]:
    """Every violation, the headline (best match) first, the rest by path."""
    errors = list(validator.iter_errors(instance))
    if not errors:
        return []
    head = best_match(errors)
    rest = sorted((e for e in errors if e is not head), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    return [head, *rest]


def format_errors(source: str, errors: Sequence[ValidationError]) -> list[str]:
    return [f"{source}::{json_path(e.absolute_path)}: {describe(e)}" for e in errors]


def validate_plan(data: Any, source: str) -> None:
    """Raise PlanError listing every schema violation of a parsed plan."""
    errors = collect(plan_validator(), data)
    if errors:
        lines = format_errors(source, errors)
        count = f"{len(errors)} problem{'s' if len(errors) > 1 else ''}"
        raise PlanError(f"invalid plan ({count}); fix the plan file and render again:", lines)
