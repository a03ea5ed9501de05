"""Reading manifests for `prodready validate`: files, directories, stdin; YAML and JSON.

Every object keeps the file and line of its YAML document (or of its item in a `List`),
so reports — SARIF above all — can point at it. Hostile input is refused cheaply: files
above `MAX_FILE_BYTES`, and documents whose aliases expand far beyond their size (the
"billion laughs" attack: a few KiB that expand to billions of nodes once a consumer walks
them). Input errors never stop the run: they are collected with the file and line, and
the remaining input is still checked.
"""

from __future__ import annotations

import gc
import json
import os
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import yaml

# libyaml's parser is several times faster than the pure-Python one; fall back if absent.
_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

MAX_FILE_BYTES = 32 * 1024 * 1024
# A document may expand through aliases to at most this many nodes, or ten times its own
# node count if that is larger: real manifests reuse anchors a little, bombs a lot.
MAX_EXPANDED_NODES = 1_000_000
ALIAS_EXPANSION_FACTOR = 10
# The expansion of a document that contains itself through an alias.
UNBOUNDED = sys.maxsize
# A `\uD800`-`\uDFFF` escape in JSON: half of a surrogate pair, or a lone one.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
STDIN_NAME = "<stdin>"
# An alias (`*name`) where a YAML node may start; a `*` inside a quoted string may match
# too, which only costs the (linear) expansion check.
_ALIAS_TOKEN = re.compile(rb"(?:^|[\s\[{,:-])\*[^\s,\[\]{}]", re.MULTILINE)


def _limit_text() -> str:
    return f"{MAX_FILE_BYTES / (1024 * 1024):g} MiB"


@dataclass(frozen=True, slots=True)
class LoadedObject:
    """One input object and where it was written."""

    obj: dict[str, Any]
    file: str
    line: int


@dataclass(frozen=True, slots=True)
class InputError:
    """Input that could not be read: the file, the line when known, and what is wrong."""

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.message}"


@dataclass(slots=True)
class LoadResult:
    """Everything read from the inputs: objects, errors, and what was skipped (as notes)."""

    objects: list[LoadedObject] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def expansion(root: yaml.Node) -> tuple[int, int]:
    """(distinct nodes, nodes after expanding aliases) of a composed YAML document.

    Iterative (deep documents must not hit the recursion limit) and memoised per node, so
    the cost is linear in the document's size however large its expansion is. A document
    that contains itself (`&a [*a]`) expands without end: its expansion is `UNBOUNDED`.
    """
    sizes: dict[int, int] = {}
    # Nodes whose children are being sized: meeting one again means it contains itself
    # (everything above it on the stack descends from it).
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if key in sizes:
            continue
        children = _children(node)
        if children_done:
            sizes[key] = 1 + sum(sizes[id(child)] for child in children)
            open_nodes.discard(key)
            continue
        if key in open_nodes:
            return len(sizes) + len(open_nodes), UNBOUNDED
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in children if id(child) not in sizes)
    return len(sizes), sizes[id(root)]


class _DocumentLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """The safe loader, composing one document at a time so each can be vetted first."""


_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_PLAIN_KEY_TAGS = frozenset(
    {
        _STR,
        "tag:yaml.org,2002:int",
        "tag:yaml.org,2002:bool",
        "tag:yaml.org,2002:null",
        "tag:yaml.org,2002:float",
    }
)


class _Constructor:
    """Builds a document's value as `loader.construct_document(root)` does, only faster.

    PyYAML's constructor dispatches every node through generic machinery (generators,
    recursion bookkeeping); for the str/int/bool/null/float/map/seq nodes manifests are
    made of, that is most of the time spent loading. Those are built directly here; any
    other node (timestamps, `<<` merges, `!!binary`, unknown tags, complex keys) is left
    to PyYAML, so the result — and every error — is the same. Shared nodes (aliases) stay
    shared, as PyYAML makes them. (A class, not a closure: a recursive closure is a
    reference cycle, garbage only the cyclic collector could free.)
    """

    def __init__(self, loader: _DocumentLoader) -> None:
        self.loader = loader
        self.scalars = {
            "tag:yaml.org,2002:int": loader.construct_yaml_int,
            "tag:yaml.org,2002:bool": loader.construct_yaml_bool,
            "tag:yaml.org,2002:null": loader.construct_yaml_null,
            "tag:yaml.org,2002:float": loader.construct_yaml_float,
        }
        self.shared: dict[int, object] = {}

    def document(self, root: yaml.Node) -> object:
        """The value of one composed document."""
        try:
            return self.build(root)
        finally:
            self.shared.clear()
            self.loader.constructed_objects = {}
            self.loader.recursive_objects = {}

    def build(self, node: yaml.Node) -> object:
        """The value of one node (recursive; RecursionError for absurd depths)."""
        tag = node.tag
        if tag == _STR and isinstance(node, yaml.ScalarNode):
            return node.value
        if tag == _MAP and isinstance(node, yaml.MappingNode):
            if id(node) in self.shared:
                return self.shared[id(node)]
            if not all(
                isinstance(key, yaml.ScalarNode) and key.tag in _PLAIN_KEY_TAGS
                for key, _ in node.value
            ):
                return self.loader.construct_object(node, deep=True)
            mapping: dict[Any, object] = {}
            self.shared[id(node)] = mapping
            for key, value in node.value:
                mapping[self.build(key)] = self.build(value)
            return mapping
        if tag == _SEQ and isinstance(node, yaml.SequenceNode):
            if id(node) in self.shared:
                return self.shared[id(node)]
            sequence: list[object] = []
            self.shared[id(node)] = sequence
            sequence.extend(self.build(item) for item in node.value)
            return sequence
        scalar = self.scalars.get(tag)
        if scalar is not None and isinstance(node, yaml.ScalarNode):
            return scalar(node)
        return self.loader.construct_object(node, deep=True)


def _item_lines(node: yaml.Node) -> list[int]:
    """Start lines of the `items` of a List document."""
    if not isinstance(node, yaml.MappingNode):
        return []
    for key, value in node.value:
        if (
            isinstance(key, yaml.ScalarNode)
            and key.value == "items"
            and isinstance(value, yaml.SequenceNode)
        ):
            return [item.start_mark.line + 1 for item in value.value]
    return []


def _yaml_documents(
    data: bytes, name: str, result: LoadResult
) -> Iterator[tuple[object, int, list[int]]]:
    """(document, its line, its List item lines) for each document; errors go to `result`."""
    loader = _DocumentLoader(data)
    constructor = _Constructor(loader)
    # Walking every document costs as much as constructing it; input with no alias can
    # not expand, and most manifests have none.
    may_alias = _ALIAS_TOKEN.search(data) is not None
    line: int | None = None
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            line = node.start_mark.line + 1
            distinct, expanded = expansion(node) if may_alias else (0, 0)
            if expanded == UNBOUNDED:
                result.errors.append(
                    InputError(
                        name,
                        line,
                        "an alias refers to a node that contains it, so the document is "
                        "infinitely deep; refusing it",
                    )
                )
                continue
            if expanded > max(MAX_EXPANDED_NODES, ALIAS_EXPANSION_FACTOR * distinct):
                result.errors.append(
                    InputError(
                        name,
                        line,
                        f"the document's aliases expand to {expanded} nodes "
                        f"(from {distinct}); refusing it as an alias bomb",
                    )
                )
                continue
            yield constructor.document(node), line, _item_lines(node)
    except yaml.reader.ReaderError as error:
        result.errors.append(InputError(name, _line_at(data, error.position), _encoding(error)))
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = error.problem or error.context or "malformed YAML"
        column = f" (column {mark.column + 1})" if mark is not None else ""
        result.errors.append(InputError(name, line, f"invalid YAML: {problem}{column}"))
    except yaml.YAMLError as error:
        result.errors.append(InputError(name, None, f"invalid YAML: {error}"))
    except RecursionError:
        result.errors.append(InputError(name, None, "the document is nested too deeply"))
    except (ValueError, TypeError, OverflowError) as error:
        # An explicit tag on a value that does not fit it (`!!int abc`, `!!timestamp
        # 2020-13-45`): PyYAML's constructors raise plain Python errors for those.
        result.errors.append(
            InputError(name, line, f"invalid YAML: a value does not fit its tag: {error}")
        )
    finally:
        loader.dispose()


def _line_at(data: bytes, offset: int) -> int | None:
    if not 0 <= offset <= len(data):
        return None
    return data.count(b"\n", 0, offset) + 1


def _encoding(error: yaml.reader.ReaderError) -> str:
    """What a reader error means for the person whose file it is."""
    where = f"at byte {error.position}"
    character = error.character
    code = f"#x{character:04x}" if isinstance(character, int) else repr(character)
    if "control characters" in str(error.reason):
        return (
            f"control character {code} {where}: binary data, or UTF-16 without a "
            "byte-order mark, not YAML text"
        )
    return (
        f"not UTF-8 text ({error.reason} {where}); save it as UTF-8 — Latin-1 and other "
        "legacy encodings are not read"
    )


def _json_documents(
    data: bytes, name: str, result: LoadResult
) -> Iterator[tuple[object, int, list[int]]]:
    try:
        document = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        result.errors.append(InputError(name, None, "not UTF-8 text"))
        return
    except json.JSONDecodeError as error:
        result.errors.append(
            InputError(name, error.lineno, f"invalid JSON: {error.msg} (column {error.colno})")
        )
        return
    except RecursionError:
        result.errors.append(InputError(name, None, "the document is nested too deeply"))
        return
    escape = _SURROGATE_ESCAPE.search(data)
    if escape is not None and _has_lone_surrogate(document):
        # JSON lets `"\ud800"` through as a string no encoder can write: every report
        # format would fail on it. (YAML refuses it while parsing.)
        result.errors.append(
            InputError(
                name,
                _line_at(data, escape.start()),
                "a string holds a lone UTF-16 surrogate escape (\\uD800-\\uDFFF), "
                "which is not text",
            )
        )
        return
    # JSON carries no line numbers for List items; they point at the document.
    yield document, 1, []


def _has_lone_surrogate(document: object) -> bool:
    try:
        json.dumps(document, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _list_items(document: Mapping[str, Any]) -> list[Any] | None:
    kind = document.get("kind")
    items = document.get("items")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(items, list):
        return items
    return None


def _add_document(
    document: object, name: str, line: int, item_lines: list[int], result: LoadResult
) -> None:
    if document is None:
        return  # an empty document (`---` followed by nothing)
    if not isinstance(document, dict):
        result.notes.append(
            f"{name}:{line}: a {type(document).__name__} document, not an object; ignored"
        )
        return
    items = _list_items(document)
    if items is None:
        if not isinstance(document.get("kind"), str) or not isinstance(
            document.get("apiVersion"), str
        ):
            result.notes.append(
                f"{name}:{line}: no apiVersion/kind; not a Kubernetes object, ignored"
            )
            return
        result.objects.append(LoadedObject(document, name, line))
        return
    list_kind = str(document["kind"])
    # `kubectl get deployments -o json` items carry their kind; a typed DeploymentList
    # from the API does not, so the list's kind and apiVersion supply it.
    item_kind = list_kind.removesuffix("List") if list_kind != "List" else None
    for position, raw_item in enumerate(items):
        item_line = item_lines[position] if position < len(item_lines) else line
        item = raw_item
        if isinstance(raw_item, dict) and item_kind and "kind" not in raw_item:
            item = {"kind": item_kind, "apiVersion": document.get("apiVersion"), **raw_item}
        _add_document(item, name, item_line, [], result)


def load_bytes(data: bytes, name: str, result: LoadResult, *, json_format: bool = False) -> None:
    """Parse one input's bytes (YAML, or JSON when `json_format`) into `result`."""
    if len(data) > MAX_FILE_BYTES:
        result.errors.append(
            InputError(
                name,
                None,
                f"larger than the {_limit_text()} input limit; not read",
            )
        )
        return
    parse = _json_documents if json_format else _yaml_documents
    before = (len(result.objects), len(result.errors), len(result.notes))
    for document, line, item_lines in parse(data, name, result):
        _add_document(document, name, line, item_lines, result)
    if (len(result.objects), len(result.errors), len(result.notes)) == before:
        # Not an error (a chart may render an empty file), but say which file gave nothing.
        result.notes.append(f"{name}: no Kubernetes objects (the input is empty or only comments)")


def _read_file(path: Path, name: str, result: LoadResult) -> None:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            result.errors.append(
                InputError(
                    name,
                    None,
                    f"{size} bytes is larger than the {_limit_text()} input limit; not read",
                )
            )
            return
        data = path.read_bytes()
    except OSError as error:
        result.errors.append(InputError(name, None, f"cannot read: {error.strerror or error}"))
        return
    load_bytes(data, name, result, json_format=path.suffix.lower() == ".json")


def _walk(directory: Path) -> list[Path]:
    found: list[Path] = []
    for root, directories, files in os.walk(directory):
        # Hidden directories (.git, .terraform) hold no manifests a user means to check.
        directories[:] = sorted(d for d in directories if not d.startswith("."))
        found.extend(Path(root) / f for f in sorted(files) if f.lower().endswith(MANIFEST_SUFFIXES))
    return found


def _read_stdin(stdin: BinaryIO, result: LoadResult) -> None:
    data = stdin.read(MAX_FILE_BYTES + 1)
    if data.lstrip()[:1] in (b"{", b"["):
        # Probably JSON (`kubectl get -o json`); YAML flow style also starts this way, so
        # fall back to YAML when it does not parse as JSON.
        attempt = LoadResult()
        load_bytes(data, STDIN_NAME, attempt, json_format=True)
        if not attempt.errors:
            result.objects.extend(attempt.objects)
            result.notes.extend(attempt.notes)
            return
    load_bytes(data, STDIN_NAME, result)


def load_inputs(paths: list[str], stdin: BinaryIO) -> LoadResult:
    """Read every path (file, directory, or `-` for stdin), in the order given."""
    result = LoadResult()
    for raw in paths:
        if raw == "-":
            _read_stdin(stdin, result)
            _settle()
            continue
        path = Path(raw)
        if path.is_dir():
            files = _walk(path)
            if not files:
                result.notes.append(f"{raw}: no .yaml, .yml or .json files")
            for file in files:
                _read_file(file, str(file), result)
                _settle()
        elif path.exists():
            _read_file(path, raw, result)
            _settle()
        else:
            result.errors.append(InputError(raw, None, "no such file or directory"))
    return result


def _settle() -> None:
    """Take what has been loaded so far out of the cyclic garbage collector's scans.

    Loaded manifests are plain dicts and lists that live until the run ends; every
    collection would walk all of them again, which made the collector a third of the
    loading time of a large repository. Frozen objects are still freed by reference
    counting; loading creates no reference cycles (a test checks), so nothing is kept
    that would otherwise have been collected.
    """
    gc.freeze()
