"""The controller's pure parts: conditions, drift detection, the object cache, the queue."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from prodready.api import conditions as cond
from prodready.controller.drift import contains
from prodready.controller.queue import DONE, ReconcileResult, WorkQueue
from prodready.controller.reconciler import _rollout
from prodready.kube.store import ObjectStore, owner_name

# -- conditions -------------------------------------------------------------------------


def test_transition_time_kept_while_status_unchanged() -> None:
    first = cond.merge_conditions(
        None, [cond.Condition(cond.READY, False, "RollingOut", "0 of 2")], generation=1, now="t1"
    )
    same = cond.merge_conditions(
        first, [cond.Condition(cond.READY, False, "RollingOut", "1 of 2")], generation=1, now="t2"
    )
    assert same[0]["lastTransitionTime"] == "t1"
    assert same[0]["message"] == "1 of 2"
    flipped = cond.merge_conditions(
        same, [cond.Condition(cond.READY, True, "Available", "2 of 2")], generation=2, now="t3"
    )
    assert flipped[0] == {
        "type": "Ready",
        "status": "True",
        "reason": "Available",
        "message": "2 of 2",
        "observedGeneration": 2,
        "lastTransitionTime": "t3",
    }


def test_conditions_are_ordered_and_absent_ones_dropped() -> None:
    merged = cond.merge_conditions(
        [{"type": "Stalled", "status": "True", "lastTransitionTime": "t0"}],
        [
            cond.Condition("Custom", None, "Unknown", ""),
            cond.Condition(cond.POLICY_COMPLIANT, True, "Compliant", ""),
            cond.Condition(cond.READY, True, "Available", ""),
        ],
        generation=3,
        now="t1",
    )
    assert [c["type"] for c in merged] == ["Ready", "PolicyCompliant", "Custom"]
    assert merged[2]["status"] == "Unknown"
    assert cond.find(merged, "Ready")["reason"] == "Available"
    assert cond.find(merged, "Stalled") == {}
    assert cond.find(None, "Ready") == {}


def test_long_messages_are_capped() -> None:
    merged = cond.merge_conditions(
        None, [cond.Condition(cond.READY, False, "X", "m" * 5000)], generation=1, now="t"
    )
    assert len(merged[0]["message"]) == 1024


def test_now_is_rfc3339_utc() -> None:
    assert cond.now_rfc3339().endswith("Z")


# -- drift --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("live", "desired", "expected"),
    [
        ({"a": 1, "b": 2}, {"a": 1}, True),
        ({"a": 1}, {"a": 2}, False),
        ({"a": 1}, {"b": 1}, False),
        ("x", {"a": 1}, False),
        # Quantities compare by value in quantity fields only (more in test_quantity.py).
        ({"limits": {"cpu": "500m"}}, {"limits": {"cpu": "0.5"}}, True),
        ({"requests": {"memory": "1Gi"}}, {"requests": {"memory": "1024Mi"}}, True),
        ({"limits": {"memory": "1G"}}, {"limits": {"memory": "1Gi"}}, False),
        ({"n": "1e3"}, {"n": "1k"}, False),
        ({"n": "abc"}, {"n": "abd"}, False),
        ([1, 2], [1, 2], True),
        ([1, 2, 3], [1, 2], False),
        ("ab", ["a", "b"], False),
        ([{"name": "x", "v": 1}, {"name": "sidecar"}], [{"name": "x", "v": 1}], True),
        ([{"name": "x", "v": 2}], [{"name": "x", "v": 1}], False),
        ([], [{"name": "x"}], False),
        ({"port": 8000}, {"port": "8000"}, False),
        ({"flag": True}, {"flag": "true"}, False),
    ],
)
def test_contains(live: Any, desired: Any, expected: bool) -> None:
    assert contains(live, desired) is expected


# -- cache --------------------------------------------------------------------------------


def _child(kind: str, name: str, owner: str | None, version: str = "1") -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": "ns",
        "resourceVersion": version,
        "managedFields": [{"manager": "x"}],
    }
    if owner:
        metadata["ownerReferences"] = [
            {"kind": "ProductionService", "name": owner, "controller": True}
        ]
    return {"kind": kind, "metadata": metadata}


def test_store_indexes_children_by_owner_and_drops_managed_fields() -> None:
    cache = ObjectStore()
    cache.put(_child("Deployment", "web", "web"))
    cache.put(_child("Service", "web", "web"))
    cache.put(_child("Service", "other", None))
    assert [c["kind"] for c in cache.children("ns", "web")] == ["Deployment", "Service"]
    assert "managedFields" not in (cache.get("Deployment", "ns", "web") or {})["metadata"]
    assert len(cache) == 3
    assert sorted(cache.keys("Service")) == [("ns", "other"), ("ns", "web")]
    cache.remove("Deployment", "ns", "web")
    cache.remove("Service", "ns", "web")
    cache.remove("Service", "ns", "missing")
    assert list(cache.children("ns", "web")) == []


def test_store_ignores_stale_events() -> None:
    cache = ObjectStore()
    cache.put(_child("Deployment", "web", "web", version="10"))
    cache.put(_child("Deployment", "web", "web", version="9"))
    assert (cache.get("Deployment", "ns", "web") or {})["metadata"]["resourceVersion"] == "10"
    cache.put(_child("Deployment", "web", "web", version="not-a-number"))
    assert (cache.get("Deployment", "ns", "web") or {})["metadata"]["resourceVersion"] == (
        "not-a-number"
    )


def test_owner_name_needs_a_controller_reference() -> None:
    body = {"metadata": {"ownerReferences": [{"kind": "ProductionService", "name": "a"}]}}
    assert owner_name(body, "ProductionService") is None
    assert owner_name({"metadata": {}}, "ProductionService") is None


# -- rollout ------------------------------------------------------------------------------


def _deployment(**status: Any) -> dict[str, Any]:
    return {"metadata": {"generation": 2}, "spec": {"replicas": 2}, "status": status}


def test_rollout_states() -> None:
    assert not _rollout({}).ready
    assert "controller" in _rollout(_deployment(observedGeneration=1)).message
    assert "updated" in _rollout(_deployment(observedGeneration=2, updatedReplicas=1)).message
    old = _deployment(observedGeneration=2, updatedReplicas=2, replicas=3)
    assert "old replicas" in _rollout(old).message
    waiting = _deployment(observedGeneration=2, updatedReplicas=2, replicas=2, availableReplicas=1)
    assert not _rollout(waiting).ready
    done = _deployment(observedGeneration=2, updatedReplicas=2, replicas=2, availableReplicas=2)
    assert _rollout(done).ready
    stuck = _deployment(
        conditions=[{"type": "Progressing", "reason": "ProgressDeadlineExceeded", "message": "x"}]
    )
    assert _rollout(stuck).stalled


# -- queue --------------------------------------------------------------------------------


async def test_queue_deduplicates_and_never_runs_a_key_twice_at_once() -> None:
    queue: WorkQueue[str] = WorkQueue()
    running: set[str] = set()
    seen: list[str] = []
    release = asyncio.Event()

    async def reconcile(key: str) -> ReconcileResult:
        assert key not in running, "a key ran on two workers at once"
        running.add(key)
        seen.append(key)
        if len(seen) == 1:
            await release.wait()
        running.discard(key)
        return DONE

    task = asyncio.create_task(queue.run(reconcile, workers=4))
    queue.add("a")
    queue.add("a")  # deduplicated while waiting
    await asyncio.sleep(0.05)
    queue.add("a")  # arrives while "a" runs: runs once more afterwards
    queue.add("a")
    assert not queue.idle
    release.set()
    for _ in range(100):
        if queue.idle:
            break
        await asyncio.sleep(0.01)
    assert seen == ["a", "a"]
    queue.close()
    await asyncio.wait_for(task, 2)
    queue.add("late")  # ignored once closed
    queue.add_after("late", 1)
    assert len(queue) == 0


async def test_queue_retries_failures_with_backoff_and_honours_requeue() -> None:
    queue: WorkQueue[str] = WorkQueue(backoff_base=0.01, backoff_cap=0.05)
    calls: dict[str, int] = {"fails": 0, "later": 0}

    async def reconcile(key: str) -> ReconcileResult:
        calls[key] += 1
        if key == "fails" and calls[key] < 3:
            raise RuntimeError("transient")
        if key == "later" and calls[key] == 1:
            return ReconcileResult(requeue_after=0.02)
        return DONE

    task = asyncio.create_task(queue.run(reconcile, workers=2))
    queue.add("fails")
    queue.add_after("later", 0)
    for _ in range(200):
        if calls["fails"] == 3 and calls["later"] == 2:
            break
        await asyncio.sleep(0.01)
    assert calls == {"fails": 3, "later": 2}
    queue.close()
    await asyncio.wait_for(task, 2)


# -- kopf settings ------------------------------------------------------------------------


def test_kopf_does_not_copy_every_event_for_a_diff_base() -> None:
    import kopf

    from prodready.config import Settings
    from prodready.controller.operator import NoDiffBase, kopf_settings

    storage = kopf_settings(Settings()).persistence.diffbase_storage
    assert isinstance(storage, NoDiffBase)
    body = kopf.Body({"metadata": {"name": "web"}, "spec": {"image": "x"}})
    assert storage.build(body=body) == {}
    assert storage.fetch(body=body) is None
    storage.store(body=body, patch=kopf.Patch(), essence=kopf.BodyEssence())


async def test_the_heap_is_frozen_once_the_first_pass_is_done(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import gc

    from prodready.config import Settings
    from prodready.controller.operator import Operator

    frozen: list[int] = []
    monkeypatch.setattr(gc, "freeze", lambda: frozen.append(1))
    monkeypatch.setattr(gc, "get_freeze_count", lambda: len(frozen))
    operator = Operator(Settings())
    operator.queue.add(("shop", "web"))
    waiting = asyncio.create_task(operator._freeze_when_warm())
    await asyncio.sleep(1.2)
    assert frozen == []  # not leading yet
    operator.workers = asyncio.create_task(asyncio.sleep(0))
    await asyncio.sleep(1.2)
    assert frozen == []  # a key is still queued
    operator.queue = WorkQueue()
    await asyncio.wait_for(waiting, 3)
    assert frozen == [1]
