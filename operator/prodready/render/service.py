"""The Service in front of the pods: the HTTP port, and the metrics port if separate."""

from __future__ import annotations

from typing import Any

from prodready.api.models import ProductionService
from prodready.render.metadata import (
    COMPONENT_SERVER,
    HTTP_PORT_NAME,
    METRICS_PORT_NAME,
    common_labels,
    metrics_port,
    object_metadata,
    selector_labels,
)


def render_service(ps: ProductionService) -> dict[str, Any]:
    """The v1 Service (ClusterIP); ports target the container ports by name."""
    ports: list[dict[str, Any]] = [
        {
            "name": HTTP_PORT_NAME,
            "port": ps.spec.ports.http,
            "targetPort": HTTP_PORT_NAME,
            "protocol": "TCP",
        }
    ]
    metrics = metrics_port(ps)
    if metrics != ps.spec.ports.http:
        ports.append(
            {
                "name": METRICS_PORT_NAME,
                "port": metrics,
                "targetPort": METRICS_PORT_NAME,
                "protocol": "TCP",
            }
        )
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": object_metadata(ps, common_labels(ps, COMPONENT_SERVER)),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(ps.name),
            "ports": ports,
        },
    }
