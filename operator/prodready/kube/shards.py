"""Sharded reconciling: replicas split the namespaces between them, one Lease per shard.

A namespace belongs to shard `blake2b(namespace) mod S` (`shard_of`), the same in every
process (Python's `hash` is salted per process). Shard i is the Lease
`<lease name>-shard-<i>` in the operator's namespace, and whoever holds it reconciles the
namespaces of shard i. A replica that holds no shard yet must still be counted, so each
replica also renews a member Lease `<lease name>-member-<identity>` (as kube-apiservers
announce themselves with identity Leases). Every replica sees the same live members,
computes the same fair share (`fair_share`), takes free shards up to its share and hands
back what it holds beyond it (`plan`); a dead replica's shards are free once its Leases
expire, and the survivors take them.

Expiry is judged as client-go's leader election judges it: by how long this process has
seen a Lease unchanged on its own monotonic clock, never by comparing the holder's
renewTime with our wall clock, so skewed clocks cannot make two replicas hold one shard.
A holder counts a shard as its own only until `renew_deadline` after it *sent* its last
successful renewal; any other replica sees the renewal after it was sent and waits
`lease_seconds` from then, so the holder has stopped (and cancelled its in-flight work on
the shard) before anyone else may start. The gap, `lease_seconds - renew_deadline`, is
what in-flight work has to stop; a write already on the wire when it ends may still land.

Replicas configured with different shard counts would map a namespace to different
shards. Member Leases carry the count; while replicas of two counts are alive, only the
count whose oldest live member started first acts (the other waits, holding nothing), so a
rolling update that changes the count hands over from the old replicas to the new ones.
Replicas with a single shard elect a leader on the Lease `<lease name>` itself
(`kube.leader`) and keep no member Lease: while that Lease has a live holder, sharded
replicas wait too.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hashlib
import logging
import re
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from prodready.api.resource import LEASE
from prodready.kube.client import ApiError, KubeClient
from prodready.kube.leader import default_identity, format_time

logger = logging.getLogger("prodready.shards")

JSON = dict[str, Any]
GROUP_LABEL = "prodready.io/lease-group"
ROLE_LABEL = "prodready.io/lease-role"
SHARDS_ANNOTATION = "prodready.io/shards"
SHARD, MEMBER = "shard", "member"
# A member Lease nobody renewed for this many lease durations belongs to a replica that
# died without cleaning up (SIGKILL, a lost node): any replica deletes it.
STALE_MEMBER_DURATIONS = 4
_NAME_UNSAFE = re.compile(r"[^a-z0-9.-]+")

ShardsCallback = Callable[[frozenset[int]], Awaitable[None]]


def shard_of(namespace: str, shards: int) -> int:
    """The shard of `namespace`: stable across processes, hosts and Python versions."""
    digest = hashlib.blake2b(namespace.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shards


def fair_share(members: Collection[str], shards: int, identity: str) -> int:
    """How many shards `identity` should hold among `members` (which include it).

    `shards // N` each; the first `shards % N` members by name hold one more. Every
    replica computes the same shares from the same members, and they add up to `shards`.
    """
    ordered = sorted(set(members) | {identity})
    base, extra = divmod(shards, len(ordered))
    return base + (1 if ordered.index(identity) < extra else 0)


def _weight(shard: int, identity: str) -> int:
    # Rendezvous hashing: each replica ranks the shards differently, so replicas reaching
    # for free shards at once mostly reach for different ones, and a replica keeps the
    # shards it ranks highest when it hands some back.
    digest = hashlib.blake2b(f"{shard}/{identity}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


@dataclass(frozen=True)
class Plan:
    """What one replica should do with the shard Leases now."""

    acquire: tuple[int, ...] = ()
    release: tuple[int, ...] = ()


def plan(
    *,
    identity: str,
    shards: int,
    members: Collection[str],
    holders: Mapping[int, str],
    long_free: Collection[int] = (),
) -> Plan:
    """Which shards to take and which to hand back (pure).

    `holders` maps each shard held by a live replica (this one included) to its holder;
    a shard missing from it is free. `long_free` are shards that stayed free longer than a
    lease: a replica that should have taken them did not, so anyone takes them whatever
    its share (balance hands them back once the others catch up).
    """
    target = fair_share(members, shards, identity)
    mine = sorted((i for i, holder in holders.items() if holder == identity), key=_rank(identity))
    if len(mine) > target:
        return Plan(release=tuple(mine[target:]))
    free = sorted((i for i in range(shards) if i not in holders), key=_rank(identity))
    wanted = free[: target - len(mine)]
    wanted += [i for i in free if i in long_free and i not in wanted]
    return Plan(acquire=tuple(wanted))


def _rank(identity: str) -> Callable[[int], int]:
    return lambda shard: -_weight(shard, identity)


def lease_safe(identity: str) -> str:
    """`identity` as a piece of an object name (lower case, digits, '-', '.')."""
    return _NAME_UNSAFE.sub("-", identity.lower()).strip("-.")[:200] or "replica"


@dataclass
class _Seen:
    """A Lease as last listed, and since when (our monotonic clock) it looks so."""

    fingerprint: tuple[str, str]
    since: float


@dataclass
class ShardCoordinator:
    """Hold a fair share of the shard Leases; call back when shards come and go."""

    client: KubeClient
    namespace: str
    lease_name: str
    shards: int
    identity: str = field(default_factory=default_identity)
    lease_seconds: float = 15.0
    renew_deadline: float = 10.0
    renew_every: float = 4.0
    retry_every: float = 2.0
    clock: Callable[[], float] = time.monotonic
    # shard -> until when (our monotonic clock) it is ours: renew_deadline after the last
    # successful renewal was sent.
    _held: dict[int, float] = field(default_factory=dict)
    _renewed: dict[str, float] = field(default_factory=dict)
    _seen: dict[str, _Seen] = field(default_factory=dict)
    _free_since: dict[int, float] = field(default_factory=dict)
    _namespaces: dict[str, int] = field(default_factory=dict)
    _waiting_for: int | None = None
    _stopped: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def member_name(self) -> str:
        name = f"{self._prefix}-member-{lease_safe(self.identity)}"
        return name[:253].rstrip("-.")  # an object name's limit

    def shard_name(self, shard: int) -> str:
        return f"{self._prefix}-shard-{shard}"

    @property
    def _prefix(self) -> str:
        return self.lease_name[:200].rstrip("-.")

    @property
    def group(self) -> str:
        """The value of GROUP_LABEL: the lease name, or its digest when too long for a label."""
        if len(self.lease_name) <= 63:
            return self.lease_name
        return hashlib.blake2b(self.lease_name.encode(), digest_size=16).hexdigest()

    def shard_for(self, namespace: str) -> int:
        """`shard_of(namespace)`, remembered (a process sees few namespaces, many events)."""
        shard = self._namespaces.get(namespace)
        if shard is None:
            shard = self._namespaces[namespace] = shard_of(namespace, self.shards)
        return shard

    def holds(self, shard: int) -> bool:
        """Whether `shard` is ours now: held, and its last renewal not too old."""
        until = self._held.get(shard)
        return until is not None and self.clock() < until

    def owns(self, namespace: str) -> bool:
        """Whether this replica reconciles `namespace` now."""
        return self.holds(self.shard_for(namespace))

    @property
    def held(self) -> frozenset[int]:
        return frozenset(shard for shard in self._held if self.holds(shard))

    # -- the loop --------------------------------------------------------------------------

    async def run(self, on_acquired: ShardsCallback, on_lost: ShardsCallback) -> None:
        """Loop until `stop()`: renew, balance, and report shards gained and lost."""
        while not self._stopped.is_set():
            # A turn starts at most `renew_every` after the last renewal, and may not end
            # after the renew deadline: a hung request must not keep us from noticing that
            # our shards are no longer safely ours.
            budget = max(1.0, self.renew_deadline - self.renew_every)
            try:
                async with asyncio.timeout(budget):
                    acquired, released = await self.step()
            except TimeoutError:
                logger.warning("shard leases: a turn took longer than %.0f s", budget)
                acquired, released = frozenset(), frozenset()
            except (ApiError, OSError) as error:
                logger.warning("shard leases: %s", error, extra={"identity": self.identity})
                acquired, released = frozenset(), frozenset()
            lapsed = self._drop_lapsed()
            if released or lapsed:
                await on_lost(released | lapsed)
                await self._release(released)
            if acquired:
                await on_acquired(acquired)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.retry_every):
                    await self._stopped.wait()

    async def stop(self) -> None:
        """Stop (after `run` was cancelled): hand back every shard Lease naming us, even
        one whose write the cancellation cut short, and remove the member Lease."""
        self._stopped.set()
        self._held.clear()
        try:
            leases = await self.client.list(
                LEASE.path(self.namespace), label_selector=f"{GROUP_LABEL}={self.group}"
            )
            for lease in leases:
                metadata, spec = lease["metadata"], lease.get("spec") or {}
                if spec.get("holderIdentity") != self.identity:
                    continue
                if (metadata.get("labels") or {}).get(ROLE_LABEL) == MEMBER:
                    await self.client.request(
                        "DELETE", LEASE.path(self.namespace, metadata["name"]), expected=(404,)
                    )
                else:
                    await self._hand_back(lease)
        except (ApiError, OSError, TimeoutError) as error:
            logger.warning("could not release the shard leases: %s", error)

    async def step(self) -> tuple[frozenset[int], frozenset[int]]:
        """One turn: list the Leases, renew ours, take and hand back per `plan`.

        Returns the shards newly acquired and those to hand back (the caller stops their
        work first, then `_release`s them).
        """
        now = self.clock()
        leases = await self.client.list(
            LEASE.path(self.namespace), label_selector=f"{GROUP_LABEL}={self.group}"
        )
        by_name = {str(lease["metadata"]["name"]): lease for lease in leases}
        # The one Lease of replicas running with a single shard (kube.leader): while one of
        # them leads, it reconciles every namespace.
        leader = await self.client.get(LEASE.path(self.namespace, self.lease_name))
        self._observe([*by_name.values(), *([leader] if leader else [])], now)
        # Renewals first and all at once: on a busy apiserver, one slow write must not hold
        # back the others past their deadline.
        mine = [i for i in self._held if by_name.get(self.shard_name(i)) is not None]
        renewals = await asyncio.gather(
            self._renew_member(by_name.get(self.member_name), now),
            *(self._renew_shard(i, by_name[self.shard_name(i)], now) for i in mine),
            return_exceptions=True,
        )
        for outcome in renewals:
            if isinstance(outcome, BaseException) and not isinstance(outcome, ApiError | OSError):
                raise outcome
        renewed = dict(zip(mine, renewals[1:], strict=True))
        members = self._live_members(by_name.values(), now)
        winner = _acting_count(members, self.shards)
        if self._live_holder(leader, now) is not None:
            winner = 1  # that leader started before us: it acts until it is gone
        if winner != self.shards:
            if self._waiting_for != winner:
                logger.warning(
                    "replicas configured with another shard count are running: waiting for "
                    "them to stop",
                    extra={"shards": self.shards, "running": winner},
                )
            self._waiting_for = winner
            held = frozenset(self._held)
            self._held.clear()
            return frozenset(), held
        self._waiting_for = None
        holders: dict[int, str] = {}
        lost: set[int] = set()
        for shard in range(self.shards):
            lease = by_name.get(self.shard_name(shard))
            holder = self._live_holder(lease, now)
            if shard in self._held:
                if holder not in (None, self.identity) or lease is None:
                    lost.add(shard)  # someone else holds it now: stop at once
                    if holder is not None:
                        holders[shard] = holder
                    continue
                if renewed.get(shard) is False:
                    lost.add(shard)  # 409: the Lease changed under us
                else:  # renewed, not due yet, or failed for now (the deadline decides)
                    holders[shard] = self.identity
            elif holder is not None and holder != self.identity:
                holders[shard] = holder
        for shard in lost:
            self._held.pop(shard, None)
        for shard in range(self.shards):
            if shard in holders:
                self._free_since.pop(shard, None)
            else:
                self._free_since.setdefault(shard, now)
        long_free = {i for i, since in self._free_since.items() if now - since > self.lease_seconds}
        decision = plan(
            identity=self.identity,
            shards=self.shards,
            members={holder for holder, count, _ in members if count == self.shards},
            holders=holders,
            long_free=long_free,
        )
        acquired = set()
        for shard in decision.acquire:
            if await self._acquire(shard, by_name.get(self.shard_name(shard)), now):
                acquired.add(shard)
        for shard in decision.release:
            self._held.pop(shard, None)
        await self._collect_stale_members(by_name.values(), now)
        if lost:
            logger.warning("lost shards", extra={"shards": sorted(lost)})
        return frozenset(acquired), frozenset(lost) | frozenset(decision.release)

    # -- what the listing says -------------------------------------------------------------

    def _observe(self, leases: Iterable[JSON], now: float) -> None:
        names = set()
        for lease in leases:
            name = str(lease["metadata"]["name"])
            names.add(name)
            spec = lease.get("spec") or {}
            fingerprint = (str(spec.get("holderIdentity") or ""), str(spec.get("renewTime")))
            seen = self._seen.get(name)
            if seen is None or seen.fingerprint != fingerprint:
                self._seen[name] = _Seen(fingerprint, now)
        for name in set(self._seen) - names:
            del self._seen[name]

    def _expired(self, lease: JSON, now: float) -> bool:
        spec = lease.get("spec") or {}
        seen = self._seen.get(str(lease["metadata"]["name"]))
        duration = float(spec.get("leaseDurationSeconds") or self.lease_seconds)
        return seen is None or now - seen.since > duration

    def _live_holder(self, lease: JSON | None, now: float) -> str | None:
        if lease is None:
            return None
        holder = (lease.get("spec") or {}).get("holderIdentity")
        if not holder or self._expired(lease, now):
            return None
        return str(holder)

    def _live_members(self, leases: Iterable[JSON], now: float) -> list[tuple[str, int, str]]:
        """(identity, shard count, creationTimestamp) of each live replica, this one too."""
        members: dict[str, tuple[str, int, str]] = {}
        for lease in leases:
            metadata = lease["metadata"]
            if (metadata.get("labels") or {}).get(ROLE_LABEL) != MEMBER:
                continue
            holder = self._live_holder(lease, now)
            if holder is None:
                continue
            try:
                count = int((metadata.get("annotations") or {}).get(SHARDS_ANNOTATION, ""))
            except ValueError:
                continue
            members[holder] = (holder, count, str(metadata.get("creationTimestamp") or ""))
        # Our own member Lease is not listed before its first turn: we started last.
        members.setdefault(self.identity, (self.identity, self.shards, "~"))
        return list(members.values())

    # -- writes ----------------------------------------------------------------------------

    def _body(self, name: str, role: str, now: float, previous: JSON | None) -> JSON:
        spec = (previous or {}).get("spec") or {}
        ours = spec.get("holderIdentity") == self.identity
        stamp = format_time(_utcnow())
        metadata: JSON = {
            "name": name,
            "namespace": self.namespace,
            "labels": {GROUP_LABEL: self.group, ROLE_LABEL: role},
            "annotations": {SHARDS_ANNOTATION: str(self.shards)},
        }
        if previous is not None:
            metadata["resourceVersion"] = previous["metadata"]["resourceVersion"]
        transitions = int(spec.get("leaseTransitions") or 0)
        return {
            "apiVersion": LEASE.api_version,
            "kind": LEASE.kind,
            "metadata": metadata,
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": int(self.lease_seconds),
                "acquireTime": spec.get("acquireTime") if ours else stamp,
                "renewTime": stamp,
                "leaseTransitions": transitions if ours or previous is None else transitions + 1,
            },
        }

    async def _write(self, name: str, role: str, previous: JSON | None, now: float) -> bool:
        """Create or update (with the resourceVersion read: a race loses with 409)."""
        body = self._body(name, role, now, previous)
        try:
            if previous is None:
                await self.client.create(LEASE, self.namespace, body)
            else:
                await self.client.request(
                    "PUT", LEASE.path(self.namespace, name), body=body, expected=(409,)
                )
        except ApiError as error:
            if error.conflict:
                return False
            raise
        self._renewed[name] = now
        return True

    def _due(self, name: str, now: float) -> bool:
        return now - self._renewed.get(name, -1e9) >= self.renew_every

    async def _renew_member(self, lease: JSON | None, now: float) -> bool:
        if lease is None or self._due(self.member_name, now):
            return await self._write(self.member_name, MEMBER, lease, now)
        return True

    async def _renew_shard(self, shard: int, lease: JSON, now: float) -> bool:
        name = self.shard_name(shard)
        if not self._due(name, now):
            return True
        if not await self._write(name, SHARD, lease, now):
            return False
        self._held[shard] = now + self.renew_deadline
        return True

    async def _acquire(self, shard: int, lease: JSON | None, now: float) -> bool:
        if not await self._write(self.shard_name(shard), SHARD, lease, now):
            return False
        self._held[shard] = now + self.renew_deadline
        logger.info("acquired shard", extra={"shard": shard, "identity": self.identity})
        return True

    async def _release(self, shards: Iterable[int]) -> None:
        """Clear the holder of each shard Lease we still hold, so others need not wait."""
        for shard in sorted(shards):
            name = self.shard_name(shard)
            self._renewed.pop(name, None)
            lease = await self.client.get(LEASE.path(self.namespace, name))
            if lease is not None and (lease.get("spec") or {}).get("holderIdentity") == (
                self.identity
            ):
                await self._hand_back(lease)

    async def _hand_back(self, lease: JSON) -> None:
        name = str(lease["metadata"]["name"])
        lease["spec"]["holderIdentity"] = None
        lease["spec"]["leaseDurationSeconds"] = 1
        with contextlib.suppress(ApiError):  # 409: someone else took it meanwhile
            await self.client.request(
                "PUT", LEASE.path(self.namespace, name), body=lease, expected=(409,)
            )
        logger.info("released shard", extra={"lease": name, "identity": self.identity})

    def _drop_lapsed(self) -> frozenset[int]:
        """Shards whose renewal is overdue: no longer ours, whatever the apiserver says."""
        lapsed = frozenset(shard for shard in self._held if not self.holds(shard))
        for shard in lapsed:
            del self._held[shard]
        if lapsed:
            logger.warning("shard renewals overdue", extra={"shards": sorted(lapsed)})
        return lapsed

    async def _collect_stale_members(self, leases: Iterable[JSON], now: float) -> None:
        for lease in leases:
            metadata = lease["metadata"]
            if (metadata.get("labels") or {}).get(ROLE_LABEL) != MEMBER:
                continue
            seen = self._seen.get(str(metadata["name"]))
            if seen is None or now - seen.since < STALE_MEMBER_DURATIONS * self.lease_seconds:
                continue
            options = {"preconditions": {"resourceVersion": metadata["resourceVersion"]}}
            with contextlib.suppress(ApiError):  # renewed or deleted meanwhile
                await self.client.request(
                    "DELETE",
                    LEASE.path(self.namespace, str(metadata["name"])),
                    body=options,
                    expected=(404, 409),
                )


def _acting_count(members: Iterable[tuple[str, int, str]], default: int) -> int:
    """The shard count that acts: that of the live replica that started first."""
    oldest = min(members, key=lambda member: (member[2], member[1]), default=None)
    return default if oldest is None else oldest[1]


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)
