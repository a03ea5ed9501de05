"""Large input must cost time in proportion to its size: no related-object lookup may scan
every object of a kind per workload (a repository has one ServiceMonitor per app, not a
few per cluster). Counted in selector evaluations, so the test does not depend on how busy
the machine is."""

from __future__ import annotations

from typing import Any

import pytest

from prodready.rules import evaluate
from prodready.rules.selectors import Selector


def _app(index: int, namespace: str) -> list[dict[str, Any]]:
    name = f"app-{index}"
    labels = {"app.kubernetes.io/name": name}
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "app", "image": "example/app:1.0.0"}]},
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 80}]},
        },
        {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "ServiceMonitor",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"selector": {"matchLabels": labels}, "endpoints": [{"port": "http"}]},
        },
    ]


def _selector_evaluations(monkeypatch: pytest.MonkeyPatch, apps: int) -> int:
    calls = 0
    original = Selector.matches

    def counting(self: Selector, labels: Any) -> bool:
        nonlocal calls
        calls += 1
        return original(self, labels)

    monkeypatch.setattr(Selector, "matches", counting)
    objects = [obj for index in range(apps) for obj in _app(index, "one-namespace")]
    reports = evaluate(objects)
    assert len(reports) == apps
    # Each app's own ServiceMonitor was found: PR-MO-001 passes for every one of them.
    for report in reports:
        results = {f.rule_id: f.result.value for f in report.findings}
        assert results["PR-MO-001"] == "pass", report.object
    monkeypatch.setattr(Selector, "matches", original)
    return calls


def test_related_object_lookups_do_not_scan_every_object(monkeypatch: pytest.MonkeyPatch) -> None:
    small = _selector_evaluations(monkeypatch, 50)
    large = _selector_evaluations(monkeypatch, 400)
    # Linear: 8x the apps, about 8x the selector evaluations (a scan would be 64x).
    assert large <= 10 * small, (small, large)
    assert large <= 40 * 400, large


def test_a_service_monitor_for_any_namespace_still_selects(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    objects = _app(0, "shop")
    monitor = objects[2]
    monitor["metadata"]["namespace"] = "monitoring"
    monitor["spec"]["namespaceSelector"] = {"any": True}
    reports = evaluate(objects)
    assert {f.rule_id: f.result.value for f in reports[0].findings}["PR-MO-001"] == "pass"

    monitor["spec"]["namespaceSelector"] = {"matchNames": ["elsewhere"]}
    reports = evaluate(objects)
    assert {f.rule_id: f.result.value for f in reports[0].findings}["PR-MO-001"] != "pass"

    monitor["spec"]["namespaceSelector"] = {"matchNames": ["elsewhere", "shop"]}
    reports = evaluate(objects)
    assert {f.rule_id: f.result.value for f in reports[0].findings}["PR-MO-001"] == "pass"
