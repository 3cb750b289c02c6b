"""JSON schemas: check plain data against one and report every violation (a leaf module:
the plan, the manifest and the compose document are all checked here).

Two engines, one verdict:
- a compiled check decides: each schema is compiled ahead of time into plain Python by
  fastjsonschema (bottlegen/_compiled/, made by tools/compile_schemas.py), so that the launch
  path does not pay jsonschema's ~45 ms import;
- jsonschema explains: only when a check rejects is jsonschema imported, to collect every
  violation, reported as `<source>::$.json.path: message`, the most relevant (jsonschema's
  `best_match`) first.
tests/test_compiled_schemas.py shows that both engines give the same verdicts. Where a
compiled module does not match its schema file (an edited schema, not yet recompiled),
jsonschema alone decides.
"""

from __future__ import annotations

import hashlib
import importlib
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

from . import resources
from ._compiled import JsonSchemaValueException
from .errors import Problem
from .paths import MAX_VALUE_CHARS, json_path, shorten

if TYPE_CHECKING:  # jsonschema is imported on the error path only
    from jsonschema.exceptions import ValidationError
    from jsonschema.protocols import Validator

# Each schema and its compiled module in bottlegen/_compiled/.
COMPILED = {
    resources.PLAN_SCHEMA: "plan",
    resources.MANIFEST_SCHEMA: "manifest",
    resources.COMPOSE_SCHEMA: "compose_spec",
}

# The advice on a value YAML read as another type than a string; layers.py offers what fits
# a command line instead when the value came from --set.
QUOTE_IT = ": quote it in the plan"


def _is_ipv4(value: str) -> bool:
    import ipaddress

    try:
        ipaddress.IPv4Address(value)
    except ipaddress.AddressValueError:
        return False
    return True


def _is_ipv6(value: str) -> bool:
    import ipaddress

    try:
        address = ipaddress.IPv6Address(value)
    except ipaddress.AddressValueError:
        return False
    return not address.scope_id


# The formats the schemas assert, for the compiled checks: jsonschema's own rules
# (jsonschema/_format.py), so that both engines agree.
FORMATS: dict[str, Callable[[str], bool]] = {"ipv4": _is_ipv4, "ipv6": _is_ipv6}


_UNESCAPED_DOLLAR = re.compile(r"(?<!\\)\$")


@cache
def _ecma_regex(pattern: str) -> re.Pattern[str]:
    """A schema pattern with `$` meaning the very end of the text, as in ECMA-262 and Go.

    Python's `$` also matches before a final newline, so that "demo\\n" would pass
    ^[a-z0-9][a-z0-9_-]*$ (hypothesis found it). fastjsonschema makes the same rewrite.
    """
    return re.compile(_UNESCAPED_DOLLAR.sub(r"\\Z", pattern))


def _ecma_pattern(
    validator: Validator, pattern: str, instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    """jsonschema's `pattern`, with the pattern read as JSON Schema means it (_ecma_regex)."""
    from jsonschema.exceptions import ValidationError

    if validator.is_type(instance, "string") and not _ecma_regex(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


@cache
def jsonschema_validator(relative: str) -> Validator:
    """jsonschema's validator for one of resources' schemas, built once per process."""
    from jsonschema import Draft7Validator, Draft202012Validator
    from jsonschema.validators import extend

    schema = resources.load_schema(relative)
    if relative == resources.SANDBOX_SCHEMA:
        schema = strict(schema)
    if relative in (resources.COMPOSE_SCHEMA, resources.SANDBOX_SCHEMA):
        # The vendored schemas are draft 7 (compose-spec declares it in a form jsonschema does not
        # recognise; agent-sandbox's CRD schema is OpenAPI 3's subset of it): choose it explicitly.
        draft7: type[Validator] = extend(Draft7Validator, {"pattern": _ecma_pattern})  # type: ignore[no-untyped-call]
        return draft7(schema)
    draft: type[Validator] = extend(Draft202012Validator, {"pattern": _ecma_pattern})  # type: ignore[no-untyped-call]
    return draft(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def strict(schema: Any) -> Any:
    """A CRD's schema as the API server's strict field validation reads it (`kubectl apply
    --validate=strict`): an unknown field is an error where the schema lists properties,
    unless it keeps unknown fields (x-kubernetes-preserve-unknown-fields)."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {
        key: strict(value) if key != "properties" else {k: strict(v) for k, v in value.items()}
        for key, value in schema.items()
    }
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@cache
def compiled_check(relative: str) -> Callable[..., Any] | None:
    """The compiled check for a schema, or None where it was compiled from another version."""
    module = importlib.import_module(f"._compiled.{COMPILED[relative]}", __package__)
    digest = hashlib.sha256(resources.schema_bytes(relative)).hexdigest()
    return module.check if digest == module.SCHEMA_SHA256 else None


def violations(relative: str, instance: Any) -> list[ValidationError]:
    """Every violation of one of resources' schemas, the headline first; [] when valid."""
    check = compiled_check(relative) if relative in COMPILED else None
    if check is not None:
        try:
            check(instance, FORMATS)
            return []
        except JsonSchemaValueException as rejection:
            verdict = rejection.message
    errors = collect(jsonschema_validator(relative), instance)
    if not errors and check is not None:
        # The engines disagree (tests/test_compiled_schemas.py exists to prevent it): the
        # compiled check decides, so say what it found.
        from jsonschema.exceptions import ValidationError

        errors = [ValidationError(verdict)]
    return errors


def extended_plan_schema(fragment: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The plan schema with a manifest's `settings_schema` merged into `settings`: new keys
    added, new properties added under a key whose schema lists properties; a TemplateError
    (naming where) for anything that would change what bottlegen defines."""
    import copy

    from .errors import TemplateError

    schema = copy.deepcopy(resources.load_schema(resources.PLAN_SCHEMA))
    settings = schema["properties"]["settings"]["properties"]
    problems = []
    for key, sub in fragment.items():
        if key not in settings:
            settings[key] = {"default": {}, **sub} if sub.get("type") == "object" else dict(sub)
            continue
        ours = settings[key]
        extra = set(sub) - {"properties", "description"}
        if "properties" not in ours or extra:
            problems.append(
                Problem(
                    f"bottlegen defines settings.{key}; a fragment may only add properties to it",
                    where,
                    json_path(("settings_schema", key)),
                )
            )
            continue
        for name, prop in (sub.get("properties") or {}).items():
            if name in ours["properties"]:
                problems.append(
                    Problem(
                        f"bottlegen defines settings.{key}.{name}",
                        where,
                        json_path(("settings_schema", key, "properties", name)),
                    )
                )
            else:
                ours["properties"][name] = prop
    if problems:
        raise TemplateError(f"{where}: the manifest's settings_schema would change bottlegen's settings:", problems)
    return schema


def checker(schema: dict[str, Any]) -> Callable[[Any], list[ValidationError]]:
    """For a schema built at run time (an extended plan schema): a function that lists every
    violation of it, the headline first; jsonschema's validator is built once."""
    from jsonschema import Draft202012Validator
    from jsonschema.validators import extend

    draft: type[Validator] = extend(Draft202012Validator, {"pattern": _ecma_pattern})  # type: ignore[no-untyped-call]
    validator = draft(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    return lambda instance: collect(validator, instance)


def describe(error: ValidationError) -> str:
    """A message for one violation that says what is wrong and, where it helps, what to do."""
    validator = error.validator
    value = error.instance
    schema: Mapping[str, Any] = error.schema if isinstance(error.schema, Mapping) else {}
    wanted: Any = error.validator_value
    if validator == "additionalProperties":
        known = sorted(schema.get("properties", {}))
        extra = sorted(set(value) - set(known)) if isinstance(value, dict) else []
        if extra:
            if len(known) <= 16:  # a list a reader takes in at a glance
                return f"unknown key {', '.join(map(shorten, extra))} (allowed here: {', '.join(known) or 'none'})"
            import difflib  # only on this error path: it costs start-up time

            guesses = sorted({g for key in extra for g in difflib.get_close_matches(key, known, n=2)})
            return f"unknown key {', '.join(map(shorten, extra))}" + (
                f" (did you mean {' or '.join(map(shorten, guesses))}?)" if guesses else ""
            )
    if validator == "required":
        return error.message.replace("is a required property", "is required here")
    if validator == "pattern":
        hint = schema.get("description", "")
        return f"{shorten(value)} is not allowed here" + (f": {hint}" if hint else f" (must match {wanted})")
    if validator == "type":
        if (isinstance(value, (bool, int, float)) or value is None) and (wanted == "string" or "string" in wanted):
            kind = "true or false" if isinstance(value, bool) else "null" if value is None else "a number"
            return f"{shorten(value)} is {kind}, not a string{QUOTE_IT}"
        return f"{shorten(value)} is not of type {wanted!r}"
    if validator == "uniqueItems" and isinstance(value, list):
        for later, item in enumerate(value):
            if item in value[:later]:
                return f"entries [{value.index(item)}] and [{later}] are the same; each may appear once"
    if validator in {"uniqueItems", "maxLength", "minLength", "minimum", "maximum", "enum", "const", "minItems"}:
        return (
            error.message.replace(repr(value), shorten(value)) if len(repr(value)) > MAX_VALUE_CHARS else error.message
        )
    if validator == "oneOf" and error.context:
        from jsonschema.exceptions import best_match

        return describe(best_match(error.context))
    if validator == "anyOf" and isinstance(value, str):
        return f"{shorten(value)} is not a valid {'/'.join(sub.get('format', '?') for sub in wanted)} address"
    if validator == "propertyNames":
        return f"key {shorten(value)} is not allowed here"
    return error.message if len(error.message) < 200 else error.message[:197] + "..."


def collect(schema: Validator, instance: Any) -> list[ValidationError]:
    """Every violation jsonschema finds, the headline (best match) first, the rest by path."""
    from jsonschema.exceptions import best_match

    errors = [_past_null(e) for e in schema.iter_errors(instance)]
    if not errors:
        return []
    head = best_match(errors)
    rest = sorted((e for e in errors if e is not head), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    return [head, *rest]


def _past_null(error: ValidationError) -> ValidationError:
    """For a value that is not null, against "null, or this": what is wrong with it as this.

    A nullable section ({"oneOf": [{"type": "null"}, {...}]}) that is given but invalid
    would otherwise be reported as "is not of type 'null'" at the section, not at its field.
    """
    if error.validator not in ("oneOf", "anyOf") or error.instance is None or not error.context:
        return error
    branches = error.validator_value if isinstance(error.validator_value, list) else []
    nulls = {i for i, b in enumerate(branches) if isinstance(b, dict) and b.get("type") == "null"}
    if not nulls or len(branches) - len(nulls) != 1:
        return error
    rest = [c for c in error.context if c.relative_schema_path and c.relative_schema_path[0] not in nulls]
    if not rest:
        return error
    from jsonschema.exceptions import best_match

    return _past_null(best_match(rest))


def format_errors(source: str, errors: Sequence[ValidationError]) -> list[Problem]:
    """Each violation as a problem at its key path of the file."""
    return [Problem(describe(e), source, json_path(e.absolute_path)) for e in errors]
