"""Kubernetes Events on the objects the operator acts on (what `kubectl describe` shows).

Written through `events.k8s.io/v1`, as client-go's `tools/events` recorder writes them, and
aggregated the same way: the same reason and note about the same object within
`SERIES_WINDOW` of its last occurrence is one Event whose `series.count` and
`series.lastObservedTime` are updated (a merge PATCH), not a new object each time. A
repetition after a quiet window starts a new Event, and the apiserver's event TTL (1 h by
default) removes old ones. `kubectl get events` and `kubectl describe` read these Events
through the core API as well (`count`, `lastTimestamp` and `message` come from the series
and the note).

A failure to post is logged, never raised: an Event is a courtesy to whoever looks, never
a reason to fail a reconcile or an audit.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
import socket
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from prodready.kube.client import ApiError, KubeClient
from prodready.observability.logging import redact

__all__ = ["COMPONENT", "MAX_SERIES", "SERIES_WINDOW", "EventRecorder"]

logger = logging.getLogger("prodready.events")
COMPONENT: Final = "prodready"
API: Final = "/apis/events.k8s.io/v1"
# client-go's tools/events: a series ends 6 minutes after its last occurrence.
SERIES_WINDOW: Final = 6 * 60.0
# Series remembered at once, least recently seen forgotten first: bounded memory whatever
# the number of objects an audit announces.
MAX_SERIES: Final = 4096
NOTE_MAX: Final = 1024  # the apiserver's limit on a note
FIELD_MAX: Final = 128  # and on reason, action and reportingInstance
MERGE_PATCH: Final = "application/merge-patch+json"

# (regarding, type, reason, action, note): what makes two occurrences one series.
SeriesKey = tuple[tuple[str, str, str, str, str], str, str, str, str]


@dataclass(frozen=True, kw_only=True)
class _Occurrence:
    regarding: dict[str, str]
    type: str
    reason: str
    action: str
    note: str

    @property
    def key(self) -> SeriesKey:
        return (_identity(self.regarding), self.type, self.reason, self.action, self.note)


@dataclass(kw_only=True)
class _Series:
    namespace: str
    name: str
    count: int
    last_seen: float


def micro_time(now: datetime.datetime) -> str:
    """metav1.MicroTime as the apiserver writes it (RFC 3339, microseconds, UTC)."""
    return now.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class EventRecorder:
    """Posts events.k8s.io/v1 Events, a repeated one as a series."""

    def __init__(
        self,
        client: KubeClient,
        *,
        instance: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC),
        window: float = SERIES_WINDOW,
        max_series: int = MAX_SERIES,
    ) -> None:
        self._client = client
        self._instance = (instance or os.environ.get("POD_NAME") or socket.gethostname())[
            :FIELD_MAX
        ]
        self._clock = clock
        self._wall_clock = wall_clock
        self._window = window
        self._max_series = max_series
        self._series: OrderedDict[SeriesKey, _Series] = OrderedDict()
        # One post or patch at a time: two identical events at once make one series.
        self._lock = asyncio.Lock()

    async def normal(
        self, obj: Mapping[str, Any], reason: str, message: str, *, action: str | None = None
    ) -> None:
        """Record a Normal event; `action` (what was done) defaults to the reason."""
        await self._record(obj, "Normal", reason, message, action or reason)

    async def warning(
        self, obj: Mapping[str, Any], reason: str, message: str, *, action: str | None = None
    ) -> None:
        """Record a Warning event; `action` (what was done) defaults to the reason."""
        await self._record(obj, "Warning", reason, message, action or reason)

    async def _record(
        self, obj: Mapping[str, Any], kind: str, reason: str, message: str, action: str
    ) -> None:
        occurrence = _Occurrence(
            regarding=object_reference(obj),
            type=kind,
            reason=reason[:FIELD_MAX],
            action=action[:FIELD_MAX],
            note=str(redact(message))[:NOTE_MAX],
        )
        async with self._lock:
            try:
                await self._post_or_count(occurrence)
            except (ApiError, OSError, TimeoutError) as error:
                logger.warning("could not post event %s: %s", occurrence.reason, error)

    async def _post_or_count(self, occurrence: _Occurrence) -> None:
        key, now = occurrence.key, self._clock()
        series = self._series.get(key)
        if series is not None and now - series.last_seen <= self._window:
            count = series.count + 1
            patch = {"series": {"count": count, "lastObservedTime": micro_time(self._wall_clock())}}
            path = f"{API}/namespaces/{series.namespace}/events/{series.name}"
            try:
                await self._client.request(
                    "PATCH", path, body=patch, content_type=MERGE_PATCH, expected=(404,)
                )
            except ApiError as error:
                if error.status != 404:
                    raise
                # Expired (the apiserver's event TTL) or deleted: a new series begins.
            else:
                series.count, series.last_seen = count, now
                self._series.move_to_end(key)
                return
        self._series.pop(key, None)
        namespace, name = await self._create(occurrence)
        self._series[key] = _Series(namespace=namespace, name=name, count=1, last_seen=now)
        while len(self._series) > self._max_series:
            self._series.popitem(last=False)

    async def _create(self, occurrence: _Occurrence) -> tuple[str, str]:
        regarding = occurrence.regarding
        # A cluster-scoped object's events live in `default`, as client-go puts them.
        namespace = regarding.get("namespace") or "default"
        now = self._wall_clock()
        # client-go's name: the object's name and the time in hex nanoseconds, unique per
        # recorder without a round trip for generateName.
        nanos = int(now.timestamp() * 1_000_000_000)
        name = f"{regarding.get('name') or 'object'}.{nanos:x}"[:253]
        event = {
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "eventTime": micro_time(now),
            "reportingController": COMPONENT,
            "reportingInstance": self._instance,
            "action": occurrence.action,
            "reason": occurrence.reason,
            "regarding": regarding,
            "note": occurrence.note,
            "type": occurrence.type,
        }
        await self._client.request("POST", f"{API}/namespaces/{namespace}/events", body=event)
        return namespace, name


def object_reference(obj: Mapping[str, Any]) -> dict[str, str]:
    """An ObjectReference to `obj` (apiVersion, kind, name; namespace and uid when set)."""
    metadata = obj.get("metadata") or {}
    reference = {
        "apiVersion": str(obj.get("apiVersion") or ""),
        "kind": str(obj.get("kind") or ""),
        "name": str(metadata.get("name") or ""),
    }
    for field in ("namespace", "uid"):
        if metadata.get(field):
            reference[field] = str(metadata[field])
    return reference


def _identity(regarding: Mapping[str, str]) -> tuple[str, str, str, str, str]:
    return (
        regarding.get("apiVersion", ""),
        regarding["kind"],
        regarding.get("namespace", ""),
        regarding["name"],
        regarding.get("uid", ""),
    )
