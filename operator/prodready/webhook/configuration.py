"""The ValidatingWebhookConfiguration (admissionregistration.k8s.io/v1) for the webhook.

Four webhook entries, so that the namespace's labels pick the mode without the webhook
ever reading a Namespace (the apiserver matches namespaceSelectors itself):

* `enforce.workloads.prodready.io` — Deployments, StatefulSets and DaemonSets in
  namespaces labelled `prodready.io/enforce: "true"`, to `/validate/enforce`;
* `audit.workloads.prodready.io` — the same and ProductionServices, in namespaces labelled
  `prodready.io/audit: "true"` (and not enforce), to `/validate/audit`;
* `productionservices.prodready.io` — ProductionServices in every namespace not in audit
  mode, to `/validate/enforce`: the operator's own API is always held to the checklist;
* `authorize.productionservices.prodready.io` — ProductionServices in every namespace, to
  `/authorize`: a ProductionService may ask only for what its author may do and the
  platform allows (`prodready.webhook.authorization`), whatever the namespace's mode.

failurePolicy: `failure_policy` (default Fail) for the two enforce entries — while the
webhook cannot answer, non-compliant objects would otherwise be admitted, and a crafted
object that makes it time out would be a way around it; the price is that applies in
enforce namespaces fail while no replica answers. The audit entry always Ignores (audit
mode never blocks). The authorize entry always Fails: admitting unchecked would let a
ProductionService grant what its author lacks; the price is small, as the operator that
would create its children is the one not answering.

Every entry excludes the operator's own namespace and kube-system by name
(`kubernetes.io/metadata.name NotIn [...]`, a label the apiserver sets on every
namespace): whatever happens to the webhook — a crash loop, an expired certificate, a
`failurePolicy: Fail` — the operator can always be redeployed and the cluster's own
components never wait on it. Workload entries skip objects labelled
`app.kubernetes.io/managed-by: prodready`: those are the operator's own children, judged
through their ProductionService, and denying the operator's own apply would only make it
retry forever.

`sideEffects: None` (the webhook writes nothing, so dry-run requests are sent too),
`admissionReviewVersions: [v1]`, `matchPolicy: Equivalent` (a request through an older
API version of the same resource is checked as well).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from prodready import api
from prodready.api.labels import DOMAIN, LABEL_MANAGED_BY, MANAGED_BY

__all__ = [
    "AUDIT_LABEL",
    "AUDIT_PATH",
    "AUTHORIZE_PATH",
    "ENFORCE_LABEL",
    "ENFORCE_PATH",
    "ServiceTarget",
    "render_webhook_configuration",
]

ENFORCE_LABEL: Final = f"{DOMAIN}/enforce"
AUDIT_LABEL: Final = f"{DOMAIN}/audit"
ENFORCE_PATH: Final = "/validate/enforce"
AUDIT_PATH: Final = "/validate/audit"
AUTHORIZE_PATH: Final = "/authorize"
NAMESPACE_NAME_LABEL: Final = "kubernetes.io/metadata.name"
ALWAYS_EXCLUDED: Final = ("kube-system",)
CERT_MANAGER_INJECT: Final = "cert-manager.io/inject-ca-from"

FailurePolicy = Literal["Fail", "Ignore"]

_OPERATIONS: Final = ["CREATE", "UPDATE"]
WORKLOAD_RULE: Final = {
    "apiGroups": ["apps"],
    "apiVersions": ["v1"],
    "operations": _OPERATIONS,
    "resources": ["deployments", "statefulsets", "daemonsets"],
    "scope": "Namespaced",
}
PRODUCTION_SERVICE_RULE: Final = {
    "apiGroups": [api.GROUP],
    "apiVersions": [api.VERSION],
    "operations": _OPERATIONS,
    "resources": [api.PLURAL],
    "scope": "Namespaced",
}


@dataclass(frozen=True)
class ServiceTarget:
    """The in-cluster Service in front of the webhook."""

    name: str
    namespace: str
    port: int = 443


def _client_config(
    path: str, *, url: str | None, service: ServiceTarget | None, ca_bundle: bytes | None
) -> dict[str, Any]:
    config: dict[str, Any]
    if url is not None:
        config = {"url": url.rstrip("/") + path}
    else:
        assert service is not None  # render_webhook_configuration checked: one of the two
        config = {
            "service": {
                "name": service.name,
                "namespace": service.namespace,
                "port": service.port,
                "path": path,
            }
        }
    if ca_bundle:
        config["caBundle"] = base64.b64encode(ca_bundle).decode()
    return config


def _requirement(key: str, operator: str, values: Sequence[str] | None = None) -> dict[str, Any]:
    requirement: dict[str, Any] = {"key": key, "operator": operator}
    if values is not None:
        requirement["values"] = list(values)
    return requirement


def render_webhook_configuration(
    *,
    operator_namespace: str,
    url: str | None = None,
    service: ServiceTarget | None = None,
    ca_bundle: bytes | None = None,
    name: str = "prodready",
    failure_policy: FailurePolicy = "Fail",
    timeout_seconds: int = 5,
    excluded_namespaces: Sequence[str] = (),
    annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The ValidatingWebhookConfiguration (see the module docstring).

    Give `url` (local runs: `https://127.0.0.1:9443`, the paths are appended) or `service`
    (in-cluster). `ca_bundle` is the PEM of the CA that signed the serving certificate;
    leave it out when cert-manager injects it (`annotations` with
    `cert-manager.io/inject-ca-from`).
    """
    if (url is None) == (service is None):
        raise ValueError("give exactly one of url and service")
    if not 1 <= timeout_seconds <= 30:
        raise ValueError("timeout_seconds must be between 1 and 30 (the apiserver's limit)")
    excluded = list(dict.fromkeys([operator_namespace, *ALWAYS_EXCLUDED, *excluded_namespaces]))
    not_excluded = _requirement(NAMESPACE_NAME_LABEL, "NotIn", excluded)
    not_ours = {"matchExpressions": [_requirement(LABEL_MANAGED_BY, "NotIn", [MANAGED_BY])]}

    def entry(
        entry_name: str,
        path: str,
        entry_rules: list[dict[str, Any]],
        requirements: list[dict[str, Any]],
        object_selector: dict[str, Any],
        *,
        policy: FailurePolicy = failure_policy,
    ) -> dict[str, Any]:
        return {
            "name": entry_name,
            "admissionReviewVersions": ["v1"],
            "sideEffects": "None",
            "failurePolicy": policy,
            "timeoutSeconds": timeout_seconds,
            "matchPolicy": "Equivalent",
            "rules": [dict(rule) for rule in entry_rules],
            "namespaceSelector": {"matchExpressions": [*requirements, not_excluded]},
            "objectSelector": object_selector,
            "clientConfig": _client_config(path, url=url, service=service, ca_bundle=ca_bundle),
        }

    metadata: dict[str, Any] = {
        "name": name,
        "labels": {LABEL_MANAGED_BY: MANAGED_BY, "app.kubernetes.io/name": "prodready"},
    }
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": metadata,
        "webhooks": [
            entry(
                f"enforce.workloads.{DOMAIN}",
                ENFORCE_PATH,
                [WORKLOAD_RULE],
                [_requirement(ENFORCE_LABEL, "In", ["true"])],
                not_ours,
            ),
            entry(
                f"audit.workloads.{DOMAIN}",
                AUDIT_PATH,
                [WORKLOAD_RULE, PRODUCTION_SERVICE_RULE],
                [
                    _requirement(AUDIT_LABEL, "In", ["true"]),
                    _requirement(ENFORCE_LABEL, "NotIn", ["true"]),
                ],
                not_ours,
                policy="Ignore",
            ),
            entry(
                f"productionservices.{DOMAIN}",
                ENFORCE_PATH,
                [PRODUCTION_SERVICE_RULE],
                [_requirement(AUDIT_LABEL, "NotIn", ["true"])],
                {},
            ),
            entry(
                f"authorize.productionservices.{DOMAIN}",
                AUTHORIZE_PATH,
                [PRODUCTION_SERVICE_RULE],
                [],
                {},
                policy="Fail",
            ),
        ],
    }
