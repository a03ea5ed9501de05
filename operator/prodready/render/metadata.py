"""Names, labels and owner references shared by every rendered object."""

from __future__ import annotations

import re
from typing import Any, Final

from prodready.api.labels import (
    LABEL_COMPONENT,
    LABEL_ENVIRONMENT,
    LABEL_INSTANCE,
    LABEL_MANAGED_BY,
    LABEL_NAME,
    LABEL_SERVICE,
    LABEL_VERSION,
    MANAGED_BY,
)
from prodready.api.models import API_VERSION, KIND, ProductionService

SELECTOR_LABEL_KEYS: Final = (LABEL_NAME, LABEL_INSTANCE)
"""The labels a Deployment selects its pods by. Never change them: selectors are immutable."""

COMPONENT_SERVER: Final = "server"
COMPONENT_MONITORING: Final = "monitoring"

CONTAINER_NAME: Final = "app"
HTTP_PORT_NAME: Final = "http"
METRICS_PORT_NAME: Final = "metrics"

_LABEL_VALUE: Final = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def selector_labels(name: str) -> dict[str, str]:
    """The Deployment's pod selector (also the Service's and the PDB's) for a service name."""
    return {LABEL_NAME: name, LABEL_INSTANCE: name}


def image_version(image: str) -> str | None:
    """The image's tag when it is a valid label value (`ghcr.io/x/api:1.4.2` -> `1.4.2`)."""
    reference = image.split("@", 1)[0]
    last = reference.rsplit("/", 1)[-1]
    if ":" not in last:
        return None
    tag = last.rsplit(":", 1)[1]
    if len(tag) > 63 or not _LABEL_VALUE.match(tag):
        return None
    return tag


def common_labels(ps: ProductionService, component: str) -> dict[str, str]:
    """Labels on every child: the owner's own labels, then prodready's (which win)."""
    labels = dict(ps.metadata.labels)
    labels.update(selector_labels(ps.name))
    labels[LABEL_COMPONENT] = component
    labels[LABEL_MANAGED_BY] = MANAGED_BY
    labels[LABEL_SERVICE] = ps.name
    version = image_version(ps.spec.image)
    if version is not None:
        labels[LABEL_VERSION] = version
    return labels


def workload_labels(ps: ProductionService) -> dict[str, str]:
    """Labels of the Deployment: the common ones plus the declared environment."""
    labels = common_labels(ps, COMPONENT_SERVER)
    labels[LABEL_ENVIRONMENT] = ps.spec.environment.value
    return labels


def owner_references(ps: ProductionService) -> list[dict[str, Any]]:
    """The ProductionService as controlling owner, when its uid is known (in the cluster).

    Rendering a file offline has no uid, and an owner reference without one is invalid.
    """
    if not ps.metadata.uid:
        return []
    return [
        {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "name": ps.name,
            "uid": ps.metadata.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]


def object_metadata(
    ps: ProductionService,
    labels: dict[str, str],
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """metadata of a child: same name and namespace as the ProductionService."""
    metadata: dict[str, Any] = {"name": ps.name, "namespace": ps.namespace, "labels": labels}
    if annotations:
        metadata["annotations"] = annotations
    owners = owner_references(ps)
    if owners:
        metadata["ownerReferences"] = owners
    return metadata


def metrics_port(ps: ProductionService) -> int:
    """The port serving /metrics (the HTTP port unless ports.metrics says otherwise)."""
    return ps.spec.ports.metrics or ps.spec.ports.http


def metrics_port_name(ps: ProductionService) -> str:
    """Name of the container and Service port that serves /metrics."""
    return METRICS_PORT_NAME if metrics_port(ps) != ps.spec.ports.http else HTTP_PORT_NAME
