"""The HorizontalPodAutoscaler, when spec.autoscaling is set."""

from __future__ import annotations

from typing import Any

from prodready.api.models import ProductionService
from prodready.render.metadata import COMPONENT_SERVER, common_labels, object_metadata


def _utilization(resource: str, percentage: int) -> dict[str, Any]:
    return {
        "type": "Resource",
        "resource": {
            "name": resource,
            "target": {"type": "Utilization", "averageUtilization": percentage},
        },
    }


def render_horizontal_pod_autoscaler(ps: ProductionService) -> dict[str, Any] | None:
    """An autoscaling/v2 HorizontalPodAutoscaler for the Deployment, or None."""
    autoscaling = ps.spec.autoscaling
    if autoscaling is None:
        return None
    metrics = [_utilization("cpu", autoscaling.target_cpu_utilization_percentage)]
    if autoscaling.target_memory_utilization_percentage is not None:
        metrics.append(_utilization("memory", autoscaling.target_memory_utilization_percentage))
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": object_metadata(ps, common_labels(ps, COMPONENT_SERVER)),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": ps.name},
            "minReplicas": autoscaling.min_replicas,
            "maxReplicas": autoscaling.max_replicas,
            "metrics": metrics,
        },
    }
