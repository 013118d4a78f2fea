"""YAML: compose with line numbers, then construct.

The YAML is read with PyYAML's SafeLoader only (no Python tags, no pickle). Duplicate
keys are errors, and so are recursive aliases, aliases that expand to more than
100000 values, and nesting deeper than 32 levels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import yaml

from edgetestbed.errors import SpecError
from edgetestbed.params.fields import describe
from edgetestbed.params.units import quote
from edgetestbed.spec.problems import DocPath
from edgetestbed.spec.schema import SpecIn

MAX_YAML_VALUES = 100_000   # values after alias expansion; refuses "billion laughs" documents
MAX_YAML_DEPTH = 32         # nesting levels; keeps every recursive step after parsing shallow


@dataclass
class Document:
    data: dict
    lines: dict[DocPath, int]
    duplicates: list[tuple[DocPath, str, int]]


def read_yaml(text: str, source: str) -> Document:
    """Parse safely (SafeLoader only); syntax errors and non-mapping documents are fatal."""
    try:
        loader = yaml.SafeLoader(text)   # reads the whole text: may refuse a character already
        try:
            root = loader.get_single_node()
            if root is None:
                raise SpecError(f"{source}:1: the file is empty; expected a mapping with at least "
                                "name, application, data and nodes")
            walker = _Walker(source)
            walker.walk(root, ())
            data = loader.construct_document(root)
        finally:
            loader.dispose()
    except yaml.YAMLError as error:
        raise SpecError(f"{source}:{_yaml_error_line(error, text)}: not valid YAML: "
                        f"{_yaml_problem(error)}; expected YAML mappings and lists, "
                        "indented with spaces") from None
    except RecursionError:
        raise SpecError(f"{source}:1: the document is nested too deeply; expected a spec") from None
    if not isinstance(data, dict):
        raise SpecError(f"{source}:{root.start_mark.line + 1}: the top level is {describe(data)}; "
                        f"expected {SpecIn.EXPECTED}")
    return Document(data, walker.lines, walker.duplicates)


def _yaml_error_line(error: yaml.YAMLError, text: str) -> int:
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    if mark is not None:
        return mark.line + 1
    return text.count("\n", 0, getattr(error, "position", 0)) + 1


def _yaml_problem(error: yaml.YAMLError) -> str:
    """PyYAML's explanation on one line."""
    if isinstance(error, yaml.reader.ReaderError):
        return f"the character {error.character:#06x} is not allowed in YAML"
    parts = [getattr(error, "context", None), getattr(error, "problem", None)]
    return ", ".join(part for part in parts if part) or str(error).splitlines()[0]


class _Walker:
    """Maps every key and list item of a composed document to its line; finds duplicate keys.

    Also refuses, before anything is constructed from them, recursive aliases, documents
    whose aliases expand to too many values, and documents nested too deeply.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.lines: dict[DocPath, int] = {}
        self.duplicates: list[tuple[DocPath, str, int]] = []
        self._sizes: dict[int, int] = {}
        self._open: set[int] = set()

    def walk(self, node: yaml.Node, path: DocPath) -> int:
        """The number of values under ``node`` with aliases expanded; records lines on the way."""
        self.lines.setdefault(path, node.start_mark.line + 1)
        if len(path) > MAX_YAML_DEPTH:
            raise SpecError(f"{self.source}:{node.start_mark.line + 1}: values are nested more than "
                            f"{MAX_YAML_DEPTH} levels deep; expected a spec of modest depth")
        if id(node) in self._open:
            raise SpecError(f"{self.source}:{node.start_mark.line + 1}: an alias refers to a value "
                            "that contains it; expected a tree of plain values")
        if id(node) not in self._sizes:
            self._open.add(id(node))
            size = 1 + sum(self.walk(child, place) for place, child in self._children(node, path))
            self._open.discard(id(node))
            self._sizes[id(node)] = size
            if size > MAX_YAML_VALUES:
                raise SpecError(f"{self.source}:{node.start_mark.line + 1}: aliases expand this to more "
                                f"than {MAX_YAML_VALUES} values; expected a spec of modest size")
        return self._sizes[id(node)]

    def _children(self, node: yaml.Node, path: DocPath) -> Iterator[tuple[DocPath, yaml.Node]]:
        if isinstance(node, yaml.SequenceNode):
            yield from (((*path, index), item) for index, item in enumerate(node.value))
        elif isinstance(node, yaml.MappingNode):
            first: dict[object, int] = {}
            for key_node, value in node.value:
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
                line = key_node.start_mark.line + 1
                if key in first and key != "<<":
                    self.duplicates.append(((*path, key), f"duplicate key {quote(key)} (first at line "
                                            f"{first[key]}); expected each key once", line))
                first.setdefault(key, line)
                self.lines.setdefault((*path, key), line)
                yield (*path, key), value
