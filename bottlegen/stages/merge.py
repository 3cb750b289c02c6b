"""Stage 5: parse the rendered fragments and merge them into one document.

Mappings merge key by key. Anything else (a scalar, a list) at the same place must be
equal in both fragments, or the merge fails naming the key path and both templates.
The merge remembers which template defined each mapping key, so that later stages can
say which template produced a bad value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from .. import yamlsubset
from ..errors import MergeConflictError, Problem, TemplateError
from ..paths import json_path
from ..yamlsubset import nesting_depth_over
from ..yamltext import MAX_DEPTH, STR, ShapeError, YAMLSyntaxError, check_shape, lines_around

Path = tuple[Any, ...]


class Fragment(NamedTuple):
    """One template's output: `source` names the template (and its origin) in messages.

    `spans` are where its `{{ }}` values are in the text: each must be one whole YAML node.
    `known` is what the collections among them read back as, by offset (templating.read_back).
    """

    source: str
    text: str
    spans: tuple[tuple[int, int], ...] = ()
    known: Mapping[int, tuple[int, Any]] | None = None


class ValueNotWhole(TemplateError):
    """A value of a template does not stand as one whole YAML value in what it rendered."""

    def __init__(self, fragment: Fragment, value: str, line: int, shown: list[str]):
        self.fragment, self.value, self.line, self.shown = fragment, value, line, shown
        super().__init__(self.describe(None), shown)

    def describe(self, origin: str | None) -> str:
        at = f"{origin}: " if origin else f"template {self.fragment.source}: "
        return (
            f"{at}the value {self.value[:80]} does not stand as one whole YAML value at line {self.line} of the "
            "output: text, a block tag or whitespace control next to {{ }} joined it to something else. An expression "
            'must be a whole value: build it inside, e.g. {{ "NAME=" ~ value }} instead of NAME={{ value }}, and keep '
            "{{ }} out of comments and block scalars:"
        )


class Merged:
    """The merged document, and which fragment's source defined each mapping key, by key path."""

    __slots__ = ("document", "provenance")

    def __init__(self) -> None:
        self.document: dict[str, Any] = {}
        self.provenance: dict[Path, str] = {}

    def where(self, path: Path) -> str:
        """The key path, and the template that produced it, for a message."""
        source = self.source_of(path)
        return json_path(path) + (f" in template {source}" if source else "")

    def problem(self, path: Path, message: str) -> Problem:
        """A problem at a key path of the document, naming the template that produced it."""
        return Problem(message, path=json_path(path), template=self.source_of(path))

    def source_of(self, path: Path) -> str | None:
        """The template that produced the value at path (its nearest recorded ancestor)."""
        for end in range(len(path), 0, -1):
            found = self.provenance.get(tuple(path[:end]))
            if found:
                return found
        return None


# What only a tag, an anchor, a NaN or infinity, or a very long integer is written with.
_UNPLAIN = re.compile(r"[!&]|\.(?:nan|NaN|NAN|inf|Inf|INF)\b|\d{19}")


def _load_checking_spans(fragment: Fragment) -> tuple[Any, bool]:
    """Load a fragment, first checking that every value span is exactly one node.

    Also says whether the data needs check_shape: when the text shows a tag, an anchor,
    NaN, infinity or a long integer, or the node tree a key that is not a string. The fast
    reader (yamlsubset) answers for most fragments; the full reader reads the rest, and says
    what is wrong with any that is broken.
    """
    nodes: set[tuple[int, int]] = set()
    read, data = yamlsubset.load(fragment.text, nodes, fragment.known)
    if read and nodes.issuperset(fragment.spans):
        return data, False
    from ..yamlfull import reported

    with reported():
        return _load_in_full(fragment)


def _load_in_full(fragment: Fragment) -> tuple[Any, bool]:
    """_load_checking_spans by the full reader: its node marks say where each value is."""
    from ..yamlfull import constructor_parser, load_yaml

    text = fragment.text
    if not fragment.spans:
        return load_yaml(text), True
    suspect = _UNPLAIN.search(text) is not None
    ends = dict(fragment.spans)  # value starts are distinct: marks never nest at one place
    wanted = len(ends) if len(ends) == len(fragment.spans) else -1
    found = 0
    constructor, parser = constructor_parser(text)
    try:
        node = constructor.composer.get_single_node()
        seen: set[int] = set()  # an alias is the same node again, and may contain itself
        stack = [node] if node is not None else []
        while stack:
            current = stack.pop()
            if id(current) in seen:
                suspect = True
                continue
            seen.add(id(current))
            end = ends.get(current.start_mark.index)
            if end is not None and end == current.end_mark.index:
                found += 1
            value = current.value
            if isinstance(value, list):
                for child in value:
                    if isinstance(child, tuple):
                        key = child[0]
                        if key.ctag.suffix != STR:
                            suspect = True
                        stack += child
                    else:
                        stack.append(child)
        if found != wanted:
            whole = {(n.start_mark.index, n.end_mark.index) for n in _nodes(node)}
            for span in fragment.spans:
                if span not in whole:
                    line = text.count("\n", 0, span[0]) + 1
                    raise ValueNotWhole(fragment, text[span[0] : span[1]], line, lines_around(text, line, before=1))
        return (constructor.construct_document(node) if node is not None else None), suspect
    finally:
        parser.dispose()


def _nodes(node: Any) -> list[Any]:
    """Every node of a tree once (the error path)."""
    out, seen, stack = [], set(), [node] if node is not None else []
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        out.append(current)
        if isinstance(current.value, list):
            for child in current.value:
                stack += child if isinstance(child, tuple) else [child]
    return out


def parse_fragment(fragment: Fragment) -> dict[str, Any]:
    deep = nesting_depth_over(fragment.text)
    if deep is not None:
        raise TemplateError(
            Problem(
                f"what it rendered nests more than {MAX_DEPTH} levels deep at line {deep}", template=fragment.source
            )
        )
    try:
        data, suspect = _load_checking_spans(fragment)
    except YAMLSyntaxError as e:
        if not e.marked:
            raise TemplateError(
                Problem(f"the rendered text is not valid YAML: {e}", template=fragment.source)
            ) from None
        line = e.line or 0
        raise TemplateError(
            Problem(
                f"what it rendered is not valid YAML at line {line} of the output: {e.problem}. "
                "The output around it (a `| raw` value, or a block tag that broke the indentation?):",
                template=fragment.source,
            ),
            lines_around(fragment.text, line, before=2),
        ) from None
    except (ValueError, OverflowError) as e:  # an integer past Python's digit limit
        raise TemplateError(
            Problem(
                f"the rendered text holds a number too long to read: {str(e).split('; use')[0]}",
                template=fragment.source,
            )
        ) from None
    try:
        if suspect:
            check_shape(data)
    except ShapeError as e:
        raise TemplateError(
            Problem(f"is not plain data: {e.problem}", path=json_path(e.path), template=fragment.source)
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise TemplateError(
            Problem(
                f"must render a YAML mapping (top-level keys), not a {type(data).__name__}", template=fragment.source
            )
        )
    return data


def merge(fragments: list[Fragment]) -> Merged:
    merged = Merged()
    for fragment in fragments:
        _merge_into(merged, merged.document, parse_fragment(fragment), (), fragment.source)
    return merged


def _merge_into(merged: Merged, target: dict[str, Any], incoming: dict[str, Any], path: Path, source: str) -> None:
    for key, value in incoming.items():
        here = (*path, key)
        if key not in target:
            target[key] = value
            merged.provenance[here] = source  # and, through source_of, everything below it
        elif isinstance(target[key], dict) and isinstance(value, dict):
            _merge_into(merged, target[key], value, here, source)
        elif target[key] != value:
            first = merged.source_of(here)
            raise MergeConflictError(
                f"templates conflict at {json_path(here)}: templates {first} and {source} give it different values; "
                "a key may be defined by several templates only with the same value"
            )
