"""The PodDisruptionBudget: voluntary disruptions take one pod at a time (PR-RS-002)."""

from __future__ import annotations

from typing import Any

from prodready.api.models import ProductionService
from prodready.render.metadata import (
    COMPONENT_SERVER,
    common_labels,
    object_metadata,
    selector_labels,
)


def render_pod_disruption_budget(ps: ProductionService) -> dict[str, Any] | None:
    """A policy/v1 PodDisruptionBudget when the service runs at least two replicas.

    With one replica a budget would either block node drains forever (minAvailable 1) or
    protect nothing, so there is none.
    """
    if ps.spec.effective_min_replicas() < 2:
        return None
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": object_metadata(ps, common_labels(ps, COMPONENT_SERVER)),
        "spec": {
            # maxUnavailable rather than minAvailable: it stays right when the HPA scales.
            "maxUnavailable": 1,
            "selector": {"matchLabels": selector_labels(ps.name)},
            # Pods that are not ready protect nothing; evicting them must not block drains.
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }
