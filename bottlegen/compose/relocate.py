"""Stage 7b: the checked document, with the plan's relative host paths written relative to
the folder the file is written to.

A plan's relative host path (`files/ca.pem`) resolves against the plan's folder, and every
check of the render sees it absolute. When the file has a known destination (`render -o`,
`render --out-dir`, `check`), such a path is written relative to that destination's folder
(`../plans/files/ca.pem`), which is how compose reads a relative path: against the folder
of the compose file. So a golden does not depend on where the repository is cloned. Only
the places compose resolves that way change (a bind's source, `env_file`, a build context,
a secret's or config's `file`), and only a value that is exactly a resolved plan value: a template's own
absolute path, or one built from a plan value, stays as it is. `up` writes no relative path:
its file lands in a state directory away from the plan.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .. import host
from ..composefile import host_paths, set_at


def relative_to(paths: Iterable[str], folder: Path) -> dict[str, str]:
    """For each absolute path (as the document writes it, `$` as `$$`) that lies, as folder
    does, inside the current folder (the repository's root, where operators and CI run
    bottlegen), its form relative to folder: `./x` or `../x`, never a bare name (a short
    volume would read it as a named volume). Paths elsewhere stay absolute."""
    try:
        root = host.realpath(os.getcwd())
    except OSError:
        return {}
    base = host.realpath(folder)
    if not _inside(base, root):
        return {}
    out = {}
    for written in paths:
        absolute = written.replace("$$", "$")
        if not _inside(host.realpath(absolute), root):
            continue
        relative = os.path.relpath(absolute, base)
        if relative not in (".", "..") and not relative.startswith("../"):
            relative = f"./{relative}"
        out[written] = relative.replace("$", "$$")
    return out


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def relocate(document: dict[str, Any], paths: dict[str, str]) -> dict[str, Any]:
    """A copy of document with each value of paths replaced where compose resolves a relative
    path against the compose file's folder (every host path but a volume driver's device)."""
    if not paths:
        return document
    document = copy.deepcopy(document)
    for place in host_paths(document):
        if place.use != "volume device" and place.value in paths:
            set_at(document, place.at, paths[place.value])
    return document
