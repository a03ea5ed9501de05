"""Label and annotation keys that prodready writes and other components read.

These keys are a contract: the controller selects a ProductionService's children by
`prodready.io/service`, and the rules engine reads the environment label and the
exemption and dependency annotations from any Deployment, rendered by prodready or not.
"""

from __future__ import annotations

from typing import Final

DOMAIN: Final = "prodready.io"

# Kubernetes' recommended labels (https://kubernetes.io/docs/concepts/overview/
# working-with-objects/common-labels/).
LABEL_NAME: Final = "app.kubernetes.io/name"
LABEL_INSTANCE: Final = "app.kubernetes.io/instance"
LABEL_COMPONENT: Final = "app.kubernetes.io/component"
LABEL_VERSION: Final = "app.kubernetes.io/version"
LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
MANAGED_BY: Final = "prodready"

# prodready's own labels.
LABEL_SERVICE: Final = f"{DOMAIN}/service"
"""On every child: the name of the ProductionService that owns it."""
LABEL_ENVIRONMENT: Final = f"{DOMAIN}/environment"
"""On the Deployment and its pods: dev, staging or prod (PR-CF-003)."""

# Annotations.
ANNOTATION_EXEMPT: Final = f"{DOMAIN}/exempt"
"""Comma-separated rule IDs the workload is exempt from, e.g. `PR-RS-002,PR-SC-001`."""
ANNOTATION_EXEMPT_REASON: Final = f"{DOMAIN}/exempt-reason"
"""Why: free text; for exemptions declared in the spec, `RULE: reason` joined by `; `."""
ANNOTATION_DEPENDENCIES: Final = f"{DOMAIN}/dependencies"
"""JSON list of `{"name", "type"}`: what the readiness probe checks (PR-HC-004)."""
ANNOTATION_CONFIG_CHECKSUM: Final = f"{DOMAIN}/config-checksum"
"""On the pod template: digest of the configuration inputs, so a change rolls the pods."""

RESERVED_PREFIXES: Final = ("app.kubernetes.io/", f"{DOMAIN}/")
"""Label/annotation prefixes prodready owns; users may not set them on pods."""
