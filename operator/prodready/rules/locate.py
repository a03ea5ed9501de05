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

from prodready.rules.loader import LoadedObject

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


def _roots(data: bytes) -> dict[int, yaml.Node]:
    """Each document's (and each List item's) root node, by the line the loader gave it."""
    roots: dict[int, yaml.Node] = {}
    loader = _Composer(data)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            roots[node.start_mark.line + 1] = node
            if isinstance(node, yaml.MappingNode):
                for key, value in node.value:
                    if key.value == "items" and isinstance(value, yaml.SequenceNode):
                        for item in value.value:
                            roots.setdefault(item.start_mark.line + 1, item)
    except yaml.YAMLError:
        pass  # the loader reported it; what was composed before still counts
    finally:
        loader.dispose()
    return roots


class Locator:
    """Finds fields in the loaded inputs (`LoadResult.texts`), caching each file's tree."""

    def __init__(self, texts: Mapping[str, bytes]) -> None:
        self.texts = texts
        self.trees: dict[str, dict[int, yaml.Node]] = {}

    def root(self, source: LoadedObject) -> yaml.Node | None:
        """The node of `source`'s document, or None (rendered, or its text not kept)."""
        if source.rendered_by is not None:
            return None
        data = self.texts.get(source.file)
        if data is None:
            return None
        tree = self.trees.get(source.file)
        if tree is None:
            tree = self.trees[source.file] = _roots(data)
        return tree.get(source.line)

    def region(self, source: LoadedObject, path: str) -> tuple[int, int] | None:
        """(line, column) of `path` in `source`'s document, or None when it cannot tell."""
        root = self.root(source)
        return None if root is None else locate_in(root, path)
