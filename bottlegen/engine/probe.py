"""Probe containers: short-lived containers that join a bottle's containers' namespaces, so
that `verify` sees exactly what each container sees without anything in its image.

The probe image is a setting (`--probe-image`, or $BOTTLEGEN_PROBE_IMAGE); without one,
bottlegen uses `bottlegen-probe:<version>`, and builds it on the engine when it is missing
from a static busybox (`busybox` on PATH, or $BOTTLEGEN_BUSYBOX; Debian: busybox-static):
no registry is needed. An image given must have `/bin/sh`, `nc`, `timeout`, `ping` and `nslookup`.

Every probe runs without capabilities but NET_RAW (for ping), read-only, with
no-new-privileges, labelled `org.bottlegen.probe=<project>`, and is removed when it ends.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .. import host, resources
from ..errors import ComposeError, EngineError
from .docker import Engine, run

PROBE_IMAGE_ENV = "BOTTLEGEN_PROBE_IMAGE"
BUSYBOX_ENV = "BOTTLEGEN_BUSYBOX"
LABEL_PROBE = "org.bottlegen.probe"  # value: the project the probe is about
OUTSIDER_SECONDS = 120  # an outsider removes itself after this long, even if verify is killed

DOCKERFILE = """\
# bottlegen's probe image: a static busybox and nothing else.
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
"""


def default_image() -> str:
    tag = re.sub(r"[^A-Za-z0-9_.-]", "-", resources.version())[:128]
    return f"bottlegen-probe:{tag}"


def image(engine: Engine, given: str | None = None) -> str:
    """The probe image to use: given, $BOTTLEGEN_PROBE_IMAGE, or bottlegen's own, built now
    when the engine does not have it."""
    chosen = given or os.environ.get(PROBE_IMAGE_ENV)
    if chosen:
        return chosen
    tag = default_image()
    if run([engine.docker, "image", "inspect", "--format", "{{.Id}}", tag], env=engine.env).returncode != 0:
        build(engine, tag)
    return tag


def build(engine: Engine, tag: str) -> None:
    busybox = os.environ.get(BUSYBOX_ENV) or shutil.which("busybox")
    if not busybox or not _is_static(Path(busybox)):
        found = f" ({busybox} is not statically linked)" if busybox else ""
        raise EngineError(
            f"no static busybox to build the probe image {tag} from{found}: install one (Debian: apt-get install "
            f"busybox-static) or name it with ${BUSYBOX_ENV}, or give an image with --probe-image / ${PROBE_IMAGE_ENV}"
        )
    with tempfile.TemporaryDirectory(prefix="bottlegen-probe-") as context:
        shutil.copy(busybox, Path(context) / "busybox")
        (Path(context) / "Dockerfile").write_text(DOCKERFILE, encoding="utf-8")
        proc = run(
            [engine.docker, "build", "-q", "--label", "org.bottlegen.created-by=bottlegen", "-t", tag, context],
            timeout=600,
            env=engine.env,
        )
    if proc.returncode != 0:
        raise ComposeError.from_process(f"docker build of the probe image {tag}", proc)


def _is_static(path: Path) -> bool:
    """An ELF executable without a program interpreter (PT_INTERP): it runs in an empty image."""
    try:
        with path.open("rb") as f:
            header = f.read(64)
            if header[:4] != b"\x7fELF" or header[4] not in (1, 2):
                return False
            end = "<" if header[5] == 1 else ">"
            if header[4] == 2:
                (phoff,) = struct.unpack_from(end + "Q", header, 32)
                phentsize, phnum = struct.unpack_from(end + "HH", header, 54)
            else:
                (phoff,) = struct.unpack_from(end + "I", header, 28)
                phentsize, phnum = struct.unpack_from(end + "HH", header, 42)
            f.seek(phoff)
            table = f.read(phentsize * phnum)
    except OSError:
        return False
    PT_INTERP = 3
    return all(struct.unpack_from(end + "I", table, i * phentsize)[0] != PT_INTERP for i in range(phnum))


def _isolated(project: str) -> list[str]:
    return [
        "--label",
        f"{LABEL_PROBE}={project}",
        "--cap-drop",
        "ALL",
        "--cap-add",
        "NET_RAW",
        "--security-opt",
        "no-new-privileges",
        "--read-only",
        "--entrypoint",
        "/bin/sh",
    ]


def run_in(
    engine: Engine, image: str, project: str, container: str, script: str, args: Sequence[str], network: bool
) -> str:
    """Run script (sh, with args as $1...) in container's PID namespace, and its network
    namespace too when network is true; its standard output."""
    joined = ["--pid", f"container:{container}", "--network", f"container:{container}" if network else "none"]
    argv = [engine.docker, "run", "--rm", *joined, *_isolated(project), image, "-c", script, "probe", *args]
    proc = run(argv, env=engine.env)
    if proc.returncode != 0:
        raise ComposeError.from_process(f"the probe in {container}'s namespaces", proc)
    return proc.stdout


def start_outsider(engine: Engine, image: str, project: str, network: str) -> str:
    """A container on network alone, playing "the outside" for the agent: its ID."""
    argv = [engine.docker, "run", "-d", "--rm", "--network", network, *_isolated(project), image]
    proc = run([*argv, "-c", f"sleep {OUTSIDER_SECONDS}"], env=engine.env)
    if proc.returncode != 0:
        raise ComposeError.from_process(f"starting a probe container on {network}", proc)
    return proc.stdout.strip()


def remove(engine: Engine, containers: Sequence[str]) -> None:
    if containers:
        run([engine.docker, "rm", "-f", *containers], env=engine.env)


# Resolves each path argument on the host mounted at /host as the kernel would (every symlink
# in every component, `..` after a link taken from where it led), and says what is there:
# `R <index> <resolved> <kind>`; then every home directory of the host's password database.
_RESOLVE_SCRIPT = r"""
i=0
for path in "$@"; do
  out=""; rest=${path#/}; hops=0; kind=""
  while [ -n "$rest" ]; do
    comp=${rest%%/*}
    case $rest in */*) rest=${rest#*/} ;; *) rest="" ;; esac
    case $comp in
      ""|.) continue ;;
      ..) out=${out%/*}; continue ;;
    esac
    if [ -L "/host$out/$comp" ]; then
      hops=$((hops + 1))
      if [ "$hops" -gt 40 ]; then kind=unreadable; break; fi
      target=$(readlink "/host$out/$comp") || { kind=unreadable; break; }
      case $target in /*) out="" ;; esac
      rest="${target#/}${rest:+/$rest}"
    else
      out="$out/$comp"
    fi
  done
  r=${out:-/}
  if [ -z "$kind" ]; then
    if [ -S "/host$r" ]; then kind=socket
    elif [ -b "/host$r" ] || [ -c "/host$r" ]; then kind=device
    elif [ -p "/host$r" ]; then kind=FIFO
    elif [ -d "/host$r" ]; then kind=directory
    elif [ -f "/host$r" ]; then kind=file
    elif [ -e "/host$r" ]; then kind=unknown
    else kind=missing
    fi
  fi
  printf 'R\t%s\t%s\t%s\n' "$i" "$r" "$kind"
  i=$((i + 1))
done
while IFS=: read -r _ _ _ _ _ home _; do printf 'H\t%s\n' "$home"; done < /host/etc/passwd 2>/dev/null
true
"""


def host_view(engine: Engine, image: str, paths: Sequence[str], data_root: str | None) -> host.HostView:
    """How the engine's host resolves each of paths (a remote engine's: this machine's files
    say nothing of it), read by a probe container that mounts the host's `/` read-only, with
    no network and no capability but NET_RAW; the home directories of its password database."""
    wanted = sorted(set(paths))
    argv = [
        engine.docker, "run", "--rm", "--network", "none", "-v", "/:/host:ro", *_isolated("host-paths"),
        image, "-c", _RESOLVE_SCRIPT, "resolve", *wanted,
    ]  # fmt: skip
    proc = run(argv, env=engine.env)
    if proc.returncode != 0:
        raise ComposeError.from_process("the probe that reads the engine's host paths", proc)
    resolved: dict[str, host.Resolved] = {}
    homes = set()
    for line in proc.stdout.splitlines():
        fields = line.split("\t")
        if fields[0] == "R" and len(fields) == 4 and fields[1].isdigit() and int(fields[1]) < len(wanted):
            resolved[wanted[int(fields[1])]] = host.Resolved(host.normalized(fields[2]), fields[3])
        elif fields[0] == "H" and len(fields) == 2 and fields[1].startswith("/"):
            homes.add(host.normalized(fields[1]))

    unread = [path for path in wanted if path not in resolved]
    if unread:  # judged on nothing is not judged: up stops here
        raise ComposeError(
            f"the probe that reads the engine's host paths said nothing of {len(unread)} of them "
            f"({', '.join(unread[:3])}{', ...' if len(unread) > 3 else ''})",
            proc.returncode,
            proc.args,
            proc.stderr,
        )

    def resolve(path: str) -> host.Resolved:
        return resolved.get(path) or host.Resolved(host.normalized(path), host.UNREADABLE)

    return host.HostView(resolve, data_root or host.DEFAULT_DATA_ROOT, frozenset(homes - {"/"}))
