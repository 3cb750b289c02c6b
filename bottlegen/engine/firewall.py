"""A sealed host: what a bottle's internal network sends to the host itself is dropped.

An `--internal` network has no route out, but the host is on every bridge: traffic from a
container to any of the host's addresses enters the host's INPUT chain, which Docker does
not filter. With `seal_host: true`, `up` inserts one rule for the bottle's internal bridge,
`iptables -I INPUT -i br-<id> -j DROP`, tagged with a comment naming the project
(`bottlegen:<project>`), so that `down` removes exactly the bottle's rules and nothing
else. Both are idempotent. IPv6 gets the same rule through ip6tables when the network
has IPv6.
"""

from __future__ import annotations

import os
import shlex
import shutil
from collections.abc import Sequence

from ..errors import EngineError
from .docker import Engine, run
from .networks import find
from .state import Bottle

TOOLS = ("iptables", "ip6tables")


def comment(project: str) -> str:
    return f"bottlegen:{project}"


def require() -> None:
    """Before anything starts: sealing needs root and iptables (EngineError, exit 8)."""
    if os.geteuid() != 0:
        raise EngineError(
            "seal_host: true needs root to change the host's firewall (iptables); run `up` as root, "
            "or leave seal_host out of the plan; nothing was started"
        )
    if shutil.which("iptables") is None:
        raise EngineError(
            "seal_host: true needs iptables on PATH (Debian: apt-get install iptables); nothing was started"
        )


def rule_spec(bridge: str, project: str) -> list[str]:
    """The seal's rule for one bridge, as iptables takes it after -I / -C / -D."""
    return ["INPUT", "-i", bridge, "-m", "comment", "--comment", comment(project), "-j", "DROP"]


def seal(bridges: Sequence[tuple[str, bool]], project: str) -> None:
    """Drop what these bridges (name, has IPv6) send to the host (each rule once)."""
    for bridge, ipv6 in bridges:
        for tool in ("iptables", "ip6tables") if ipv6 else ("iptables",):
            spec = rule_spec(bridge, project)
            if run([tool, "-C", *spec], env=None).returncode == 0:
                continue  # already there
            proc = run([tool, "-I", *spec], env=None)
            if proc.returncode != 0:
                unseal(project)
                raise EngineError(f"{tool} -I {' '.join(spec)} failed: {proc.stderr.strip()}; nothing is sealed")


def rules(project: str) -> list[tuple[str, list[str]]]:
    """The rules of this project's seal now in place: (tool, the rule's arguments after -A)."""
    found = []
    for tool in TOOLS:
        if shutil.which(tool) is None:
            continue
        listing = run([tool, "-S", "INPUT"], env=None)
        for line in listing.stdout.splitlines():
            words = shlex.split(line)  # iptables -S quotes the comment
            if words[:1] == ["-A"] and comment(project) in words and "--comment" in words:
                found.append((tool, words[1:]))
    return found


def unseal(project: str) -> list[str]:
    """Remove every rule of this project's seal; what could not be removed."""
    problems = []
    for tool, words in rules(project):
        proc = run([tool, "-D", *words], env=None)
        if proc.returncode != 0:
            problems.append(f"{tool} -D {' '.join(words)}: {proc.stderr.strip()}")
    return problems


def bridges_of(engine: Engine, bottle: Bottle) -> list[tuple[str, bool]]:
    """The host-side bridge of each internal-role network: (interface name, has IPv6)."""
    found = find(engine, sorted(bottle.internal))
    return [(n.bridge, n.ipv6) for networks in found.values() for n in networks if n.ours(bottle.project)]
