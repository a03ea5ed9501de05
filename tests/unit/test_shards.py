"""Sharded reconciling (`prodready.kube.shards`): the pure assignment, and the Lease protocol
of several coordinators against an in-memory Lease API with a clock the test moves.

The e2e proof with real replicas and a real apiserver is tests/e2e/test_sharding.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
from collections import Counter
from collections.abc import Mapping
from typing import Any

import pytest

from prodready.api.resource import LEASE
from prodready.config import load_settings
from prodready.controller.operator import Operator
from prodready.controller.queue import DONE, ReconcileResult
from prodready.kube.client import ApiError
from prodready.kube.shards import (
    GROUP_LABEL,
    MEMBER,
    ROLE_LABEL,
    SHARDS_ANNOTATION,
    STALE_MEMBER_DURATIONS,
    Plan,
    ShardCoordinator,
    fair_share,
    lease_safe,
    plan,
    shard_of,
)

NAMESPACE = "prodready"
JSON = dict[str, Any]

# -- the pure parts -----------------------------------------------------------------------


def test_a_namespace_maps_to_the_same_shard_in_every_process() -> None:
    # Pinned: a change of the hash would move every namespace to another replica during a
    # rolling update, with the old and new replicas disagreeing about who owns what.
    assert [shard_of(name, 16) for name in ("default", "team-a", "payments")] == [2, 6, 9]
    assert [shard_of(f"ns-{n}", 16) for n in range(6)] == [1, 5, 2, 4, 15, 14]
    assert shard_of("anything", 1) == 0


def test_shards_of_many_namespaces_are_spread_evenly() -> None:
    counts = Counter(shard_of(f"team-{n}", 16) for n in range(16_000))
    assert set(counts) == set(range(16))
    assert max(counts.values()) < 1.1 * 1000
    assert min(counts.values()) > 0.9 * 1000


@pytest.mark.parametrize(("members", "shards"), [(1, 16), (3, 16), (5, 4), (16, 16), (7, 100)])
def test_fair_shares_add_up_and_differ_by_at_most_one(members: int, shards: int) -> None:
    names = [f"replica-{n}" for n in range(members)]
    shares = [fair_share(names, shards, name) for name in names]
    assert sum(shares) == shards
    assert max(shares) - min(shares) <= 1


def test_plan_takes_free_shards_up_to_the_share_and_hands_back_the_extras() -> None:
    members = {"a", "b", "c"}
    first = plan(identity="a", shards=16, members=members, holders={})
    assert len(first.acquire) == fair_share(members, 16, "a") == 6
    assert first.release == ()
    # "a" holds everything (it ran alone): with three members it keeps its share.
    holders = dict.fromkeys(range(16), "a")
    balanced = plan(identity="a", shards=16, members=members, holders=holders)
    assert len(balanced.release) == 10
    assert balanced.acquire == ()
    # A shard held by someone else is never taken; one free for too long is, by anyone.
    others = {shard: "b" for shard in range(10)}
    full = {shard: "a" for shard in range(10, 16)}
    assert plan(identity="a", shards=16, members=members, holders=others | full) == Plan()
    late = plan(identity="a", shards=16, members=members, holders=full, long_free={3})
    assert late.acquire == (3,)


def test_lease_names_are_valid_object_names() -> None:
    assert lease_safe("Pod-7f9c_1a2B") == "pod-7f9c-1a2b"
    assert lease_safe("__") == "replica"
    assert len(lease_safe("x" * 400)) == 200
    long = ShardCoordinator(
        client=FakeLeases().client("x"),  # type: ignore[arg-type]
        namespace=NAMESPACE,
        lease_name="l" * 250,
        shards=2,
        identity="Pod_" + "y" * 300,
    )
    assert len(long.member_name) == 253
    assert long.shard_name(1) == "l" * 200 + "-shard-1"
    assert len(long.group) == 32  # a label value has at most 63 characters


# -- the Lease protocol -------------------------------------------------------------------


class FakeLeases:
    """The Lease API of one namespace: resourceVersion checks, as the apiserver does."""

    def __init__(self) -> None:
        self.objects: dict[str, JSON] = {}
        self.versions = itertools.count(1)
        self.failing: set[str] = set()  # identities whose requests fail (a partition)
        self.failing_leases: set[str] = set()  # Leases whose writes fail (a slow etcd)
        self.created: dict[str, str] = {}

    def client(self, identity: str) -> FakeClient:
        return FakeClient(self, identity)

    def _stamp(self, body: JSON) -> JSON:
        body = copy.deepcopy(body)
        body["metadata"]["resourceVersion"] = str(next(self.versions))
        name = body["metadata"]["name"]
        body["metadata"]["creationTimestamp"] = self.created.setdefault(
            name, f"2026-01-01T00:00:{len(self.created):02d}Z"
        )
        self.objects[name] = body
        return copy.deepcopy(body)

    def holders(self) -> dict[str, str | None]:
        return {
            name: (body.get("spec") or {}).get("holderIdentity")
            for name, body in self.objects.items()
        }


class FakeClient:
    def __init__(self, api: FakeLeases, identity: str) -> None:
        self.api, self.identity = api, identity

    def _check(self, method: str, path: str) -> None:
        if self.identity in self.api.failing:
            raise OSError(f"{method} {path}: connection refused")

    async def list(self, path: str, *, label_selector: str | None = None) -> list[JSON]:
        self._check("GET", path)
        assert path == LEASE.path(NAMESPACE)
        key, _, value = (label_selector or "").partition("=")
        return [
            copy.deepcopy(body)
            for body in self.api.objects.values()
            if (body["metadata"].get("labels") or {}).get(key) == value
        ]

    async def get(self, path: str) -> JSON | None:
        self._check("GET", path)
        found = self.api.objects.get(path.rsplit("/", 1)[1])
        return copy.deepcopy(found) if found else None

    async def create(self, resource: Any, namespace: str, body: JSON) -> JSON:
        self._check("POST", namespace)
        name = body["metadata"]["name"]
        if name in self.api.objects:
            raise ApiError(409, "AlreadyExists", "exists", "POST", name)
        return self.api._stamp(body)

    async def request(
        self, method: str, path: str, *, body: Any = None, expected: Any = ()
    ) -> JSON:
        self._check(method, path)
        name = path.rsplit("/", 1)[1]
        if name in self.api.failing_leases:
            raise TimeoutError(f"{method} {path}: timed out")
        current = self.api.objects.get(name)
        if current is None:
            raise ApiError(404, "NotFound", "gone", method, path)
        version = (
            (body or {}).get("metadata", {}).get("resourceVersion")
            if method == "PUT"
            else ((body or {}).get("preconditions") or {}).get("resourceVersion")
        )
        if version is not None and version != current["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", "modified", method, path)
        if method == "DELETE":
            del self.api.objects[name]
            return {}
        assert method == "PUT"
        return self.api._stamp(body)


class Replica:
    """One coordinator and the shards its callbacks were told about."""

    def __init__(self, api: FakeLeases, identity: str, clock: list[float], shards: int = 16):
        self.coordinator = ShardCoordinator(
            client=api.client(identity),  # type: ignore[arg-type]
            namespace=NAMESPACE,
            lease_name="prodready",
            shards=shards,
            identity=identity,
            clock=lambda: clock[0],
        )
        self.told: set[int] = set()
        self.lost: list[frozenset[int]] = []

    async def turn(self) -> None:
        """What one turn of `run` does."""
        coordinator = self.coordinator
        try:
            acquired, released = await coordinator.step()
        except (ApiError, OSError):
            acquired, released = frozenset(), frozenset()
        lapsed = coordinator._drop_lapsed()
        if released | lapsed:
            self.told -= released | lapsed
            self.lost.append(released | lapsed)
            with contextlib.suppress(OSError):
                await coordinator._release(released)
        self.told |= acquired


def assert_exclusive(replicas: list[Replica]) -> None:
    """No shard is held by two replicas at this moment."""
    counts = Counter(shard for r in replicas for shard in r.coordinator.held)
    assert all(count == 1 for count in counts.values()), counts


async def settle(replicas: list[Replica], clock: list[float], turns: int = 12) -> None:
    for _ in range(turns):
        for replica in replicas:
            await replica.turn()
            assert_exclusive(replicas)
        clock[0] += 2.0


def share_of(replicas: list[Replica]) -> list[int]:
    return sorted(len(r.coordinator.held) for r in replicas)


async def test_three_replicas_split_sixteen_shards_and_a_dead_ones_are_taken_over() -> None:
    api, clock = FakeLeases(), [1000.0]
    replicas = [Replica(api, name, clock) for name in ("a", "b", "c")]
    await settle(replicas[:1], clock, turns=2)
    assert share_of(replicas[:1]) == [16]  # alone, the first replica takes everything
    await settle(replicas, clock)
    assert share_of(replicas) == [5, 5, 6]
    for replica in replicas:
        assert replica.told == replica.coordinator.held
    # Every shard Lease names its holder; the members are announced.
    leases = api.objects
    assert {f"prodready-member-{n}" for n in "abc"} <= set(leases)
    assert all(
        leases[f"prodready-shard-{i}"]["metadata"]["annotations"][SHARDS_ANNOTATION] == "16"
        for i in range(16)
    )

    # "c" dies without a word: its shards stay its own until the Leases expire.
    dead = replicas[2]
    orphaned = dead.coordinator.held
    survivors = replicas[:2]
    killed_at = clock[0]
    taken_at: float | None = None
    while taken_at is None or any(
        shard not in survivors[0].coordinator.held | survivors[1].coordinator.held
        for shard in orphaned
    ):
        for replica in survivors:
            await replica.turn()
        assert_exclusive([*survivors, dead])
        if taken_at is None and orphaned & (
            survivors[0].coordinator.held | survivors[1].coordinator.held
        ):
            taken_at = clock[0]
        clock[0] += 2.0
        assert clock[0] - killed_at < 60, "the dead replica's shards were never taken over"
    assert taken_at is not None
    # Not before the Lease ran out, and within it plus two turns of the loop.
    assert 15.0 <= taken_at - killed_at <= 15.0 + 2 * 2.0 + 2.0
    await settle(survivors, clock)
    assert share_of(survivors) == [8, 8]
    # The dead member's Lease is collected once it is long stale.
    clock[0] += STALE_MEMBER_DURATIONS * 15.0
    await settle(survivors, clock, turns=2)
    assert "prodready-member-c" not in api.objects


async def test_a_holder_that_cannot_renew_stops_before_anyone_else_may_start() -> None:
    api, clock = FakeLeases(), [1000.0]
    a, b = Replica(api, "a", clock), Replica(api, "b", clock)
    await settle([a, b], clock)
    assert share_of([a, b]) == [8, 8]
    held_by_a = a.coordinator.held
    api.failing.add("a")  # a is cut off from the apiserver, but alive
    stopped_at = started_at = None
    for _ in range(20):
        await a.turn()
        await b.turn()
        assert_exclusive([a, b])
        if stopped_at is None and not a.coordinator.held:
            stopped_at = clock[0]
        if started_at is None and held_by_a & b.coordinator.held:
            started_at = clock[0]
        clock[0] += 1.0
    assert stopped_at is not None
    assert started_at is not None
    assert stopped_at < started_at  # the fence: a stopped before b could take over
    assert a.lost
    assert b.coordinator.held == frozenset(range(16))


async def test_one_renewal_failing_drops_that_shard_only() -> None:
    api, clock = FakeLeases(), [1000.0]
    a = Replica(api, "a", clock, shards=4)
    await settle([a], clock, turns=2)
    assert a.coordinator.held == frozenset(range(4))
    api.failing_leases.add("prodready-shard-2")
    for _ in range(8):
        clock[0] += 2.0
        await a.turn()
    assert a.coordinator.held == frozenset({0, 1, 3})
    assert frozenset({2}) in a.lost


async def test_a_graceful_stop_hands_the_shards_over_at_once() -> None:
    api, clock = FakeLeases(), [1000.0]
    a, b = Replica(api, "a", clock), Replica(api, "b", clock)
    await settle([a, b], clock)
    await a.coordinator.stop()
    assert "prodready-member-a" not in api.objects
    assert "a" not in api.holders().values()
    await b.turn()
    await b.turn()  # member view first, then the shards: no lease duration to wait
    assert b.coordinator.held == frozenset(range(16))


async def test_replicas_with_another_shard_count_wait_for_the_older_ones() -> None:
    api, clock = FakeLeases(), [1000.0]
    old = Replica(api, "old", clock, shards=4)
    await settle([old], clock, turns=2)
    assert old.coordinator.held == frozenset(range(4))
    new = Replica(api, "new", clock, shards=16)
    await settle([old, new], clock)
    assert new.coordinator.held == frozenset()  # the old configuration acts meanwhile
    assert old.coordinator.held == frozenset(range(4))
    await old.coordinator.stop()
    await settle([new], clock, turns=3)
    assert new.coordinator.held == frozenset(range(16))


async def test_sharded_replicas_wait_while_a_single_leader_leads() -> None:
    api, clock = FakeLeases(), [1000.0]
    # A replica of the previous configuration (one shard: kube.leader) leads.
    api.objects["prodready"] = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "prodready", "namespace": NAMESPACE, "resourceVersion": "1"},
        "spec": {"holderIdentity": "old-leader", "renewTime": "t1", "leaseDurationSeconds": 15},
    }
    new = Replica(api, "new", clock)
    await settle([new], clock, turns=3)
    assert new.coordinator.held == frozenset()
    # The old leader stops and hands its Lease over: the sharded replica takes everything.
    api.objects["prodready"]["spec"]["holderIdentity"] = None
    await settle([new], clock, turns=2)
    assert new.coordinator.held == frozenset(range(16))
    # A leader that dies without a word is waited for until its Lease expires.
    api.objects["prodready"]["spec"] |= {"holderIdentity": "another", "renewTime": "t2"}
    await settle([new], clock, turns=1)
    assert new.coordinator.held == frozenset()
    await settle([new], clock, turns=10)
    assert new.coordinator.held == frozenset(range(16))


async def test_a_replica_never_counts_a_shard_another_holds_as_free() -> None:
    api, clock = FakeLeases(), [1000.0]
    a = Replica(api, "a", clock)
    await settle([a], clock, turns=2)
    # Someone outside this protocol (an operator with an older lease protocol, a human
    # with kubectl) takes shard 0: a stops at once when it sees it.
    lease = api.objects["prodready-shard-0"]
    lease["spec"]["holderIdentity"] = "intruder"
    await a.turn()
    assert 0 not in a.coordinator.held
    assert frozenset({0}) in a.lost


def test_group_selector_and_roles() -> None:
    body = ShardCoordinator(
        client=FakeLeases().client("x"),  # type: ignore[arg-type]
        namespace=NAMESPACE,
        lease_name="prodready",
        shards=2,
        identity="x",
    )._body("prodready-member-x", MEMBER, 0.0, None)
    labels: Mapping[str, str] = body["metadata"]["labels"]
    assert labels == {GROUP_LABEL: "prodready", ROLE_LABEL: MEMBER}


# -- the operator's side: only held shards are reconciled, a lost one is stopped ----------


class SlowReconciler:
    """Records the keys it is asked for; blocks on `gate` so a reconcile can be in flight."""

    def __init__(self) -> None:
        self.started: list[tuple[str, str]] = []
        self.cancelled: list[tuple[str, str]] = []
        self.gate = asyncio.Event()
        self.running = asyncio.Event()

    async def reconcile(self, key: tuple[str, str]) -> ReconcileResult:
        self.started.append(key)
        self.running.set()
        try:
            await self.gate.wait()
        except asyncio.CancelledError:
            self.cancelled.append(key)
            raise
        return DONE


def sharded_operator(api: FakeLeases, clock: list[float]) -> tuple[Operator, SlowReconciler]:
    operator = Operator(load_settings({"PRODREADY_SHARDS": "2"}))
    reconciler = SlowReconciler()
    operator.reconciler = reconciler  # type: ignore[assignment]
    operator.shards = Replica(api, "a", clock, shards=2).coordinator
    return operator, reconciler


async def test_the_operator_reconciles_only_namespaces_of_held_shards() -> None:
    api, clock = FakeLeases(), [1000.0]
    operator, reconciler = sharded_operator(api, clock)
    assert operator.shards is not None
    mine = next(f"ns-{n}" for n in range(50) if shard_of(f"ns-{n}", 2) == 0)
    other = next(f"ns-{n}" for n in range(50) if shard_of(f"ns-{n}", 2) == 1)
    operator.shards._held[0] = clock[0] + 10.0
    assert operator.owns(mine)
    assert not operator.owns(other)
    assert operator.is_leading()  # shard 0's holder audits
    assert await operator._reconcile_owned((other, "svc")) is DONE
    assert reconciler.started == []

    # A reconcile in flight on shard 0 is cancelled when the shard is lost.
    in_flight = asyncio.create_task(operator._reconcile_owned((mine, "svc")))
    await reconciler.running.wait()
    await operator.shards_lost(frozenset({0}))
    assert await in_flight is DONE
    assert reconciler.cancelled == [(mine, "svc")]

    # Once the renewal is overdue the shard is no longer ours, whatever the Lease says.
    operator.shards._held[0] = clock[0] + 10.0
    clock[0] += 11.0
    assert not operator.owns(mine)
    assert not operator.is_leading()


async def test_acquired_shards_queue_their_namespaces_services() -> None:
    api, clock = FakeLeases(), [1000.0]
    operator, _ = sharded_operator(api, clock)
    assert operator.shards is not None
    namespaces = [f"ns-{n}" for n in range(8)]
    for namespace in namespaces:
        operator.store.put(
            {
                "apiVersion": "prodready.io/v1alpha1",
                "kind": "ProductionService",
                "metadata": {"name": "svc", "namespace": namespace, "uid": namespace},
            }
        )
    queued_before = len(operator.queue)
    await operator.shards_acquired(frozenset({1}))
    expected = [n for n in namespaces if shard_of(n, 2) == 1]
    assert expected
    assert len(operator.queue) - queued_before == len(expected)
