"""The audit's inventory and its debounced schedule."""

from __future__ import annotations

from typing import Any

from prodready.audit.schedule import DirtyNamespaces
from prodready.kube.inventory import LAST_APPLIED, Inventory, slim


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


def test_slim_drops_what_no_rule_reads() -> None:
    body = _object("Deployment", "api", status={"replicas": 3})
    body["metadata"]["managedFields"] = [{"manager": "kubectl"}]
    body["metadata"]["annotations"] = {LAST_APPLIED: "{...}", "team": "payments"}
    slimmed = slim(body)
    assert "status" not in slimmed
    assert "managedFields" not in slimmed["metadata"]
    assert slimmed["metadata"]["annotations"] == {"team": "payments"}
    assert body["metadata"]["annotations"][LAST_APPLIED] == "{...}"  # the input is untouched


def test_put_reports_changes_the_rules_can_see() -> None:
    inventory = Inventory()
    assert inventory.put(_object("Deployment", "api")).namespace == "shop"
    # A rollout's status updates: a new resourceVersion, nothing the rules read.
    unchanged = inventory.put(_object("Deployment", "api", version="2", status={"ready": 1}))
    assert not unchanged.changed
    relabelled = _object("Deployment", "api", version="3")
    relabelled["metadata"]["labels"] = {"prodready.io/environment": "dev"}
    assert inventory.put(relabelled).changed
    # A late event of an older version never overwrites a newer copy.
    assert not inventory.put(_object("Deployment", "api", version="2")).changed
    stored = inventory.get("Deployment", "shop", "api")
    assert stored is not None
    assert stored["metadata"]["labels"] == {"prodready.io/environment": "dev"}
    assert len(inventory) == 1


def test_objects_the_audit_does_not_keep() -> None:
    inventory = Inventory()
    assert not inventory.put(_object("ConfigMap", "c")).changed
    assert not inventory.put(_object("Deployment", "no-namespace", namespace="")).changed
    job = _object(
        "Job", "nightly-28000", version="1", apiVersion="batch/v1"
    )  # created by a CronJob: the CronJob is audited instead
    job["metadata"]["ownerReferences"] = [
        {"kind": "CronJob", "name": "nightly", "controller": True}
    ]
    assert not inventory.put(job).changed
    hand_written = _object("Job", "migrate", apiVersion="batch/v1")
    assert inventory.put(hand_written).changed


def test_namespaces_objects_and_context() -> None:
    inventory = Inventory()
    inventory.put(_object("Service", "api", apiVersion="v1"))
    inventory.put(_object("Deployment", "api"))
    inventory.put(_object("StatefulSet", "db", namespace="data"))
    assert inventory.namespaces() == ["data", "shop"]
    assert [o["kind"] for o in inventory.objects("shop")] == ["Deployment", "Service"]
    assert [o["kind"] for o in inventory.context("shop")] == ["Service"]
    assert inventory.objects("nowhere") == []


def test_events_store_and_remove() -> None:
    inventory = Inventory()
    assert inventory.apply_event({"type": "ADDED", "object": _object("DaemonSet", "agent")}).changed
    assert (
        inventory.apply_event({"type": None, "object": _object("DaemonSet", "agent")}).namespace
        is None
    )
    gone = inventory.apply_event({"type": "DELETED", "object": _object("DaemonSet", "agent")})
    assert gone.namespace == "shop"
    assert inventory.namespaces() == []
    assert not inventory.apply_event(
        {"type": "DELETED", "object": _object("DaemonSet", "x")}
    ).changed
    assert not inventory.remove("DaemonSet", "elsewhere", "x").changed


def test_prune_drops_what_a_fresh_list_no_longer_has() -> None:
    inventory = Inventory()
    inventory.put(_object("Deployment", "kept", version="5"))
    inventory.put(_object("Deployment", "ghost", version="6"))
    inventory.put(_object("Deployment", "newer", version="20"))  # an event after the LIST
    inventory.put(_object("Service", "ghost", version="7", apiVersion="v1"))
    inventory.put(_object("Deployment", "lonely", namespace="solo", version="8"))
    changed = inventory.prune("Deployment", [("shop", "kept")], listed_version=10)
    assert changed == {"shop", "solo"}
    assert inventory.get("Deployment", "shop", "ghost") is None
    assert inventory.get("Deployment", "shop", "kept") is not None
    assert inventory.get("Deployment", "shop", "newer") is not None
    assert inventory.get("Service", "shop", "ghost") is not None  # another kind
    assert inventory.namespaces() == ["shop"]
    assert inventory.prune("Deployment", [], listed_version=None) == {"shop"}


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
