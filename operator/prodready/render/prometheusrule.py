"""The PrometheusRule: alerts on the service's critical errors (PR-MO-002).

Every alert carries a `runbook_url` (the Prometheus Operator's and Alertmanager templates'
convention) to its section of the repository's docs/runbook.md: what it means, what it
costs, how to diagnose and mitigate it.
"""

from __future__ import annotations

from typing import Any, Final

from prodready.api.models import ProductionService
from prodready.render.metadata import COMPONENT_MONITORING, common_labels, object_metadata

RATE_WINDOW: Final = "5m"
RUNBOOK_URL: Final = "https://github.com/prodready/prodready/blob/main/docs/runbook.md"


def runbook_url(alert: str) -> str:
    """The runbook section of `alert` (GitHub's anchor of a heading: its text in lower case)."""
    return f"{RUNBOOK_URL}#{alert.lower()}"


def _number(value: float) -> str:
    """A threshold as PromQL reads it: 5.0 -> 5, 0.25 -> 0.25."""
    return format(value, "g")


def alert_rules(ps: ProductionService) -> list[dict[str, Any]]:
    """The alerting rules, in a fixed order: error rate, down, target down, latency."""
    alerts = ps.spec.metrics.alerts
    # The job label is the Service's name (ServiceMonitor default); both values are DNS
    # labels, so they need no escaping inside the PromQL string literals.
    selector = f'job="{ps.name}",namespace="{ps.namespace}"'
    requests = alerts.requests_metric
    errors = f'{requests}{{{selector},{alerts.status_label}=~"5.."}}'
    labels = {**alerts.labels, "service": ps.name}
    where = f"{ps.namespace}/{ps.name}"
    rules: list[dict[str, Any]] = [
        {
            "alert": "ProductionServiceHighErrorRate",
            "expr": f"sum(rate({errors}[{RATE_WINDOW}])) / "
            f"sum(rate({requests}{{{selector}}}[{RATE_WINDOW}])) * 100 "
            f"> {_number(alerts.error_rate_percent)}",
            "for": alerts.for_,
            "labels": {**labels, "severity": alerts.severity},
            "annotations": {
                "summary": f"{where}: more than {_number(alerts.error_rate_percent)}% of "
                "requests fail with 5xx",
                "description": "{{ $value | humanize }}% of requests to " + where + " answered "
                "5xx over the last " + RATE_WINDOW + ".",
            },
        },
        {
            "alert": "ProductionServiceDown",
            # absent(... == 1) fires both when every target is down and when there are no
            # targets at all (no pods, or the ServiceMonitor selects nothing).
            "expr": f"absent(up{{{selector}}} == 1)",
            "for": alerts.for_,
            "labels": {**labels, "severity": alerts.severity},
            "annotations": {
                "summary": f"{where}: no instance can be scraped",
                "description": f"No target of {where} has been up for {alerts.for_}.",
            },
        },
        {
            "alert": "ProductionServiceTargetDown",
            "expr": f"up{{{selector}}} == 0",
            "for": alerts.for_,
            "labels": {**labels, "severity": "warning"},
            "annotations": {
                "summary": f"{where}: an instance cannot be scraped",
                "description": "Target {{ $labels.instance }} of " + where + " is down.",
            },
        },
    ]
    if alerts.latency_p99_seconds is not None:
        threshold = _number(alerts.latency_p99_seconds)
        rules.append(
            {
                "alert": "ProductionServiceHighLatency",
                "expr": "histogram_quantile(0.99, sum by (le) "
                f"(rate({alerts.latency_metric}_bucket{{{selector}}}[{RATE_WINDOW}]))) "
                f"> {threshold}",
                "for": alerts.for_,
                "labels": {**labels, "severity": "warning"},
                "annotations": {
                    "summary": f"{where}: p99 latency above {threshold}s",
                    "description": "The 99th percentile latency of " + where + " is "
                    "{{ $value | humanizeDuration }}.",
                },
            }
        )
    for rule in rules:
        rule["annotations"]["runbook_url"] = runbook_url(rule["alert"])
    return rules


def render_prometheus_rule(ps: ProductionService) -> dict[str, Any] | None:
    """A monitoring.coreos.com/v1 PrometheusRule when metrics and alerts are enabled."""
    if not (ps.spec.metrics.enabled and ps.spec.metrics.alerts.enabled):
        return None
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": object_metadata(ps, common_labels(ps, COMPONENT_MONITORING)),
        "spec": {
            "groups": [{"name": f"prodready.{ps.namespace}.{ps.name}", "rules": alert_rules(ps)}]
        },
    }
