"""The policies in force from the store (kube/policies.py) and the statuses the audit writes
for them (audit/policy_status.py), with a fake client that records status patches."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from prodready import rules
from prodready.api.resource import Resource
from prodready.audit.policy_status import EXPIRED_REASON, PolicyStatusWriter
from prodready.kube.client import ApiError, KubeClient
from prodready.kube.events import EventRecorder
from prodready.kube.policies import LivePolicies
from prodready.kube.store import ObjectStore
from prodready.observability.metrics import Metrics

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
CREATED = (NOW - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")


class Api:
    """Status patches and Events, as the apiserver would answer them."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self.patches: list[tuple[str, str, dict[str, Any]]] = []
        self.events: list[dict[str, Any]] = []
        self.gone: set[str] = set()

    async def patch_status(
        self, resource: Resource, namespace: str, name: str, status: dict[str, Any]
    ) -> dict[str, Any]:
        if name in self.gone:
            raise ApiError(404, "NotFound", f"{name} not found", "PATCH", "/")
        self.patches.append((resource.kind, name, status))
        body = copy.deepcopy(self.store.get(resource.kind, namespace, name) or {})
        body["status"] = status
        version = int(body["metadata"].get("resourceVersion", "1")) + 1
        body["metadata"]["resourceVersion"] = str(version)
        return body

    async def request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        assert (method, path.rsplit("/", 1)[-1]) == ("POST", "events")
        self.events.append(kwargs["body"])
        return dict(kwargs["body"])


def _policy(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "prodready.io/v1alpha1",
        "kind": "ReadinessPolicy",
        "metadata": {"name": name, "generation": 3, "resourceVersion": "1"},
        "spec": {"mode": "Enforce", **spec},
    }


def _exception(name: str, expires: datetime) -> dict[str, Any]:
    return {
        "apiVersion": "prodready.io/v1alpha1",
        "kind": "ReadinessException",
        "metadata": {
            "name": name,
            "namespace": "shop",
            "generation": 1,
            "resourceVersion": "1",
            "creationTimestamp": CREATED,
        },
        "spec": {
            "rules": [{"rule": "PR-HC-001", "reason": "the /livez endpoint lands with v2"}],
            "match": {"names": ["api"]},
            "expires": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "approvedBy": "jane",
        },
    }


def _report(kind: str, policy: str | None, compliant: bool) -> rules.ObjectReport:
    return rules.ObjectReport(
        object=rules.ObjectRef(api_version="apps/v1", kind=kind, namespace="shop", name="x"),
        environment=rules.Environment.PROD,
        environment_source="default",
        findings=(),
        counts=rules.Counts(),
        score=100.0,
        compliant=compliant,
        input_index=0,
        policy=policy,
    )


class Harness:
    def __init__(self) -> None:
        self.store = ObjectStore()
        self.policies = LivePolicies(self.store)
        self.api = Api(self.store)
        self.metrics = Metrics(process_metrics=False)
        self.marked: list[str] = []
        client = cast(KubeClient, self.api)
        self.writer = PolicyStatusWriter(
            store=self.store,
            policies=self.policies,
            client=client,
            events=EventRecorder(client, instance="test"),
            metrics=self.metrics,
            mark=self.marked.append,
        )

    def status(self, kind: str, name: str, namespace: str = "") -> dict[str, Any]:
        return dict((self.store.get(kind, namespace, name) or {}).get("status") or {})


async def test_a_policy_status_counts_the_workloads_it_decides_for_and_is_written_once() -> None:
    harness = Harness()
    harness.store.put(_policy("production"))
    harness.writer.record(
        "shop",
        [
            _report("Deployment", "production", True),
            _report("Deployment", "production", False),
            _report("Service", "production", False),  # checked on its own: not counted
            _report("Deployment", None, False),  # no policy decided
        ],
    )
    harness.writer.record("web", [_report("StatefulSet", "production", False)])
    await harness.writer.write(NOW)
    status = harness.status("ReadinessPolicy", "production")
    assert (status["matched"], status["compliant"], status["nonCompliant"]) == (3, 1, 2)
    assert status["observedGeneration"] == 3
    assert status["conditions"][0]["status"] == "True"
    await harness.writer.write(NOW)  # nothing changed: no second write
    assert len(harness.api.patches) == 1
    harness.writer.record("web", [])  # the namespace's workloads went
    await harness.writer.write(NOW)
    assert harness.status("ReadinessPolicy", "production")["matched"] == 2


async def test_a_policy_that_cannot_apply_as_written_is_not_ready() -> None:
    harness = Harness()
    harness.store.put(_policy("typo", disabled=["PR-ZZ-999"]))
    await harness.writer.write(NOW)
    (ready,) = harness.status("ReadinessPolicy", "typo")["conditions"]
    assert ready["status"] == "False"
    assert "PR-ZZ-999" in ready["message"]


async def test_an_object_that_does_not_compile_is_left_out_with_its_reason() -> None:
    harness = Harness()
    harness.store.put(_policy("broken", mode="Sometimes"))
    assert harness.policies.current().policies == ()
    assert list(harness.policies.errors()) == [("ReadinessPolicy", "", "broken")]
    await harness.writer.write(NOW)
    (ready,) = harness.status("ReadinessPolicy", "broken")["conditions"]
    assert ready["status"] == "False"


async def test_an_exception_expires_once_announced_counted_and_marked() -> None:
    harness = Harness()
    harness.store.put(_exception("livez", NOW + timedelta(hours=1)))
    assert [e.name for e in harness.policies.current().exceptions] == ["livez"]
    await harness.writer.write(NOW)
    assert harness.status("ReadinessException", "livez", "shop")["state"] == "Active"
    later = NOW + timedelta(hours=2)
    await harness.writer.write(later)
    assert harness.status("ReadinessException", "livez", "shop")["state"] == "Expired"
    assert [e["reason"] for e in harness.api.events] == [EXPIRED_REASON]
    assert harness.marked == ["shop"]
    assert harness.metrics.registry.get_sample_value("prodready_exceptions_expired_total") == 1
    await harness.writer.write(later)  # said once
    assert len(harness.api.events) == 1
    # A new leader finds it Expired already: announced by the one before.
    harness.writer.forget()
    await harness.writer.write(later)
    assert len(harness.api.events) == 1


async def test_an_object_deleted_meanwhile_is_no_error() -> None:
    harness = Harness()
    harness.store.put(_policy("gone"))
    harness.api.gone.add("gone")
    await harness.writer.write(NOW)
    assert harness.api.patches == []
    harness.api.gone.clear()
    harness.api.gone.add("other")
    harness.store.put(_policy("other"))
    failing = ApiError(500, "InternalError", "etcd", "PATCH", "/")

    async def broken(*_: Any, **__: Any) -> dict[str, Any]:
        raise failing

    harness.api.patch_status = broken  # type: ignore[method-assign]
    with pytest.raises(ApiError):
        await harness.writer.write(NOW)
