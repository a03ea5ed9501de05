"""Kubernetes label selectors, and an index that finds the selectors matching a label set.

Matching every workload against every Service/PDB/monitor in its namespace is quadratic;
on a 10,000-object input that dominates the run. The index files each selector under one
of its `matchLabels` pairs, so a lookup only examines selectors that share at least one
label pair with the pod (plus the few selectors with no `matchLabels` at all).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Generic, TypeVar

T = TypeVar("T")

_ANY_NAMESPACE = "\x00any"


def _expression_matches(expression: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    key = expression.get("key")
    operator = expression.get("operator")
    values = expression.get("values") or ()
    if not isinstance(key, str):
        return False
    if operator == "In":
        return key in labels and labels[key] in values
    if operator == "NotIn":
        return key not in labels or labels[key] not in values
    if operator == "Exists":
        return key in labels
    if operator == "DoesNotExist":
        return key not in labels
    # An operator Kubernetes would reject matches nothing rather than everything.
    return False


class Selector:
    """A parsed `LabelSelector` (or a Service's plain `selector` map)."""

    __slots__ = ("expressions", "match_labels")

    def __init__(
        self,
        match_labels: Mapping[str, str],
        expressions: tuple[Mapping[str, Any], ...] = (),
    ) -> None:
        self.match_labels = match_labels
        self.expressions = expressions

    @classmethod
    def from_label_selector(cls, selector: object) -> Selector | None:
        """Parse `{matchLabels, matchExpressions}`; None if the selector is malformed."""
        if selector is None:
            return cls({})
        if not isinstance(selector, Mapping):
            return None
        labels = selector.get("matchLabels") or {}
        expressions = selector.get("matchExpressions") or ()
        if not isinstance(labels, Mapping) or not isinstance(expressions, list | tuple):
            return None
        return cls(
            {str(k): str(v) for k, v in labels.items()},
            tuple(e for e in expressions if isinstance(e, Mapping)),
        )

    @classmethod
    def from_map(cls, selector: object) -> Selector | None:
        """Parse a Service-style `selector: {key: value}` map; None if malformed."""
        if selector is None:
            return cls({})
        if not isinstance(selector, Mapping):
            return None
        return cls({str(k): str(v) for k, v in selector.items()})

    @property
    def empty(self) -> bool:
        """True when the selector has no requirement at all."""
        return not self.match_labels and not self.expressions

    def matches(self, labels: Mapping[str, str]) -> bool:
        """True if every requirement holds for `labels`."""
        for key, value in self.match_labels.items():
            if labels.get(key) != value:
                return False
        return all(_expression_matches(e, labels) for e in self.expressions)


class SelectorIndex(Generic[T]):
    """Items filed by (namespace, selector); `match(namespace, labels)` finds the matching ones.

    `empty_matches_all` follows the API object at hand: an empty PodDisruptionBudget or
    ServiceMonitor selector selects everything, an empty Service selector selects nothing.
    Items registered with `namespace=None` are visible from every namespace.
    """

    def __init__(self, *, empty_matches_all: bool) -> None:
        self._empty_matches_all = empty_matches_all
        self._by_pair: dict[tuple[str, str, str], list[tuple[Selector, T]]] = {}
        self._unkeyed: dict[str, list[tuple[Selector, T]]] = {}
        self._order: dict[int, int] = {}

    def add(self, namespace: str | None, selector: Selector, item: T) -> None:
        """File `item` under `selector` in `namespace` (None: every namespace)."""
        if selector.empty and not self._empty_matches_all:
            return
        namespace_key = _ANY_NAMESPACE if namespace is None else namespace
        self._order[id(item)] = len(self._order)
        if selector.match_labels:
            key, value = min(selector.match_labels.items())
            self._by_pair.setdefault((namespace_key, key, value), []).append((selector, item))
        else:
            self._unkeyed.setdefault(namespace_key, []).append((selector, item))

    def match(self, namespace: str, labels: Mapping[str, str]) -> list[T]:
        """Items in `namespace` (or any-namespace items) whose selector matches `labels`."""
        found: list[T] = []
        seen: set[int] = set()
        for namespace_key in (namespace, _ANY_NAMESPACE):
            for selector, item in self._unkeyed.get(namespace_key, ()):
                if id(item) not in seen and selector.matches(labels):
                    seen.add(id(item))
                    found.append(item)
            if not self._by_pair:
                continue
            for key, value in labels.items():
                for selector, item in self._by_pair.get((namespace_key, key, value), ()):
                    if id(item) not in seen and selector.matches(labels):
                        seen.add(id(item))
                        found.append(item)
        if len(found) > 1:
            # Report related objects in input order, whatever order the labels came in.
            found.sort(key=lambda item: self._order.get(id(item), 0))
        return found


def labels_of(metadata: object) -> dict[str, str]:
    """The `labels` of a metadata mapping, as strings (malformed labels count as none)."""
    if not isinstance(metadata, Mapping):
        return {}
    labels = metadata.get("labels")
    if not isinstance(labels, Mapping):
        return {}
    return {str(k): str(v) for k, v in labels.items()}
