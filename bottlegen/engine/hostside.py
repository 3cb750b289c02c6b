"""What `verify` reads on the engine's host itself (a local engine, as root): the host's
listening TCP ports, the namespaces of a container's processes, what the agent's mounts
hold (no socket, no token value), and whether a rule ahead of the seal's DROP accepts the
bottle's bridge. A value read here never leaves this module: tokens are compared in memory
and only their names are reported.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Mapping, Sequence
from typing import NamedTuple

LISTEN = "0A"  # the TCP state LISTEN in /proc/net/tcp
WALK_LIMIT = 20_000  # entries a mount is searched for sockets and tokens, at most
READ_LIMIT = 1 << 20  # bytes of one file searched for a token, at most
READ_TOTAL = 64 << 20  # bytes of all files searched, at most


def listening_ports(proc: str = "/proc") -> list[int]:
    """Every TCP port something on the host listens on (IPv4 and IPv6), from the socket table
    of this process's network namespace (the host's, for a command run on the host)."""
    ports: set[int] = set()
    for table in ("net/tcp", "net/tcp6"):
        try:
            with open(os.path.join(proc, table), encoding="ascii") as file:
                lines = file.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 3 and fields[3] == LISTEN:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return sorted(ports)


def namespace(pid: int, kind: str = "pid") -> str | None:
    """The namespace a process is in (`pid:[4026531836]`), or None when it cannot be read."""
    try:
        return os.readlink(f"/proc/{pid}/ns/{kind}")
    except OSError:
        return None


class Found(NamedTuple):
    sockets: list[str]  # host paths of sockets (or devices, FIFOs) inside the mounts
    tokens: list[tuple[str, str]]  # (variable, the mount's target) where a token's value was found
    complete: bool  # every entry was searched (False past WALK_LIMIT or READ_TOTAL)


def _entries(root: str) -> Iterator[tuple[str, os.stat_result]]:
    """root and what is below it, not following symlinks below root (in the container a link
    resolves inside it, not on the host)."""
    try:
        yield root, os.stat(root)
    except OSError:
        return
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(folder, name)
            try:
                yield path, os.lstat(path)
            except OSError:
                continue


def search_mounts(mounts: Sequence[tuple[str, str]], tokens: Mapping[str, str]) -> Found:
    """For each (host source, target) of a container's mounts: every socket, device or FIFO in
    it, and every token value (by variable) any of its regular files holds."""
    sockets: list[str] = []
    hits: set[tuple[str, str]] = set()
    values = [(name, value.encode()) for name, value in tokens.items() if value]
    seen = read = 0
    complete = True
    for source, target in mounts:
        for path, info in _entries(source):
            seen += 1
            if seen > WALK_LIMIT:
                return Found(sorted(set(sockets)), sorted(hits), False)
            if any(test(info.st_mode) for test in (stat.S_ISSOCK, stat.S_ISCHR, stat.S_ISBLK, stat.S_ISFIFO)):
                real = os.path.realpath(path)
                sockets.append(path if real == path else f"{path} (resolves to {real})")
            elif stat.S_ISREG(info.st_mode) and values and 0 < info.st_size <= READ_LIMIT:
                if read + info.st_size > READ_TOTAL:
                    complete = False
                    continue
                try:
                    with open(path, "rb") as file:
                        content = file.read(READ_LIMIT)
                except OSError:
                    continue
                read += len(content)
                hits.update((name, target) for name, value in values if value in content)
    return Found(sorted(set(sockets)), sorted(hits), complete)


def rules_before_drop(listing: Sequence[str], bridge: str, comment: str) -> list[str]:
    """The rules of `iptables -S INPUT` ahead of the seal's DROP for bridge that may accept
    what the bridge sends: an ACCEPT, or a jump to another chain, matching that interface
    (or any). Rules that accept only established or related traffic open nothing new."""
    ahead: list[str] = []
    for line in listing:
        words = line.split()
        if words[:1] != ["-A"]:
            continue
        if comment in line and "-j DROP" in line and _interface(words) == bridge:
            return ahead
        target = next((words[i + 1] for i, w in enumerate(words[:-1]) if w in ("-j", "-g")), None)
        if target in (None, "DROP", "REJECT", "LOG", "RETURN"):
            continue  # ACCEPT, or a jump to a chain that may accept
        interface = _interface(words)
        if (interface is not None and not _matches(interface, bridge)) or _established_only(words):
            continue
        ahead.append(line)
    return ahead


def _interface(words: list[str]) -> str | None:
    """The rule's input interface match, `!`-prefixed when negated (`iptables -S` writes `! -i lo`)."""
    if "-i" in words and words.index("-i") + 1 < len(words):
        at = words.index("-i")
        return ("!" if at > 0 and words[at - 1] == "!" else "") + words[at + 1]
    return None


def _matches(pattern: str, interface: str) -> bool:
    """iptables' interface match: `br+` is a prefix; `!` negates."""
    if pattern.startswith("!"):
        return not _matches(pattern[1:], interface)
    return interface.startswith(pattern[:-1]) if pattern.endswith("+") else interface == pattern


def _established_only(words: list[str]) -> bool:
    for flag in ("--ctstate", "--state"):
        if flag in words and words.index(flag) + 1 < len(words):
            states = set(words[words.index(flag) + 1].split(","))
            return bool(states) and states <= {"ESTABLISHED", "RELATED"}
    return False
