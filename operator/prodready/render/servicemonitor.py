"""The ServiceMonitor that has Prometheus scrape the service (PR-MO-001)."""

from __future__ import annotations

from typing import Any

from prodready.api.models import ProductionService
from prodready.render.metadata import (
    COMPONENT_MONITORING,
    common_labels,
    metrics_port_name,
    object_metadata,
    selector_labels,
)


def render_service_monitor(ps: ProductionService) -> dict[str, Any] | None:
    """A monitoring.coreos.com/v1 ServiceMonitor when metrics are enabled, or None.

    It selects the Service by its selector labels (only this service's Service carries
    both) in the service's own namespace; Prometheus names the job after the Service,
    which is what the PrometheusRule's queries match on.
    """
    metrics = ps.spec.metrics
    if not metrics.enabled:
        return None
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": object_metadata(ps, common_labels(ps, COMPONENT_MONITORING)),
        "spec": {
            "selector": {"matchLabels": selector_labels(ps.name)},
            "namespaceSelector": {"matchNames": [ps.namespace]},
            "endpoints": [
                {
                    "port": metrics_port_name(ps),
                    "path": metrics.path,
                    "interval": metrics.interval,
                    "scheme": "http",
                }
            ],
        },
    }
