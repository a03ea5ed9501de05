"""Secrets the cluster is asked about by name: which ones a set of workloads references,
and the shape in which the answers join the rules' context.

Offline, PR-CF-002 judges a reference when the Secret is in the input. In the cluster the
operator never holds Secrets (see `prodready.kube.secret_keys`): the audit and the webhook
look up by name the ones the workloads they judge reference, and the answers join the
context as objects of kind Secret — one that exists with its key names and empty values,
one that does not marked absent (`LOOKED_UP`) — so the rule reads them as it reads the
input, and says the same thing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from prodready.rules.checks.configuration import secret_references
from prodready.rules.context import (
    LOOKED_UP,
    LOOKED_UP_ABSENT,
    Context,
    ObjectRole,
    Workload,
    classify,
)


def referenced_secrets(objects: Iterable[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(namespace, name) of every Secret the workloads among `objects` reference (not
    optionally), sorted; a namespace-less workload counts as in `default`."""
    empty = Context()
    found: set[tuple[str, str]] = set()
    for obj in objects:
        if classify(obj) is not ObjectRole.WORKLOAD:
            continue
        workload = Workload(obj, empty)
        found.update(
            (workload.namespace, name) for _path, name, _key in secret_references(workload) if name
        )
    return sorted(found)


def looked_up_secret(namespace: str, name: str, keys: Iterable[str] | None) -> dict[str, Any]:
    """A Secret as the rules' context: its key names with empty values, or (keys None) the
    marker of one that does not exist."""
    metadata: dict[str, Any] = {"namespace": namespace, "name": name}
    if keys is None:
        metadata["annotations"] = {LOOKED_UP: LOOKED_UP_ABSENT}
        return {"apiVersion": "v1", "kind": "Secret", "metadata": metadata}
    metadata["annotations"] = {LOOKED_UP: "keys"}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata,
        "data": dict.fromkeys(sorted(keys), ""),
    }
