"""ServiceMonitor and PrometheusRule."""

from __future__ import annotations

from typing import Any

from prodready.api import API_VERSION, KIND, parse_production_service
from prodready.render.prometheusrule import render_prometheus_rule
from prodready.render.servicemonitor import render_service_monitor


def ps(**spec: Any) -> Any:
    """A parsed ProductionService with `spec` overrides."""
    return parse_production_service(
        {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {"name": "api", "namespace": "shop"},
            "spec": {"image": "ghcr.io/example/api:1.0", "environment": "prod", **spec},
        }
    )


def test_service_monitor_scrapes_the_service() -> None:
    monitor = render_service_monitor(ps(metrics={"path": "/internal/metrics", "interval": "15s"}))
    assert monitor is not None
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["app.kubernetes.io/component"] == "monitoring"
    assert monitor["metadata"]["labels"]["prodready.io/service"] == "api"
    assert monitor["spec"]["selector"] == {
        "matchLabels": {"app.kubernetes.io/name": "api", "app.kubernetes.io/instance": "api"}
    }
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["shop"]}
    assert monitor["spec"]["endpoints"] == [
        {"port": "http", "path": "/internal/metrics", "interval": "15s", "scheme": "http"}
    ]


def test_service_monitor_uses_a_separate_metrics_port() -> None:
    monitor = render_service_monitor(ps(ports={"http": 8000, "metrics": 9100}))
    assert monitor is not None
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"


def test_no_monitoring_objects_when_metrics_are_off() -> None:
    assert render_service_monitor(ps(metrics={"enabled": False})) is None
    assert render_prometheus_rule(ps(metrics={"enabled": False})) is None
    assert render_prometheus_rule(ps(metrics={"alerts": {"enabled": False}})) is None


def test_prometheus_rule_alerts_on_errors_and_unavailability() -> None:
    rule = render_prometheus_rule(ps())
    assert rule is not None
    (group,) = rule["spec"]["groups"]
    assert group["name"] == "prodready.shop.api"
    alerts = {alert["alert"]: alert for alert in group["rules"]}
    assert list(alerts) == [
        "ProductionServiceHighErrorRate",
        "ProductionServiceDown",
        "ProductionServiceTargetDown",
    ]
    errors = alerts["ProductionServiceHighErrorRate"]
    assert errors["expr"] == (
        'sum(rate(http_requests_total{job="api",namespace="shop",status=~"5.."}[5m])) / '
        'sum(rate(http_requests_total{job="api",namespace="shop"}[5m])) * 100 > 5'
    )
    assert errors["for"] == "5m"
    assert errors["labels"] == {"service": "api", "severity": "critical"}
    assert alerts["ProductionServiceDown"]["expr"] == 'absent(up{job="api",namespace="shop"} == 1)'
    assert alerts["ProductionServiceTargetDown"]["expr"] == 'up{job="api",namespace="shop"} == 0'
    assert alerts["ProductionServiceTargetDown"]["labels"]["severity"] == "warning"


def test_prometheus_rule_options() -> None:
    rule = render_prometheus_rule(
        ps(
            metrics={
                "alerts": {
                    "errorRatePercent": 0.5,
                    "for": "10m",
                    "latencyP99Seconds": 1.5,
                    "severity": "warning",
                    "requestsMetric": "starlette_requests_total",
                    "statusLabel": "status_code",
                    "latencyMetric": "starlette_request_duration_seconds",
                    "labels": {"team": "orders"},
                }
            }
        )
    )
    assert rule is not None
    alerts = {alert["alert"]: alert for alert in rule["spec"]["groups"][0]["rules"]}
    errors = alerts["ProductionServiceHighErrorRate"]
    assert (
        'starlette_requests_total{job="api",namespace="shop",status_code=~"5.."}' in errors["expr"]
    )
    assert errors["expr"].endswith("* 100 > 0.5")
    assert errors["for"] == "10m"
    assert errors["labels"] == {"team": "orders", "service": "api", "severity": "warning"}
    latency = alerts["ProductionServiceHighLatency"]
    assert latency["expr"] == (
        "histogram_quantile(0.99, sum by (le) (rate(starlette_request_duration_seconds_bucket"
        '{job="api",namespace="shop"}[5m]))) > 1.5'
    )
