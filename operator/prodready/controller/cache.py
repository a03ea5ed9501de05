"""In-memory copies of the objects the operator watches, fed by kopf's watch events.

The reconciler reads desired-vs-live from here instead of GETting each child on every
pass, which is what keeps a converged operator silent towards the apiserver.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from typing import Any

from prodready.kube.interning import intern_in_place

JSON = dict[str, Any]
ObjectKey = tuple[str, str, str]  # (kind, namespace, name)


def _slim(body: Mapping[str, Any]) -> JSON:
    # managedFields are often the largest part of an object and the reconciler never reads
    # them: dropping them keeps memory flat at thousands of children.
    metadata = dict(body.get("metadata") or {})
    metadata.pop("managedFields", None)
    return {**body, "metadata": metadata}


def owner_name(body: Mapping[str, Any], owner_kind: str) -> str | None:
    """The name of the controlling owner of `owner_kind`, if any."""
    for reference in (body.get("metadata") or {}).get("ownerReferences") or ():
        if reference.get("kind") == owner_kind and reference.get("controller"):
            return str(reference.get("name"))
    return None


class ObjectCache:
    """Objects by (kind, namespace, name), plus children indexed by their owner."""

    def __init__(self, owner_kind: str) -> None:
        self._owner_kind = owner_kind
        self._objects: dict[ObjectKey, JSON] = {}
        self._children: dict[tuple[str, str], set[ObjectKey]] = defaultdict(set)

    def __len__(self) -> int:
        return len(self._objects)

    def get(self, kind: str, namespace: str, name: str) -> JSON | None:
        """The cached object, or None."""
        return self._objects.get((kind, namespace, name))

    def put(self, body: Mapping[str, Any]) -> None:
        """Store (or replace) an object as seen in a watch event or an API answer."""
        metadata = body.get("metadata") or {}
        key = (str(body.get("kind")), str(metadata.get("namespace", "")), str(metadata["name"]))
        previous = self._objects.get(key)
        if previous is not None and _newer(previous, body):
            return  # a late watch event must not overwrite what an apply just returned
        if isinstance(body, dict):
            intern_in_place(body)
        self._objects[key] = _slim(body)
        owner = owner_name(body, self._owner_kind)
        if owner is not None:
            self._children[(key[1], owner)].add(key)

    def remove(self, kind: str, namespace: str, name: str) -> None:
        """Forget an object (it was deleted)."""
        body = self._objects.pop((kind, namespace, name), None)
        if body is not None:
            owner = owner_name(body, self._owner_kind)
            if owner is not None:
                children = self._children.get((namespace, owner))
                if children is not None:
                    children.discard((kind, namespace, name))
                    if not children:
                        del self._children[(namespace, owner)]

    def children(self, namespace: str, owner: str) -> Iterator[JSON]:
        """Cached objects controlled by the owner `namespace/owner`."""
        for key in sorted(self._children.get((namespace, owner), ())):
            body = self._objects.get(key)
            if body is not None:
                yield body

    def keys(self, kind: str) -> list[tuple[str, str]]:
        """(namespace, name) of every cached object of a kind."""
        return [(ns, name) for (k, ns, name) in self._objects if k == kind]


def _newer(current: Mapping[str, Any], incoming: Mapping[str, Any]) -> bool:
    """Whether `current` is newer than `incoming` (resourceVersions compare as integers)."""
    try:
        have = int((current.get("metadata") or {}).get("resourceVersion", 0))
        got = int((incoming.get("metadata") or {}).get("resourceVersion", 0))
    except (TypeError, ValueError):
        return False
    return have > got
