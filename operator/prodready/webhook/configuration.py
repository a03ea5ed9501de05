"""The ValidatingWebhookConfiguration (admissionregistration.k8s.io/v1) for the webhook.

Four webhook entries, so that the namespace's labels pick the mode without the webhook
ever reading a Namespace (the apiserver matches namespaceSelectors itself). Every
combination of the labels `prodready.io/enforce` and `prodready.io/audit` reaches exactly
one checklist entry (a label with any value but "true" counts as absent):

* `enforce.workloads.prodready.io` — workloads and ProductionServices in namespaces
  labelled `prodready.io/enforce: "true"` (whatever their audit label says: enforcement
  wins), to `/validate/enforce`;
* `audit.workloads.prodready.io` — the same, in namespaces labelled `prodready.io/audit:
  "true"` and not enforce, to `/validate/audit`;
* `productionservices.prodready.io` — ProductionServices in namespaces with neither label,
  to `/validate/enforce`: the operator's own API is always held to the checklist;
* `policy.workloads.prodready.io` — workloads in namespaces with neither label, to
  `/validate/policy`: only a workload a ReadinessPolicy selects is evaluated, in that
  policy's mode (failurePolicy Ignore: a policy may select any namespace, and while no
  replica answers those namespaces keep working; label a namespace enforce for fail-closed);
* `authorize.productionservices.prodready.io` — ProductionServices in every namespace, to
  `/authorize`: a ProductionService may ask only for what its author may do and the
  platform allows (`prodready.webhook.authorization`), whatever the namespace's mode.

Workloads are Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs and CronJobs
(created or updated), Pods (created) and the `pods/ephemeralcontainers` subresource (an
ephemeral container added to a running pod, as `kubectl debug` does).

Who is not sent to the webhook is decided by `matchConditions` on the request, never by
a label the object's author chooses:

* `not-the-operator`: the operator's own writes (its ServiceAccount's username): its
  children are judged through their ProductionService, and denying the operator's own
  apply would only make it retry forever. What that identity may write is confined by the
  chart's ValidatingAdmissionPolicy (charts/prodready/templates/operator-admission-policy.yaml).
* `not-a-controllers-own-object`: an object whose controlling ownerReference is of a
  checked kind (`admission.CONTROLLER_OWNERS`: a Deployment's ReplicaSets, a ReplicaSet's,
  StatefulSet's, DaemonSet's or Job's Pods, a CronJob's Jobs) sent by the controller that
  creates those (kube-controller-manager, or its per-controller ServiceAccount in
  kube-system) or by `system:masters`: its owner was admitted already, so a rollout never
  waits on the webhook per pod. Anyone else claiming an owner is checked as if there were
  none. Not for ephemeral containers: a pod's owner says nothing about a container added
  to it later.

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
components never wait on it.

`sideEffects: None` (the webhook writes nothing, so dry-run requests are sent too),
`admissionReviewVersions: [v1]`, `matchPolicy: Equivalent` (a request through an older
API version of the same resource is checked as well). matchConditions need Kubernetes
1.30 or later (GA in admissionregistration.k8s.io/v1).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from prodready import api
from prodready.api.labels import DOMAIN, LABEL_MANAGED_BY, MANAGED_BY
from prodready.webhook.admission import (
    CONTROLLER_MANAGER_USER,
    CONTROLLER_OWNERS,
    CONTROLLER_SERVICE_ACCOUNT_PREFIX,
    EPHEMERAL_CONTAINERS,
    MASTERS_GROUP,
)

__all__ = [
    "AUDIT_LABEL",
    "AUDIT_PATH",
    "AUTHORIZE_PATH",
    "DEFAULT_SERVICE_ACCOUNT",
    "ENFORCE_LABEL",
    "ENFORCE_PATH",
    "POLICY_PATH",
    "ServiceTarget",
    "operator_username",
    "render_webhook_configuration",
]

ENFORCE_LABEL: Final = f"{DOMAIN}/enforce"
AUDIT_LABEL: Final = f"{DOMAIN}/audit"
ENFORCE_PATH: Final = "/validate/enforce"
AUDIT_PATH: Final = "/validate/audit"
POLICY_PATH: Final = "/validate/policy"
AUTHORIZE_PATH: Final = "/authorize"
NAMESPACE_NAME_LABEL: Final = "kubernetes.io/metadata.name"
ALWAYS_EXCLUDED: Final = ("kube-system",)
CERT_MANAGER_INJECT: Final = "cert-manager.io/inject-ca-from"
DEFAULT_SERVICE_ACCOUNT: Final = "prodready"

FailurePolicy = Literal["Fail", "Ignore"]

_OPERATIONS: Final = ["CREATE", "UPDATE"]
WORKLOAD_RULES: Final = (
    {
        "apiGroups": ["apps"],
        "apiVersions": ["v1"],
        "operations": _OPERATIONS,
        "resources": ["deployments", "statefulsets", "daemonsets", "replicasets"],
        "scope": "Namespaced",
    },
    {
        "apiGroups": ["batch"],
        "apiVersions": ["v1"],
        "operations": _OPERATIONS,
        "resources": ["jobs", "cronjobs"],
        "scope": "Namespaced",
    },
    # A pod's spec is all but immutable once created: creation is the moment to check it.
    {
        "apiGroups": [""],
        "apiVersions": ["v1"],
        "operations": ["CREATE"],
        "resources": ["pods"],
        "scope": "Namespaced",
    },
    {
        "apiGroups": [""],
        "apiVersions": ["v1"],
        "operations": ["UPDATE"],
        "resources": [f"pods/{EPHEMERAL_CONTAINERS}"],
        "scope": "Namespaced",
    },
)
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


def operator_username(namespace: str, service_account: str = DEFAULT_SERVICE_ACCOUNT) -> str:
    """The username the apiserver gives the operator's ServiceAccount."""
    return f"system:serviceaccount:{namespace}:{service_account}"


def _cel_string(value: str) -> str:
    # Kubernetes names and usernames never hold quotes; refuse rather than escape.
    if "'" in value or "\\" in value:
        raise ValueError(f"{value!r} cannot be used in a matchCondition")
    return f"'{value}'"


def _not_the_operator(username: str) -> dict[str, str]:
    return {
        "name": "not-the-operator",
        "expression": f"request.userInfo.username != {_cel_string(username)}",
    }


def _not_a_controllers_own_object() -> dict[str, str]:
    """`admission.controlled_by_its_controller`, in CEL (the apiserver evaluates it)."""
    controllers = ", ".join(
        f"{_cel_string(owner)}: {_cel_string(controller)}"
        for owner, controller in sorted(CONTROLLER_OWNERS.items())
    )
    key = "r.apiVersion + '/' + r.kind"
    expression = (
        f"(has(request.subResource) && request.subResource == '{EPHEMERAL_CONTAINERS}')"
        " || object == null || !has(object.metadata.ownerReferences)"
        " || !object.metadata.ownerReferences.exists(r,"
        f" has(r.controller) && r.controller && ({key}) in {{{controllers}}}"
        f" && (request.userInfo.username == {_cel_string(CONTROLLER_MANAGER_USER)}"
        f" || request.userInfo.username == {_cel_string(CONTROLLER_SERVICE_ACCOUNT_PREFIX)}"
        f" + {{{controllers}}}[{key}]"
        " || (has(request.userInfo.groups)"
        f" && {_cel_string(MASTERS_GROUP)} in request.userInfo.groups)))"
    )
    return {"name": "not-a-controllers-own-object", "expression": expression}


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
    operator_user: str | None = None,
) -> dict[str, Any]:
    """The ValidatingWebhookConfiguration (see the module docstring).

    Give `url` (local runs: `https://127.0.0.1:9443`, the paths are appended) or `service`
    (in-cluster). `ca_bundle` is the PEM of the CA that signed the serving certificate;
    leave it out when cert-manager injects it (`annotations` with
    `cert-manager.io/inject-ca-from`). `operator_user` is the username the operator's
    writes come with (default: the ServiceAccount `prodready` in `operator_namespace`).
    """
    if (url is None) == (service is None):
        raise ValueError("give exactly one of url and service")
    if not 1 <= timeout_seconds <= 30:
        raise ValueError("timeout_seconds must be between 1 and 30 (the apiserver's limit)")
    user = operator_user if operator_user is not None else operator_username(operator_namespace)
    if not user:
        raise ValueError("the operator's username must not be empty")
    excluded = list(dict.fromkeys([operator_namespace, *ALWAYS_EXCLUDED, *excluded_namespaces]))
    not_excluded = _requirement(NAMESPACE_NAME_LABEL, "NotIn", excluded)
    enforced = _requirement(ENFORCE_LABEL, "In", ["true"])
    not_enforced = _requirement(ENFORCE_LABEL, "NotIn", ["true"])
    audited = _requirement(AUDIT_LABEL, "In", ["true"])
    not_audited = _requirement(AUDIT_LABEL, "NotIn", ["true"])
    checklist_conditions = [_not_the_operator(user), _not_a_controllers_own_object()]
    checked = [*WORKLOAD_RULES, PRODUCTION_SERVICE_RULE]

    def entry(
        entry_name: str,
        path: str,
        entry_rules: Sequence[Mapping[str, Any]],
        requirements: list[dict[str, Any]],
        *,
        policy: FailurePolicy = failure_policy,
        conditions: Sequence[Mapping[str, str]] = checklist_conditions,
    ) -> dict[str, Any]:
        webhook: dict[str, Any] = {
            "name": entry_name,
            "admissionReviewVersions": ["v1"],
            "sideEffects": "None",
            "failurePolicy": policy,
            "timeoutSeconds": timeout_seconds,
            "matchPolicy": "Equivalent",
            "rules": [dict(rule) for rule in entry_rules],
            "namespaceSelector": {"matchExpressions": [*requirements, not_excluded]},
            "objectSelector": {},
            "clientConfig": _client_config(path, url=url, service=service, ca_bundle=ca_bundle),
        }
        if conditions:
            webhook["matchConditions"] = [dict(condition) for condition in conditions]
        return webhook

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
            entry(f"enforce.workloads.{DOMAIN}", ENFORCE_PATH, checked, [enforced]),
            entry(
                f"audit.workloads.{DOMAIN}",
                AUDIT_PATH,
                checked,
                [audited, not_enforced],
                policy="Ignore",
            ),
            entry(
                f"productionservices.{DOMAIN}",
                ENFORCE_PATH,
                [PRODUCTION_SERVICE_RULE],
                [not_enforced, not_audited],
            ),
            entry(
                f"policy.workloads.{DOMAIN}",
                POLICY_PATH,
                WORKLOAD_RULES,
                [not_enforced, not_audited],
                policy="Ignore",
            ),
            entry(
                f"authorize.productionservices.{DOMAIN}",
                AUTHORIZE_PATH,
                [PRODUCTION_SERVICE_RULE],
                [],
                policy="Fail",
                conditions=(),
            ),
        ],
    }
