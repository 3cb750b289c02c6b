"""Warnings, each of a kind with a stable code and name, so that a class of them can be
silenced (`--ignore BG102`, or `--ignore missing-bind-source`; `$BOTTLEGEN_IGNORE`, comma
separated) and counted. A warning never makes a file invalid; `--strict` fails on any that
is not ignored. Codes are never reused: a kind that goes keeps its number retired.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from .errors import UsageError

IGNORE_ENV = "BOTTLEGEN_IGNORE"


class Kind(NamedTuple):
    code: str
    name: str
    summary: str


KINDS = (
    Kind(
        "BG101",
        "unpinned-image",
        "pipelock's image is not pinned by digest, so the firewall can change under the bottle",
    ),
    Kind("BG102", "missing-bind-source", "a bind source does not exist now; Docker would mount an empty directory"),
    Kind(
        "BG103", "runsc-without-dns", "a service under gVisor finds its sidecars by name, which gVisor cannot resolve"
    ),
    Kind("BG104", "unset-variable", "up: a variable the bottle takes from the environment is not set there"),
    Kind("BG105", "proxy-not-pipelock", "egress' upstream proxy URL does not point at pipelock's name and port"),
    Kind(
        "BG106",
        "remote-bind-sources",
        "up on a remote engine: bind sources are paths on its host, which bottlegen does not copy there",
    ),
    Kind(
        "BG107",
        "engine-dns-leak",
        "up: the engine is older than the fix for CVE-2024-29018 (internal networks reach the host's resolvers)",
    ),
)
BY_CODE = {k.code: k for k in KINDS}
BY_NAME = {k.name: k for k in KINDS}


class Lint(NamedTuple):
    kind: Kind
    message: str  # what, and what to do
    where: str = ""  # the key path and template it is at, when it is at one
    item: str = ""  # what it is about, in a few words: a listing of many of one kind shows these

    def __str__(self) -> str:
        return f"{self.kind.code} {self.kind.name}: {self.located}"

    @property
    def located(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message

    @property
    def listed(self) -> str:
        """This warning as one line of a listing of its kind."""
        short = self.item or self.message
        return f"{self.where}: {short}" if self.where else short


def lint(code: str, message: str, where: str = "", item: str = "") -> Lint:
    return Lint(BY_CODE[code], message, where, item)


def grouped(lints: Iterable[Lint]) -> list[list[Lint]]:
    """The warnings by kind, each kind where its first one was."""
    kinds: dict[str, list[Lint]] = {}
    for warning in lints:
        kinds.setdefault(warning.kind.code, []).append(warning)
    return list(kinds.values())


def ignored(given: Sequence[str] | None) -> frozenset[str]:
    """The codes to silence: those of $BOTTLEGEN_IGNORE and of each --ignore (codes or names,
    comma separated). An unknown one is a UsageError listing the kinds."""
    sources = [(f"${IGNORE_ENV}", os.environ.get(IGNORE_ENV, "")), *(("--ignore", g) for g in given or ())]
    codes = set()
    for source, text in sources:
        for word in filter(None, (w.strip() for w in text.split(","))):
            kind = BY_CODE.get(word.upper()) or BY_NAME.get(word.lower())
            if kind is None:
                known = ", ".join(f"{k.code} {k.name}" for k in KINDS)
                raise UsageError(f"{source} {word!r}: no such warning; the warnings are {known}")
            codes.add(kind.code)
    return frozenset(codes)


def kept(lints: Iterable[Lint], ignore: frozenset[str]) -> list[Lint]:
    return [w for w in lints if w.kind.code not in ignore]
