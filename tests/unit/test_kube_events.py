"""The event recorder: events.k8s.io/v1 Events, a repetition counted as a series."""

from __future__ import annotations

import datetime
import logging
from typing import Any, cast

import pytest

from prodready.kube.client import ApiError, KubeClient
from prodready.kube.events import MERGE_PATCH, SERIES_WINDOW, EventRecorder, micro_time

DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "api", "namespace": "shop", "uid": "u-1", "resourceVersion": "7"},
}
POLICY = {  # cluster-scoped
    "apiVersion": "prodready.io/v1alpha1",
    "kind": "ReadinessPolicy",
    "metadata": {"name": "prod", "uid": "u-2"},
}


class FakeEvents:
    """POST and merge-PATCH of events.k8s.io Events, kept by path."""

    def __init__(self) -> None:
        self.stored: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []
        self.fail: ApiError | OSError | None = None

    async def request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        self.calls.append((method, path))
        if self.fail is not None:
            raise self.fail
        if method == "POST":
            body = dict(kwargs["body"])
            self.stored[f"{path}/{body['metadata']['name']}"] = body
            return body
        assert method == "PATCH"
        assert kwargs["content_type"] == MERGE_PATCH
        assert 404 in kwargs["expected"]
        if path not in self.stored:
            raise ApiError(404, "NotFound", "events not found", "PATCH", path)
        self.stored[path].update(kwargs["body"])
        return self.stored[path]

    def events(self) -> list[dict[str, Any]]:
        return list(self.stored.values())


class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.wall = datetime.datetime(2026, 12, 1, 0, 0, 0, 123456, tzinfo=datetime.UTC)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.wall += datetime.timedelta(seconds=seconds)


def recorder(api: FakeEvents, clock: Clock, **options: Any) -> EventRecorder:
    return EventRecorder(
        cast(KubeClient, api),
        instance="prodready-0",
        clock=clock,
        wall_clock=lambda: clock.wall,
        **options,
    )


async def test_an_event_is_an_events_k8s_io_event() -> None:
    api, clock = FakeEvents(), Clock()
    await recorder(api, clock).warning(DEPLOYMENT, "PolicyViolation", "PR-HC-001 fails")
    ((method, path),) = api.calls
    assert (method, path) == ("POST", "/apis/events.k8s.io/v1/namespaces/shop/events")
    (event,) = api.events()
    assert event["apiVersion"] == "events.k8s.io/v1"
    assert event["metadata"]["namespace"] == "shop"
    assert event["metadata"]["name"].startswith("api.")
    assert event["regarding"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "api",
        "namespace": "shop",
        "uid": "u-1",
    }
    assert (event["type"], event["reason"], event["action"]) == (
        "Warning",
        "PolicyViolation",
        "PolicyViolation",
    )
    assert event["note"] == "PR-HC-001 fails"
    assert event["eventTime"] == "2026-12-01T00:00:00.123456Z"
    assert (event["reportingController"], event["reportingInstance"]) == (
        "prodready",
        "prodready-0",
    )
    # What events.k8s.io refuses on create: the core API's deprecated fields.
    assert not {"count", "firstTimestamp", "lastTimestamp", "source", "series"} & set(event)


async def test_a_repetition_within_the_window_counts_in_the_series() -> None:
    api, clock = FakeEvents(), Clock()
    events = recorder(api, clock)
    await events.warning(DEPLOYMENT, "PolicyViolation", "PR-HC-001 fails")
    clock.advance(30)
    await events.warning(DEPLOYMENT, "PolicyViolation", "PR-HC-001 fails")
    clock.advance(SERIES_WINDOW - 1)  # the window runs from the last occurrence
    await events.warning(DEPLOYMENT, "PolicyViolation", "PR-HC-001 fails")
    assert [method for method, _ in api.calls] == ["POST", "PATCH", "PATCH"]
    (event,) = api.events()
    assert event["series"] == {"count": 3, "lastObservedTime": micro_time(clock.wall)}
    assert api.calls[1][1].endswith(f"/namespaces/shop/events/{event['metadata']['name']}")


async def test_another_note_reason_type_or_object_is_another_event() -> None:
    api, clock = FakeEvents(), Clock()
    events = recorder(api, clock)
    await events.warning(DEPLOYMENT, "PolicyViolation", "PR-HC-001 fails")
    clock.advance(1)
    await events.warning(DEPLOYMENT, "PolicyViolation", "PR-HC-002 fails")
    clock.advance(1)
    await events.warning(DEPLOYMENT, "Other", "PR-HC-001 fails")
    clock.advance(1)
    await events.normal(DEPLOYMENT, "PolicyViolation", "PR-HC-001 fails")
    clock.advance(1)
    other = {**DEPLOYMENT, "metadata": {**DEPLOYMENT["metadata"], "name": "web", "uid": "u-3"}}
    await events.warning(other, "PolicyViolation", "PR-HC-001 fails")
    assert [method for method, _ in api.calls] == ["POST"] * 5
    assert len({e["metadata"]["name"] for e in api.events()}) == 5


async def test_the_same_object_at_a_new_resource_version_is_the_same_series() -> None:
    api, clock = FakeEvents(), Clock()
    events = recorder(api, clock)
    await events.normal(DEPLOYMENT, "Applied", "applied 3 objects")
    later = {**DEPLOYMENT, "metadata": {**DEPLOYMENT["metadata"], "resourceVersion": "8"}}
    await events.normal(later, "Applied", "applied 3 objects")
    assert [method for method, _ in api.calls] == ["POST", "PATCH"]


async def test_after_a_quiet_window_a_new_event_begins() -> None:
    api, clock = FakeEvents(), Clock()
    events = recorder(api, clock)
    await events.warning(DEPLOYMENT, "PolicyViolation", "PR-HC-001 fails")
    clock.advance(SERIES_WINDOW + 1)
    await events.warning(DEPLOYMENT, "PolicyViolation", "PR-HC-001 fails")
    assert [method for method, _ in api.calls] == ["POST", "POST"]
    assert all("series" not in event for event in api.events())


async def test_an_expired_event_starts_a_new_series() -> None:
    api, clock = FakeEvents(), Clock()
    events = recorder(api, clock)
    await events.warning(DEPLOYMENT, "PolicyViolation", "PR-HC-001 fails")
    api.stored.clear()  # the apiserver's event TTL
    clock.advance(1)
    await events.warning(DEPLOYMENT, "PolicyViolation", "PR-HC-001 fails")
    clock.advance(1)
    await events.warning(DEPLOYMENT, "PolicyViolation", "PR-HC-001 fails")
    assert [method for method, _ in api.calls] == ["POST", "PATCH", "POST", "PATCH"]
    (event,) = api.events()
    assert event["series"]["count"] == 2


async def test_a_cluster_scoped_object_has_its_events_in_default() -> None:
    api, clock = FakeEvents(), Clock()
    await recorder(api, clock).normal(POLICY, "Compiled", "ok", action="Compile")
    (event,) = api.events()
    assert event["metadata"]["namespace"] == "default"
    assert "namespace" not in event["regarding"]
    assert event["action"] == "Compile"


async def test_series_memory_is_bounded() -> None:
    api, clock = FakeEvents(), Clock()
    events = recorder(api, clock, max_series=2)
    for note in ("a", "b", "c"):
        await events.normal(DEPLOYMENT, "Note", note)
    await events.normal(DEPLOYMENT, "Note", "a")  # forgotten: a new event
    await events.normal(DEPLOYMENT, "Note", "c")  # remembered: counted
    assert [method for method, _ in api.calls] == ["POST"] * 4 + ["PATCH"]


async def test_long_fields_are_cut_to_the_apiserver_limits_and_secrets_redacted() -> None:
    api, clock = FakeEvents(), Clock()
    message = "password=hunter2 " + "x" * 2000
    await recorder(api, clock).warning(DEPLOYMENT, "R" * 200, message)
    (event,) = api.events()
    assert len(event["note"]) == 1024
    assert "hunter2" not in event["note"]
    assert len(event["reason"]) == len(event["action"]) == 128


@pytest.mark.parametrize(
    "error",
    [
        ApiError(403, "Forbidden", "events is forbidden", "POST", "/apis"),
        OSError("connection reset"),
    ],
)
async def test_a_failure_to_post_is_logged_not_raised(
    error: ApiError | OSError, caplog: pytest.LogCaptureFixture
) -> None:
    api, clock = FakeEvents(), Clock()
    api.fail = error
    with caplog.at_level(logging.WARNING, logger="prodready.events"):
        await recorder(api, clock).warning(DEPLOYMENT, "PolicyViolation", "PR-HC-001 fails")
    assert "could not post event PolicyViolation" in caplog.text


async def test_a_patch_failure_other_than_not_found_is_logged_and_the_series_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    api, clock = FakeEvents(), Clock()
    events = recorder(api, clock)
    await events.warning(DEPLOYMENT, "PolicyViolation", "PR-HC-001 fails")
    api.fail = ApiError(500, "InternalError", "etcd timeout", "PATCH", "/apis")
    with caplog.at_level(logging.WARNING, logger="prodready.events"):
        await events.warning(DEPLOYMENT, "PolicyViolation", "PR-HC-001 fails")
    assert "could not post event" in caplog.text
    api.fail = None
    await events.warning(DEPLOYMENT, "PolicyViolation", "PR-HC-001 fails")
    assert [method for method, _ in api.calls] == ["POST", "PATCH", "PATCH"]
    assert api.events()[0]["series"]["count"] == 2
