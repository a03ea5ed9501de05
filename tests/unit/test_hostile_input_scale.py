"""Large input must cost time in proportion to its size: no related-object lookup may scan
every object of a kind per workload (a repository has one ServiceMonitor per app, not a
few per cluster), and no rule may do per-container work that grows with the number of
containers (or per-variable work that grows with the number of variables). Counted in
selector evaluations or Python function calls, so the tests do not depend on how busy the
machine is."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from benchmarks.bounded import LIFTED, deployment

from prodready.rules import Limits, evaluate
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


def _calls(objects: list[dict[str, Any]]) -> int:
    """Python function calls made by one evaluation, with the caps lifted."""
    calls = 0

    def count(_frame: object, event: str, _arg: object) -> None:
        nonlocal calls
        if event == "call":
            calls += 1

    limits = Limits(**LIFTED)
    sys.setprofile(count)
    try:
        evaluate(objects, limits=limits)
    finally:
        sys.setprofile(None)
    return calls


@pytest.mark.parametrize(
    ("what", "small", "large"),
    [
        # Containers with ports and probes, selected by a Service with 50 ports: before,
        # the required grace period was recomputed per container and every Service port
        # scanned every container (100 -> 400 containers: 11x the calls).
        ("containers", deployment(100), deployment(400)),
        # One container's variables: each variable lookup re-read the whole list.
        ("env entries", deployment(1, env=500), deployment(1, env=2_000)),
        # Many ports per container, as well as many containers.
        ("ports", deployment(100, ports=10), deployment(400, ports=40)),
    ],
)
def test_rules_are_linear_in_the_size_of_one_object(
    what: str, small: list[dict[str, Any]], large: list[dict[str, Any]]
) -> None:
    evaluate(deployment(2))  # imports and first-use caches are not part of the count
    few, many = _calls(small), _calls(large)
    # 4x the size: about 4x the calls when linear (16x when quadratic).
    assert many <= 5 * few, (what, few, many)
