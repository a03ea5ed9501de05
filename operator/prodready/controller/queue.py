"""A work queue in controller-runtime's shape: deduplicated keys, one worker per key.

kopf feeds it (every event of a ProductionService or of one of its children enqueues the
owner's key), a fixed pool of workers drains it. A key is never reconciled by two workers
at once; a key added while it is being reconciled runs once more afterwards; failures are
retried with exponential backoff per key; `add_after` schedules a later look (missing
Secret, monitoring CRD not installed yet) without a timer per object.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

Key = TypeVar("Key", bound=Hashable)


@dataclass(frozen=True)
class ReconcileResult:
    """What a reconcile asks of the queue: nothing, or another look after a delay.

    Named after controller-runtime's `reconcile.Result`; not a rule's `rules.subject.Outcome`.
    """

    requeue_after: float | None = None


DONE = ReconcileResult()


@dataclass
class _Backoff:
    base: float = 0.5
    cap: float = 300.0
    failures: dict[Hashable, int] = field(default_factory=dict)

    def next(self, key: Hashable) -> float:
        count = self.failures.get(key, 0)
        self.failures[key] = count + 1
        return float(min(self.cap, self.base * (2**count)))

    def forget(self, key: Hashable) -> None:
        self.failures.pop(key, None)


class WorkQueue(Generic[Key]):
    """Deduplicating async queue with delayed adds and per-key exponential backoff."""

    def __init__(self, *, backoff_base: float = 0.5, backoff_cap: float = 300.0) -> None:
        self._ready: asyncio.Queue[Key | None] = asyncio.Queue()
        self._workers = 0
        self._queued: set[Key] = set()
        self._processing: set[Key] = set()
        self._dirty: set[Key] = set()
        self._delayed: list[tuple[float, int, Key]] = []
        self._counter = itertools.count()
        self._backoff = _Backoff(backoff_base, backoff_cap)
        self._closed = False

    def __len__(self) -> int:
        return len(self._queued) + len(self._delayed)

    @property
    def idle(self) -> bool:
        """Nothing queued, nothing in flight (delayed keys do not count)."""
        return not self._queued and not self._processing

    def add(self, key: Key) -> None:
        """Enqueue `key` now, unless it is already waiting."""
        if self._closed:
            return
        if key in self._processing:
            self._dirty.add(key)
            return
        if key not in self._queued:
            self._queued.add(key)
            self._ready.put_nowait(key)

    def add_after(self, key: Key, delay: float) -> None:
        """Enqueue `key` after `delay` seconds."""
        if self._closed:
            return
        if delay <= 0:
            self.add(key)
            return
        heapq.heappush(self._delayed, (time.monotonic() + delay, next(self._counter), key))

    def close(self) -> None:
        """Take no new keys and start no queued ones; in-flight reconciles finish."""
        self._closed = True
        for _ in range(self._workers):
            self._ready.put_nowait(None)

    async def run(
        self, reconcile: Callable[[Key], Awaitable[ReconcileResult]], *, workers: int
    ) -> None:
        """Run `workers` workers and the delay pump until closed; in-flight keys finish."""
        self._workers = workers
        pump = asyncio.create_task(self._pump(), name="workqueue-delays")
        tasks = [
            asyncio.create_task(self._worker(reconcile), name=f"workqueue-worker-{n}")
            for n in range(workers)
        ]
        try:
            await asyncio.gather(*tasks)
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
            for task in tasks:
                task.cancel()

    async def _worker(self, reconcile: Callable[[Key], Awaitable[ReconcileResult]]) -> None:
        while True:
            key = await self._ready.get()
            if key is None or self._closed:
                return
            self._queued.discard(key)
            self._processing.add(key)
            try:
                result = await reconcile(key)
            except asyncio.CancelledError:
                raise
            except Exception:  # the reconciler logs; the queue only retries
                self._finish(key)
                self.add_after(key, self._backoff.next(key))
                await asyncio.sleep(0)
                continue
            self._backoff.forget(key)
            self._finish(key)
            if result.requeue_after is not None:
                self.add_after(key, result.requeue_after)
            # A reconcile that finds nothing to change never awaits anything that suspends,
            # so a resync of thousands of keys would otherwise run as one burst and hold
            # back the watches, the health probes and the other workers' answers.
            await asyncio.sleep(0)

    def _finish(self, key: Key) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._dirty.discard(key)
            self.add(key)

    async def _pump(self) -> None:
        while not self._closed:
            now = time.monotonic()
            while self._delayed and self._delayed[0][0] <= now:
                _, _, key = heapq.heappop(self._delayed)
                self.add(key)
            timeout = self._delayed[0][0] - now if self._delayed else 1.0
            await asyncio.sleep(min(max(timeout, 0.01), 1.0))
