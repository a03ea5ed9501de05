"""Does a live object still hold everything we rendered? (pure)

Server-side apply of an unchanged object is a no-op for etcd, but it is still a write
request: at a thousand services every resync would be thousands of PATCHes. So the
reconciler applies only when the live object no longer contains the desired one. Fields
the apiserver defaults, and fields other managers own, are extra in `live` and ignored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from prodready.api.quantity import same_quantity

# Where a rendered object holds a resource.Quantity, which the apiserver stores in its
# canonical form ("0.5" -> "500m", "1024Mi" -> "1Gi"): every value of a `resources`
# block's requests or limits (containers, volume claims), and an emptyDir's sizeLimit.
_RESOURCE_LISTS: Final = frozenset({"requests", "limits"})
_QUANTITY_FIELDS: Final = frozenset({"sizeLimit"})


def contains(live: Any, desired: Any) -> bool:
    """True when every field of `desired` is present in `live` with an equal value."""
    return _contains(live, desired, ())


def _contains(live: Any, desired: Any, path: tuple[str, ...]) -> bool:
    """`contains`, knowing the last two keys on the way (a list keeps its key's path)."""
    if isinstance(desired, Mapping):
        if not isinstance(live, Mapping):
            return False
        return all(
            key in live and _contains(live[key], value, (*path[-1:], str(key)))
            for key, value in desired.items()
        )
    if isinstance(desired, Sequence) and not isinstance(desired, str):
        if not isinstance(live, Sequence) or isinstance(live, str):
            return False
        if desired and all(isinstance(item, Mapping) and "name" in item for item in desired):
            # Lists keyed by name (containers, env, ports, volumes) are merged by SSA: items
            # another manager added stay, and are not drift.
            by_name = {item.get("name"): item for item in live if isinstance(item, Mapping)}
            return all(_contains(by_name.get(item["name"]), item, path) for item in desired)
        if len(live) != len(desired):
            return False
        return all(
            _contains(item_live, item, path) for item_live, item in zip(live, desired, strict=True)
        )
    if desired == live:
        return True
    return _is_quantity_field(path) and same_quantity(desired, live)


def _is_quantity_field(path: tuple[str, ...]) -> bool:
    """Whether the value at the end of `path` (its last two keys) is a resource.Quantity."""
    if path[-1:] and path[-1] in _QUANTITY_FIELDS:
        return True
    return len(path) == 2 and path[0] in _RESOURCE_LISTS
