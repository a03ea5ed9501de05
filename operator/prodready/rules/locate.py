"""Where in its file a finding's field is written: the line and column of `path`.

A finding's `path` (`spec.template.spec.containers[0].livenessProbe`) is walked through
the YAML node tree of the object's document, as far as it exists: a field that is missing
points at the deepest part of the path that is written (the container, for a missing
probe), so code scanning and editors underline the place to change.

Composing a document keeps every node's position, which loading for the rules does not;
it is done only for files with something to point at, once per file, from the bytes the
loader kept (no file is read again). Aliases are not expanded by composing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import yaml

from prodready.rules.loader import DOCUMENT_MARKER, LoadedObject

_Composer: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# `a.b`, `[0]`, `["a.b"]`: a dotted key may also be written unquoted (`labels.a.io/b`).
_TOKEN = re.compile(r"\[(\d+)\]|\[\"([^\"]*)\"\]|\['([^']*)'\]|([^.\[\]]+)")


def path_tokens(path: str) -> list[str | int]:
    """`spec.containers[0].name` → `["spec", "containers", 0, "name"]`."""
    tokens: list[str | int] = []
    for index, double, single, plain in _TOKEN.findall(path):
        if index:
            tokens.append(int(index))
        else:
            tokens.append(double or single or plain)
    return tokens


def _key_node(
    node: yaml.MappingNode, tokens: list[str | int], at: int
) -> tuple[int, yaml.Node, yaml.Node] | None:
    """(tokens used, key node, value node) for the longest dotted key matching at `at`."""
    keys = {
        key.value: (key, value) for key, value in node.value if isinstance(key, yaml.ScalarNode)
    }
    for end in range(len(tokens), at, -1):
        parts = tokens[at:end]
        if not all(isinstance(part, str) for part in parts):
            continue
        found = keys.get(".".join(str(part) for part in parts))
        if found is not None:
            return end - at, found[0], found[1]
    return None


def locate_in(root: yaml.Node, path: str) -> tuple[int, int]:
    """(line, column), 1-based, of the deepest node of `path` written under `root`."""
    node: yaml.Node = root
    mark = root.start_mark
    tokens = path_tokens(path)
    at = 0
    while at < len(tokens):
        token = tokens[at]
        if isinstance(node, yaml.MappingNode) and isinstance(token, str):
            found = _key_node(node, tokens, at)
            if found is None:
                break
            used, key, node = found
            mark = key.start_mark
            at += used
        elif isinstance(node, yaml.SequenceNode) and isinstance(token, int):
            if token >= len(node.value):
                break
            node = node.value[token]
            mark = node.start_mark
            at += 1
        else:
            break
    return mark.line + 1, mark.column + 1


_DOCUMENT_MARKER = re.compile(DOCUMENT_MARKER.encode(), re.MULTILINE)
# Composed documents kept per run: SARIF visits a file's findings document by document.
_CACHED_DOCUMENTS = 8


def _segments(data: bytes) -> list[tuple[int, int, int]]:
    """(first line, start, end) of each stretch between document markers."""
    starts = [0, *(m.start() for m in _DOCUMENT_MARKER.finditer(data) if m.start() > 0)]
    ends = [*starts[1:], len(data)]
    return [(data.count(b"\n", 0, s) + 1, s, e) for s, e in zip(starts, ends, strict=True)]


def _roots(data: bytes, first_line: int) -> dict[int, yaml.Node]:
    """Each document's (and List item's) root node in `data`, by its line in the file."""
    roots: dict[int, yaml.Node] = {}
    loader = _Composer(data)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            roots[first_line + node.start_mark.line] = node
            if isinstance(node, yaml.MappingNode):
                for key, value in node.value:
                    if key.value == "items" and isinstance(value, yaml.SequenceNode):
                        for item in value.value:
                            roots.setdefault(first_line + item.start_mark.line, item)
    except yaml.YAMLError:
        pass  # the loader reported it; what was composed before still counts
    finally:
        loader.dispose()
    return roots


class Locator:
    """Finds fields in the loaded inputs (`LoadResult.texts`).

    Only the document a finding is in is composed (a node tree is many times the size of
    its text), and only the last few are kept, so a large file costs little memory.
    """

    def __init__(self, texts: Mapping[str, bytes]) -> None:
        self.texts = texts
        self.segments: dict[str, list[tuple[int, int, int]]] = {}
        self.documents: dict[tuple[str, int], dict[int, yaml.Node]] = {}

    def root(self, source: LoadedObject) -> tuple[yaml.Node, int] | None:
        """The node of `source`'s document and the lines before its stretch, or None
        (rendered, or its text not kept): a node's marks count from its stretch."""
        if source.rendered_by is not None:
            return None
        data = self.texts.get(source.file)
        if data is None:
            return None
        segments = self.segments.get(source.file)
        if segments is None:
            segments = self.segments[source.file] = _segments(data)
        first_line, start, end = max(
            (segment for segment in segments if segment[0] <= source.line),
            default=segments[0],
        )
        key = (source.file, start)
        roots = self.documents.pop(key, None)
        if roots is None:
            roots = _roots(data[start:end], first_line)
        self.documents[key] = roots  # most recent last
        while len(self.documents) > _CACHED_DOCUMENTS:
            del self.documents[next(iter(self.documents))]
        node = roots.get(source.line)
        return None if node is None else (node, first_line - 1)

    def region(self, source: LoadedObject, path: str) -> tuple[int, int] | None:
        """(line, column) of `path` in `source`'s document, or None when it cannot tell."""
        found = self.root(source)
        if found is None:
            return None
        node, lines_before = found
        line, column = locate_in(node, path)
        return line + lines_before, column
