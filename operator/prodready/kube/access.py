"""Who may read /metrics: a bearer token checked by the apiserver, as controller-runtime does.

The apiserver authenticates the token (a TokenReview) and authorises its user for `get` on
the non-resource URL `/metrics` (a SubjectAccessReview). A cluster administrator grants it
with a ClusterRole rule `nonResourceURLs: ["/metrics"], verbs: ["get"]` (the chart's
`<release>-metrics-reader`), bound to Prometheus' ServiceAccount. The token is never
logged or kept; the health server caches verdicts by its hash.
"""

from __future__ import annotations

from typing import Any, Final

from prodready.kube.client import KubeClient
from prodready.observability.health import Access

__all__ = ["METRICS_PATH", "metrics_access"]

METRICS_PATH: Final = "/metrics"
_AUTHN_REVIEWS: Final = "/apis/authentication.k8s.io/v1/tokenreviews"
_AUTHZ_REVIEWS: Final = "/apis/authorization.k8s.io/v1/subjectaccessreviews"


async def metrics_access(client: KubeClient, token: str) -> Access:
    """Whether the apiserver says `token` may `get` /metrics."""
    review = await client.request(
        "POST",
        _AUTHN_REVIEWS,
        body={
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {"token": token},
        },
    )
    status = review.get("status") or {}
    if not status.get("authenticated"):
        return Access.UNAUTHENTICATED
    user: dict[str, Any] = status.get("user") or {}
    spec: dict[str, Any] = {
        "user": user.get("username", ""),
        "groups": list(user.get("groups") or ()),
        "nonResourceAttributes": {"path": METRICS_PATH, "verb": "get"},
    }
    if user.get("uid"):
        spec["uid"] = user["uid"]
    if user.get("extra"):
        spec["extra"] = user["extra"]
    verdict = await client.request(
        "POST",
        _AUTHZ_REVIEWS,
        body={
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": spec,
        },
    )
    allowed = bool((verdict.get("status") or {}).get("allowed"))
    return Access.ALLOWED if allowed else Access.FORBIDDEN
