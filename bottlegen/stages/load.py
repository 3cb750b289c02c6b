"""Stage 1: read a plan file (YAML or JSON) into plain data.

Plain data only: dicts with string keys, lists, str, int, float, bool, None. A YAML date or
timestamp stays the string it was written as, so that it fails a string check with its own
text, never as a Python object.

Whatever a file holds, reading it ends in plain data or a PlanError (exit 3) naming the file
and, where there is one, the key path: a file that is not a regular file is refused before it
is read (a FIFO would hang, /dev/zero never ends), and the text is read by the YAML dialect
of `yamltext`, which bounds nesting and checks the shape of what it builds.
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any, BinaryIO

from .. import host
from ..errors import OutputError, PlanError, Problem
from ..paths import json_path
from ..yamlsubset import load_data, nesting_depth_over
from ..yamltext import MAX_DEPTH, ShapeError, YAMLSyntaxError, check_text_shape

MAX_PLAN_BYTES = 4 * 1024 * 1024  # a plan is a few kilobytes


def parse_plan_text(text: str, source: str) -> Any:
    """Parse a plan's text into checked plain data; `source` (its path) names it in messages
    and chooses JSON by suffix."""
    data = _parse(text, source)
    try:
        check_text_shape(data, text)
    except ShapeError as e:
        raise PlanError(Problem(e.problem, source, json_path(e.path))) from None
    return data


def _parse(text: str, source: str) -> Any:
    if source.endswith(".json"):

        def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
            seen: dict[str, Any] = {}
            for key, value in pairs:
                if key in seen:
                    raise PlanError(f"{source}: duplicate key {key!r}: each key may appear once per object")
                seen[key] = value
            return seen

        try:
            return json.loads(text, object_pairs_hook=no_duplicates)
        except json.JSONDecodeError as e:
            raise PlanError(Problem(f"invalid JSON: {e.msg}", source, line=e.lineno, column=e.colno)) from None
        except RecursionError:
            raise PlanError(f"{source}: invalid plan: nested too deeply (at most {MAX_DEPTH} levels)") from None
        except ValueError as e:  # an integer past Python's digit limit
            raise PlanError(f"{source}{_long_number_at(text)}: invalid JSON: {e}".split("; use")[0]) from None
    deep = nesting_depth_over(text)
    if deep is not None:
        raise PlanError(Problem(f"invalid plan: nested more than {MAX_DEPTH} levels deep", source, line=deep))
    try:
        return load_data(text)
    except YAMLSyntaxError as e:
        if not e.marked:
            raise PlanError(f"{source}: invalid YAML: {e}") from None
        raise PlanError(Problem(f"invalid YAML: {e.problem}", source, line=e.line, column=e.column)) from None
    except (ValueError, OverflowError) as e:  # an integer past Python's digit limit
        raise PlanError(f"{source}{_long_number_at(text)}: invalid plan: {str(e).split('; use')[0]}") from None


def _long_number_at(text: str) -> str:
    match = re.search(r"\d{4000,}", text)
    return f":{text.count(chr(10), 0, match.start()) + 1}" if match else ""


def read_text_file(path: Path, what: str, error: type[Exception] = PlanError, limit: int = MAX_PLAN_BYTES) -> bytes:
    """The bytes of a regular file, read without blocking on a FIFO or a device.

    A missing file raises `error`; a file that is not regular, or is larger than limit, too;
    an unreadable one OutputError (exit 7).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise error(f"{path}: no such {what}") from None
    except IsADirectoryError:
        raise error(f"{path}: is a directory, not a {what}") from None
    except OSError as e:
        raise OutputError(f"{path}: cannot read the {what}: {e.strerror or e}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise error(f"{path}: is {_file_kind(info.st_mode)}, not a regular file: give the path of a {what}")
        if info.st_size > limit:
            raise error(f"{path}: is {info.st_size} bytes; a {what} is at most {limit} bytes")
        chunks = []
        size = 0
        while chunk := os.read(fd, 1 << 16):
            size += len(chunk)
            if size > limit:
                raise error(f"{path}: is larger than {limit} bytes, the most a {what} may be")
            chunks.append(chunk)
        data = b"".join(chunks)
        host.was_read(path, data)
        return data
    except OutputError:
        raise
    except OSError as e:
        raise OutputError(f"{path}: cannot read the {what}: {e.strerror or e}") from None
    finally:
        os.close(fd)


def _file_kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


STDIN = "<stdin>"  # how a plan read from standard input (PLAN `-`) is named in messages


def read_plan(path: Path) -> Any:
    """Read and parse a plan file; the result still has to be validated."""
    return _decoded(read_text_file(path, "plan file"), str(path))


def read_plan_stream(stream: BinaryIO) -> Any:
    """Read and parse a plan from a stream (standard input), as YAML (JSON is YAML too)."""
    try:
        data = stream.read(MAX_PLAN_BYTES + 1)
    except OSError as e:
        raise PlanError(f"{STDIN}: cannot read the plan: {e.strerror or e}") from None
    if len(data) > MAX_PLAN_BYTES:
        raise PlanError(f"{STDIN}: more than {MAX_PLAN_BYTES // (1024 * 1024)} MiB; a plan is a few kilobytes")
    return _decoded(data, STDIN)


def _decoded(data: bytes, source: str) -> Any:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise PlanError(f"{source}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    return parse_plan_text(text, source)
