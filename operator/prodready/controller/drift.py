"""Does a live object still hold everything we rendered? (pure)

Server-side apply of an unchanged object is a no-op for etcd, but it is still a write
request: at a thousand services every resync would be thousands of PATCHes. So the
reconciler applies only when the live object no longer contains the desired one. Fields
the apiserver defaults, and fields other managers own, are extra in `live` and ignored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|n|u|m|k|M|G|T|P)?$")
_SUFFIX = {
    "": Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
}


def contains(live: Any, desired: Any) -> bool:
    """True when every field of `desired` is present in `live` with an equal value."""
    if isinstance(desired, Mapping):
        if not isinstance(live, Mapping):
            return False
        return all(key in live and contains(live[key], value) for key, value in desired.items())
    if isinstance(desired, Sequence) and not isinstance(desired, str):
        if not isinstance(live, Sequence) or isinstance(live, str):
            return False
        if desired and all(isinstance(item, Mapping) and "name" in item for item in desired):
            # Lists keyed by name (containers, env, ports, volumes) are merged by SSA: items
            # another manager added stay, and are not drift.
            by_name = {item.get("name"): item for item in live if isinstance(item, Mapping)}
            return all(contains(by_name.get(item["name"]), item) for item in desired)
        if len(live) != len(desired):
            return False
        return all(contains(item_live, item) for item_live, item in zip(live, desired, strict=True))
    if desired == live:
        return True
    # The apiserver canonicalises quantities ("0.5" -> "500m", "1024Mi" -> "1Gi").
    return _same_quantity(desired, live)


def _same_quantity(a: Any, b: Any) -> bool:
    if not isinstance(a, str | int) or not isinstance(b, str | int):
        return False
    left, right = _quantity(str(a)), _quantity(str(b))
    return left is not None and left == right


def _quantity(text: str) -> Decimal | None:
    match = _QUANTITY.match(text)
    if not match:
        return None
    number, suffix = match.groups()
    try:
        return Decimal(number) * _SUFFIX[suffix or ""]
    except InvalidOperation:
        return None
