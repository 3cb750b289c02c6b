"""Stage 7: write the checked document as deterministic YAML text.

Top-level keys in compose's usual order (name, services, networks, then the rest as
rendered); services in manifest order; keys inside a service as the template wrote them.
Mapping indent 2, sequences indented with the dash 2 further, no line folding, `null`
written out, and strings that a YAML 1.1 or 1.2 reader would take for something else (yes,
on, 0440, 1.10, 22:22, ~) double-quoted, as is anything beyond printable ASCII (escaped, so
a reviewer sees every character). A header says the file is generated and what to edit
instead; a comment on each service names the template it came from.

The document is plain data (dicts, lists, str, int, float, bool, None), so this writer is
small; it replaced ruamel.yaml's round-trip dumper, which cost ~10 ms of a 17 ms render,
and keeps its output byte for byte (the goldens prove it). Whether a string may be plain is
decided by ruamel.yaml's own resolvers for YAML 1.1 and 1.2.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from ruamel.yaml.nodes import ScalarNode

from .load import PinnedResolver

TOP_LEVEL_ORDER = ("name", "services", "networks", "volumes", "configs", "secrets", "models")

_STR = "tag:yaml.org,2002:str"


class _Yaml11Resolver(PinnedResolver):
    version = (1, 1)


_RESOLVERS = [_Yaml11Resolver(), PinnedResolver()]
# A plain scalar: starts with a letter, digit, _ . / or a dash that is not an indicator, and
# holds only characters that mean nothing to YAML there. Everything else is double-quoted.
_PLAIN = re.compile(r"(?:[A-Za-z0-9_./]|-(?=[^ ]))[A-Za-z0-9 _./@%+=,:~-]*")
_IMPLICIT_KEY_LIMIT = 1000  # YAML allows 1024 characters, ':' included
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\0": "\\0"}


def double_quoted(text: str) -> str:
    """A YAML double-quoted scalar holding exactly text; all but printable ASCII escaped."""
    out = ['"']
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif " " <= ch <= "~":
            out.append(ch)
        elif ord(ch) <= 0xFF:
            out.append(f"\\x{ord(ch):02X}")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(f"\\U{ord(ch):08X}")
    out.append('"')
    return "".join(out)


@lru_cache(maxsize=4096)
def _string(text: str) -> str:
    if (
        _PLAIN.fullmatch(text)
        and not text.startswith(("---", "..."))  # document markers at the start of a line
        and not text.endswith((" ", ":"))
        and ": " not in text
        and all(r.resolve(ScalarNode, text, (True, False)) == _STR for r in _RESOLVERS)
    ):
        return text
    return double_quoted(text)


def _comment(text: str) -> str:
    """Comment text on one line of printable ASCII (a folder name may hold anything)."""
    return "".join(ch if " " <= ch <= "~" else ch.encode("unicode_escape").decode("ascii") for ch in text)


def scalar(value: Any) -> str:
    """One value as a YAML scalar (or an empty flow collection)."""
    if isinstance(value, str):
        return _string(value)
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TypeError(f"cannot write the number {value!r} into a compose file")
        text = repr(value)
        if "e" in text and "." not in text:  # YAML 1.1 wants a dot in a float: 1e-05 -> 1.0e-05
            mantissa, exponent = text.split("e")
            text = f"{mantissa}.0e{exponent}"
        return text
    if isinstance(value, Mapping) and not value:
        return "{}"
    if isinstance(value, list | tuple) and not value:
        return "[]"
    raise TypeError(f"cannot write a {type(value).__name__} into a compose file; use plain data")


def _block(value: Any) -> bool:
    return isinstance(value, Mapping | list | tuple) and len(value) > 0


def _mapping(data: Mapping[str, Any], col: int, out: list[str], comments: Mapping[str, str] | None = None) -> None:
    pad = " " * col
    for key, value in data.items():
        if comments and key in comments:
            out.append(f"{pad}# {_comment(comments[key])}")
        head = f"{pad}{scalar(key)}:"
        if len(head) - col > _IMPLICIT_KEY_LIMIT:  # YAML caps implicit keys: write it explicitly
            out.append(f"{pad}? {scalar(key)}")
            head = f"{pad}:"
        if isinstance(value, Mapping) and value:
            out.append(head)
            _mapping(value, col + 2, out)
        elif _block(value):
            out.append(head)
            _sequence(value, col + 2, out)
        else:
            out.append(f"{head} {scalar(value)}")


def _sequence(items: Any, dash: int, out: list[str]) -> None:
    for item in items:
        if not _block(item):
            out.append(f"{' ' * dash}- {scalar(item)}")
            continue
        start = len(out)
        if isinstance(item, Mapping):
            _mapping(item, dash + 2, out)
        else:
            _sequence(item, dash + 2, out)
        out[start] = f"{' ' * dash}- {out[start][dash + 2 :]}"  # the first line shares the dash's line


def header(plan_name: str, relaxed: Sequence[str] = ()) -> str:
    text = (
        f"Generated by bottlegen from {plan_name}. Do not edit: your changes would be lost.\n"
        "Change the plan, or the templates (`bottlegen templates list`), then run `bottlegen render` again."
    )
    if relaxed:
        text += "\nSANDBOX RULES RELAXED by the templates' manifest (review these):" + "".join(
            f"\n  {r}" for r in relaxed
        )
    return text


def emit(document: dict[str, Any], service_sources: dict[str, str], plan_name: str, relaxed: Sequence[str] = ()) -> str:
    ordered = {key: document[key] for key in TOP_LEVEL_ORDER if key in document}
    ordered.update((key, value) for key, value in document.items() if key not in ordered)
    out = [f"# {_comment(line)}" for line in header(plan_name, relaxed).splitlines()]
    for key, value in ordered.items():
        if key == "services" and isinstance(value, Mapping) and value:
            out.append("services:")
            _mapping(value, 2, out, {name: f"from template {source}" for name, source in service_sources.items()})
        else:
            _mapping({key: value}, 0, out)
    return "\n".join(out) + "\n"


def dump_plain(data: Any) -> str:
    """Any plain data as YAML in the same style, without comments (`bottlegen context`)."""
    out: list[str] = []
    if isinstance(data, Mapping) and data:
        _mapping(data, 0, out)
    elif _block(data):
        _sequence(data, 0, out)
    else:
        out.append(scalar(data))
    return "\n".join(out) + "\n"
