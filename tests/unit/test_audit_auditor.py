"""The audit loop against an in-memory API: reports, events, metrics, leadership, repair."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import time
from pathlib import Path
from typing import Any, cast

import pytest
import yaml

from prodready.api.resource import Resource
from prodready.audit.auditor import AuditConfig, Auditor
from prodready.audit.reports import OPENREPORTS, POLICY_REPORT
from prodready.kube.client import ApiError, KubeClient
from prodready.kube.events import EventRecorder
from prodready.kube.store import ObjectStore
from prodready.observability.metrics import Metrics

FIXTURE = Path(__file__).parents[1] / "fixtures" / "rules" / "compliant.yaml"
JSON = dict[str, Any]


class FakeApi:
    """Just enough of KubeClient: discovery, LIST, apply, delete, events, metadata LISTs."""

    def __init__(self, served: dict[str, set[str]] | None = None) -> None:
        self.served = served if served is not None else {"openreports.io/v1alpha1": {"reports"}}
        self.reports: dict[tuple[str, str, str], JSON] = {}  # (plural, namespace, name)
        self.names: dict[str, list[tuple[str, str]]] = {}  # metadata LISTs by path
        self.writes: list[tuple[str, str]] = []
        self.events: list[JSON] = []
        self.apply_error: ApiError | None = None
        self._uids = 0
        # Secrets by (namespace, name), read by name only; the fixture's exists in "shop".
        self.secrets: dict[tuple[str, str], JSON] = {
            ("shop", "db-credentials"): {
                "metadata": {"resourceVersion": "3"},
                "data": {"url": "cG9zdGdyZXM6Ly9kYi9zaG9w"},
            }
        }
        self.secret_reads: list[str] = []
        self.secret_error: ApiError | None = None

    async def served_resources(self, api_version: str) -> set[str] | None:
        return self.served.get(api_version)

    async def get(self, path: str) -> JSON | None:
        _, _, _, _, namespace, plural, name = path.split("/")
        assert plural == "secrets", path
        self.secret_reads.append(f"{namespace}/{name}")
        if self.secret_error is not None:
            raise self.secret_error
        return copy.deepcopy(self.secrets.get((namespace, name)))

    async def list(self, path: str, *, label_selector: str | None = None) -> list[JSON]:
        assert label_selector == "app.kubernetes.io/managed-by=prodready"
        found = []
        for (plural, namespace, _name), body in sorted(self.reports.items()):
            if path.endswith(f"/{plural}") and (
                "/namespaces/" not in path or f"/namespaces/{namespace}/" in path
            ):
                found.append(copy.deepcopy(body))
        return found

    async def list_with_version(
        self, path: str, *, label_selector: str | None = None, metadata_only: bool = False
    ) -> tuple[list[JSON], int | None]:
        # The real pagination, over the fake `request` below.
        return await KubeClient.list_with_version(
            cast(KubeClient, self), path, label_selector=label_selector, metadata_only=metadata_only
        )

    async def request(self, method: str, path: str, **kwargs: Any) -> JSON:
        if method == "POST" and path.endswith("/events"):
            self.events.append(kwargs["body"])
            return dict(kwargs["body"])
        assert method == "GET"
        assert "PartialObjectMetadataList" in kwargs["accept"]
        names = self.names.get(path, [])
        params = kwargs["params"]
        if "continue" not in params and len(names) > 1:  # two pages, like a real LIST
            page, token = names[:1], "next"
        else:
            page, token = names[1:] if "continue" in params else names, None
        items = [{"metadata": {"namespace": ns, "name": name}} for ns, name in page]
        return {"metadata": {"resourceVersion": "100", "continue": token}, "items": items}

    async def apply(self, resource: Resource, body: JSON, *, field_manager: str) -> JSON:
        assert field_manager == "prodready-test"
        if self.apply_error is not None:
            raise self.apply_error
        metadata = body["metadata"]
        key = (resource.plural, metadata["namespace"], metadata["name"])
        self.writes.append(("apply", "/".join(key)))
        stored = copy.deepcopy(body)
        existing = self.reports.get(key)
        if existing is None:
            self._uids += 1
            stored["metadata"]["uid"] = f"report-{self._uids}"
        else:
            stored["metadata"]["uid"] = existing["metadata"]["uid"]
        self.reports[key] = stored
        return copy.deepcopy(stored)

    async def delete(self, resource: Resource, namespace: str, name: str, uid: str) -> bool:
        key = (resource.plural, namespace, name)
        found = self.reports.get(key)
        if found is None or found["metadata"]["uid"] != uid:
            return False
        del self.reports[key]
        self.writes.append(("delete", "/".join(key)))
        return True

    def report(self, name: str, namespace: str = "shop", plural: str = "reports") -> JSON | None:
        return self.reports.get((plural, namespace, name))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _objects(namespace: str = "shop") -> list[JSON]:
    objects = []
    for document in yaml.safe_load_all(FIXTURE.read_text()):
        if document and document["kind"] != "Secret":
            document["metadata"]["namespace"] = namespace
            document["metadata"]["resourceVersion"] = "1"
            document["metadata"]["uid"] = f"uid-{document['kind']}-{namespace}"
            objects.append(document)
    return objects


def _broken(namespace: str = "shop", version: str = "2") -> JSON:
    deployment = _objects(namespace)[0]
    deployment["metadata"]["resourceVersion"] = version
    del deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]
    return deployment


class Harness:
    def __init__(self, api: FakeApi | None = None, **config: Any) -> None:
        self.api = api or FakeApi()
        self.store = ObjectStore()
        self.metrics = Metrics(process_metrics=False)
        self.clock = Clock()
        self.leading = True
        settings: dict[str, Any] = {
            "field_manager": "prodready-test",
            "interval_seconds": 60.0,
            "settle_seconds": 0.0,
            "min_interval_seconds": 0.0,
        }
        settings.update(config)
        client = cast(KubeClient, self.api)
        self.auditor = Auditor(
            store=self.store,
            client=client,
            metrics=self.metrics,
            events=EventRecorder(client, instance="test"),
            config=AuditConfig(**settings),
            is_leading=lambda: self.leading,
            clock=self.clock,
            wall_clock=lambda: 1_900_000_000.0,
        )

    def put(self, *bodies: JSON) -> None:
        for body in bodies:
            change = self.store.put(body)
            if change is not None and change.content_changed:
                self.auditor.mark(change.namespace)

    def remove(self, kind: str, name: str, namespace: str = "shop") -> None:
        change = self.store.remove(kind, namespace, name)
        assert change is not None
        self.auditor.mark(change.namespace)

    def violations(self) -> list[JSON]:
        return [e for e in self.api.events if e["reason"] == "PolicyViolation"]

    def finding(self, rule: str, result: str) -> float | None:
        labels = {"resource_namespace": "shop", "rule": rule, "result": result}
        return self.metrics.registry.get_sample_value("prodready_findings", labels)


def _failing(report: JSON | None) -> set[str]:
    return {r["policy"] for r in (report or {}).get("results", []) if r["result"] == "fail"}


async def test_first_pass_writes_reports_posts_one_event_and_sets_metrics() -> None:
    harness = Harness()
    harness.put(_broken(), *_objects()[1:])
    await harness.auditor.step()  # leadership gained: a full audit
    report = harness.api.report("prodready-deployment-api")
    assert _failing(report) == {"PR-HC-001"}
    assert [e["regarding"]["name"] for e in harness.violations()] == ["api"]
    assert "PR-HC-001" in harness.violations()[0]["note"]
    assert harness.finding(rule="PR-HC-001", result="fail") == 1
    assert harness.metrics.registry.get_sample_value("prodready_audit_runs_total") == 1
    assert harness.auditor.flavor is OPENREPORTS

    # Converged: another full audit writes nothing and announces nothing.
    harness.auditor.request_full_pass()
    writes = len(harness.api.writes)
    await harness.auditor.step()
    assert len(harness.api.writes) == writes
    assert len(harness.violations()) == 1
    assert harness.metrics.registry.get_sample_value("prodready_audit_runs_total") == 2


async def test_fix_new_failure_and_deletion() -> None:
    harness = Harness()
    harness.put(_broken(), *_objects()[1:])
    await harness.auditor.step()

    fixed = _objects()[0]
    fixed["metadata"]["resourceVersion"] = "3"
    harness.put(fixed)
    await harness.auditor.step()
    assert _failing(harness.api.report("prodready-deployment-api")) == set()
    assert harness.finding(rule="PR-HC-001", result="fail") is None

    regressed = _broken(version="4")
    regressed["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 5
    harness.put(regressed)
    await harness.auditor.step()
    assert _failing(harness.api.report("prodready-deployment-api")) == {"PR-HC-001", "PR-GS-001"}
    assert len(harness.violations()) == 2  # failing again counts as new

    harness.remove("Deployment", "api")
    await harness.auditor.step()
    assert harness.api.report("prodready-deployment-api") is None
    assert ("delete", "reports/shop/prodready-deployment-api") in harness.api.writes


async def test_unchanged_failures_are_not_announced_again() -> None:
    harness = Harness()
    harness.put(_broken(), *_objects()[1:])
    await harness.auditor.step()
    relabelled = _broken(version="5")
    relabelled["metadata"]["labels"]["team"] = "payments"
    harness.put(relabelled)
    writes = len(harness.api.writes)
    await harness.auditor.step()
    assert len(harness.violations()) == 1
    assert len(harness.api.writes) == writes  # the report's content did not change either


async def test_a_restarted_auditor_reads_what_it_wrote() -> None:
    first = Harness()
    first.put(_broken(), *_objects()[1:])
    await first.auditor.step()

    second = Harness(first.api)  # a new process: nothing in memory, the reports in the cluster
    second.put(_broken(), *_objects()[1:])
    writes = len(first.api.writes)
    await second.auditor.step()
    assert len(first.api.writes) == writes
    assert len(first.violations()) == 1


async def test_stale_reports_of_vanished_workloads_are_deleted() -> None:
    harness = Harness()
    harness.put(_broken(), *_objects()[1:])
    harness.put(_broken("other"))
    await harness.auditor.step()
    assert harness.api.report("prodready-deployment-api", "other") is not None

    fresh = Harness(harness.api)  # restarted while the "other" namespace's workload went away
    fresh.put(_broken(), *_objects()[1:])
    await fresh.auditor.step()
    assert harness.api.report("prodready-deployment-api", "other") is None
    assert harness.api.report("prodready-deployment-api", "shop") is not None


async def test_policy_reports_when_only_their_crd_is_served() -> None:
    harness = Harness(FakeApi({"wgpolicyk8s.io/v1alpha2": {"policyreports"}}))
    harness.put(_broken(), *_objects()[1:])
    await harness.auditor.step()
    assert harness.auditor.flavor is POLICY_REPORT
    report = harness.api.report("prodready-deployment-api", plural="policyreports")
    assert report is not None
    assert report["kind"] == "PolicyReport"


async def test_without_a_report_crd_only_events_and_metrics(
    caplog: pytest.LogCaptureFixture,
) -> None:
    harness = Harness(FakeApi({}))
    harness.put(_broken(), *_objects()[1:])
    with caplog.at_level(logging.WARNING, logger="prodready.audit"):
        await harness.auditor.step()
    assert harness.api.writes == []
    assert len(harness.violations()) == 1
    assert harness.finding(rule="PR-HC-001", result="fail") == 1
    assert "no report CRD" in caplog.text


async def test_only_the_leader_audits_and_a_lost_lead_clears_metrics() -> None:
    harness = Harness()
    harness.leading = False
    harness.put(_broken(), *_objects()[1:])
    await harness.auditor.step()
    assert harness.api.writes == []

    harness.leading = True
    await harness.auditor.step()
    assert harness.finding(rule="PR-HC-001", result="fail") == 1

    harness.leading = False
    await harness.auditor.step()
    assert harness.finding(rule="PR-HC-001", result="fail") is None

    # Leading again: a full audit re-reads the reports; nothing to write, nothing to announce.
    harness.leading = True
    writes = len(harness.api.writes)
    await harness.auditor.step()
    assert len(harness.api.writes) == writes
    assert len(harness.violations()) == 1


async def test_dirty_namespaces_wait_for_their_time() -> None:
    harness = Harness(settle_seconds=0.5, min_interval_seconds=2.0)
    await harness.auditor.step()  # the first full audit: nothing yet
    harness.put(_broken(), *_objects()[1:])
    await harness.auditor.step()
    assert harness.api.writes == []  # not settled yet
    harness.clock.now += 0.5
    await harness.auditor.step()
    assert harness.api.report("prodready-deployment-api") is not None


async def test_a_periodic_full_audit_repairs_the_store() -> None:
    harness = Harness(interval_seconds=60.0)
    harness.put(_broken(), *_objects()[1:])
    harness.auditor.store_seeded()
    await harness.auditor.step()
    assert harness.api.report("prodready-deployment-api") is not None

    # The Deployment was deleted while kopf re-listed: no DELETED event ever came. The next
    # full audit's metadata LISTs do not return it, so it goes.
    harness.api.served["apps/v1"] = {"deployments"}
    harness.api.served["v1"] = {"services"}
    harness.api.names["/api/v1/services"] = [("shop", "api"), ("shop", "other")]
    harness.clock.now += 61
    await harness.auditor.step()
    assert harness.store.get("Deployment", "shop", "api") is None
    assert harness.store.get("Service", "shop", "api") is not None
    assert harness.api.report("prodready-deployment-api") is None


async def test_write_failures_back_off_per_namespace(caplog: pytest.LogCaptureFixture) -> None:
    harness = Harness()
    harness.api.apply_error = ApiError(422, "Invalid", "bad report", "PATCH", "/x")
    harness.put(_broken(), *_objects()[1:])
    with caplog.at_level(logging.WARNING, logger="prodready.audit"):
        await harness.auditor.step()
    assert "retrying" in caplog.text
    # The client counts failed calls (test_kube_client); the audit does not count again.
    assert (
        harness.metrics.registry.get_sample_value(
            "prodready_api_errors_total", {"reason": "Invalid"}
        )
        is None
    )
    harness.api.apply_error = None
    await harness.auditor.step()
    assert harness.api.report("prodready-deployment-api") is None  # not yet: backing off
    harness.clock.now += 2
    await harness.auditor.step()
    assert harness.api.report("prodready-deployment-api") is not None


async def test_an_unexpected_failure_is_logged_with_its_traceback(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness = Harness()
    harness.put(_broken(), *_objects()[1:])

    def explode(*_args: Any, **_kwargs: Any) -> list[Any]:
        raise RuntimeError("rules bug")

    monkeypatch.setattr("prodready.audit.auditor.rules.evaluate", explode)
    with caplog.at_level(logging.ERROR, logger="prodready.audit"):
        await harness.auditor.step()
    assert "rules bug" in caplog.text


async def test_a_failed_full_audit_is_retried(caplog: pytest.LogCaptureFixture) -> None:
    api = FakeApi()

    async def unreachable(_api_version: str) -> set[str] | None:
        raise ApiError(503, "ServiceUnavailable", "etcd is down", "GET", "/apis")

    api.served_resources = unreachable  # type: ignore[method-assign]
    harness = Harness(api)
    with caplog.at_level(logging.WARNING, logger="prodready.audit"):
        await harness.auditor.step()
    assert "full audit failed" in caplog.text
    # The client counts failed calls (test_kube_client); the audit does not count again.
    assert (
        harness.metrics.registry.get_sample_value(
            "prodready_api_errors_total", {"reason": "ServiceUnavailable"}
        )
        is None
    )


async def test_namespaced_operator_lists_only_its_namespaces() -> None:
    harness = Harness(namespaces=("shop",))
    harness.put(_broken(), *_objects()[1:])
    await harness.auditor.step()
    assert harness.api.report("prodready-deployment-api") is not None


async def test_run_loop_audits_marked_namespaces() -> None:
    harness = Harness()
    harness.auditor.clock = time.monotonic
    task = asyncio.create_task(harness.auditor.run())
    try:
        harness.put(_broken(), *_objects()[1:])
        for _ in range(200):
            if harness.api.report("prodready-deployment-api") is not None:
                break
            await asyncio.sleep(0.01)
        assert harness.api.report("prodready-deployment-api") is not None
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_a_terminating_namespace_is_retried_quietly(caplog: pytest.LogCaptureFixture) -> None:
    harness = Harness()
    harness.api.apply_error = ApiError(
        403,
        "Forbidden",
        'reports "x" is forbidden: unable to create new content in namespace shop because it '
        "is being terminated",
        "PATCH",
        "/x",
    )
    harness.put(_broken(), *_objects()[1:])
    with caplog.at_level(logging.WARNING, logger="prodready.audit"):
        await harness.auditor.step()
    assert "retrying" not in caplog.text


async def test_a_pod_monitor_in_the_store_scrapes_the_workload() -> None:
    """The audit sees what validate sees: a PodMonitor (not only a ServiceMonitor) meets
    PR-MO-001."""
    harness = Harness()
    context = [o for o in _objects()[1:] if o["kind"] != "ServiceMonitor"]
    harness.put(_objects()[0], *context)
    await harness.auditor.step()
    assert "PR-MO-001" in _failing(harness.api.report("prodready-deployment-api"))
    pod_monitor = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": {"name": "api", "namespace": "shop", "resourceVersion": "1"},
        "spec": {
            "selector": {"matchLabels": {"app": "api"}},
            "podMetricsEndpoints": [{"port": "metrics"}],
        },
    }
    harness.put(pod_monitor)
    harness.auditor.request_full_pass()
    await harness.auditor.step()
    assert "PR-MO-001" not in _failing(harness.api.report("prodready-deployment-api"))


async def test_referenced_secrets_are_looked_up_by_name_and_judged_as_offline() -> None:
    """The audit never holds Secrets: it reads the ones the workloads reference by name
    (key names kept, values dropped), so PR-CF-002 says in the cluster what validate
    says offline; a refused read leaves the reference unjudged, as offline when the
    Secret is not in the input."""
    harness = Harness()
    harness.put(*_objects())
    await harness.auditor.step()
    report = harness.api.report("prodready-deployment-api")
    assert "PR-CF-002" not in _failing(report)
    assert harness.api.secret_reads == ["shop/db-credentials"]
    assert "cG9zdGdyZXM6Ly9kYi9zaG9w" not in repr(harness.auditor.__dict__)

    harness.api.secrets[("shop", "db-credentials")]["data"] = {"dsn": "eA=="}
    harness.clock.now += 11  # past the lookup's TTL
    harness.auditor.mark("shop")
    await harness.auditor.step()
    report = harness.api.report("prodready-deployment-api")
    assert "PR-CF-002" in _failing(report)
    assert "Secret db-credentials has no key url" in json.dumps(report)

    secret = harness.api.secrets.pop(("shop", "db-credentials"))
    harness.clock.now += 11
    harness.auditor.mark("shop")
    await harness.auditor.step()
    report = harness.api.report("prodready-deployment-api")
    assert "Secret db-credentials does not exist" in json.dumps(report)

    # Created later, with nothing else changing (Secrets are not watched): a failing
    # reference is looked at again once its answer has expired.
    secret["data"] = {"url": "eA=="}
    harness.api.secrets[("shop", "db-credentials")] = secret
    await harness.auditor.step()
    assert "PR-CF-002" in _failing(harness.api.report("prodready-deployment-api"))
    harness.clock.now += 12
    await harness.auditor.step()
    assert "PR-CF-002" not in _failing(harness.api.report("prodready-deployment-api"))

    del harness.api.secrets[("shop", "db-credentials")]

    harness.api.secret_error = ApiError(403, "Forbidden", "no", "GET", "/secrets")
    harness.clock.now += 11
    harness.auditor.mark("shop")
    await harness.auditor.step()
    report = harness.api.report("prodready-deployment-api")
    assert "PR-CF-002" not in _failing(report)
