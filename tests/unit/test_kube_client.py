"""The client counts every failed API call once, in prodready_api_errors, by Status reason."""

from __future__ import annotations

from collections.abc import AsyncIterator

import kopf
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from prodready.api.resource import Resource
from prodready.kube.client import ApiError, KubeClient
from prodready.observability.metrics import Metrics

DEPLOYMENTS = Resource(api_version="apps/v1", kind="Deployment", plural="deployments")


def _status(code: int, reason: str) -> web.Response:
    body = {"kind": "Status", "status": "Failure", "reason": reason, "code": code}
    return web.json_response(body, status=code)


async def _handle(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name == "forbidden":
        return _status(403, "Forbidden")
    if name == "missing":
        return _status(404, "NotFound")
    if name == "broken":
        return web.Response(status=500, text="not json")
    return web.json_response({"kind": "Deployment", "metadata": {"name": name}})


@pytest.fixture
async def server() -> AsyncIterator[TestServer]:
    app = web.Application()
    app.router.add_route("*", "/apis/apps/v1/namespaces/shop/deployments/{name}", _handle)
    async with TestServer(app) as running:
        yield running


def _errors(metrics: Metrics, reason: str) -> float:
    value = metrics.registry.get_sample_value("prodready_api_errors_total", {"reason": reason})
    return value or 0.0


async def _client(server: TestServer, metrics: Metrics | None) -> KubeClient:
    connection = kopf.ConnectionInfo(server=str(server.make_url("")), insecure=True)
    return KubeClient(connection, metrics=metrics)


async def test_a_failed_call_counts_once_by_its_status_reason(server: TestServer) -> None:
    metrics = Metrics()
    client = await _client(server, metrics)
    try:
        with pytest.raises(ApiError) as raised:
            await client.request("GET", DEPLOYMENTS.path("shop", "forbidden"))
        assert raised.value.status == 403
        assert _errors(metrics, "Forbidden") == 1
        with pytest.raises(ApiError):
            await client.apply(
                DEPLOYMENTS,
                {"metadata": {"name": "forbidden", "namespace": "shop"}},
                field_manager="prodready",
            )
        assert _errors(metrics, "Forbidden") == 2
        # Without a Status body the reason is the HTTP status: the label stays bounded.
        with pytest.raises(ApiError):
            await client.request("GET", DEPLOYMENTS.path("shop", "broken"))
        assert _errors(metrics, "500") == 1
    finally:
        await client.close()


async def test_an_answer_the_caller_expects_is_not_a_failure(server: TestServer) -> None:
    metrics = Metrics()
    client = await _client(server, metrics)
    try:
        assert await client.get(DEPLOYMENTS.path("shop", "missing")) is None
        assert await client.get_metadata(DEPLOYMENTS.path("shop", "missing")) is None
        assert not await client.delete(DEPLOYMENTS, "shop", "missing", uid="u")
        assert _errors(metrics, "NotFound") == 0
        # The same 404 where the caller did not expect it is a failed call.
        with pytest.raises(ApiError):
            await client.request("GET", DEPLOYMENTS.path("shop", "missing"))
        assert _errors(metrics, "NotFound") == 1
        answer = await client.get(DEPLOYMENTS.path("shop", "api"))
        assert answer is not None
        assert answer["metadata"]["name"] == "api"
    finally:
        await client.close()


async def test_a_client_without_metrics_still_raises(server: TestServer) -> None:
    client = await _client(server, None)
    try:
        with pytest.raises(ApiError):
            await client.request("GET", DEPLOYMENTS.path("shop", "forbidden"))
    finally:
        await client.close()
