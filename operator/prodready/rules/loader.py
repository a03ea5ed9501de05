"""Reading manifests for `prodready validate`: files, directories, stdin; YAML and JSON.

Every object keeps the file and line of its YAML document (or of its item in a `List`),
so reports — SARIF above all — can point at it.

The input may be hostile (a pull request's tree), so reading it is bounded in time and
memory whatever it holds:

- only regular files are read: a FIFO, a device or a socket is refused without blocking
  (opened with `O_NONBLOCK`, then checked with `fstat` on the open descriptor), and no
  file is read past its cap, whatever `stat` says its size is;
- symbolic links found while walking a directory are followed only while they stay inside
  the directories given (unless `follow_symlinks`), and each directory is walked once, so
  a link loop ends;
- a YAML document may hold at most `MAX_DOCUMENT_NODES` nodes (counted on the parser's
  event stream, before any is built, when the file could hold more) and its aliases may add
  at most `MAX_ALIAS_NODES` nodes to it (the "billion laughs" attack: a few KiB that expand
  to billions of nodes once a consumer walks them);
- a whole run reads at most `InputLimits`: bytes, objects and nodes across every input.
  Past one of them the run stops reading and checks nothing (`LoadResult.over_limit`).

Other input errors never stop the run: they are collected with the file and line, and the
remaining input is still checked.
"""

from __future__ import annotations

import errno
import fnmatch
import gc
import json
import os
import re
import stat
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import yaml

from prodready.rules.sources import (
    KUSTOMIZATION_FILES,
    KustomizationIndex,
    chart_directory,
    display_path,
    helm_sources,
    kustomization_file,
    scan_kustomizations,
    template_path,
)
from prodready.rules.toolchain import RenderError, Toolchain

# libyaml's parser is several times faster than the pure-Python one; fall back if absent.
_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

MIB = 1024 * 1024
MAX_FILE_BYTES = 32 * MIB
# A chart template read to find where its object starts (for the reports' line).
MAX_TEMPLATE_BYTES = MIB
# A run's defaults (`InputLimits`); benchmarks/RESULTS.md has what they cost.
MAX_TOTAL_BYTES = 64 * MIB
MAX_OBJECTS = 50_000
MAX_TOTAL_NODES = 5_000_000
# Nodes one YAML document may hold (composing them is the peak of a file's memory).
MAX_DOCUMENT_NODES = 1_000_000
# Nodes aliases may add to one document: a manifest reuses an anchor a few times, a bomb a
# few thousand. A fixed number, not a ratio, so a large document earns no larger expansion.
MAX_ALIAS_NODES = 10_000
# The expansion of a document that contains itself through an alias.
UNBOUNDED = sys.maxsize
# A `\uD800`-`\uDFFF` escape in JSON: half of a surrogate pair, or a lone one.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
STDIN_NAME = "<stdin>"
# An alias (`*name`) where a YAML node may start; a `*` inside a quoted string may match
# too, which only costs the (linear) expansion check.
_ALIAS_TOKEN = re.compile(rb"(?:^|[\s\[{,:-])\*[^\s,\[\]{}]", re.MULTILINE)
# Every YAML node but a document's first follows one of these characters (`- a`, `a: b`,
# `[a, b]`, `{a, b}`, `? a`), and no character starts more than two nodes (`{a, b}`: a
# key and its empty value), so twice their count bounds a document's nodes.
_NODE_STARTS = (b",", b"[", b"{", b":", b"-", b"?")
# A document marker at column 0 ends any document (YAML forbids one inside a document's
# content), so every document lies between two of them.
DOCUMENT_MARKER = r"^(?:---|\.\.\.)(?=[ \t\r\n]|$)"
_DOCUMENT_MARKER = re.compile(DOCUMENT_MARKER.encode(), re.MULTILINE)
_NODE_EVENTS = (
    yaml.ScalarEvent,
    yaml.SequenceStartEvent,
    yaml.MappingStartEvent,
    yaml.AliasEvent,
)
# JSON: strings (keys and values) and the other scalars, counted without parsing.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_JSON_SCALAR = re.compile(rb"[-+.0-9eE]+|true|false|null")
_FILE_KINDS = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a directory",
    stat.S_IFLNK: "a symbolic link",
}


def _mib(size: int) -> str:
    return f"{size / MIB:g} MiB"


def _limit_text() -> str:
    return _mib(MAX_FILE_BYTES)


@dataclass(frozen=True, kw_only=True, slots=True)
class InputLimits:
    """What one run may read in total, across every input; past one, nothing is checked.

    Checking costs memory in proportion to the objects and nodes read (their findings
    above all), so these bound the run's memory, not only its input.
    """

    max_bytes: int = MAX_TOTAL_BYTES
    max_objects: int = MAX_OBJECTS
    max_nodes: int = MAX_TOTAL_NODES


class InputLimitError(Exception):
    """The run's input went past one of its `InputLimits`."""


@dataclass(slots=True)
class _Tally:
    """What has been read so far against the run's limits."""

    limits: InputLimits
    bytes: int = 0
    objects: int = 0
    nodes: int = 0

    def remaining_bytes(self) -> int:
        return self.limits.max_bytes - self.bytes

    def add_bytes(self, size: int) -> None:
        self.bytes += size
        if self.bytes > self.limits.max_bytes:
            raise InputLimitError(
                f"the inputs together are larger than the {_mib(self.limits.max_bytes)} "
                "limit of one run (--max-input-mib)"
            )

    def add_object(self) -> None:
        self.objects += 1
        if self.objects > self.limits.max_objects:
            raise InputLimitError(
                f"the inputs together hold more than {self.limits.max_objects:,} "
                f"object{'s' if self.limits.max_objects != 1 else ''}, the limit of one run "
                "(--max-objects)"
            )

    def add_nodes(self, count: int) -> None:
        self.nodes += count
        if self.nodes > self.limits.max_nodes:
            raise InputLimitError(
                f"the inputs together hold more than {self.limits.max_nodes:,} YAML/JSON "
                "values, the limit of one run"
            )


@dataclass(frozen=True, slots=True)
class LoadedObject:
    """One input object and where it was written.

    `rendered_by` names the tool that produced the object from a chart or kustomization
    (`helm template`, `kustomize build`); `file` is then the template it came from when
    Helm's `# Source:` comment says, at the template's `kind:` line (the output's lines are
    not the template's), or the kustomization's directory. Rendered objects cannot be
    fixed in place.
    """

    obj: dict[str, Any]
    file: str
    line: int
    rendered_by: str | None = None


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
    # The input went past the run's `InputLimits`: `objects` is empty, `errors` says why.
    over_limit: bool = False
    # The bytes of each input read as written (by its name), for `locate` and `fix`.
    texts: dict[str, bytes] = field(default_factory=dict)


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


def distinct_nodes(root: yaml.Node) -> int:
    """How many distinct nodes a composed node holds (itself included; aliases once)."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) not in seen:
            seen.add(id(node))
            stack.extend(_children(node))
    return len(seen)


def alias_expansion(root: yaml.Node) -> tuple[int, str | None]:
    """(nodes a composed document's aliases add to it, why that is refused or None).

    Every consumer (the rules, the report formats) walks the expanded tree, so it is the
    nodes aliases add that cost, whatever the document's own size: a fixed budget, not a
    ratio. Linear in the document's distinct nodes, however far it would expand.
    """
    distinct, expanded = expansion(root)
    if expanded == UNBOUNDED:
        return UNBOUNDED, (
            "an alias refers to a node that contains it, so the document is infinitely "
            "deep; refusing it"
        )
    added = expanded - distinct
    if added > MAX_ALIAS_NODES:
        return added, (
            f"the document's aliases expand it from {distinct:,} to {expanded:,} nodes, more "
            f"than the {MAX_ALIAS_NODES:,} nodes aliases may add; refusing it as an alias bomb"
        )
    return added, None


def _document_node_bound(data: bytes, start: int = 0, end: int | None = None) -> int:
    """An upper bound of the nodes of the YAML in `data[start:end]`, counted in C."""
    end = len(data) if end is None else end
    return 2 * sum(data.count(node_start, start, end) for node_start in _NODE_STARTS) + 2


def _may_hold_a_large_document(data: bytes) -> bool:
    """Whether a document of `data` may hold more than `MAX_DOCUMENT_NODES` nodes.

    Bounds each stretch between document markers, so that a large file of ordinary
    documents costs no parse to clear; a stretch of n bytes holds at most 2n + 2 nodes.
    """
    budget = MAX_DOCUMENT_NODES
    if _document_node_bound(data) <= budget:
        return False
    start = 0
    for marker in _DOCUMENT_MARKER.finditer(data):
        end = marker.start()
        if 2 * (end - start) + 2 > budget and _document_node_bound(data, start, end) > budget:
            return True
        start = end
    return _document_node_bound(data, start) > budget


def _oversized_document(loader: _DocumentLoader) -> int | None:
    """The line of the first document of more than `MAX_DOCUMENT_NODES` nodes, or None.

    Counts the parser's events, which are dropped as they come, so a document too large
    to compose costs no memory to find; stops at the first one. A syntax error ends the
    count: parsing proper reports it.
    """
    count, line = 0, 1
    try:
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, _NODE_EVENTS):
                count += 1
                if count == 1 and event.start_mark is not None:
                    line = event.start_mark.line + 1  # a document's line is its first node's
                if count > MAX_DOCUMENT_NODES:
                    return line
            elif isinstance(event, yaml.DocumentStartEvent):
                count = 0
    except yaml.YAMLError:
        return None
    return None


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
        # Nodes built (each shared one once), for the run's node limit.
        self.built = 0

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
        self.built += 1
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
                return self.fallback(node)
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
        return self.fallback(node)

    def fallback(self, node: yaml.Node) -> object:
        """PyYAML's construction of a node this class does not build, counted as well."""
        self.built += distinct_nodes(node) - 1
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
    data: bytes, name: str, result: LoadResult, tally: _Tally
) -> Iterator[tuple[object, int, list[int]]]:
    """(document, its line, its List item lines) for each document; errors go to `result`."""
    if _may_hold_a_large_document(data):
        scan = _DocumentLoader(data)
        try:
            oversized = _oversized_document(scan)
        finally:
            scan.dispose()
        if oversized is not None:
            result.errors.append(
                InputError(
                    name,
                    oversized,
                    f"a document of more than {MAX_DOCUMENT_NODES:,} YAML nodes; refusing "
                    "the file (split the document)",
                )
            )
            return
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
            added, problem = alias_expansion(node) if may_alias else (0, None)
            if problem is not None:
                result.errors.append(InputError(name, line, problem))
                continue
            constructor.built = 0
            document = constructor.document(node)
            # A shared node is built once, but every consumer walks it once per alias.
            tally.add_nodes(constructor.built + added)
            yield document, line, _item_lines(node)
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


def _json_values(data: bytes) -> int:
    """How many values (keys included) a JSON text holds, counted in C without parsing it."""
    rest, strings = _JSON_STRING.subn(b"", data)
    _, scalars = _JSON_SCALAR.subn(b"", rest)
    return strings + scalars + rest.count(b"[") + rest.count(b"{")


def _json_documents(
    data: bytes, name: str, result: LoadResult, tally: _Tally
) -> Iterator[tuple[object, int, list[int]]]:
    values = _json_values(data)
    if values > MAX_DOCUMENT_NODES:
        result.errors.append(
            InputError(
                name,
                None,
                f"a document of more than {MAX_DOCUMENT_NODES:,} JSON values; refusing the "
                "file (split the document)",
            )
        )
        return
    tally.add_nodes(values)
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
    document: object,
    name: str,
    line: int,
    item_lines: list[int],
    result: LoadResult,
    *,
    tally: _Tally,
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
        tally.add_object()
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
        _add_document(item, name, item_line, [], result, tally=tally)


def load_bytes(
    data: bytes,
    name: str,
    result: LoadResult,
    *,
    json_format: bool = False,
    tally: _Tally | None = None,
) -> None:
    """Parse one input's bytes (YAML, or JSON when `json_format`) into `result`.

    Raises `InputLimitError` when the input takes the run past its limits.
    """
    if len(data) > MAX_FILE_BYTES:
        result.errors.append(
            InputError(
                name,
                None,
                f"larger than the {_limit_text()} input limit; not read",
            )
        )
        return
    tally = tally if tally is not None else _Tally(InputLimits())
    result.texts[name] = data
    parse = _json_documents if json_format else _yaml_documents
    before = (len(result.objects), len(result.errors), len(result.notes))
    for document, line, item_lines in parse(data, name, result, tally):
        _add_document(document, name, line, item_lines, result, tally=tally)
    if (len(result.objects), len(result.errors), len(result.notes)) == before:
        # Not an error (a chart may render an empty file), but say which file gave nothing.
        result.notes.append(f"{name}: no Kubernetes objects (the input is empty or only comments)")


class NotRegularFileError(OSError):
    """A path that is not a regular file (a FIFO, a device, a socket, a directory)."""


class FileTooLargeError(OSError):
    """A regular file larger than the limit it was read with; `size` when known, else None."""

    def __init__(self, size: int | None) -> None:
        super().__init__(errno.EFBIG, "file too large")
        self.size = size


def _kind(mode: int) -> str:
    return _FILE_KINDS.get(stat.S_IFMT(mode), "not a file")


def read_regular_file(path: str, limit: int, *, follow_symlinks: bool = True) -> bytes:
    """The content of a regular file of at most `limit` bytes, never blocking.

    Anything else is refused before it is opened (opening a device may have effects) and
    again on the open descriptor (the path may have been swapped in between): a FIFO
    would block the reader forever, `/dev/zero` never ends and `stat` calls it empty.
    Never reads more than `limit` + 1 bytes, whatever the size `stat` gives. Without
    `follow_symlinks`, a path that is itself a symbolic link is refused (ELOOP).
    Raises `NotRegularFileError`, `FileTooLargeError`, or `OSError`.
    """
    mode = os.stat(path, follow_symlinks=follow_symlinks).st_mode
    if not stat.S_ISREG(mode):
        raise NotRegularFileError(errno.EINVAL, f"not a regular file ({_kind(mode)})")
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC
    if not follow_symlinks:
        flags |= os.O_NOFOLLOW
    descriptor = os.open(path, flags)
    try:
        opened = os.fstat(descriptor)
        if not stat.S_ISREG(opened.st_mode):
            raise NotRegularFileError(errno.EINVAL, f"not a regular file ({_kind(opened.st_mode)})")
        if opened.st_size > limit:
            raise FileTooLargeError(opened.st_size)
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(descriptor, min(limit + 1 - size, 4 * MIB))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise FileTooLargeError(None)  # it grew while read
        return b"".join(chunks)
    finally:
        os.close(descriptor)


def _contains(root: str, path: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


class _Reader:
    """One run's reading: the roots, the directories walked, and the run's tally."""

    def __init__(
        self,
        result: LoadResult,
        limits: InputLimits,
        *,
        follow_symlinks: bool,
        toolchain: Toolchain | None = None,
        exclude: Sequence[str] = (),
    ) -> None:
        self.result = result
        self.tally = _Tally(limits)
        self.follow_symlinks = follow_symlinks
        self.toolchain = toolchain
        self.exclude = tuple(exclude)
        self.roots: list[str] = []
        self.walked: set[tuple[int, int]] = set()
        self.kustomizations = KustomizationIndex()
        # The input being read, named in the error when the run's limits are exceeded.
        self.current = ""

    def excluded(self, name: str) -> bool:
        """Whether `--exclude` names this path (matched whole, by its name, or by a tail)."""
        if not self.exclude:
            return False
        path = Path(name)
        parts = path.parts
        tails = ["/".join(parts[i:]) for i in range(len(parts))]
        return any(
            fnmatch.fnmatchcase(candidate, pattern)
            for pattern in self.exclude
            for candidate in (name, path.name, *tails)
        )

    def fragment(self, real: str, name: str, *, walked: bool = True) -> bool:
        """A file that is part of something else, not objects of its own; says so.

        A kustomization's patch; a kustomization or a chart's template given as a file;
        while walking with a toolchain, a resource of a kustomization (checked as it
        renders it).
        """
        patched_by = self.kustomizations.patches.get(real)
        if patched_by is not None:
            self.result.notes.append(
                f"{name}: a kustomize patch listed by {display_path(patched_by)}; not checked as "
                "a whole object"
            )
            return True
        if os.path.basename(real) in KUSTOMIZATION_FILES:
            self.result.notes.append(
                f"{name}: a kustomization; give its directory to check what it renders"
            )
            return True
        if not walked:
            return self.template(real, name)
        return self.toolchain is not None and real in self.kustomizations.resources

    def template(self, real: str, name: str) -> bool:
        """A file under a chart's `templates/` given on its own: not YAML until rendered."""
        parts = Path(real).parts
        if "templates" not in parts:
            return False
        at = len(parts) - 1 - parts[::-1].index("templates")
        chart = Path(*parts[:at])
        if not chart_directory(str(chart)):
            return False
        self.result.notes.append(
            f"{name}: a template of the Helm chart in {chart}; give the chart's directory to "
            "check what it renders"
        )
        return True

    def read_rendered(
        self,
        data: bytes,
        name: str,
        tool: str,
        chart: str | None,
        *,
        origins: Mapping[tuple[str, str], tuple[str, int]] | None = None,
    ) -> None:
        """Parse a tool's output; objects point at their template (helm), at the resource
        that declares them (kustomize: same kind, the name within a prefix/suffix), or at
        `name`."""
        self.tally.add_bytes(len(data))
        rendered = LoadResult()
        load_bytes(data, f"{name} ({tool})", rendered, tally=self.tally)
        sources = helm_sources(data) if chart is not None else []
        templates: dict[str, bytes] = {}
        for item in rendered.objects:
            source = next((s for line, s in reversed(sources) if line < item.line), None)
            if chart is None or source is None:
                file, line = _origin(item.obj, origins or {}) or (name, 1)
                self.result.objects.append(LoadedObject(item.obj, file, line, tool))
                continue
            file = template_path(chart, source)
            if file not in templates:
                try:
                    templates[file] = read_regular_file(file, MAX_TEMPLATE_BYTES)
                except OSError:
                    templates[file] = b""
            line = _kind_line(templates[file], item.obj.get("kind"))
            self.result.objects.append(LoadedObject(item.obj, file, line, tool))
        self.result.errors.extend(rendered.errors)
        self.result.notes.extend(rendered.notes)
        _settle()

    def render(self, directory: Path, real: str) -> bool:
        """Render `directory` if it is a chart or a root kustomization; whether it was one.

        A kustomization another one includes is not rendered (it is, through that one).
        """
        if self.toolchain is None:
            return False
        name = str(directory)
        if chart_directory(real):
            self.current = name
            try:
                data = self.toolchain.helm(real)
            except RenderError as error:
                self.error(name, f"cannot render the Helm chart: {error}")
                return True
            self.read_rendered(data, name, "helm template", name)
            return True
        if kustomization_file(real) is None:
            return False
        self.kustomizations.add_directory(real)
        kustomization = self.kustomizations.by_directory[real]
        included_by = self.kustomizations.included_by.get(real)
        if included_by is not None:
            self.result.notes.append(
                f"{name}: a kustomization included by {display_path(included_by)}; checked as "
                "part of it"
            )
            return True
        if kustomization.problem is not None:
            self.error(
                display_path(kustomization.file),
                f"cannot render the kustomization: {kustomization.problem}",
            )
            return True
        self.current = name
        try:
            data = self.toolchain.kustomize(real)
        except RenderError as error:
            self.error(name, f"cannot render the kustomization: {error}")
            return True
        origins = self.origins(self.kustomizations.resource_files(real))
        self.read_rendered(data, name, "kustomize build", None, origins=origins)
        return True

    def origins(self, files: list[str]) -> dict[tuple[str, str], tuple[str, int]]:
        """(kind, name) -> (file, line) of the objects the resource `files` declare."""
        found: dict[tuple[str, str], tuple[str, int]] = {}
        for file in files:
            parsed = LoadResult()
            try:
                data = read_regular_file(file, MAX_FILE_BYTES)
            except OSError:
                continue
            load_bytes(data, file, parsed)
            for item in parsed.objects:
                metadata = item.obj.get("metadata")
                name = metadata.get("name") if isinstance(metadata, dict) else None
                if isinstance(name, str):
                    key = (str(item.obj["kind"]), name)
                    found.setdefault(key, (display_path(file), item.line))
        return found

    def error(self, name: str, message: str) -> None:
        self.result.errors.append(InputError(name, None, message))

    def too_large(self, name: str, size: int | None) -> None:
        what = f"{size} bytes is larger" if size is not None else "larger"
        self.error(name, f"{what} than the {_limit_text()} input limit; not read")

    def read_file(self, path: str, name: str, *, follow_symlinks: bool) -> None:
        """Read and parse one file (`path`), reported as `name`."""
        self.current = name
        remaining = self.tally.remaining_bytes()
        try:
            data = read_regular_file(
                path, min(MAX_FILE_BYTES, remaining), follow_symlinks=follow_symlinks
            )
        except NotRegularFileError as error:
            self.error(name, f"{error.strerror}; not read")
            return
        except FileTooLargeError as error:
            if remaining < MAX_FILE_BYTES and (error.size is None or error.size <= MAX_FILE_BYTES):
                self.tally.add_bytes(remaining + 1)  # raises: the run's limit
            self.too_large(name, error.size)
            return
        except OSError as error:
            self.error(name, f"cannot read: {_reason(error)}")
            return
        self.tally.add_bytes(len(data))
        json_format = name.lower().endswith(".json")
        load_bytes(data, name, self.result, json_format=json_format, tally=self.tally)
        _settle()

    def read_stdin(self, stdin: BinaryIO) -> None:
        self.current = STDIN_NAME
        data = stdin.read(min(MAX_FILE_BYTES, self.tally.remaining_bytes()) + 1)
        if len(data) > MAX_FILE_BYTES:
            self.too_large(STDIN_NAME, None)
            return
        self.tally.add_bytes(len(data))
        if data.lstrip()[:1] in (b"{", b"["):
            # Probably JSON (`kubectl get -o json`); YAML flow style also starts this way,
            # so fall back to YAML when it does not parse as JSON.
            attempt = LoadResult()
            counted = (self.tally.objects, self.tally.nodes)
            load_bytes(data, STDIN_NAME, attempt, json_format=True, tally=self.tally)
            if not attempt.errors:
                self.result.objects.extend(attempt.objects)
                self.result.notes.extend(attempt.notes)
                _settle()
                return
            self.tally.objects, self.tally.nodes = counted
        load_bytes(data, STDIN_NAME, self.result, tally=self.tally)
        _settle()

    def read_directory(self, raw: str) -> None:
        self.current = raw
        identity = os.stat(raw)
        if (identity.st_dev, identity.st_ino) in self.walked:
            return  # inside a directory given before it: read already
        said = len(self.result.errors) + len(self.result.notes)
        if not self.walk(Path(raw), os.path.realpath(raw)) and said == len(
            self.result.errors
        ) + len(self.result.notes):
            self.result.notes.append(f"{raw}: no .yaml, .yml or .json files")

    def walk(self, top: Path, real_top: str) -> int:
        """Read every manifest under `top` (whose real path is `real_top`); how many.

        Depth first, in name order, a directory's files before its subdirectories (the
        order of `os.walk`). Each real directory is walked once, so no link loops.
        """
        read = 0
        pending = [(top, real_top)]
        while pending:
            directory, real = pending.pop(0)
            try:
                identity = os.stat(real)
                if (identity.st_dev, identity.st_ino) in self.walked:
                    continue
                self.walked.add((identity.st_dev, identity.st_ino))
                with os.scandir(real) as listing:
                    entries = sorted(listing, key=lambda entry: entry.name)
            except OSError as error:
                self.error(str(directory), f"cannot read the directory: {_reason(error)}")
                continue
            subdirectories: list[tuple[Path, str]] = []
            if self.render(directory, real):
                read += 1
                # A chart's subdirectories are its own (templates, subcharts); a
                # kustomization's may hold independent ones.
                if not chart_directory(real):
                    for entry in entries:
                        if entry.is_dir(follow_symlinks=False) and not entry.name.startswith("."):
                            subdirectories.append((directory / entry.name, entry.path))
                pending[:0] = subdirectories
                continue
            for entry in entries:
                name = directory / entry.name
                if self.excluded(str(name)):
                    continue
                manifest = entry.name.lower().endswith(MANIFEST_SUFFIXES)
                if entry.is_symlink():
                    followed = self.symlink(name, entry.path, manifest=manifest)
                    if isinstance(followed, str):
                        subdirectories.append((name, followed))
                    elif followed:
                        read += 1
                elif entry.is_dir(follow_symlinks=False):
                    # Hidden directories (.git, .terraform) hold no manifests to check.
                    if not entry.name.startswith("."):
                        subdirectories.append((name, entry.path))
                elif manifest:
                    if self.fragment(os.path.realpath(entry.path), str(name)):
                        continue
                    self.read_file(entry.path, str(name), follow_symlinks=False)
                    read += 1
            pending[:0] = subdirectories
        return read

    def symlink(self, name: Path, path: str, *, manifest: bool) -> bool | str:
        """A symbolic link met while walking: True if a file was read through it, the
        real path of a directory to walk through it, or False."""
        try:
            target = os.path.realpath(path, strict=True)
            is_directory = os.path.isdir(target)
        except OSError as error:
            if manifest:
                loop = error.errno == errno.ELOOP
                problem = "a symbolic link loop" if loop else "a symbolic link to nothing"
                self.error(str(name), f"cannot read: {problem}")
            return False
        if (is_directory and name.name.startswith(".")) or (not is_directory and not manifest):
            return False
        inside = any(_contains(root, target) for root in self.roots)
        if not inside and not self.follow_symlinks:
            what = "directory" if is_directory else "file"
            self.result.notes.append(
                f"{name}: a symbolic link to a {what} outside the given paths ({target}); "
                "skipped (--follow-symlinks reads it)"
            )
            return False
        if is_directory:
            # One inside the given paths is walked under its own name.
            return False if inside else target
        self.read_file(target, str(name), follow_symlinks=False)
        return True


def _origin(
    obj: Mapping[str, Any], origins: Mapping[tuple[str, str], tuple[str, int]]
) -> tuple[str, int] | None:
    """Where a kustomize-built object was declared: its kind and name, or the longest name
    of that kind inside its own (a namePrefix or nameSuffix added)."""
    kind = obj.get("kind")
    metadata = obj.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    if not isinstance(kind, str) or not isinstance(name, str):
        return None
    exact = origins.get((kind, name))
    if exact is not None:
        return exact
    inside = [
        (len(declared), where)
        for (declared_kind, declared), where in origins.items()
        if declared_kind == kind and declared and declared in name
    ]
    return max(inside)[1] if inside else None


def _kind_line(template: bytes, kind: object) -> int:
    """The line of `kind: <kind>` in a template (where its object starts), else 1."""
    if not isinstance(kind, str):
        return 1
    match = re.search(rb"^kind:[ \t]*[\"']?" + re.escape(kind.encode()) + rb"\b", template, re.M)
    return template.count(b"\n", 0, match.start()) + 1 if match else 1


def _reason(error: OSError) -> str:
    return error.strerror or str(error)


def load_inputs(
    paths: list[str],
    stdin: BinaryIO,
    *,
    limits: InputLimits | None = None,
    follow_symlinks: bool = False,
    toolchain: Toolchain | None = None,
    exclude: Sequence[str] = (),
) -> LoadResult:
    """Read every path (file, directory, or `-` for stdin), in the order given.

    A path given explicitly is read even if it is a symbolic link (it is what the user
    named), but it must still be a regular file or a directory. Symbolic links met while
    walking a directory are followed only to a target inside one of the directories
    given, unless `follow_symlinks`. Past one of `limits` the run stops reading: the
    result holds the one error that says so and no objects, so nothing is checked.

    With a `toolchain`, a directory holding a Helm chart or a kustomization is rendered
    instead of read (see `prodready.rules.sources`); without one, both are read as files.
    Either way a file a kustomization in the input lists as a patch is not read as a whole
    object. Paths matching an `exclude` glob are not read.
    """
    result = LoadResult()
    reader = _Reader(
        result,
        limits or InputLimits(),
        follow_symlinks=follow_symlinks,
        toolchain=toolchain,
        exclude=exclude,
    )
    try:
        _read_paths(reader, paths, stdin)
    except InputLimitError as exceeded:
        result.objects.clear()
        result.over_limit = True
        result.errors.append(
            InputError(
                reader.current, None, f"{exceeded}; stopped reading here and checked nothing"
            )
        )
    return result


def _read_paths(reader: _Reader, paths: list[str], stdin: BinaryIO | None) -> None:
    """Read every path with `reader`, in the order given (see `load_inputs`)."""
    reader.roots = [os.path.realpath(raw) for raw in paths if raw != "-" and os.path.isdir(raw)]
    reader.kustomizations = scan_kustomizations(reader.roots)
    for raw in paths:
        if raw != "-" and os.path.isfile(raw):
            reader.kustomizations.add_directory(os.path.dirname(os.path.abspath(raw)))
    for raw in paths:
        if raw == "-":
            if stdin is None:
                raise _UnplannableError
            reader.read_stdin(stdin)
        elif raw != "-" and reader.excluded(raw):
            continue
        elif os.path.isdir(raw):
            reader.read_directory(raw)
        elif os.path.exists(raw):
            if not reader.fragment(os.path.realpath(raw), raw, walked=False):
                reader.read_file(raw, raw, follow_symlinks=True)
        elif os.path.lexists(raw):
            reader.error(raw, "cannot read: a symbolic link to nothing")
        else:
            reader.error(raw, "no such file or directory")


HELM_HOOK_KEY = "helm.sh/hook"


def without_helm_tests(objects: Sequence[LoadedObject]) -> tuple[list[LoadedObject], int]:
    """`objects` but Helm test hooks (`helm.sh/hook: test`), and how many those were.

    A test hook runs once, by hand, to check a release: it is no workload. Other hooks
    (a migration Job) run at every release and are checked as what they are.
    """
    kept: list[LoadedObject] = []
    tests = 0
    for item in objects:
        metadata = item.obj.get("metadata")
        annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
        hook = annotations.get(HELM_HOOK_KEY) if isinstance(annotations, dict) else None
        if isinstance(hook, str) and any(
            phase.strip().startswith("test") for phase in hook.split(",")
        ):
            tests += 1
            continue
        kept.append(item)
    return kept, tests


# ------------------------------------------------------------------ reading in parts
#
# A large input is read by several processes (`prodready.rules.parallel`): the walk is
# made once, listing the files it would read; each process reads its share of them; the
# errors and notes of the walk and of each file are then put back in the order one
# process would have written them.


class _UnplannableError(Exception):
    """The input cannot be listed as files ahead of reading: stdin, or a chart or a
    kustomization to render."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PlannedFile:
    """A file the walk would read, and where its errors and notes go among the walk's."""

    path: str
    name: str
    follow_symlinks: bool
    size: int
    errors_before: int
    notes_before: int


@dataclass(slots=True)
class ReadingPlan:
    """The files of a run's input in reading order, and the walk's own errors and notes."""

    files: list[PlannedFile]
    walk: LoadResult

    @property
    def size(self) -> int:
        """Bytes of every file (as `stat` gave them while walking)."""
        return sum(file.size for file in self.files)


class _Planner(_Reader):
    """Walks as `_Reader` does, listing the files instead of reading them."""

    files: list[PlannedFile]

    def read_file(self, path: str, name: str, *, follow_symlinks: bool) -> None:
        try:
            size = os.stat(path, follow_symlinks=follow_symlinks).st_size
        except OSError:  # pragma: no cover - gone since the walk saw it; reading says so
            size = 0
        self.files.append(
            PlannedFile(
                path=path,
                name=name,
                follow_symlinks=follow_symlinks,
                size=size,
                errors_before=len(self.result.errors),
                notes_before=len(self.result.notes),
            )
        )

    def render(self, directory: Path, real: str) -> bool:
        if self.toolchain is not None and (
            chart_directory(real) or kustomization_file(real) is not None
        ):
            raise _UnplannableError
        return False


def plan_inputs(
    paths: list[str],
    *,
    follow_symlinks: bool = False,
    toolchain: Toolchain | None = None,
    exclude: Sequence[str] = (),
) -> ReadingPlan | None:
    """The files `load_inputs` would read, without reading them; None when the input is
    not only files (stdin, a chart or a kustomization rendered by `toolchain`)."""
    planner = _Planner(
        LoadResult(),
        InputLimits(),
        follow_symlinks=follow_symlinks,
        toolchain=toolchain,
        exclude=exclude,
    )
    planner.files = []
    try:
        _read_paths(planner, paths, None)
    except _UnplannableError:
        return None
    return ReadingPlan(planner.files, planner.result)


@dataclass(slots=True)
class ShareLoad:
    """One process's share of a planned input, read: the objects, errors and notes, where
    each file's errors and notes end, and what was read against the run's limits."""

    result: LoadResult
    marks: list[tuple[int, int]]
    bytes: int
    objects: int
    nodes: int


def read_planned(
    files: Sequence[PlannedFile],
    limits: InputLimits,
    *,
    texts: bool,
    within: Callable[[int, int, int], bool] | None = None,
) -> ShareLoad:
    """Read `files` as `load_inputs` reads them; raises `InputLimitError` past `limits`,
    or when `within(bytes, objects, nodes)` — what was read so far — says the run as a
    whole went past them (other processes read the rest of its input).

    Without `texts`, the files' bytes are not kept (only SARIF points into them).
    """
    result = LoadResult()
    reader = _Reader(result, limits, follow_symlinks=False)
    marks: list[tuple[int, int]] = []
    tally = reader.tally
    for file in files:
        reader.read_file(file.path, file.name, follow_symlinks=file.follow_symlinks)
        if not texts:
            result.texts.clear()
        marks.append((len(result.errors), len(result.notes)))
        if within is not None and not within(tally.bytes, tally.objects, tally.nodes):
            raise InputLimitError("the run's input went past its limits in another process")
    return ShareLoad(result, marks, tally.bytes, tally.objects, tally.nodes)


def merge_planned(
    plan: ReadingPlan, shares: Sequence[tuple[Sequence[PlannedFile], ShareLoad]]
) -> tuple[list[InputError], list[str]]:
    """The errors and notes of a planned input read in shares, in the order `load_inputs`
    gives them: the walk's, with each file's own where the walk reached that file."""
    errors: list[InputError] = []
    notes: list[str] = []
    walk_errors, walk_notes = plan.walk.errors, plan.walk.notes
    at_error = at_note = 0
    for files, share in shares:
        own_error = own_note = 0
        for file, (errors_end, notes_end) in zip(files, share.marks, strict=True):
            errors.extend(walk_errors[at_error : file.errors_before])
            notes.extend(walk_notes[at_note : file.notes_before])
            at_error, at_note = file.errors_before, file.notes_before
            errors.extend(share.result.errors[own_error:errors_end])
            notes.extend(share.result.notes[own_note:notes_end])
            own_error, own_note = errors_end, notes_end
    errors.extend(walk_errors[at_error:])
    notes.extend(walk_notes[at_note:])
    return errors, notes


def _settle() -> None:
    """Take what has been loaded so far out of the cyclic garbage collector's scans.

    Loaded manifests are plain dicts and lists that live until the run ends; every
    collection would walk all of them again, which made the collector a third of the
    loading time of a large repository. Frozen objects are still freed by reference
    counting; loading creates no reference cycles (a test checks), so nothing is kept
    that would otherwise have been collected.
    """
    gc.freeze()
