"""The one object store (kube/store.py) and the audit's debounced schedule."""

from __future__ import annotations

from typing import Any

from prodready.api.resource import Resource
from prodready.audit.schedule import DirtyNamespaces
from prodready.kube.client import ApiError
from prodready.kube.store import LAST_APPLIED, Change, ObjectStore, seed, slim


def _object(
    kind: str, name: str, namespace: str = "shop", version: str = "1", **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": version},
        "spec": {"replicas": 1},
    }
    body.update(extra)
    return body


def _owned(kind: str, name: str, owner: str, version: str = "1") -> dict[str, Any]:
    body = _object(kind, name, version=version)
    body["metadata"]["ownerReferences"] = [
        {"kind": "ProductionService", "name": owner, "controller": True}
    ]
    return body


def test_slim_drops_what_nothing_reads() -> None:
    body = _object("Deployment", "api", status={"replicas": 3})
    body["metadata"]["managedFields"] = [{"manager": "kubectl"}]
    body["metadata"]["annotations"] = {LAST_APPLIED: "{...}", "team": "payments"}
    slimmed = slim(body)
    assert slimmed["status"] == {"replicas": 3}  # the controller reads a rollout's progress
    assert "managedFields" not in slimmed["metadata"]
    assert slimmed["metadata"]["annotations"] == {"team": "payments"}
    assert body["metadata"]["annotations"][LAST_APPLIED] == "{...}"  # the input is untouched


def test_put_tells_changes_the_rules_can_see_from_status_updates() -> None:
    store = ObjectStore()
    first = store.put(_object("Deployment", "api"))
    assert first is not None
    assert first.content_changed
    assert first.namespace == "shop"
    # A rollout's status updates: a new resourceVersion, nothing the rules read.
    rollout = store.put(_object("Deployment", "api", version="2", status={"ready": 1}))
    assert rollout is not None
    assert not rollout.content_changed
    assert rollout.previous is first.current
    relabelled = _object("Deployment", "api", version="3")
    relabelled["metadata"]["labels"] = {"prodready.io/environment": "dev"}
    changed = store.put(relabelled)
    assert changed is not None
    assert changed.content_changed
    # A late event of an older version never overwrites a newer copy.
    assert store.put(_object("Deployment", "api", version="2")) is None
    stored = store.get("Deployment", "shop", "api")
    assert stored is not None
    assert stored["metadata"]["labels"] == {"prodready.io/environment": "dev"}
    assert len(store) == 1


def test_jobs_a_cronjob_created_are_not_stored() -> None:
    store = ObjectStore()
    job = _object("Job", "nightly-28000", apiVersion="batch/v1")
    job["metadata"]["ownerReferences"] = [
        {"kind": "CronJob", "name": "nightly", "controller": True}
    ]
    assert store.put(job) is None
    assert store.put({"kind": "Deployment", "metadata": {}}) is None  # no name
    assert store.put(_object("Job", "migrate", apiVersion="batch/v1")) is not None
    assert store.keys("Job") == [("shop", "migrate")]


def test_namespaces_objects_and_context_of_audited_kinds() -> None:
    store = ObjectStore()
    store.put(_object("Service", "api", apiVersion="v1"))
    store.put(_object("Deployment", "api"))
    store.put(_object("StatefulSet", "db", namespace="data"))
    store.put(_object("ProductionService", "api", namespace="only-services"))
    assert store.namespaces() == ["data", "shop"]  # what the audit evaluates
    assert [o["kind"] for o in store.objects("shop")] == ["Deployment", "Service"]
    assert [o["kind"] for o in store.context("shop")] == ["Service"]
    assert store.objects("nowhere") == []
    assert store.keys("ProductionService") == [("only-services", "api")]
    assert store.count(["Deployment", "Service", "Ingress"]) == 2


def test_children_are_indexed_by_their_controlling_owner() -> None:
    store = ObjectStore()
    store.put(_owned("Deployment", "web", "web"))
    store.put(_owned("Service", "web", "web"))
    store.put(_object("Service", "other"))
    assert [c["kind"] for c in store.children("shop", "web")] == ["Deployment", "Service"]
    # The owner reference removed (someone edited it): no longer a child.
    store.put(_object("Service", "web", version="2"))
    assert [c["kind"] for c in store.children("shop", "web")] == ["Deployment"]
    store.remove("Deployment", "shop", "web")
    assert list(store.children("shop", "web")) == []
    assert store.remove("Deployment", "shop", "web") is None


def test_subscribers_hear_of_events_and_of_the_process_own_writes() -> None:
    store = ObjectStore()
    heard: list[Change] = []
    store.subscribe(heard.append)
    store.apply_event({"type": "ADDED", "object": _object("DaemonSet", "agent")})
    store.put(_object("DaemonSet", "agent", version="2"), written=True)
    store.apply_event({"type": "DELETED", "object": _object("DaemonSet", "agent")})
    store.apply_event({"type": "DELETED", "object": _object("DaemonSet", "x")})  # not stored
    assert [(c.current is not None, c.written, c.content_changed) for c in heard] == [
        (True, False, True),
        (True, True, False),
        (False, False, True),
    ]
    assert store.namespaces() == []


def test_prune_drops_what_a_fresh_list_no_longer_has() -> None:
    store = ObjectStore()
    store.put(_object("Deployment", "kept", version="5"))
    store.put(_object("Deployment", "ghost", version="6"))
    store.put(_object("Deployment", "newer", version="20"))  # an event after the LIST
    store.put(_object("Service", "ghost", version="7", apiVersion="v1"))
    store.put(_object("Deployment", "lonely", namespace="solo", version="8"))
    changed = store.prune("Deployment", [("shop", "kept")], listed_version=10)
    assert changed == {"shop", "solo"}
    assert store.get("Deployment", "shop", "ghost") is None
    assert store.get("Deployment", "shop", "kept") is not None
    assert store.get("Deployment", "shop", "newer") is not None
    assert store.get("Service", "shop", "ghost") is not None  # another kind
    assert store.namespaces() == ["shop"]
    assert store.prune("Deployment", [], listed_version=None) == {"shop"}


def test_dirty_namespaces_settle_and_are_rate_limited() -> None:
    dirty = DirtyNamespaces(settle=0.5, min_interval=2.0)
    dirty.mark("shop", now=10.0)
    dirty.mark("shop", now=10.2)  # a burst: still one pass
    assert "shop" in dirty
    assert len(dirty) == 1
    assert dirty.next_due() == 10.5
    assert dirty.pop_due(10.4) == []
    assert dirty.pop_due(10.5) == ["shop"]
    assert dirty.next_due() is None
    dirty.mark("shop", now=10.6)  # right after a pass: not before 2 s have passed
    assert dirty.next_due() == 12.5
    dirty.defer("shop", 20.0)
    assert dirty.next_due() == 20.0
    dirty.defer("other", 15.0)
    assert dirty.pop_due(16.0) == ["other"]
    dirty.ran("shop", 21.0)
    assert "shop" not in dirty
    dirty.mark("shop", 21.1)
    assert dirty.next_due() == 23.0
    dirty.forget("shop")
    assert len(dirty) == 0
    dirty.mark("shop", 30.0)
    assert dirty.next_due() == 30.5


def test_a_slow_namespace_is_audited_less_often() -> None:
    dirty = DirtyNamespaces(settle=0.5, min_interval=2.0, busy_factor=10.0)
    dirty.ran("big", 100.0)
    dirty.took("big", 1.5)  # 15 s apart from now on
    dirty.ran("small", 100.0)
    dirty.took("small", 0.01)  # the minimum interval still applies
    dirty.mark("big", 101.0)
    dirty.mark("small", 101.0)
    assert dirty.pop_due(102.0) == ["small"]
    assert dirty.pop_due(114.9) == []
    assert dirty.pop_due(115.0) == ["big"]
    dirty.forget("big")
    dirty.mark("big", 120.0)
    assert dirty.next_due() == 120.5


async def test_only_a_kind_listed_in_every_namespace_is_held_in_full() -> None:
    """`covers`: the reconciler trusts an absent name to be free only for a kind whose
    seed LIST succeeded in every watched namespace."""
    services = Resource("v1", "Service", "services")
    budgets = Resource("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets")
    monitors = Resource("monitoring.coreos.com/v1", "ServiceMonitor", "servicemonitors")

    class Client:
        async def served_resources(self, api_version: str) -> set[str] | None:
            return (
                None
                if api_version.startswith("monitoring")
                else {"services", "poddisruptionbudgets"}
            )

        async def list(self, path: str) -> list[dict[str, Any]]:
            if "poddisruptionbudgets" in path and "/namespaces/b/" in path:
                raise ApiError(403, "Forbidden", "no", "GET", path)
            return (
                [_object("Service", "web", namespace=path.split("/")[4])]
                if "services" in path
                else []
            )

    store = ObjectStore()
    await seed(Client(), store, (services, budgets, monitors), ("a", "b"))  # type: ignore[arg-type]
    assert store.covers("Service")
    assert store.get("Service", "b", "web") is not None
    assert not store.covers("PodDisruptionBudget")  # refused in one namespace
    assert not store.covers("ServiceMonitor")  # not served


def test_a_recheck_neither_delays_a_change_nor_outlives_a_pass() -> None:
    """A pass owed to a Secret looked up by name comes on its own time; a change marked
    meanwhile still comes after the usual settle, not at the recheck's time."""
    dirty = DirtyNamespaces(settle=0.5, min_interval=2.0)
    dirty.recheck("shop", 131.0)
    assert dirty.next_due() == 131.0
    assert "shop" not in dirty  # not dirty: nothing changed
    dirty.mark("shop", 100.0)
    assert dirty.next_due() == 100.5
    assert dirty.pop_due(100.5) == ["shop"]
    assert dirty.next_due() is None  # the pass covered the recheck too
    dirty.recheck("shop", 140.0)
    dirty.recheck("shop", 135.0)
    assert dirty.pop_due(134.0) == []
    assert dirty.pop_due(135.0) == ["shop"]
