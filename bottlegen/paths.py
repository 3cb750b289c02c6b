"""Key paths and values in messages: `$.egress.routes[0]`, and values cut to one short line.

A leaf module: every stage reports with these, so none of them imports another stage for it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

MAX_VALUE_CHARS = 60


def json_path(parts: Iterable[Any]) -> str:
    """`$.egress.routes[0]` for the path ('egress', 'routes', 0)."""
    out = "$"
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif str(part).replace("_", "a").replace("-", "a").isalnum() and str(part).isascii():
            out += f".{part}"
        else:
            out += "[" + _key(str(part)) + "]"
    return out


_PART = re.compile(r"\.([A-Za-z0-9_-]+)|\[(\d+)\]|\[\"((?:[^\"\\]|\\.)*)\"\]")


def parts_of(path: str) -> tuple[Any, ...]:
    """The parts of a path json_path wrote: `$.a.b[0]["c d"]` as (a, b, 0, "c d")."""
    parts: list[Any] = []
    for match in _PART.finditer(path.removeprefix("$")):
        name, index, quoted = match.groups()
        if quoted is not None:  # undo _key's escapes
            parts.append(quoted.encode("ascii", "backslashreplace").decode("unicode_escape"))
        else:
            parts.append(name if name is not None else int(index))
    return tuple(parts)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _key(text: str) -> str:
    """A key for a path: quoted, and escaped where it is not printable ASCII."""
    quoted = _quote(text)
    return (
        quoted
        if quoted.isascii() and quoted.isprintable()
        else quoted.encode("unicode_escape", errors="backslashreplace").decode("ascii")
    )


def shorten(value: Any) -> str:
    """A value for a message: repr-like, on one line, at most MAX_VALUE_CHARS characters."""
    text = _quote(value) if isinstance(value, str) else repr(value)
    text = text.encode("unicode_escape", errors="backslashreplace").decode("ascii")
    if len(text) > MAX_VALUE_CHARS:
        text = text[: MAX_VALUE_CHARS - 3] + "..."
    return text
