"""The full YAML reader: ruamel.yaml (its C parser where installed), for any text.

bottlegen reads most text with its fast reader (yamlsubset), which needs none of this; this
module, and ruamel.yaml with it, is imported only when a text is outside that subset, is
broken, or may nest too deep, and by the engine side to read a bottle's compose file. It
reads the same dialect as yamltext describes: YAML 1.2, safe, plain data, timestamps as
strings. `read` turns ruamel.yaml's errors into yamltext.YAMLSyntaxError, so that callers
need not import ruamel.yaml to catch them.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any, ClassVar

from ruamel.yaml import YAML
from ruamel.yaml.constructor import SafeConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import CollectionEndEvent, CollectionStartEvent
from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode
from ruamel.yaml.resolver import VersionedResolver
from ruamel.yaml.tag import Tag

from .yamltext import YAMLSyntaxError

try:
    from ruamel.yaml.cyaml import CParser  # type: ignore[attr-defined]
except ImportError:  # no C extension: ruamel.yaml's pure-Python parser
    CParser = None


class _PlainConstructor(SafeConstructor):
    """The safe constructor, except that timestamps stay strings."""


class PinnedResolver(VersionedResolver):
    """Resolves for one YAML version: 1.2, compose's dialect, unless a subclass says.

    A %YAML directive does not change it. ruamel.yaml otherwise looks the version up again
    for every scalar: a third of a load.
    """

    version: tuple[int, int] = (1, 2)
    _tags: ClassVar[dict[str, Tag]] = {}

    @property
    def processing_version(self) -> tuple[int, int]:
        return self.version

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        """VersionedResolver.resolve for a plain scalar, with one Tag per tag: a Tag caches
        its text, which the constructor asks for several times per node."""
        if kind is ScalarNode and implicit[0]:
            table = self.versioned_resolver
            for suffix, regexp in table.get(value[:1], []) + table.get(None, []):
                if regexp.match(value):
                    tag = self._tags.get(suffix)
                    if tag is None:
                        tag = self._tags[suffix] = Tag(suffix=suffix)
                    return tag
            if not self.yaml_path_resolvers:
                return self.DEFAULT_SCALAR_TAG
        return super().resolve(kind, value, implicit)


_PlainConstructor.add_constructor("tag:yaml.org,2002:timestamp", SafeConstructor.construct_yaml_str)


@cache
def yaml_loader() -> YAML:
    """The safe, plain-data YAML 1.2 loader (the C extension when it is installed).

    One per process, its settings never changed after this: the plan, the manifest, every
    fragment and a bottle's compose file are read through load_yaml, which builds the same
    loader from a class made once. Text from outside goes through nesting_depth_over first.
    """
    yaml = YAML(typ="safe")
    yaml.Constructor = _PlainConstructor
    yaml.Resolver = PinnedResolver
    yaml.allow_duplicate_keys = False
    return yaml


if CParser is not None:

    class _Loader(CParser, _PlainConstructor, PinnedResolver):  # type: ignore[misc]
        """What yaml_loader().load builds for each text (the C parser, the constructor and the
        resolver in one object), as a class made once: ruamel.yaml makes the class again for
        every load."""

        def __init__(self, text: str) -> None:
            CParser.__init__(self, text)
            self._parser = self._composer = self
            _PlainConstructor.__init__(self, loader=self)
            self.allow_duplicate_keys = False
            PinnedResolver.__init__(self, loadumper=self)


def constructor_parser(text: str) -> tuple[Any, Any]:
    """What YAML.get_constructor_parser gives for text: a constructor, whose composer gives
    the node tree (get_single_node) and which builds data from it (construct_document), and
    the parser to dispose() after use."""
    if CParser is None:
        pair: tuple[Any, Any] = yaml_loader().get_constructor_parser(text)
        return pair
    loader = _Loader(text)
    return loader, loader


def load_yaml(text: str) -> Any:
    """Text in the plain-data YAML dialect, as data (see yaml_loader)."""
    constructor, parser = constructor_parser(text)
    try:
        return constructor.get_single_data()
    finally:
        parser.dispose()


@contextmanager
def reported() -> Iterator[None]:
    """ruamel.yaml's errors inside, as YAMLSyntaxError."""
    try:
        yield
    except MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        problem = " ".join(p for p in (e.context, e.problem) if p)
        line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise YAMLSyntaxError(str(e), True, problem, line, column) from None
    except YAMLError as e:
        raise YAMLSyntaxError(str(e), False, str(e), None, None) from None


def read(text: str) -> Any:
    """load_yaml, its errors as YAMLSyntaxError."""
    with reported():
        return load_yaml(text)


def deepest_line(text: str, limit: int) -> int | None:
    """The line where YAML text nests deeper than limit, or None. The C parser's event
    stream is iterative, so this is safe on any input."""
    depth = 0
    try:
        for event in yaml_loader().parse(text):
            if isinstance(event, CollectionStartEvent):
                depth += 1
                if depth > limit:
                    line: int = event.start_mark.line + 1
                    return line
            elif isinstance(event, CollectionEndEvent):
                depth -= 1
    except YAMLError:
        return None  # the load reports the syntax error properly
    return None


@functools.lru_cache(maxsize=4)  # the problems of one file ask of one text
def _node_tree(text: str) -> Any:
    constructor, parser = constructor_parser(text)
    try:
        single = getattr(constructor, "get_single_node", None) or constructor.composer.get_single_node
        return single()
    finally:
        parser.dispose()


def line_of(text: str, parts: tuple[Any, ...]) -> int | None:
    """The line (1-based) at which a key path is written in YAML text: the key's line for a
    mapping's entry, the item's for a list's; where the text holds only part of the path, the
    line of the deepest part it holds. None when the text is not YAML."""
    try:
        node = _node_tree(text)
    except YAMLError:
        return None
    line = 1 if node is not None else None
    for part in parts:
        if isinstance(node, MappingNode):
            found = next(((k, v) for k, v in node.value if getattr(k, "value", None) == part), None)
            if found is None:
                return line
            line, node = found[0].start_mark.line + 1, found[1]
        elif isinstance(node, SequenceNode) and isinstance(part, int) and -len(node.value) <= part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line
