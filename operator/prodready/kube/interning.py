"""Share the strings of stored objects: one copy of "terminationMessagePath", not thousands.

A JSON decoder makes new string objects for every document it reads, so a store of
thousands of similar objects (every Deployment has the same hundred keys, and most of the
same values: "IfNotPresent", "ClusterFirst", a status message the operator wrote on every
service) holds thousands of copies of each. Interning them in place keeps one copy of
each, which is most of a stored object's strings, for little CPU per watch event (the
operator's memory at scale is in benchmarks/RESULTS.md). The object store
(`kube.store.ObjectStore.put`) is the one caller.

The object is changed in place, not copied: the store keeps the decoded body kopf handed
to the watch handler, and copying it first would double the work. Only identities change;
every value stays equal, so whoever else holds the body sees no difference once it is done.
While it runs, a dict is briefly empty: call it on a freshly decoded body, before anything
another thread reads (the webhook's view of the store) can hold it — as the store does."""

from __future__ import annotations

import sys
from typing import Any, Final

# Longer strings are rarely shared (a last-applied-configuration annotation, a certificate)
# and interning them would only grow the interpreter's table.
MAX_INTERNED_LENGTH: Final = 512


def intern_in_place(body: dict[str, Any]) -> None:
    """Intern the keys and the short string values of a decoded JSON object, in place.

    A body whose top-level keys are interned already was interned before and is left
    alone: telling is cheap, walking it again is not.
    """
    if all(key is sys.intern(key) for key in body):
        return
    _intern_dict(body)


def _intern_dict(mapping: dict[str, Any]) -> None:
    items = [(sys.intern(key), _intern(value)) for key, value in mapping.items()]
    mapping.clear()
    mapping.update(items)


def _intern(value: Any) -> Any:
    if isinstance(value, str):
        return sys.intern(value) if len(value) <= MAX_INTERNED_LENGTH else value
    if isinstance(value, dict):
        _intern_dict(value)
    elif isinstance(value, list):
        value[:] = [_intern(item) for item in value]
    return value
