"""/metrics access: the TokenReview and SubjectAccessReview the operator sends, and the verdict."""

from __future__ import annotations

from typing import Any, cast

import pytest

from prodready.kube.access import metrics_access
from prodready.kube.client import KubeClient
from prodready.observability.health import Access


class FakeClient:
    """Answers the two reviews from canned statuses, recording what was asked."""

    def __init__(self, token_status: dict[str, Any], allowed: bool = False) -> None:
        self.token_status = token_status
        self.allowed = allowed
        self.sent: list[tuple[str, str, dict[str, Any]]] = []

    async def request(self, method: str, path: str, *, body: dict[str, Any]) -> dict[str, Any]:
        self.sent.append((method, path, body))
        if body["kind"] == "TokenReview":
            return {"status": self.token_status}
        return {"status": {"allowed": self.allowed}}


TOKEN = "t0ken"  # a made-up token for a fake apiserver


async def _access(fake: FakeClient) -> Access:
    return await metrics_access(cast(KubeClient, fake), TOKEN)


async def test_an_unauthenticated_token_is_not_authorised_at_all() -> None:
    fake = FakeClient({"authenticated": False, "error": "invalid bearer token"})
    assert await _access(fake) is Access.UNAUTHENTICATED
    ((method, path, body),) = fake.sent
    assert (method, path) == ("POST", "/apis/authentication.k8s.io/v1/tokenreviews")
    assert body["spec"] == {"token": TOKEN}


@pytest.mark.parametrize(
    ("allowed", "verdict"), [(True, Access.ALLOWED), (False, Access.FORBIDDEN)]
)
async def test_the_user_is_asked_about_get_on_the_metrics_url(
    allowed: bool, verdict: Access
) -> None:
    user = {
        "username": "system:serviceaccount:monitoring:prometheus",
        "uid": "1234",
        "groups": ["system:serviceaccounts", "system:authenticated"],
        "extra": {"authentication.kubernetes.io/pod-name": ["prometheus-0"]},
    }
    fake = FakeClient({"authenticated": True, "user": user}, allowed=allowed)
    assert await _access(fake) is verdict
    _, (method, path, body) = fake.sent
    assert (method, path) == ("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews")
    assert body["spec"] == {
        "user": user["username"],
        "uid": "1234",
        "groups": user["groups"],
        "extra": user["extra"],
        "nonResourceAttributes": {"path": "/metrics", "verb": "get"},
    }
    assert TOKEN not in str(body)  # the token goes to the TokenReview only


async def test_a_user_without_uid_or_extra_is_asked_about_as_is() -> None:
    fake = FakeClient({"authenticated": True, "user": {"username": "alice"}}, allowed=True)
    assert await _access(fake) is Access.ALLOWED
    assert fake.sent[1][2]["spec"] == {
        "user": "alice",
        "groups": [],
        "nonResourceAttributes": {"path": "/metrics", "verb": "get"},
    }
