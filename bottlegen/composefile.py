"""What compose means by a document's short forms, for the stages that read a document:
list-or-mapping blocks, the short volume syntax, `$$` (a literal `$`), and the names its
DNS resolves.
"""

from __future__ import annotations

import re
from typing import Any

# A name compose's embedded DNS answers: dot-separated labels of letters, digits, `_` and
# `-` (not first or last), at most 63 characters each and 253 in all.
DNS_LABEL = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
DNS_NAME_MAX = 253


def dns_problem(name: str) -> str | None:
    """Why name is not a name other containers can resolve, or None when it is."""
    labels = name.split(".")
    if len(name) <= DNS_NAME_MAX and all(DNS_LABEL.fullmatch(label) for label in labels):
        return None
    longest = max(map(len, labels))
    return f"a DNS label of {longest} characters (at most 63)" if longest > 63 else "not a valid DNS name"


def names(block: Any) -> list[str]:
    """Keys of a compose list-or-mapping block (depends_on, networks)."""
    if isinstance(block, dict):
        return list(block)
    if isinstance(block, list):
        return [item for item in block if isinstance(item, str)]
    return []


def unescape(value: str) -> str:
    """A string value as compose reads it: `$$` is one `$`."""
    return value.replace("$$", "$")


def mounts(service: dict[str, Any]) -> list[tuple[int, str | None, str | None, str | None]]:
    """(index, type, source, target) of each volume entry, long or short form."""
    out = []
    for index, volume in enumerate(service.get("volumes") or []):
        if isinstance(volume, dict):
            out.append((index, volume.get("type"), volume.get("source"), volume.get("target")))
        elif isinstance(volume, str):
            parts = volume.split(":")
            if len(parts) == 1:
                out.append((index, "volume", None, parts[0]))
            else:
                kind = "bind" if parts[0].startswith((".", "/", "~")) else "volume"
                out.append((index, kind, parts[0], parts[1]))
    return out
