"""`/authorize`: what a ProductionService implies, as SubjectAccessReviews for its author.

The mapping from a spec to the permissions it needs is pure and tested case by case; the
Authorizer is driven with a fake SubjectAccessReview answerer (the real apiserver answers
in tests/e2e/test_security_authorization.py) to prove caching, concurrency, the deadline
and failing closed; and the route is served over real HTTPS by the WebhookServer, with the
client created on the webhook's own thread.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest

from prodready import render
from prodready.config import load_settings
from prodready.kube.client import ApiError, KubeClient
from prodready.kube.store import ObjectStore
from prodready.observability.metrics import Metrics
from prodready.rules.grants import GrantPolicy
from prodready.webhook.admission import AdmissionRequest, ReviewError, UserInfo, parse_review
from prodready.webhook.authorization import (
    SUBJECT_ACCESS_REVIEW_PATH,
    AccessCheck,
    Authorizer,
    required_access,
    subject_access_review,
)
from prodready.webhook.certificates import ReloadingTLS, generate_self_signed
from prodready.webhook.server import WebhookServer

DEFAULTS = GrantPolicy.from_settings(load_settings({}))
ALICE = UserInfo(
    username="alice",
    uid="u-1",
    groups=("dev", "system:authenticated"),
    extra=(("scopes", ("a", "b")),),
)


def service(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "prodready.io/v1alpha1",
        "kind": "ProductionService",
        "metadata": {"name": "api"},
        "spec": {"image": "registry.example.com/shop/api:1.0.0", "environment": "dev", **spec},
    }


def needed(obj: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    return [
        (c.verb, c.resource, c.name, c.reason) for c in required_access(render.parse(obj), "shop")
    ]


def request(
    obj: dict[str, Any] | None,
    *,
    operation: str = "CREATE",
    old: dict[str, Any] | None = None,
    kind: str = "ProductionService",
    user: UserInfo = ALICE,
) -> AdmissionRequest:
    return AdmissionRequest(
        uid="uid-1",
        kind=kind,
        operation=operation,
        namespace="shop",
        name="api",
        object=obj,
        old_object=old,
        dry_run=False,
        user=user,
    )


# -- the spec -> permissions mapping (pure) ---------------------------------------------


def test_a_minimal_service_needs_create_of_what_it_renders() -> None:
    # One replica: no PodDisruptionBudget; no exposure, no autoscaling: nothing else.
    assert needed(service(replicas=1)) == [
        ("create", "services", "", "the ProductionService creates a Service"),
        ("create", "deployments", "", "the ProductionService creates a Deployment"),
    ]


def test_every_rendered_workload_kind_is_checked_but_not_the_monitoring_ones() -> None:
    obj = service(
        replicas=3,
        autoscaling={"minReplicas": 2, "maxReplicas": 5},
        exposure={"host": "api.example.com"},
    )
    checks = required_access(render.parse(obj), "shop")
    assert [(c.group, c.resource) for c in checks] == [
        ("", "services"),
        ("apps", "deployments"),
        ("autoscaling", "horizontalpodautoscalers"),
        ("policy", "poddisruptionbudgets"),
        ("networking.k8s.io", "ingresses"),
    ]
    kinds = {child["kind"] for child in render.render(obj)}
    assert {"ServiceMonitor", "PrometheusRule"} <= kinds  # rendered, not required


def test_every_referenced_secret_needs_get_by_name_with_its_field() -> None:
    obj = service(
        replicas=1,
        secretEnv=[
            {"name": "A", "secretName": "db-creds", "key": "url"},
            {"name": "B", "secretName": "db-creds", "key": "password"},
        ],
        envFromSecrets=[{"secretName": "app-env"}],
        exposure={"host": "api.example.com", "tlsSecretName": "api-tls"},
        pod={"imagePullSecrets": ["registry"]},
    )
    secrets = [
        (verb, name, reason)
        for verb, resource, name, reason in needed(obj)
        if resource == "secrets"
    ]
    assert secrets == [
        ("get", "api-tls", "spec.exposure.tlsSecretName"),
        ("get", "app-env", "spec.envFromSecrets[0].secretName"),
        ("get", "db-creds", "spec.secretEnv[0].secretName"),
        ("get", "registry", "spec.pod.imagePullSecrets[0]"),
    ]
    # The one definition of what a spec refers to decides the names.
    assert {name for _, name, _ in secrets} == {
        reference.name for reference in render.referenced_secrets(render.parse(obj))
    }


def test_a_named_service_account_needs_create_pods() -> None:
    checks = needed(service(replicas=1, pod={"serviceAccountName": "admin"}))
    assert checks[-1] == (
        "create",
        "pods",
        "",
        'spec.pod.serviceAccountName: running pods as ServiceAccount "admin" needs it',
    )


def test_the_subject_access_review_carries_the_whole_identity() -> None:
    check = AccessCheck(
        verb="get", group="", resource="secrets", namespace="shop", name="db", reason="x"
    )
    assert subject_access_review(ALICE, check) == {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "resourceAttributes": {
                "namespace": "shop",
                "verb": "get",
                "group": "",
                "resource": "secrets",
                "name": "db",
            },
            "user": "alice",
            "uid": "u-1",
            "groups": ["dev", "system:authenticated"],
            "extra": {"scopes": ["a", "b"]},
        },
    }
    anonymous = subject_access_review(UserInfo(), check)
    assert set(anonymous["spec"]) == {"resourceAttributes"}


def test_denial_names_user_verb_resource_namespace_and_field() -> None:
    check = AccessCheck(
        verb="get",
        group="",
        resource="secrets",
        namespace="shop",
        name="db-creds",
        reason="spec.secretEnv[0].secretName",
    )
    assert check.denial(ALICE) == (
        'user "alice" may not get secrets "db-creds" in namespace "shop" '
        "(spec.secretEnv[0].secretName)"
    )
    create = AccessCheck(
        verb="create", group="apps", resource="deployments", namespace="shop", reason="r"
    )
    assert create.resource_text == "deployments.apps"


# -- userInfo from the review -------------------------------------------------------------


def _review(user_info: Any) -> bytes:
    return json.dumps(
        {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "u",
                "kind": {"kind": "ProductionService"},
                "operation": "CREATE",
                "namespace": "shop",
                "object": service(),
                "userInfo": user_info,
            },
        }
    ).encode()


def test_parse_review_reads_user_info() -> None:
    parsed = parse_review(
        _review(
            {
                "username": "alice",
                "uid": "u-1",
                "groups": ["dev", "system:authenticated"],
                "extra": {"scopes": ["a", "b"]},
            }
        )
    )
    assert parsed.user == ALICE


@pytest.mark.parametrize(
    ("user_info", "message"),
    [
        ("alice", "request.userInfo must be an object"),
        ({"groups": "dev"}, "groups must be a list of strings"),
        ({"extra": {"k": "v"}}, "extra must map keys to lists of strings"),
    ],
)
def test_parse_review_refuses_a_malformed_user_info(user_info: Any, message: str) -> None:
    with pytest.raises(ReviewError, match=message):
        parse_review(_review(user_info))


# -- the Authorizer with a fake apiserver ----------------------------------------------------


class FakeApiserver:
    """Answers SubjectAccessReviews from a set of (user, verb, resource, name) allowed."""

    def __init__(self, allowed: set[tuple[str, str, str, str]], *, delay: float = 0.0) -> None:
        self.allowed = allowed
        self.delay = delay
        self.calls: list[Mapping[str, Any]] = []
        self.concurrent = 0
        self.most_concurrent = 0
        self.error: Exception | None = None

    async def __call__(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        self.calls.append(body)
        self.concurrent += 1
        self.most_concurrent = max(self.most_concurrent, self.concurrent)
        try:
            await asyncio.sleep(self.delay)
            if self.error is not None:
                raise self.error
            spec = body["spec"]
            attributes = spec["resourceAttributes"]
            key = (
                spec.get("user", ""),
                attributes["verb"],
                attributes["resource"],
                attributes.get("name", ""),
            )
            wildcard = (key[0], key[1], key[2], "*")
            return {"status": {"allowed": key in self.allowed or wildcard in self.allowed}}
        finally:
            self.concurrent -= 1


EDITOR = {
    ("alice", "create", resource, "")
    for resource in (
        "services",
        "deployments",
        "ingresses",
        "poddisruptionbudgets",
        "horizontalpodautoscalers",
    )
}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def authorizer(apiserver: FakeApiserver, **options: Any) -> Authorizer:
    return Authorizer(policy=DEFAULTS, review=apiserver, **options)


async def test_allowed_when_the_author_may_do_everything() -> None:
    apiserver = FakeApiserver(EDITOR | {("alice", "get", "secrets", "db")})
    obj = service(secretEnv=[{"name": "A", "secretName": "db", "key": "k"}])
    response = await authorizer(apiserver).review(request(obj))
    assert response == {"uid": "uid-1", "allowed": True}
    assert len(apiserver.calls) == 4  # service, deployment, PDB (2 replicas), secret


async def test_denied_naming_each_missing_permission_and_allow_list() -> None:
    apiserver = FakeApiserver(EDITOR)
    obj = service(
        secretEnv=[{"name": "A", "secretName": "db-creds", "key": "k"}],
        envFromSecrets=[{"secretName": "all-env"}],
        pod={"serviceAccountName": "admin", "tolerations": [{"operator": "Exists"}]},
    )
    response = await authorizer(apiserver).review(request(obj))
    assert response["allowed"] is False
    assert response["status"]["code"] == 403
    message = response["status"]["message"]
    assert message.startswith("prodready: ")
    assert message.endswith("; a ProductionService cannot grant what its author lacks")
    assert (
        'user "alice" may not get secrets "db-creds" in namespace "shop" '
        "(spec.secretEnv[0].secretName)"
    ) in message
    assert (
        'may not get secrets "all-env" in namespace "shop" (spec.envFromSecrets[0].secretName)'
        in message
    )
    assert 'may not create pods in namespace "shop" (spec.pod.serviceAccountName' in message
    assert "spec.pod.tolerations[0]: a toleration with no key" in message


async def test_allow_list_violations_deny_even_an_all_powerful_author() -> None:
    apiserver = FakeApiserver(EDITOR)
    obj = service(exposure={"host": "*.example.com"})
    response = await authorizer(apiserver).review(request(obj))
    assert response["allowed"] is False
    assert 'spec.exposure.host: wildcard host "*.example.com"' in response["status"]["message"]


async def test_answers_are_cached_briefly_per_identity() -> None:
    apiserver = FakeApiserver(EDITOR)
    clock = Clock()
    subject = authorizer(apiserver, clock=clock, cache_seconds=5.0)
    obj = service(replicas=1)
    assert (await subject.review(request(obj)))["allowed"] is True
    assert len(apiserver.calls) == 2
    assert (await subject.review(request(obj)))["allowed"] is True
    assert len(apiserver.calls) == 2  # cached
    # Another identity is never answered from alice's cache, even with the same name.
    other = UserInfo(username="alice", groups=("system:masters",))
    await subject.review(request(obj, user=other))
    assert len(apiserver.calls) == 4
    clock.now += 5.0
    await subject.review(request(obj))
    assert len(apiserver.calls) == 6  # expired


async def test_the_cache_is_bounded() -> None:
    apiserver = FakeApiserver(EDITOR)
    subject = authorizer(apiserver, cache_entries=3)
    for index in range(5):
        user = UserInfo(username=f"user-{index}")
        await subject.review(request(service(replicas=1), user=user))
    assert len(subject._cache) == 3


async def test_reviews_of_one_request_run_concurrently_and_bounded() -> None:
    apiserver = FakeApiserver(EDITOR | {("alice", "get", "secrets", "*")}, delay=0.01)
    obj = service(
        replicas=1,
        secretEnv=[{"name": f"V{i}", "secretName": f"s-{i}", "key": "k"} for i in range(20)],
    )
    response = await authorizer(apiserver, concurrency=4).review(request(obj))
    assert response["allowed"] is True
    assert len(apiserver.calls) == 22
    assert apiserver.most_concurrent == 4


@pytest.mark.parametrize(
    "error",
    [
        ApiError(403, "Forbidden", "cannot create subjectaccessreviews", "POST", "/x"),
        aiohttp.ClientConnectionError("refused"),
        OSError("unreachable"),
    ],
    ids=["forbidden", "connection", "os"],
)
async def test_a_failed_review_denies_and_is_not_cached(error: Exception) -> None:
    apiserver = FakeApiserver(EDITOR)
    apiserver.error = error
    subject = authorizer(apiserver)
    response = await subject.review(request(service(replicas=1)))
    assert response["allowed"] is False
    message = response["status"]["message"]
    assert message.startswith("prodready could not check the author's permissions")
    assert "denied until they can be checked" in message
    apiserver.error = None
    assert (await subject.review(request(service(replicas=1))))["allowed"] is True


async def test_a_review_without_status_denies() -> None:
    async def no_status(_body: Mapping[str, Any]) -> Mapping[str, Any]:
        return {"kind": "SubjectAccessReview"}

    response = await Authorizer(policy=DEFAULTS, review=no_status).review(request(service()))
    assert response["allowed"] is False
    assert "has no status" in response["status"]["message"]


async def test_an_explicit_denial_wins_over_allowed() -> None:
    async def both(_body: Mapping[str, Any]) -> Mapping[str, Any]:
        return {"status": {"allowed": True, "denied": True}}

    response = await Authorizer(policy=DEFAULTS, review=both).review(request(service()))
    assert response["allowed"] is False


async def test_a_slow_apiserver_is_denied_within_the_deadline() -> None:
    apiserver = FakeApiserver(EDITOR, delay=5.0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    response = await authorizer(apiserver, deadline_seconds=0.2).review(request(service()))
    assert loop.time() - started < 2.0
    assert response["allowed"] is False
    assert "no answer within 0.2 s" in response["status"]["message"]


@pytest.mark.parametrize(
    ("case", "make"),
    [
        ("delete", lambda: request(None, operation="DELETE")),
        ("other kind", lambda: request({"kind": "Deployment"}, kind="Deployment")),
        (
            "being deleted",
            lambda: request(
                {
                    **service(),
                    "metadata": {"name": "api", "deletionTimestamp": "2026-01-01T00:00:00Z"},
                }
            ),
        ),
        (
            "update without a spec change",
            lambda: request(
                {
                    **service(exposure={"host": "*.x.io"}),
                    "metadata": {"name": "api", "labels": {"a": "b"}},
                },
                operation="UPDATE",
                old=service(exposure={"host": "*.x.io"}),
            ),
        ),
        ("a spec that renders nothing", lambda: request(service(replicas="many"))),
    ],
)
async def test_allowed_without_asking(case: str, make: Any) -> None:
    apiserver = FakeApiserver(set())
    response = await authorizer(apiserver).review(make())
    assert response == {"uid": "uid-1", "allowed": True}, case
    assert apiserver.calls == []


async def test_an_update_changing_the_spec_is_checked_whole() -> None:
    apiserver = FakeApiserver(EDITOR)
    old = service(replicas=1)
    new = service(replicas=1, secretEnv=[{"name": "A", "secretName": "db", "key": "k"}])
    response = await authorizer(apiserver).review(request(new, operation="UPDATE", old=old))
    assert response["allowed"] is False
    assert 'may not get secrets "db"' in response["status"]["message"]


# -- the default client ------------------------------------------------------------------


class FakeClient:
    """Just enough of KubeClient: POST a SubjectAccessReview, close."""

    def __init__(self, answer: bool = True) -> None:
        self.answer = answer
        self.requests: list[tuple[str, str, Any]] = []
        self.threads: set[str] = set()
        self.closed = False

    async def request(self, method: str, path: str, *, body: Any = None) -> dict[str, Any]:
        self.threads.add(threading.current_thread().name)
        self.requests.append((method, path, body))
        return {"status": {"allowed": self.answer}}

    async def close(self) -> None:
        self.threads.add(threading.current_thread().name)
        self.closed = True


async def test_the_default_review_posts_through_a_client_made_on_first_use() -> None:
    made: list[FakeClient] = []

    def factory() -> KubeClient:
        made.append(FakeClient())
        return cast(KubeClient, made[-1])

    subject = Authorizer(policy=DEFAULTS, client_factory=factory)
    assert made == []
    assert (await subject.review(request(service(replicas=1))))["allowed"] is True
    assert (await subject.review(request(service(replicas=2))))["allowed"] is True
    (client,) = made
    assert [(m, p) for m, p, _ in client.requests] == [("POST", SUBJECT_ACCESS_REVIEW_PATH)] * 3
    assert client.requests[0][2]["kind"] == "SubjectAccessReview"
    await subject.close()
    await subject.close()  # idempotent
    assert client.closed


# -- the route, served over HTTPS by the WebhookServer -----------------------------------------


async def test_the_server_answers_authorize_on_its_own_thread(tmp_path: Path) -> None:
    generated = generate_self_signed(tmp_path, ["127.0.0.1"])
    client = FakeClient(answer=False)
    metrics = Metrics(process_metrics=False)
    server = WebhookServer(
        host="127.0.0.1",
        port=0,
        tls=ReloadingTLS(generated.cert_file, generated.key_file),
        store=ObjectStore(),
        metrics=metrics,
        authorizer=Authorizer(policy=DEFAULTS, client_factory=lambda: cast(KubeClient, client)),
    )
    await server.start()
    context = ssl.create_default_context(cafile=str(generated.ca_file))
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
            url = f"https://127.0.0.1:{server.port}/authorize"
            body = json.loads(_review({"username": "alice", "groups": ["dev"]}))
            async with session.post(url, json=body) as response:
                assert response.status == 200
                answer = await response.json()
            async with session.post(url, data=b"{}") as malformed:
                assert malformed.status == 400
    finally:
        await server.stop()
    assert answer["response"]["allowed"] is False
    assert (
        'user "alice" may not create services in namespace "shop"'
        in (answer["response"]["status"]["message"])
    )
    # Created, used and closed on the webhook's thread, never on the caller's loop.
    assert client.threads == {"admission-webhook"}
    assert client.closed
    labels = {"kind": "ProductionService", "operation": "CREATE", "allowed": "false"}
    assert metrics.registry.get_sample_value("prodready_webhook_requests_total", labels) == 1


async def test_without_an_authorizer_there_is_no_authorize_route(tmp_path: Path) -> None:
    generated = generate_self_signed(tmp_path, ["127.0.0.1"])
    server = WebhookServer(
        host="127.0.0.1",
        port=0,
        tls=ReloadingTLS(generated.cert_file, generated.key_file),
        store=ObjectStore(),
        metrics=Metrics(process_metrics=False),
    )
    app = server.application()
    assert all(route.resource.canonical != "/authorize" for route in app.router.routes())


async def test_an_unexpected_failure_is_a_500_and_the_apiserver_fails_closed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(Authorizer):
        async def review(self, request: AdmissionRequest) -> dict[str, Any]:
            raise RuntimeError("boom")

    generated = generate_self_signed(tmp_path, ["127.0.0.1"])
    server = WebhookServer(
        host="127.0.0.1",
        port=0,
        tls=ReloadingTLS(generated.cert_file, generated.key_file),
        store=ObjectStore(),
        metrics=Metrics(process_metrics=False),
        authorizer=Broken(policy=DEFAULTS),
    )
    await server.start()
    context = ssl.create_default_context(cafile=str(generated.ca_file))
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
            url = f"https://127.0.0.1:{server.port}/authorize"
            async with session.post(url, data=_review({"username": "alice"})) as response:
                status, text = response.status, await response.text()
    finally:
        await server.stop()
    # The authorize entry's failurePolicy is Fail: a 500 denies the request.
    assert status == 500
    assert text == "prodready could not check the author's permissions; see the operator's log\n"
    assert "Traceback" not in text
    assert "authorization review failed" in caplog.text
