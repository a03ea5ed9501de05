"""The one object store of the process: every watched object, fed by kopf's watch events.

controller-runtime gives every controller and webhook of a manager one shared cache; this
is prodready's. The controller reads desired-vs-live from it (ProductionServices and the
children they control, by owner), the audit evaluates a namespace from it, the admission
webhook judges a request with the context of its namespace from it. One LIST + WATCH per
kind feeds all three: a watch costs work per change, a LIST per object, and at thousands
of objects only the former stays flat.

* Seeded once per kind by `seed` ("is the kind served? then LIST it in each watched
  namespace"), before anything reads it, so "the store is warm" is a fact before /readyz
  says so and the webhook never judges a Deployment without the ServiceMonitor that exists.
* Kept current by `register_watches`: kopf `on.event` handlers that apply each event and
  hand the resulting `Change` to whoever listens (the composition root, `prodready.app`,
  wires the controller and the audit to it).
* Repaired by `prune` from a metadata-only LIST (`list_present`): kopf does not report
  deletions that happened while its watch was re-listing.

Stored bodies are slimmed: no managedFields and no
`kubectl.kubernetes.io/last-applied-configuration` (a second copy of the object), and
their strings are interned (`interning`). Jobs a CronJob created are not stored (the
CronJob stands for them); Secrets are never watched or stored. A change that only touches
`status` or versions is no change to the rules' view (`Change.content_changed`), so a
rollout's progress does not make its namespace audited again. Whoever `subscribe`s hears
of every change, whether a watch event or one of the process's own writes made it.

Safe to read from another thread (the webhook's) while the event loop's thread applies
events: a namespace is copied in one step (a dict copy runs without releasing the
interpreter lock), and stored bodies are replaced, never changed in place.
"""

from __future__ import annotations

import gc
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import kopf

from prodready import api
from prodready.api.resource import (
    CONFIG_MAP,
    CRON_JOB,
    DAEMON_SET,
    DEPLOYMENT,
    HORIZONTAL_POD_AUTOSCALER,
    INGRESS,
    JOB,
    POD_DISRUPTION_BUDGET,
    POD_MONITOR,
    PROMETHEUS_RULE,
    SERVICE,
    SERVICE_MONITOR,
    STATEFUL_SET,
    Resource,
)
from prodready.kube.client import ApiError, KubeClient
from prodready.kube.interning import intern_in_place

__all__ = [
    "AUDITED_RESOURCES",
    "CONTEXT_RESOURCES",
    "NAMESPACE",
    "POLICY_RESOURCES",
    "PRODUCTION_SERVICE",
    "WORKLOAD_KINDS",
    "WORKLOAD_RESOURCES",
    "Change",
    "ObjectKey",
    "ObjectStore",
    "list_present",
    "owner_name",
    "register_watches",
    "seed",
    "slim",
]

logger = logging.getLogger("prodready.store")

JSON = dict[str, Any]
ObjectKey = tuple[str, str, str]
"""(kind, namespace, name): how every stored object is named."""

LAST_APPLIED: Final = "kubectl.kubernetes.io/last-applied-configuration"

PRODUCTION_SERVICE: Final = Resource(api.API_VERSION, api.KIND, api.PLURAL)

WORKLOAD_RESOURCES: Final = (
    DEPLOYMENT,
    STATEFUL_SET,
    DAEMON_SET,
    CRON_JOB,
    JOB,
)
"""The workloads the audit evaluates. Bare Pods are left out on purpose: watching every pod
of the cluster would multiply the memory and the event volume by the replica count, for
the rare pod no controller owns."""

CONTEXT_RESOURCES: Final = (
    SERVICE,
    POD_DISRUPTION_BUDGET,
    HORIZONTAL_POD_AUTOSCALER,
    INGRESS,
    SERVICE_MONITOR,
    POD_MONITOR,
    PROMETHEUS_RULE,
    CONFIG_MAP,
)
"""The objects the rules look at around a workload (exposure, PDBs, scraping, alerts, the
ConfigMaps its variables come from: in Enforce a ConfigMap that does not exist is a
variable that is not set)."""

NAMESPACE: Final = Resource("v1", "Namespace", "namespaces", namespaced=False)
"""Namespaces, for their labels: which policies select a namespace, its environment."""

POLICY_RESOURCES: Final = (
    Resource(api.API_VERSION, "ReadinessPolicy", "readinesspolicies", namespaced=False),
    Resource(api.API_VERSION, "ReadinessException", "readinessexceptions"),
)
"""The policy objects (`prodready.api.policy`): what the rules are held to, and where not."""

AUDITED_RESOURCES: Final = WORKLOAD_RESOURCES + CONTEXT_RESOURCES
AUDITED_KINDS: Final = frozenset(resource.kind for resource in AUDITED_RESOURCES)
WORKLOAD_KINDS: Final = frozenset(resource.kind for resource in WORKLOAD_RESOURCES)


def owner_name(body: Mapping[str, Any], owner_kind: str = api.KIND) -> str | None:
    """The name of the controlling owner of `owner_kind`, if any."""
    for reference in (body.get("metadata") or {}).get("ownerReferences") or ():
        if reference.get("kind") == owner_kind and reference.get("controller"):
            return str(reference.get("name"))
    return None


def slim(body: Mapping[str, Any]) -> JSON:
    """The object without what nothing in the process reads (see the module docstring)."""
    metadata = dict(body.get("metadata") or {})
    metadata.pop("managedFields", None)
    annotations = metadata.get("annotations")
    if isinstance(annotations, Mapping) and LAST_APPLIED in annotations:
        metadata["annotations"] = {k: v for k, v in annotations.items() if k != LAST_APPLIED}
    return {**body, "metadata": metadata}


def _content(body: Mapping[str, Any]) -> JSON:
    """The part of a stored body whose change matters to the rules (no status, no versions)."""
    metadata = {
        key: value
        for key, value in (body.get("metadata") or {}).items()
        if key not in ("resourceVersion", "generation")
    }
    return {
        **{key: value for key, value in body.items() if key != "status"},
        "metadata": metadata,
    }


def _version(body: Mapping[str, Any]) -> int | None:
    try:
        return int(str((body.get("metadata") or {}).get("resourceVersion")))
    except ValueError:
        return None


def _key(body: Mapping[str, Any]) -> ObjectKey:
    metadata = body.get("metadata") or {}
    return (
        str(body.get("kind") or ""),
        str(metadata.get("namespace") or ""),
        str(metadata.get("name") or ""),
    )


@dataclass(frozen=True, kw_only=True)
class Change:
    """What one event or write did to the store."""

    kind: str
    namespace: str
    name: str
    previous: JSON | None  # what the store held before, if anything
    current: JSON | None  # what it holds now (None: removed)
    content_changed: bool  # whether the rules' view changed (status and versions aside)
    written: bool = False  # the answer to this process's own write, not a watch event


Listener = Callable[[Change], None]


class ObjectStore:
    """Slim copies of the watched objects: by namespace, by kind, and by controlling owner."""

    def __init__(self, owner_kind: str = api.KIND) -> None:
        self._owner_kind = owner_kind
        self._namespaces: dict[str, dict[tuple[str, str], JSON]] = {}
        self._by_kind: dict[str, set[tuple[str, str]]] = defaultdict(set)
        self._by_owner: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)
        self._listeners: list[Listener] = []
        self._complete: set[str] = set()

    def subscribe(self, listener: Listener) -> None:
        """Call `listener` with every change from now on (in the event loop's thread)."""
        self._listeners.append(listener)

    def __len__(self) -> int:
        return sum(len(objects) for objects in self._namespaces.values())

    # -- reading ---------------------------------------------------------------------------

    def covers(self, kind: str) -> bool:
        """True when every object of `kind` in the watched namespaces is here (its seed
        LIST succeeded everywhere, and its watch keeps it so): an absent name is then a
        free name, up to the watch's own delay."""
        return kind in self._complete

    def mark_complete(self, kind: str) -> None:
        """Record that `kind` was listed in every watched namespace (`seed` does)."""
        self._complete.add(kind)

    def get(self, kind: str, namespace: str, name: str) -> JSON | None:
        """One stored object, or None."""
        return (self._namespaces.get(namespace) or {}).get((kind, name))

    def keys(self, kind: str) -> list[tuple[str, str]]:
        """(namespace, name) of every stored object of a kind, sorted."""
        return sorted(self._by_kind.get(kind, ()))

    def count(self, kinds: Iterable[str]) -> int:
        """How many objects of these kinds the store holds."""
        return sum(len(self._by_kind.get(kind, ())) for kind in kinds)

    def children(self, namespace: str, owner: str) -> Iterator[JSON]:
        """Stored objects controlled by the owner-kind object `namespace/owner`, sorted."""
        objects = self._namespaces.get(namespace) or {}
        for key in sorted(self._by_owner.get((namespace, owner), ())):
            body = objects.get(key)
            if body is not None:
                yield body

    def namespaces(self, kinds: frozenset[str] = AUDITED_KINDS) -> list[str]:
        """Namespaces that hold at least one object of `kinds`, sorted."""
        return sorted(
            namespace
            for namespace, objects in self._namespaces.items()
            if any(kind in kinds for kind, _ in objects)
        )

    def objects(self, namespace: str, kinds: frozenset[str] = AUDITED_KINDS) -> list[JSON]:
        """A namespace's objects of `kinds` (by default what the audit evaluates), in a
        stable order; safe to call from another thread (see the module docstring)."""
        objects = dict(self._namespaces.get(namespace) or {})
        return [objects[key] for key in sorted(objects) if key[0] in kinds]

    def context(self, namespace: str) -> list[JSON]:
        """The namespace's audited non-workload objects: what an admission request is
        judged with."""
        return self.objects(namespace, AUDITED_KINDS - WORKLOAD_KINDS)

    # -- writing ---------------------------------------------------------------------------

    def put(self, body: Mapping[str, Any], *, written: bool = False) -> Change | None:
        """Store an object as seen in a watch event or a LIST, or as the answer to one of
        this process's writes (`written`); the change, or None when it was ignored."""
        kind, namespace, name = _key(body)
        if not kind or not name:
            return None
        if kind == "Job" and owner_name(body, "CronJob") is not None:
            return None
        objects = self._namespaces.get(namespace)
        previous = objects.get((kind, name)) if objects is not None else None
        if previous is not None:
            have, got = _version(previous), _version(body)
            if have is not None and got is not None and got < have:
                return None  # a late event must not overwrite a newer copy
        if isinstance(body, dict):
            intern_in_place(body)
        stored = slim(body)
        if objects is None:
            objects = self._namespaces[namespace] = {}
        objects[(kind, name)] = stored
        self._by_kind[kind].add((namespace, name))
        if previous is not None:
            self._unindex_owner(namespace, kind, name, previous)
        owner = owner_name(stored, self._owner_kind)
        if owner is not None:
            self._by_owner[(namespace, owner)].add((kind, name))
        return self._notify(
            Change(
                kind=kind,
                namespace=namespace,
                name=name,
                previous=previous,
                current=stored,
                content_changed=previous is None or _content(previous) != _content(stored),
                written=written,
            )
        )

    def remove(
        self, kind: str, namespace: str, name: str, *, written: bool = False
    ) -> Change | None:
        """Forget an object (it was deleted); the change, or None when it was not stored."""
        objects = self._namespaces.get(namespace)
        previous = objects.pop((kind, name), None) if objects is not None else None
        if previous is None:
            return None
        self._forget(kind, namespace, name, previous)
        return self._notify(
            Change(
                kind=kind,
                namespace=namespace,
                name=name,
                previous=previous,
                current=None,
                content_changed=True,
                written=written,
            )
        )

    def _notify(self, change: Change) -> Change:
        for listener in self._listeners:
            listener(change)
        return change

    def apply_event(self, event: Mapping[str, Any]) -> Change | None:
        """Apply one kopf watch event (`type` DELETED removes, anything else stores)."""
        body = event.get("object") or {}
        if event.get("type") == "DELETED":
            return self.remove(*_key(body))
        return self.put(body)

    def prune(
        self, kind: str, present: Iterable[tuple[str, str]], listed_version: int | None
    ) -> set[str]:
        """Drop objects of `kind` that a fresh LIST (at `listed_version`) no longer returned.

        An object stored from an event newer than the LIST is kept. Returns the namespaces
        that changed.
        """
        keep = set(present)
        changed: set[str] = set()
        for namespace, name in sorted(self._by_kind.get(kind, set()) - keep):
            body = self.get(kind, namespace, name)
            version = _version(body) if body is not None else None
            if listed_version is not None and version is not None and version > listed_version:
                continue
            if self.remove(kind, namespace, name) is not None:
                changed.add(namespace)
        return changed

    def freeze(self) -> int:
        """Move what the process holds now into the collector's permanent generation.

        The cyclic garbage collector stops every thread while it scans, the webhook's too;
        a full collection scans every container object, and at thousands of stored objects
        that is a pause long enough to hold up admission reviews. Frozen objects are never
        scanned again; they are still freed as usual when the store drops them (stored
        objects are JSON trees, without cycles). Returns how many objects are frozen.
        """
        gc.freeze()
        return gc.get_freeze_count()

    def _forget(self, kind: str, namespace: str, name: str, body: JSON) -> None:
        objects = self._namespaces.get(namespace)
        if objects is not None and not objects:
            del self._namespaces[namespace]
        names = self._by_kind.get(kind)
        if names is not None:
            names.discard((namespace, name))
            if not names:
                del self._by_kind[kind]
        self._unindex_owner(namespace, kind, name, body)

    def _unindex_owner(self, namespace: str, kind: str, name: str, body: JSON) -> None:
        owner = owner_name(body, self._owner_kind)
        if owner is None:
            return
        owned = self._by_owner.get((namespace, owner))
        if owned is not None:
            owned.discard((kind, name))
            if not owned:
                del self._by_owner[(namespace, owner)]


# -- feeding the store -----------------------------------------------------------------------


async def _served(client: KubeClient, resources: Iterable[Resource]) -> list[Resource]:
    """The resources the apiserver serves now (one discovery request per group/version)."""
    plurals: dict[str, set[str] | None] = {}
    served = []
    for resource in resources:
        if resource.api_version not in plurals:
            plurals[resource.api_version] = await client.served_resources(resource.api_version)
        if resource.plural in (plurals[resource.api_version] or set()):
            served.append(resource)
    return served


def _scopes(resource: Resource, namespaces: Sequence[str]) -> list[str | None]:
    """Where to LIST: each watched namespace, or once for the cluster (every namespace, or a
    kind that lives in none)."""
    return list(namespaces) if namespaces and resource.namespaced else [None]


async def seed(
    client: KubeClient,
    store: ObjectStore,
    resources: Iterable[Resource],
    namespaces: Sequence[str] = (),
    *,
    required: frozenset[str] = frozenset({api.KIND}),
) -> None:
    """Fill the store with one LIST per served kind in each watched namespace (every
    namespace when `namespaces` is empty).

    A kind the operator may not list (403) costs that kind, with a warning — unless it is
    `required`, without which the process is of no use: that error is raised.
    """
    for resource in await _served(client, resources):
        complete = True
        for scope in _scopes(resource, namespaces):
            try:
                bodies = await client.list(resource.path(scope))
            except ApiError as error:
                if error.status != 403 or resource.kind in required:
                    raise
                logger.warning(
                    "cannot list %s: the audit and the webhook will not see them: %s",
                    resource.plural,
                    error.message,
                )
                complete = False
                continue
            for body in bodies:
                body.setdefault("kind", resource.kind)
                body.setdefault("apiVersion", resource.api_version)
                store.put(body)
        if complete:
            store.mark_complete(resource.kind)


async def list_present(
    client: KubeClient, resources: Iterable[Resource], namespaces: Sequence[str] = ()
) -> list[tuple[Resource, list[tuple[str, str]], int | None]]:
    """For each served resource: the (namespace, name) of every object that exists now, from
    a metadata-only LIST, and the oldest resourceVersion those LISTs were taken at (what
    `ObjectStore.prune` needs to tell a missed deletion from a newer creation)."""
    answers = []
    for resource in await _served(client, resources):
        present: list[tuple[str, str]] = []
        version: int | None = None
        for scope in _scopes(resource, namespaces):
            items, listed = await client.list_with_version(resource.path(scope), metadata_only=True)
            for item in items:
                metadata = item.get("metadata") or {}
                present.append((str(metadata.get("namespace") or ""), str(metadata.get("name"))))
            version = listed if version is None or listed is None else min(version, listed)
        answers.append((resource, present, version))
    return answers


def register_watches(
    registry: kopf.OperatorRegistry, resources: Iterable[Resource], store: ObjectStore
) -> None:
    """One kopf `on.event` watch per resource, each event applied to `store` (whose
    subscribers hear of the change).

    The handlers are coroutines on purpose: kopf runs plain functions in a thread pool, and
    the store belongs to the event loop.
    """
    for resource in resources:

        @kopf.on.event(resource.group, resource.version, resource.plural, registry=registry)
        async def _watched(event: Mapping[str, Any], **_: Any) -> None:
            store.apply_event(event)
