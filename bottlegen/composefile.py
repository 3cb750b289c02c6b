"""What compose means by a document's short forms, for the stages that read a document:
list-or-mapping blocks, the short volume syntax, and `$$` (a literal `$`).
"""

from __future__ import annotations

from typing import Any


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
