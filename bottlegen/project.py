"""The project file: what an operator's repository says once instead of on every command.

`bottlegen.toml` at the repository's root (found upward from the working folder; a
`[tool.bottlegen]` table in `pyproject.toml` works the same, the nearest file wins):

    templates = ["ops/templates"]   # override folders, looked in first (--templates)
    plans = "plans"                 # the fleet's plans (check and render with no PLAN, the hooks)
    goldens = "goldens"             # their rendered files, <slug>.yml each
    state_dir = "/var/lib/bottles"  # the state root: a bottle's state in <state_dir>/<project>
    kubernetes_templates = ["ops/kubernetes"]  # the same two, for `--target kubernetes`
    kubernetes_goldens = "goldens-kubernetes"

Relative folders are relative to the project file's folder. Command-line flags win over
$BOTTLEGEN_TEMPLATES, which wins over the file. An unknown key, or a value of the wrong
kind, is a usage error (exit 2) naming the file and line. The file is read through
bottlegen.host, so the render memo sees it (and sees one appear above the working folder).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, NamedTuple

from . import host
from .errors import Problem, UsageError

FILE, PYPROJECT = "bottlegen.toml", "pyproject.toml"
KEYS = {
    "templates": list,
    "plans": str,
    "goldens": str,
    "state_dir": str,
    "kubernetes_templates": list,
    "kubernetes_goldens": str,
}
DEFAULT_PLANS, DEFAULT_GOLDENS, DEFAULT_KUBERNETES_GOLDENS = "plans", "goldens", "goldens-kubernetes"
STATE_ROOT_ENV = "BOTTLEGEN_STATE_ROOT"  # the state root a command runs with (the file's state_dir sets it)


class Setting(NamedTuple):
    """One effective setting and where it came from (`bottlegen.toml:3`, `--templates`, a default)."""

    value: Any
    source: str


class Project(NamedTuple):
    """The project file's settings (paths made absolute), or none (path None)."""

    path: Path | None
    values: dict[str, Any]
    lines: dict[str, int]

    def setting(self, key: str) -> Setting | None:
        if key not in self.values or self.path is None:
            return None
        return Setting(self.values[key], f"{self.path}:{self.lines.get(key, 1)}")


NONE = Project(None, {}, {})


def find(start: Path | None = None) -> tuple[Path, dict[str, Any], str] | None:
    """The nearest project file at or above start (default: the working folder): its path,
    its bottlegen settings and its text, each file read once."""
    folder = Path(os.path.abspath(start or os.getcwd()))
    for candidate in (folder, *folder.parents):
        for path in (candidate / FILE, candidate / PYPROJECT):
            if host.entry_state(path) == host.MISSING:
                continue
            text = _text(path)
            table = _table(path, text)
            if table is not None:
                return path, table, text
    return None


def load(start: Path | None = None) -> Project:
    """The project of the working folder (NONE when there is no project file)."""
    found = find(start)
    if found is None:
        return NONE
    path, table, text = found
    values: dict[str, Any] = {}
    lines: dict[str, int] = {}
    problems = []
    for key, value in table.items():
        line = _line(text, key, path.name == PYPROJECT)
        if key not in KEYS:
            problems.append(Problem(f"unknown key {key!r}; a project file has {', '.join(KEYS)}", str(path), line=line))
            continue
        listed = KEYS[key] is list
        fits = isinstance(value, list) and all(isinstance(v, str) for v in value) if listed else isinstance(value, str)
        if not fits:
            wanted = "a list of folders" if listed else "a folder (a string)"
            problems.append(Problem(f"{key} is {type(value).__name__}, not {wanted}", str(path), line=line))
            continue
        values[key] = [str(path.parent / v) for v in value] if listed else str(path.parent / value)
        lines[key] = line or 1
    if problems:
        raise UsageError(f"{path}: the project file is not what bottlegen reads:", problems)
    return Project(path, values, lines)


def _text(path: Path) -> str:
    try:
        return host.read_bytes(path).decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"{path}: cannot read the project file: {e}") from None


def _table(path: Path, text: str) -> dict[str, Any] | None:
    """The file's bottlegen settings: the whole of bottlegen.toml, [tool.bottlegen] of a
    pyproject.toml (None without one)."""
    import tomllib

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{path}: not TOML: {e}") from None
    if path.name != PYPROJECT:
        return data
    table = data.get("tool", {}).get("bottlegen") if isinstance(data.get("tool"), dict) else None
    return table if isinstance(table, dict) else None


def _line(text: str, key: str, in_tool_table: bool) -> int | None:
    """The line that sets key (in pyproject.toml: below its [tool.bottlegen] header)."""
    start = 0
    if in_tool_table:
        header = re.search(r"^\s*\[tool\.bottlegen\]\s*$", text, re.M)
        start = header.end() if header else 0
    found = re.compile(rf'^\s*("?){re.escape(key)}\1\s*=', re.M).search(text, start)
    return text.count("\n", 0, found.start()) + 1 if found else None
