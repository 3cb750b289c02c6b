"""`bottlegen explain KEY.PATH`: what a plan key is, from the plan schema itself (as
`kubectl explain` reads the API's own schema), so it never drifts from what is checked.

A key path is the plan's keys joined by dots; a list's items are `[]` or an index
(`git_gate.upstreams[0].name` or `git_gate.upstreams[].name`), a mapping's free keys `*`
(`git_gate.upstreams[].extra_hosts.*`).
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterator
from typing import Any, NamedTuple

from .errors import UsageError

_STEP = re.compile(r"\[(\d*)\]")
ROOT = "(the plan)"


def plain(schema: dict[str, Any]) -> dict[str, Any]:
    """A node whose oneOf/anyOf is one kind or null (a section that may be null), as that kind:
    its own description kept, `nullable` said."""
    for word in ("oneOf", "anyOf"):
        choices = schema.get(word)
        if isinstance(choices, list):
            kinds = [c for c in choices if isinstance(c, dict) and c.get("type") != "null"]
            if len(kinds) == 1:
                rest = {k: v for k, v in schema.items() if k != word}
                return {**kinds[0], **rest, "nullable": len(kinds) < len(choices)}
    return schema


class Explained(NamedTuple):
    """One key of the plan, as its schema says it."""

    path: str
    schema: dict[str, Any]
    required: bool

    def type_text(self) -> str:
        s = self.schema
        if "enum" in s:
            return "one of " + ", ".join(json.dumps(v) for v in s["enum"])
        kinds = s.get("type") or sorted({str(a.get("type")) for a in s.get("anyOf", s.get("oneOf", []))}) or "any"
        text = kinds if isinstance(kinds, str) else " or ".join(kinds)
        if s.get("nullable"):
            text += " or null (leave it out)"
        if text == "array" and isinstance(s.get("items"), dict):
            text = f"list of {Explained(self.path + '[]', s['items'], False).type_text()}"
        bounds = [
            f"{word} {s[key]}"
            for key, word in (
                ("minLength", "at least"),
                ("maxLength", "at most"),
                ("minimum", "from"),
                ("maximum", "to"),
                ("minItems", "at least"),
                ("maxItems", "at most"),
            )
            if key in s
        ]
        if "pattern" in s:
            bounds.append(f"matching {s['pattern']}")
        return text + (f" ({', '.join(bounds)})" if bounds else "")

    def example(self) -> str:
        """The key as a plan would write it: its default, else a value of its kind."""
        from .yamltext import dump_plain

        value = sample(self.schema)
        for word in reversed([w for w in self.path.split(".") if w]):
            name, steps = _STEP.split(word, maxsplit=1)[0], _STEP.findall(word)
            for _ in steps:
                value = [value]
            value = {"<key>" if name == "*" else name: value}
        return dump_plain(value).rstrip("\n")

    def fields(self) -> list[tuple[str, str, str]]:
        """An object's keys: (name, type, first sentence of its description)."""
        props = self.schema.get("properties") or {}
        required = set(self.schema.get("required") or [])
        return [
            (
                name + ("" if name not in required else " (required)"),
                Explained(name, sub, False).type_text(),
                first_sentence(sub),
            )
            for name, sub in props.items()
        ]

    def text(self) -> str:
        s = self.schema
        out = [
            f"KEY:         {self.path}",
            f"TYPE:        {self.type_text()}",
            f"REQUIRED:    {'yes' if self.required else 'no'}",
        ]
        if "default" in s:
            out.append(f"DEFAULT:     {json.dumps(s['default'], ensure_ascii=False)}")
        if s.get("x-host-path"):
            out.append("HOST PATH:   yes (relative to the plan's folder; `~` is the home of whoever runs bottlegen)")
        out += ["", "DESCRIPTION:", *(f"    {line}" for line in _wrapped(s.get("description", "(none)")))]
        if self.path != ROOT:
            out += ["", "EXAMPLE:", *(f"    {line}" for line in self.example().splitlines())]
        fields = self.fields()
        if fields:
            width = max(len(f[0]) for f in fields)
            out += ["", "FIELDS:", *(f"    {name:<{width}}  {kind}: {what}" for name, kind, what in fields)]
        return "\n".join(out) + "\n"


def sample(schema: dict[str, Any]) -> Any:
    """A value of the schema: its default, its first allowed value, else one of its kind."""
    if "default" in schema:
        return schema["default"]
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type") if isinstance(schema.get("type"), str) else "string"
    if kind == "array":
        return [sample(plain(schema["items"]))] if isinstance(schema.get("items"), dict) else []
    return {"integer": 1, "boolean": True, "object": {}}.get(str(kind), f"<{kind}>")


def first_sentence(schema: dict[str, Any]) -> str:
    description = str(schema.get("description", ""))
    return description.split(". ")[0].rstrip(".")


def _wrapped(text: str, width: int = 88) -> Iterator[str]:
    line = ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            yield line
            line = word
        else:
            line = f"{line} {word}" if line else word
    if line:
        yield line


def key_paths(schema: dict[str, Any], prefix: str = "") -> Iterator[str]:
    """Every key path the schema knows, in its order."""
    for name, sub in (schema.get("properties") or {}).items():
        path = f"{prefix}.{name}" if prefix else name
        yield path
        yield from _below(plain(sub), path)


def _below(schema: dict[str, Any], path: str) -> Iterator[str]:
    if isinstance(schema.get("items"), dict):
        yield from key_paths(plain(schema["items"]), f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield f"{path}.*"
        yield from _below(plain(schema["additionalProperties"]), f"{path}.*")
    yield from key_paths(schema, path) if schema.get("properties") else iter(())


def explain(schema: dict[str, Any], path: str) -> Explained:
    """The key at path; a UsageError (exit 2) naming the nearest keys when there is none."""
    node, required, shown = schema, False, []
    given = path.strip()
    given = "" if given == "$" else given.removeprefix("$.")  # a key path as errors write it works too
    words = [w for w in given.split(".") if w]
    for word in words:
        name, steps = _STEP.split(word, maxsplit=1)[0], _STEP.findall(word)
        if name == "*" and isinstance(node.get("additionalProperties"), dict):
            node, required = plain(node["additionalProperties"]), False
        elif name in (node.get("properties") or {}):
            required = name in (node.get("required") or [])
            node = plain(node["properties"][name])
        else:
            raise _unknown(schema, path)
        shown.append(name)
        for _ in steps:
            if not isinstance(node.get("items"), dict):
                raise _unknown(schema, path)
            node, required = plain(node["items"]), False
            shown[-1] += "[]"
    return Explained(".".join(shown) or ROOT, node, required)


def _unknown(schema: dict[str, Any], path: str) -> UsageError:
    known = list(key_paths(schema))
    plain = _STEP.sub("[]", path.strip().removeprefix("$."))
    near = (
        difflib.get_close_matches(plain, known, n=5, cutoff=0.5)
        or [k for k in known if k.startswith(plain.split(".")[0])][:5]
    )
    hint = (
        f"; the nearest: {', '.join(near)}"
        if near
        else f"; the top-level keys: {', '.join(schema.get('properties') or {})}"
    )
    return UsageError(f"no plan key {path!r}{hint} (`bottlegen explain --recursive` lists every key)")
