"""host.py's answer for a path is the kernel's: held to os.path.realpath and os.stat (which
walk the path in Python, component by component) on generated trees of folders, files,
relative and absolute links, dangling links and `..`."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from bottlegen import host

NAMES = ["a", "b", "c"]


@st.composite
def trees(draw: st.DrawFn) -> list[tuple[str, str, str]]:
    """(kind, relative path, link target) entries: folders, files and links below a root."""
    entries = []
    for depth in range(draw(st.integers(1, 3))):
        for name in draw(st.lists(st.sampled_from(NAMES), unique=True, min_size=1, max_size=3)):
            parent = "/".join(draw(st.sampled_from(NAMES)) for _ in range(depth))
            kind = draw(st.sampled_from(["dir", "file", "link"]))
            target = draw(st.sampled_from(["a", "../b", "./c/a", "/ROOT/a", "/ROOT/b/c", "../../a", "nowhere"]))
            entries.append((kind, f"{parent}/{name}".lstrip("/"), target))
    return entries


def build(root: Path, entries: list[tuple[str, str, str]]) -> None:
    for kind, relative, target in entries:
        path = root / relative
        if not path.parent.is_dir() or path.exists() or path.is_symlink():
            continue
        if kind == "dir":
            path.mkdir()
        elif kind == "file":
            path.write_text("x")
        else:
            path.symlink_to(target.replace("/ROOT", str(root)))


def expected(path: str) -> host.Resolved:
    resolved = os.path.realpath(path)
    try:
        return host.Resolved(resolved, host.kind_of(os.stat(resolved).st_mode))
    except OSError:
        return host.Resolved(resolved, host.MISSING)


@settings(max_examples=200, deadline=None)
@given(
    entries=trees(),
    probes=st.lists(
        st.lists(st.sampled_from([*NAMES, "..", ".", "x"]), min_size=1, max_size=4), min_size=1, max_size=6
    ),
)
def test_a_path_resolves_as_realpath_and_stat_say(entries, probes):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(os.path.realpath(folder))
        build(root, entries)
        view = host.local()
        for parts in probes:
            path = str(root / "/".join(parts))
            try:
                os.stat(path)
                looped = False
            except OSError as e:
                looped = e.errno == 40  # ELOOP: a cycle of links; neither can say more than missing
            got = view.resolve(path)
            if looped:  # the engine could not mount it either; missing, or what realpath makes of it
                assert got.kind == host.MISSING or got == expected(path), path
                continue
            assert got == expected(path), path


def test_a_fifo_is_named_without_being_opened(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert host.local().resolve(str(fifo)) == host.Resolved(str(fifo), host.FIFO)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
