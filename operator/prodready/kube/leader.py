"""Leader election on a coordination.k8s.io Lease, as client-go's leaderelection does.

Every replica watches and keeps its caches warm; only the leader reconciles. kopf's own
peering freezes operators of lower priority but lets equal priorities all act, which a
Deployment's identical replicas would be: a Lease gives "exactly one acts".
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from prodready.api.resource import LEASE
from prodready.kube.client import ApiError, KubeClient

logger = logging.getLogger("prodready.leader")


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def format_time(moment: datetime.datetime) -> str:
    """A Lease's MicroTime (RFC 3339 with microseconds, UTC)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(text: str | None) -> datetime.datetime | None:
    if not text:
        return None
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def default_identity() -> str:
    """The pod name when in a pod, else host plus a random suffix (unique per process)."""
    base = os.environ.get("POD_NAME") or socket.gethostname()
    return f"{base}_{uuid.uuid4().hex[:8]}"


@dataclass
class LeaderElector:
    """Acquire and renew a Lease; call back on gaining and losing leadership."""

    client: KubeClient
    namespace: str
    name: str
    identity: str = field(default_factory=default_identity)
    lease_seconds: int = 15
    renew_every: float = 5.0
    retry_every: float = 2.0
    is_leader: bool = False
    _stopped: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(
        self,
        on_started_leading: Callable[[], Awaitable[None]],
        on_stopped_leading: Callable[[], Awaitable[None]],
    ) -> None:
        """Loop until `stop()`: try to acquire, then renew; report transitions."""
        while not self._stopped.is_set():
            try:
                acquired = await self._try_acquire_or_renew()
            except (ApiError, OSError, TimeoutError) as error:
                logger.warning("lease %s/%s: %s", self.namespace, self.name, error)
                acquired = False
            if acquired and not self.is_leader:
                self.is_leader = True
                logger.info("became leader", extra={"identity": self.identity})
                await on_started_leading()
            elif not acquired and self.is_leader:
                self.is_leader = False
                logger.warning("lost leadership", extra={"identity": self.identity})
                await on_stopped_leading()
            delay = self.renew_every if self.is_leader else self.retry_every
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
            # cancellation that races with the wait finishing, and shutdown would hang.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._stopped.wait()

    async def stop(self) -> None:
        """Stop renewing and hand the Lease over at once (clear the holder)."""
        self._stopped.set()
        if self.is_leader:
            self.is_leader = False
            try:
                lease = await self.client.get(LEASE.path(self.namespace, self.name))
                if lease and (lease.get("spec") or {}).get("holderIdentity") == self.identity:
                    lease["spec"]["holderIdentity"] = None
                    lease["spec"]["leaseDurationSeconds"] = 1
                    await self.client.request(
                        "PUT", LEASE.path(self.namespace, self.name), body=lease
                    )
            except (ApiError, OSError, TimeoutError) as error:
                logger.warning("could not release the lease: %s", error)

    async def _try_acquire_or_renew(self) -> bool:
        path = LEASE.path(self.namespace, self.name)
        now = _now()
        lease = await self.client.get(path)
        if lease is None:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": self._spec(now, acquired=now, transitions=0),
            }
            try:
                await self.client.create(LEASE, self.namespace, body)
            except ApiError as error:
                if error.conflict:
                    return False  # someone else created it first
                raise
            return True
        spec: dict[str, Any] = lease.get("spec") or {}
        holder = spec.get("holderIdentity")
        renewed = _parse(spec.get("renewTime")) or _parse(spec.get("acquireTime"))
        duration = int(spec.get("leaseDurationSeconds") or self.lease_seconds)
        expired = renewed is None or (now - renewed).total_seconds() > duration
        if holder and holder != self.identity and not expired:
            return False
        transitions = int(spec.get("leaseTransitions") or 0)
        if holder == self.identity:
            acquired = _parse(spec.get("acquireTime")) or now
        else:
            acquired, transitions = now, transitions + 1
        lease["spec"] = self._spec(now, acquired=acquired, transitions=transitions)
        try:
            # PUT carries the resourceVersion we read: two standbys racing for an expired
            # lease cannot both win; the loser gets 409 Conflict.
            await self.client.request("PUT", path, body=lease)
        except ApiError as error:
            if error.conflict:
                return False
            raise
        return True

    def _spec(
        self, now: datetime.datetime, *, acquired: datetime.datetime, transitions: int
    ) -> dict[str, Any]:
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": self.lease_seconds,
            "acquireTime": format_time(acquired),
            "renewTime": format_time(now),
            "leaseTransitions": transitions,
        }
