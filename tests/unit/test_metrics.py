"""Metrics: names, labels, the findings gauge's series replacement, text exposition."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from prodready.observability.metrics import DURATION_BUCKETS, Metrics


def _value(metrics: Metrics, name: str, labels: dict[str, str] | None = None) -> float | None:
    return metrics.registry.get_sample_value(name, labels or {})


def _series(metrics: Metrics, name: str) -> list[dict[str, str]]:
    payload, _ = metrics.render_latest()
    return [
        sample.labels
        for family in text_string_to_metric_families(payload.decode())
        for sample in family.samples
        if sample.name == name
    ]


def test_instances_are_independent() -> None:
    first, second = Metrics(), Metrics()
    first.reconciles.labels(result="success").inc()
    assert _value(first, "prodready_reconciles_total", {"result": "success"}) == 1
    assert _value(second, "prodready_reconciles_total", {"result": "success"}) == 0


def test_uses_the_given_registry() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry=registry, process_metrics=False)
    assert metrics.registry is registry


def test_reconcile_results_exist_from_the_start() -> None:
    metrics = Metrics()
    for result in ("success", "error", "skipped"):
        assert _value(metrics, "prodready_reconciles_total", {"result": result}) == 0


def test_record_reconcile_counts_and_times() -> None:
    metrics = Metrics()
    metrics.record_reconcile("error", 0.02)
    metrics.record_reconcile("error", 3.0)
    assert _value(metrics, "prodready_reconciles_total", {"result": "error"}) == 2
    assert _value(metrics, "prodready_reconcile_duration_seconds_count") == 2
    assert _value(metrics, "prodready_reconcile_duration_seconds_sum") == pytest.approx(3.02)
    assert _value(metrics, "prodready_reconcile_duration_seconds_bucket", {"le": "0.025"}) == 1


def test_record_reconcile_refuses_unknown_results() -> None:
    with pytest.raises(ValueError, match="result must be one of"):
        Metrics().record_reconcile("maybe", 1.0)


def test_duration_buckets_span_a_millisecond_to_thirty_seconds() -> None:
    assert DURATION_BUCKETS[0] == 0.001
    assert DURATION_BUCKETS[-1] == 30.0
    assert list(DURATION_BUCKETS) == sorted(DURATION_BUCKETS)


def test_webhook_requests_by_kind_operation_and_verdict() -> None:
    metrics = Metrics()
    metrics.record_webhook_request("Deployment", "CREATE", allowed=False, duration_seconds=0.004)
    metrics.record_webhook_request("Deployment", "UPDATE", allowed=True, duration_seconds=0.002)
    labels = {"kind": "Deployment", "operation": "CREATE", "allowed": "false"}
    assert _value(metrics, "prodready_webhook_requests_total", labels) == 1
    allowed = {"kind": "Deployment", "operation": "UPDATE", "allowed": "true"}
    assert _value(metrics, "prodready_webhook_requests_total", allowed) == 1
    count = _value(metrics, "prodready_webhook_duration_seconds_count", {"kind": "Deployment"})
    assert count == 2


def test_child_and_drift_counters_by_kind() -> None:
    metrics = Metrics()
    metrics.children_applied.labels(kind="Service").inc(2)
    metrics.children_pruned.labels(kind="Ingress").inc()
    metrics.drift_corrections.labels(kind="Deployment").inc()
    assert _value(metrics, "prodready_children_applied_total", {"kind": "Service"}) == 2
    assert _value(metrics, "prodready_children_pruned_total", {"kind": "Ingress"}) == 1
    assert _value(metrics, "prodready_drift_corrections_total", {"kind": "Deployment"}) == 1


def test_audit_runs_and_api_errors() -> None:
    metrics = Metrics()
    metrics.audit_runs.inc()
    metrics.api_errors.labels(reason="Conflict").inc()
    assert _value(metrics, "prodready_audit_runs_total") == 1
    assert _value(metrics, "prodready_api_errors_total", {"reason": "Conflict"}) == 1


def test_build_info_carries_the_version() -> None:
    metrics = Metrics(version="1.2.3")
    (labels,) = _series(metrics, "prodready_build_info")
    assert labels["version"] == "1.2.3"
    assert labels["python"]


def test_findings_replace_a_namespace_series() -> None:
    metrics = Metrics()
    metrics.set_namespace_findings(
        "shop",
        {("PR-HC-001", "error", "fail"): 3, ("PR-RS-001", "warning", "warn"): 1},
    )
    metrics.set_namespace_findings("other", {("PR-HC-001", "error", "fail"): 7})
    failing = {"resource_namespace": "shop", "rule": "PR-HC-001", "result": "fail"}
    assert _value(metrics, "prodready_findings", failing) == 3

    # PR-RS-001 fixed (dropped), PR-HC-001 down to zero, a new one appears.
    metrics.set_namespace_findings(
        "shop",
        {("PR-HC-001", "error", "fail"): 0, ("PR-SC-005", "warning", "warn"): 2},
    )
    shop = [
        labels
        for labels in _series(metrics, "prodready_findings")
        if labels["resource_namespace"] == "shop"
    ]
    assert shop == [{"resource_namespace": "shop", "rule": "PR-SC-005", "result": "warn"}]
    other = {"resource_namespace": "other", "rule": "PR-HC-001", "result": "fail"}
    assert _value(metrics, "prodready_findings", other) == 7


def test_findings_keep_failing_results_only_without_severity() -> None:
    metrics = Metrics()
    metrics.set_namespace_findings(
        "shop",
        {
            ("PR-HC-001", "error", "pass"): 40,
            ("PR-HC-002", "error", "skip"): 2,
            ("PR-HC-003", "error", "fail"): 1,
            ("PR-LG-001", "warning", "warn"): 2,
        },
    )
    series = _series(metrics, "prodready_findings")
    assert sorted(labels["rule"] for labels in series) == ["PR-HC-003", "PR-LG-001"]
    # The scrape target's `namespace` and the rule's implied severity are not labels.
    assert all(set(labels) == {"resource_namespace", "rule", "result"} for labels in series)


def test_findings_without_namespace_detail_sum_over_the_cluster() -> None:
    metrics = Metrics(findings_by_namespace=False, process_metrics=False)
    metrics.set_namespace_findings("shop", {("PR-HC-001", "error", "fail"): 3})
    metrics.set_namespace_findings("bank", {("PR-HC-001", "error", "fail"): 2})
    metrics.set_namespace_findings("bank", {("PR-LG-001", "warning", "warn"): 1})
    assert sorted(map(sorted, map(dict.items, _series(metrics, "prodready_findings")))) == [
        [("result", "fail"), ("rule", "PR-HC-001")],
        [("result", "warn"), ("rule", "PR-LG-001")],
    ]
    assert _value(metrics, "prodready_findings", {"rule": "PR-HC-001", "result": "fail"}) == 3
    metrics.set_namespace_findings("shop", {})
    metrics.set_namespace_findings("bank", {})
    assert _series(metrics, "prodready_findings") == []


def test_empty_findings_clear_a_namespace() -> None:
    metrics = Metrics()
    metrics.set_namespace_findings("shop", {("PR-HC-001", "error", "fail"): 1})
    metrics.set_namespace_findings("shop", {})
    metrics.set_namespace_findings("never-seen", {})
    assert _series(metrics, "prodready_findings") == []


def test_counters_have_no_created_series() -> None:
    metrics = Metrics(process_metrics=False)
    metrics.record_reconcile("success", 0.1)
    metrics.record_webhook_request("Deployment", "CREATE", allowed=True, duration_seconds=0.01)
    text = metrics.render_latest()[0].decode()
    assert "prodready_reconciles_total" in text
    assert "_created" not in text


def test_negative_finding_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        Metrics().set_namespace_findings("shop", {("PR-HC-001", "error", "fail"): -1})


def test_render_latest_is_prometheus_text() -> None:
    metrics = Metrics()
    payload, content_type = metrics.render_latest()
    assert content_type.startswith("text/plain; version=0.0.4")
    text = payload.decode()
    assert "# TYPE prodready_reconciles_total counter" in text
    assert "# TYPE prodready_reconcile_duration_seconds histogram" in text
    assert "# TYPE prodready_findings gauge" in text
    assert "process_resident_memory_bytes" in text or "python_gc_objects_collected_total" in text


def test_process_metrics_can_be_left_out() -> None:
    text = Metrics(process_metrics=False).render_latest()[0].decode()
    assert "python_gc_objects_collected_total" not in text
    assert "prodready_build_info" in text
