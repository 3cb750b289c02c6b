"""The one place that configures Jinja, and the templates folder it reads.

Rules every template lives by:
- The environment is sandboxed (immutable: a template cannot change the shared context),
  undefined names are errors (StrictUndefined), and the context is plain data only.
- Every `{{ expression }}` is emitted as exactly one YAML value: a double-quoted scalar, a
  number, a boolean, null, or a flow collection of those. A `$` in a string is written `$$`
  so that compose's interpolation gives the value back. Whatever characters a value holds,
  it cannot change the document's structure. So an expression must be a whole value: write
  `{{ "NAME=" ~ value }}`, never `NAME={{ value }}` (every render checks it: see "every value one whole YAML value" below).
- The opt-out is the `raw` filter, `{{ text | raw }}`: text inserted as YAML source,
  unchanged. Use it for template-made text only, never for plan values.
- Shared macros live in `_macros.yaml.j2` and are called as `m.<name>(...)`; what they
  return is YAML made by a template, so it is inserted as it is.
- Which services exist, in what order and when, is declared in `manifest.yaml` (manifest.py).
"""

from __future__ import annotations

import os
import sys
import threading
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NamedTuple

import jinja2
from jinja2 import BaseLoader, StrictUndefined, TemplateNotFound
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .. import host
from ..cache import open_cache
from ..errors import Problem, TemplateError
from ..yamltext import MAX_DEPTH, double_quoted, plain_string, scalar

MANIFEST = "manifest.yaml"
MACROS = "_macros.yaml.j2"
PACKAGED = "packaged"


class Raw(str):
    """Text that goes into a fragment as YAML source, unchanged (`raw` filter, macro output)."""

    __slots__ = ()


# --- values as YAML ---------------------------------------------------------------------


def to_yaml_value(value: Any) -> str:
    """One YAML flow value that parses back to exactly `value` (strings compose-escaped).

    Strings are always double-quoted here, whatever they hold; null, booleans and numbers
    are written as the emitter writes them.
    """
    if isinstance(value, jinja2.Undefined):
        str(value)  # StrictUndefined raises here, with the name that is missing
    if isinstance(value, str):
        return double_quoted(value.replace("$", "$$"))
    if isinstance(value, dict):
        return "{" + ", ".join(f"{double_quoted(str(k))}: {to_yaml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(to_yaml_value(v) for v in value) + "]"
    return scalar(value)


class _NotPlain(Exception):
    pass


def read_back(value: Any) -> Any:
    """What YAML reads back from to_yaml_value(value), built without writing and parsing the
    text: a fresh copy with `$` written `$$`. Only for exactly plain data (no subclasses, no
    floats, no number beyond 64 bits, no lone surrogate, keys strings): anything else raises
    ValueError, and the text is parsed instead."""
    try:
        return _read_back(value, 0)
    except (_NotPlain, RecursionError):
        raise ValueError("not exactly plain data") from None


def _read_back(value: Any, depth: int) -> Any:
    kind = type(value)
    if kind is str:
        if not plain_string(value):
            raise _NotPlain
        return value.replace("$", "$$") if "$" in value else value
    if value is None or kind is bool:
        return value
    if kind is int:
        if not -(2**63) <= value < 2**64:
            raise _NotPlain
        return value
    if depth >= MAX_DEPTH:
        raise _NotPlain
    if kind is dict:
        out = {}
        for key, item in value.items():
            if type(key) is not str or not plain_string(key):
                raise _NotPlain
            out[key] = _read_back(item, depth + 1)
        return out
    if kind is list or kind is tuple:
        return [_read_back(item, depth + 1) for item in value]
    raise _NotPlain


def _finalize(value: Any) -> str:
    if isinstance(value, Raw):
        return value
    text = to_yaml_value(value)
    state = _state
    state.written[text] = value
    if state.trace is not None:
        state.trace.append((_value_origin() or "?", text))
    return MARK_OPEN + text + MARK_CLOSE


def _raw(value: Any) -> Raw:
    return Raw(value)


# --- templates on disk ------------------------------------------------------------------


class Root(NamedTuple):
    """A folder templates are read from; `origin` is how messages and comments name it."""

    path: Path
    origin: str


class RootedLoader(BaseLoader):
    """Looks a template up in the override roots first, then the packaged one.

    A name is a relative `/`-separated path; `..`, absolute names, and files that resolve
    (through links) outside their root are refused.
    """

    def __init__(self, roots: list[Root]):
        self.roots = roots
        # Templates bottlegen makes itself (the manifest's conditions), by a name no file can
        # have: it starts with "/".
        self.generated: dict[str, str] = {}

    def locate(self, name: str) -> tuple[Root, Path]:
        parts = name.split("/")
        if name.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\\" in name:
            raise TemplateNotFound(name, f"template name {name!r} must be a relative path inside a templates folder")
        for root in self.roots:
            candidate = root.path.joinpath(*parts)
            state = host.entry_state(candidate)
            if state == host.MISSING:
                continue
            if not state.removeprefix("link:").startswith(f"{host.FILE}:"):
                raise TemplateNotFound(name, f"{candidate} is not a regular file")
            real_root = host.realpath(root.path)
            if os.path.commonpath([real_root, host.realpath(candidate)]) != real_root:
                raise TemplateNotFound(name, f"{candidate} resolves outside its templates folder {root.path}")
            return root, candidate
        raise TemplateNotFound(name)

    def get_source(self, environment: jinja2.Environment, name: str) -> tuple[str, str | None, Callable[[], bool]]:
        if name in self.generated:
            return self.generated[name], None, lambda: True
        _, path = self.locate(name)
        try:
            source = host.read_bytes(path).decode("utf-8")
        except UnicodeDecodeError as e:
            raise TemplateError(f"{path}: template {name!r} is not UTF-8 text ({e.reason} at byte {e.start})") from None
        except OSError as e:
            raise TemplateError(f"{path}: cannot read template {name!r}: {e.strerror or e}") from None
        return source, str(path), lambda: False  # never asked: auto_reload is off

    def list_templates(self) -> list[str]:
        """The templates (*.j2) and the manifest in every root; other files are not templates."""
        names = set()
        for root in self.roots:
            for path in root.path.rglob("*"):
                if path.is_file() and (path.suffix == ".j2" or path.name == MANIFEST):
                    names.add(path.relative_to(root.path).as_posix())
        return sorted(names)


# --- every value one whole YAML value ---------------------------------------------------
#
# Each `{{ }}` that is not `raw` is written between two private-use characters (never in a
# value's text: to_yaml_value escapes everything beyond printable ASCII). After rendering,
# the marks are taken out and their places kept as spans; parsing the fragment (merge.py)
# checks that each span is exactly one node of the YAML, so no template shape (text glued to
# an expression, a block tag or whitespace control between them, a loop, a filter block, a
# comment) can make a value part of something larger, or more than one thing.

MARK_OPEN, MARK_CLOSE = "\ue000", "\ue001"


class _RenderState(threading.local):
    """What finalize notes during one render, per thread: one Renderer renders from many
    threads at once, each render seeing only its own values."""

    def __init__(self) -> None:
        self.written: dict[str, Any] = {}  # the text of every value finalize wrote, and the value
        self.trace: list[tuple[str, str]] | None = None  # (template file:line, value text), when diagnosing


_state = _RenderState()


Spans = tuple[tuple[int, int], ...]
# The collections among a fragment's values, by offset: (end, the data YAML reads back).
Known = dict[int, tuple[int, Any]]


def _unmark(marked: str, name: str) -> tuple[str, Spans, Known]:
    """The text without its marks, the (start, end) offsets of each value in it, and what
    the collections among them read back as (read_back), so that merge need not parse them."""
    known: Known = {}
    if MARK_OPEN not in marked:
        if MARK_CLOSE in marked:
            raise _stray_marks(name)
        return marked, (), known
    head, *marked_values = marked.split(MARK_OPEN)
    if MARK_CLOSE in head:
        raise _stray_marks(name)
    pieces, spans, length, written = [head], [], len(head), _state.written
    for piece in marked_values:
        value, close, rest = piece.partition(MARK_CLOSE)
        if not close or MARK_CLOSE in rest:
            raise _stray_marks(name)
        if value not in written:  # a filter block or a `set` block rewrote it
            line = "".join(pieces).count("\n") + 1
            raise TemplateError(
                f"template {name}: a value was changed after it was written, at line {line} of the output "
                f"({value[:80]}): a filter block or a block `set` around {{{{ }}}} rewrote it. "
                "Apply the filter to the value inside the expression instead: {{ value | upper }}"
            )
        spans.append((length, length + len(value)))
        if value[0] in "[{":
            try:
                known[length] = (length + len(value), read_back(written[value]))
            except ValueError:
                pass
        length += len(value) + len(rest)
        pieces += (value, rest)
    return "".join(pieces), tuple(spans), known


def _stray_marks(name: str) -> TemplateError:
    return TemplateError(
        f"template {name}: its output holds the private-use characters U+E000/U+E001 outside a value "
        "(from a `| raw` value?); bottlegen uses them to check that every value stands whole"
    )


def _value_origin() -> str | None:
    """Where a value came from, as `file:line`, from the template frame that wrote it."""
    frame = sys._getframe(2)
    template = frame.f_globals.get("__jinja_template__")
    if template is None:
        return None
    return f"{template.filename or template.name}:{template.get_corresponding_lineno(frame.f_lineno)}"


# --- the environment --------------------------------------------------------------------


def make_environment(roots: list[Root]) -> ImmutableSandboxedEnvironment:
    """The Jinja environment for these template roots. Nothing else configures Jinja."""
    env = ImmutableSandboxedEnvironment(
        loader=RootedLoader(roots),
        bytecode_cache=open_cache(),
        undefined=StrictUndefined,
        finalize=_finalize,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters["raw"] = _raw
    # Jinja's HTML-minded opt-out would not mean what it says here.
    del env.filters["safe"]
    env.globals["m"] = _Macros(env)
    return env


class _Macros:
    """`m.<name>(...)` in a template: a macro of `_macros.yaml.j2`, its output taken as YAML.

    The macros see the calling template's context (`project`, `plan`, `settings`, ...), read
    once per render of that template: the module is made on the first call and kept on the
    render's context."""

    def __init__(self, env: jinja2.Environment):
        self._env = env

    def __getattr__(self, name: str) -> Callable[..., Raw]:
        if name.startswith("_"):
            raise AttributeError(name)

        @jinja2.pass_context
        def call(context: jinja2.runtime.Context, *args: Any, **kwargs: Any) -> Raw:
            module = getattr(context, "_bottlegen_macros", None)
            if module is None:
                module = self._env.get_template(MACROS).make_module(context.get_all())
                context._bottlegen_macros = module  # type: ignore[attr-defined]
            macro = getattr(module, name, None)
            if macro is None:
                raise AttributeError(f"{MACROS} has no macro {name!r}")
            return Raw(macro(*args, **kwargs))

        return call


def value_origins(env: jinja2.Environment, name: str, context: dict[str, Any]) -> list[tuple[str, str]]:
    """Render again, noting where each value was written: (file:line, value text) in order.

    Only on the error path, to say which line of a template wrote a value that does not
    stand whole.
    """
    trace: list[tuple[str, str]] = []
    _state.trace = trace
    try:
        render_template(env, name, context)
        return trace
    except TemplateError:
        return trace
    finally:
        _state.trace = None


# What a template or a condition can raise for a mistake in it (not a bug in bottlegen).
TEMPLATE_FAILURES = (
    jinja2.TemplateError,
    TypeError,
    ValueError,
    ArithmeticError,
    LookupError,
    AttributeError,
    RecursionError,
)


def loader_of(env: jinja2.Environment) -> RootedLoader:
    """The environment's loader (make_environment gives every environment a RootedLoader)."""
    loader = env.loader
    if not isinstance(loader, RootedLoader):
        raise TypeError(f"not an environment of make_environment: its loader is {type(loader).__name__}")
    return loader


def render_template(env: jinja2.Environment, name: str, context: dict[str, Any]) -> str:
    """Render one template's text (render_fragment says where its values are)."""
    return render_fragment(env, name, context)[0]


def render_fragment(env: jinja2.Environment, name: str, context: dict[str, Any]) -> tuple[str, Spans, Known]:
    """Render one template; any failure becomes a TemplateError naming the file and line.

    The text comes back with the spans of its values (see MARK_OPEN) for merge to check, and
    what its collection values read back as.
    """
    _state.written.clear()
    try:
        return _unmark(env.get_template(name).render(context), name)
    except jinja2.TemplateSyntaxError as e:
        raise TemplateError(Problem(str(e.message), e.filename or e.name or name, line=e.lineno)) from None
    except TemplateNotFound as e:
        raise TemplateError(
            f"template {e.name!r} not found in the templates folders"
            + (f" ({e.message})" if e.message and e.message != e.name else "")
        ) from None
    except TEMPLATE_FAILURES as e:
        file, line = _template_frame(e, env) or (name, None)
        message = getattr(e, "message", None) or str(e)
        raise TemplateError(Problem(f"{type(e).__name__}: {message}", file, line=line)) from None


def _template_frame(error: BaseException, env: jinja2.Environment) -> tuple[str, int | None] | None:
    """(file, line) of the innermost template frame in the error's traceback."""
    loader = loader_of(env)
    roots = [str(r.path) for r in loader.roots]
    where = None
    for frame in traceback.extract_tb(error.__traceback__):
        if any(frame.filename.startswith(r + os.sep) for r in roots):
            where = (frame.filename, frame.lineno)
    return where


def iter_origins(env: jinja2.Environment) -> Iterable[tuple[str, str, Path]]:
    """(template name, origin, path) for every template the roots provide."""
    loader = loader_of(env)
    for name in loader.list_templates():
        root, path = loader.locate(name)
        yield name, root.origin, path
