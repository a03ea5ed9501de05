"""What the audit and the webhook see of the cluster: workloads and their context, by namespace.

Fed by kopf watch events (one LIST + WATCH per kind, shared with the operator's other
handlers) rather than periodic LISTs: a watch costs work per change, a LIST costs work
per object every period, and at thousands of workloads only the former stays flat. The
audit reads a namespace from here to evaluate it in one pass; the webhook reads the
context of the namespace a request is about (a Deployment whose ServiceMonitor exists
must not be denied for having none).

Stored bodies are slimmed: no `status` (no rule reads it), no managedFields, no
`kubectl.kubernetes.io/last-applied-configuration` (a second copy of the object). A
change that only touches what is dropped (a rollout's status updates) is no change, so a
Deployment scaling up does not make its namespace audited again. Secrets are never
watched or stored: the rules treat a Secret they cannot see as "set, value unknown".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from prodready.kube.client import Resource
from prodready.kube.interning import intern_in_place

JSON = dict[str, Any]
ObjectKey = tuple[str, str]  # (kind, name) inside a namespace

LAST_APPLIED: Final = "kubectl.kubernetes.io/last-applied-configuration"

WORKLOAD_RESOURCES: Final = (
    Resource("apps/v1", "Deployment", "deployments"),
    Resource("apps/v1", "StatefulSet", "statefulsets"),
    Resource("apps/v1", "DaemonSet", "daemonsets"),
    Resource("batch/v1", "CronJob", "cronjobs"),
    Resource("batch/v1", "Job", "jobs"),
)
"""The workloads the audit evaluates. Bare Pods are left out on purpose: watching every pod
of the cluster would multiply the memory and the event volume by the replica count, for
the rare pod no controller owns."""

CONTEXT_RESOURCES: Final = (
    Resource("v1", "Service", "services"),
    Resource("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets"),
    Resource("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers"),
    Resource("networking.k8s.io/v1", "Ingress", "ingresses"),
    Resource("monitoring.coreos.com/v1", "ServiceMonitor", "servicemonitors"),
    Resource("monitoring.coreos.com/v1", "PrometheusRule", "prometheusrules"),
)
"""The objects the rules look at around a workload (exposure, PDBs, scraping, alerts)."""

AUDITED_RESOURCES: Final = WORKLOAD_RESOURCES + CONTEXT_RESOURCES
WORKLOAD_KINDS: Final = frozenset(resource.kind for resource in WORKLOAD_RESOURCES)
_KINDS: Final = {resource.kind: resource for resource in AUDITED_RESOURCES}


def owned_by_cronjob(body: Mapping[str, Any]) -> bool:
    """Whether a Job was created by a CronJob (the CronJob is audited instead)."""
    for reference in (body.get("metadata") or {}).get("ownerReferences") or ():
        if reference.get("kind") == "CronJob" and reference.get("controller"):
            return True
    return False


def slim(body: Mapping[str, Any]) -> JSON:
    """The object without what no rule reads (see the module docstring)."""
    metadata = dict(body.get("metadata") or {})
    metadata.pop("managedFields", None)
    annotations = metadata.get("annotations")
    if isinstance(annotations, Mapping) and LAST_APPLIED in annotations:
        metadata["annotations"] = {k: v for k, v in annotations.items() if k != LAST_APPLIED}
    result = {key: value for key, value in body.items() if key != "status"}
    result["metadata"] = metadata
    return result


def _content(body: Mapping[str, Any]) -> JSON:
    """The part of a slim body whose change matters to the rules."""
    metadata = {
        key: value
        for key, value in (body.get("metadata") or {}).items()
        if key not in ("resourceVersion", "generation")
    }
    return {**body, "metadata": metadata}


def _version(body: Mapping[str, Any]) -> int | None:
    try:
        return int(str((body.get("metadata") or {}).get("resourceVersion")))
    except ValueError:
        return None


@dataclass(frozen=True)
class Change:
    """What an event did to the inventory: the namespace it touched, if anything changed."""

    namespace: str | None

    @property
    def changed(self) -> bool:
        return self.namespace is not None


UNCHANGED: Final = Change(None)


class Inventory:
    """Slim copies of the audited objects, by namespace and (kind, name)."""

    def __init__(self) -> None:
        self._namespaces: dict[str, dict[ObjectKey, JSON]] = {}

    def __len__(self) -> int:
        return sum(len(objects) for objects in self._namespaces.values())

    def namespaces(self) -> list[str]:
        """Namespaces that hold at least one audited object."""
        return sorted(self._namespaces)

    def objects(self, namespace: str) -> list[JSON]:
        """Every object of a namespace (workloads and context), in a stable order.

        Safe to call from another thread (the webhook's) while the event loop's thread
        applies watch events: the namespace is copied in one step (a dict copy runs without
        releasing the interpreter lock), and stored bodies are replaced, never changed in
        place.
        """
        objects = dict(self._namespaces.get(namespace) or {})
        return [objects[key] for key in sorted(objects)]

    def context(self, namespace: str) -> list[JSON]:
        """The namespace's non-workload objects: what a webhook request is judged with."""
        return [body for body in self.objects(namespace) if body.get("kind") not in WORKLOAD_KINDS]

    def get(self, kind: str, namespace: str, name: str) -> JSON | None:
        """One stored object, or None."""
        return (self._namespaces.get(namespace) or {}).get((kind, name))

    def put(self, body: Mapping[str, Any]) -> Change:
        """Store an object as seen in a watch event or a LIST; whether the rules' view changed."""
        kind = str(body.get("kind") or "")
        metadata = body.get("metadata") or {}
        namespace, name = metadata.get("namespace"), metadata.get("name")
        if kind not in _KINDS or not namespace or not name:
            return UNCHANGED
        if kind == "Job" and owned_by_cronjob(body):
            return UNCHANGED
        objects = self._namespaces.setdefault(namespace, {})
        key = (kind, str(name))
        previous = objects.get(key)
        if previous is not None:
            have, got = _version(previous), _version(body)
            if have is not None and got is not None and got < have:
                return UNCHANGED  # a late event must not overwrite a newer copy
        if isinstance(body, dict):
            intern_in_place(body)
        stored = slim(body)
        objects[key] = stored
        if previous is not None and _content(previous) == _content(stored):
            return UNCHANGED
        return Change(namespace)

    def remove(self, kind: str, namespace: str, name: str) -> Change:
        """Forget an object (it was deleted); whether it was stored."""
        objects = self._namespaces.get(namespace)
        if objects is None or objects.pop((kind, name), None) is None:
            return UNCHANGED
        if not objects:
            del self._namespaces[namespace]
        return Change(namespace)

    def apply_event(self, event: Mapping[str, Any]) -> Change:
        """Apply one kopf watch event (`type` DELETED removes, anything else stores)."""
        body = event.get("object") or {}
        if event.get("type") == "DELETED":
            metadata = body.get("metadata") or {}
            return self.remove(
                str(body.get("kind") or ""),
                str(metadata.get("namespace") or ""),
                str(metadata.get("name") or ""),
            )
        return self.put(body)

    def prune(
        self, kind: str, present: Iterable[tuple[str, str]], listed_version: int | None
    ) -> set[str]:
        """Drop objects of `kind` that a fresh LIST (at `listed_version`) no longer returned.

        kopf does not report deletions that happened while its watch was re-listing, so an
        object can outlive its deletion here; this is the periodic repair. An object stored
        from an event newer than the LIST is kept. Returns the namespaces that changed.
        """
        keep = set(present)
        changed: set[str] = set()
        for namespace in list(self._namespaces):
            objects = self._namespaces[namespace]
            for key_kind, name in list(objects):
                if key_kind != kind or (namespace, name) in keep:
                    continue
                version = _version(objects[(key_kind, name)])
                if listed_version is not None and version is not None and version > listed_version:
                    continue
                del objects[(key_kind, name)]
                changed.add(namespace)
            if not objects:
                del self._namespaces[namespace]
        return changed
