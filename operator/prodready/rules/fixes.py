"""Planning `prodready fix`: a finding's JSON patch applied to the text of its file.

Pure: text in, text out. Only the YAML documents that hold a fixed object are rewritten,
each through a ruamel.yaml round trip that keeps comments, key order, quoting and the
document's indentation; every other byte of the file is left as it was. The patches are
RFC 6902 (`add`, `replace`, `remove`), with one difference: an `add` of a mapping where
one already is merges into it, since two findings about one container (say, two security
settings) each add to the same `securityContext` without knowing about the other.

What is not fixed, and says why: objects rendered from a chart or a kustomization (their
text is a template), JSON files and standard input (nothing to rewrite in place), Secrets,
and values a Secret reference supplies (`valueFrom`): a fix must not move a secret's value
into a manifest.
"""

from __future__ import annotations

import copy
import io
import itertools
import re
from collections.abc import Iterable, Mapping, MutableMapping, MutableSequence
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from prodready.rules.loader import DOCUMENT_MARKER
from prodready.rules.model import Finding, ObjectRef

_DOCUMENT_MARKER = re.compile(DOCUMENT_MARKER, re.MULTILINE)
_KEY_ONLY = re.compile(r"^(\s*)(?:- )?[^\s#-][^:#]*:\s*(?:#.*)?$")


class PatchError(ValueError):
    """A patch that does not apply to the object as written."""


@dataclass(frozen=True, kw_only=True, slots=True)
class FixTarget:
    """One object of a file and its findings that carry a patch."""

    line: int
    object: ObjectRef
    findings: tuple[Finding, ...]


@dataclass(slots=True)
class FilePlan:
    """A file's new text, the findings fixed and those refused (with the reason)."""

    original: str
    text: str
    fixed: list[Finding] = field(default_factory=list)
    refused: list[tuple[Finding, str]] = field(default_factory=list)
    # Documents whose layout a round trip could not keep (their lines, 1-based).
    reformatted: list[int] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """Whether the text differs from the original."""
        return self.text != self.original


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def pointer_tokens(pointer: str) -> list[str]:
    """RFC 6901 reference tokens of a JSON pointer (`""` is the whole document)."""
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchError(f"not a JSON pointer: {pointer!r}")
    return [_unescape(token) for token in pointer[1:].split("/")]


def _child(node: Any, token: str) -> Any:
    if isinstance(node, Mapping):
        if token not in node:
            raise PatchError(f"no field {token!r}")
        return node[token]
    if isinstance(node, MutableSequence):
        if not token.isdigit() or int(token) >= len(node):
            raise PatchError(f"no item {token!r}")
        return node[int(token)]
    raise PatchError(f"{token!r} is below a value, not an object or a list")


def _merge(target: MutableMapping[str, Any], value: Mapping[str, Any]) -> None:
    for key, item in value.items():
        existing = target.get(key)
        if isinstance(existing, MutableMapping) and isinstance(item, Mapping):
            _merge(existing, item)
        else:
            target[key] = copy.deepcopy(item)


def apply_operation(document: Any, operation: Mapping[str, Any]) -> None:
    """Apply one patch operation in place (see the module docstring for `add`)."""
    op = operation.get("op")
    tokens = pointer_tokens(str(operation.get("path", "")))
    if not tokens:
        raise PatchError("a patch of the whole object is not applied")
    parent = document
    for token in tokens[:-1]:
        parent = _child(parent, token)
    last = tokens[-1]
    value = copy.deepcopy(operation.get("value"))
    if op in ("add", "replace"):
        if isinstance(parent, MutableMapping):
            if op == "replace" and last not in parent:
                raise PatchError(f"no field {last!r} to replace")
            existing = parent.get(last)
            if op == "add" and isinstance(existing, MutableMapping) and isinstance(value, Mapping):
                _merge(existing, value)
            else:
                parent[last] = value
        elif isinstance(parent, MutableSequence):
            if last == "-" and op == "add":
                parent.append(value)
            elif last.isdigit() and int(last) <= len(parent) - (op == "replace"):
                if op == "add":
                    parent.insert(int(last), value)
                else:
                    parent[int(last)] = value
            else:
                raise PatchError(f"no item {last!r}")
        else:
            raise PatchError(f"{last!r} is below a value, not an object or a list")
    elif op == "remove":
        _child(parent, last)
        del parent[int(last) if isinstance(parent, MutableSequence) else last]
    else:
        raise PatchError(f"operation {op!r} is not applied")


def secret_guard(obj: Mapping[str, Any], finding: Finding) -> str | None:
    """Why `finding`'s patch must not be applied to `obj` (a Secret's value), or None."""
    if obj.get("kind") == "Secret":
        return "the object is a Secret; prodready does not edit secrets"
    for operation in finding.patch or ():
        try:
            tokens = pointer_tokens(str(operation.get("path", "")))
        except PatchError:
            continue
        if "valueFrom" in tokens:
            return "the value comes from a reference (valueFrom); change it at its source"
        node: Any = obj
        for token in tokens:
            if isinstance(node, Mapping) and "valueFrom" in node:
                return (
                    "the value comes from a Secret or ConfigMap reference (valueFrom); "
                    "change it at its source"
                )
            try:
                node = _child(node, token)
            except PatchError:
                break
    return None


def guess_mapping_indent(text: str) -> int:
    """The indentation of nested mappings in `text` (2 when nothing says otherwise)."""
    lines = [
        line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]
    for line, following in itertools.pairwise(lines):
        match = _KEY_ONLY.match(line)
        if match is None or following.lstrip().startswith("- "):
            continue
        base = len(match.group(1)) + (2 if line.lstrip().startswith("- ") else 0)
        step = len(following) - len(following.lstrip()) - base
        if step > 0:
            return step
    return 2


def _sequence_layout(text: str) -> tuple[int, int]:
    """(sequence indent, dash offset) as ruamel.yaml spells them, from `text`'s first list."""
    lines = text.splitlines()
    for position, line in enumerate(lines):
        stripped = line.lstrip()
        if not stripped.startswith(("- ", "-  ")) or position == 0:
            continue
        previous = next(
            (
                lines[i]
                for i in range(position - 1, -1, -1)
                if lines[i].strip() and not lines[i].lstrip().startswith("#")
            ),
            None,
        )
        if previous is None or not previous.rstrip().endswith(":"):
            continue
        parent = len(previous) - len(previous.lstrip())
        if previous.lstrip().startswith("- "):
            parent += 2
        offset = len(line) - len(stripped) - parent
        # `-   name`: the item's content starts after the dash and its spaces.
        gap = len(stripped) - len(stripped[1:].lstrip())
        if offset >= 0:
            return offset + gap, offset
    return 2, 0


def _yaml(segment: str) -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 1 << 16  # never fold a long line that was not folded
    sequence, offset = _sequence_layout(segment)
    yaml.indent(mapping=guess_mapping_indent(segment), sequence=sequence, offset=offset)
    return yaml


def _dump(yaml: YAML, document: Any) -> str:
    out = io.StringIO()
    yaml.dump(document, out)
    return out.getvalue()


def _same_object(candidate: Any, ref: ObjectRef) -> bool:
    if not isinstance(candidate, Mapping):
        return False
    metadata = candidate.get("metadata")
    metadata = metadata if isinstance(metadata, Mapping) else {}
    return (
        candidate.get("kind") == ref.kind
        and metadata.get("name") == ref.name
        and (ref.namespace is None or metadata.get("namespace") in (ref.namespace, None))
    )


def _object_in(document: Any, ref: ObjectRef) -> Any:
    if _same_object(document, ref):
        return document
    items = document.get("items") if isinstance(document, Mapping) else None
    if isinstance(items, MutableSequence):
        return next((item for item in items if _same_object(item, ref)), None)
    return None


@dataclass(slots=True)
class _Segment:
    start: int  # offset in the file
    line: int  # 1-based line of its first character
    marker: str  # the document marker line it starts with ("" for the first)
    body: str


def split_documents(text: str) -> list[_Segment]:
    """The file as documents: each keeps its `---` line apart from its body."""
    segments: list[_Segment] = []
    starts = [match.start() for match in _DOCUMENT_MARKER.finditer(text)]
    bounds = [0, *[s for s in starts if s > 0], len(text)]
    for begin, end in itertools.pairwise(bounds):
        chunk = text[begin:end]
        marker = ""
        if _DOCUMENT_MARKER.match(chunk):
            newline = chunk.find("\n")
            marker, chunk = (
                (chunk, "") if newline < 0 else (chunk[: newline + 1], chunk[newline + 1 :])
            )
        segments.append(
            _Segment(start=begin, line=text.count("\n", 0, begin) + 1, marker=marker, body=chunk)
        )
    return segments


def _fix_segment(
    segment: _Segment, targets: list[FixTarget], plan: FilePlan, *, check_layout: bool
) -> str:
    yaml = _yaml(segment.body)
    try:
        document = yaml.load(segment.body)
    except YAMLError as error:
        for target in targets:
            plan.refused.extend(
                (f, f"the document does not parse for editing: {error}") for f in target.findings
            )
        return segment.body
    changed = False
    for target in targets:
        obj = _object_in(document, target.object)
        if obj is None:
            plan.refused.extend(
                (f, "the object was not found in the file as written") for f in target.findings
            )
            continue
        for finding in target.findings:
            guard = secret_guard(obj, finding)
            if guard is not None:
                plan.refused.append((finding, guard))
                continue
            trial = copy.deepcopy(obj)
            try:
                for operation in finding.patch or ():
                    apply_operation(trial, operation)
            except PatchError as error:
                plan.refused.append((finding, f"its patch does not apply: {error}"))
                continue
            for operation in finding.patch or ():
                apply_operation(obj, operation)
            plan.fixed.append(finding)
            changed = True
    if not changed:
        return segment.body
    fixed = _dump(yaml, document)
    if check_layout and _dump(yaml, yaml.load(segment.body)) != segment.body:
        plan.reformatted.append(segment.line)
    return fixed


def plan_file(text: str, targets: Iterable[FixTarget], *, check_layout: bool = True) -> FilePlan:
    """Apply every target's patches to `text`; the plan says what was fixed and refused.

    With `check_layout`, a document whose round trip alone would change it is listed in
    `reformatted` (one more round trip each).
    """
    plan = FilePlan(original=text, text=text)
    segments = split_documents(text)
    by_segment: dict[int, list[FixTarget]] = {}
    for target in targets:
        index = max(
            (i for i, s in enumerate(segments) if s.line + (1 if s.marker else 0) <= target.line),
            default=0,
        )
        by_segment.setdefault(index, []).append(target)
    parts: list[str] = []
    for index, segment in enumerate(segments):
        body = segment.body
        if index in by_segment:
            body = _fix_segment(segment, by_segment[index], plan, check_layout=check_layout)
        parts.append(segment.marker + body)
    plan.text = "".join(parts)
    return plan
