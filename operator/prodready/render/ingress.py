"""The Ingress, when spec.exposure is set: TLS whenever a certificate Secret is named."""

from __future__ import annotations

from typing import Any

from prodready.api.models import ProductionService
from prodready.render.metadata import (
    COMPONENT_SERVER,
    HTTP_PORT_NAME,
    common_labels,
    object_metadata,
)


def render_ingress(ps: ProductionService) -> dict[str, Any] | None:
    """A networking.k8s.io/v1 Ingress routing the host (and path prefix) to the Service."""
    exposure = ps.spec.exposure
    if exposure is None:
        return None
    spec: dict[str, Any] = {}
    if exposure.ingress_class_name:
        spec["ingressClassName"] = exposure.ingress_class_name
    if exposure.tls_secret_name:
        spec["tls"] = [{"hosts": [exposure.host], "secretName": exposure.tls_secret_name}]
    spec["rules"] = [
        {
            "host": exposure.host,
            "http": {
                "paths": [
                    {
                        "path": exposure.path,
                        "pathType": "Prefix",
                        "backend": {"service": {"name": ps.name, "port": {"name": HTTP_PORT_NAME}}},
                    }
                ]
            },
        }
    ]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": object_metadata(
            ps, common_labels(ps, COMPONENT_SERVER), dict(exposure.annotations)
        ),
        "spec": spec,
    }
