"""The webhook server over real HTTPS on loopback: answers, errors, metrics."""

from __future__ import annotations

import copy
import json
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from prodready.audit.inventory import Inventory
from prodready.observability.metrics import Metrics
from prodready.webhook import server as server_module
from prodready.webhook.certificates import ReloadingTLS, generate_self_signed
from prodready.webhook.server import WebhookServer

FIXTURE = Path(__file__).parents[1] / "fixtures" / "rules" / "compliant.yaml"


def _objects() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(FIXTURE.read_text()) if d and d["kind"] != "Secret"]


def _review(obj: dict[str, Any] | None, operation: str = "CREATE") -> dict[str, Any]:
    request: dict[str, Any] = {
        "uid": "uid-1",
        "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
        "operation": operation,
        "namespace": "shop",
        "name": "api",
    }
    if obj is not None:
        request["object"] = obj
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


class Running:
    def __init__(self, server: WebhookServer, session: aiohttp.ClientSession, metrics: Metrics):
        self.server = server
        self.session = session
        self.metrics = metrics

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.server.port}{path}"

    async def post(self, path: str, body: bytes) -> tuple[int, str]:
        async with self.session.post(self.url(path), data=body) as response:
            return response.status, await response.text()

    def count(self, **labels: str) -> float:
        value = self.metrics.registry.get_sample_value("prodready_webhook_requests_total", labels)
        return value or 0.0


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    generated = generate_self_signed(tmp_path, ["127.0.0.1"])
    inventory = Inventory()
    for body in _objects()[1:]:
        inventory.put(body)
    metrics = Metrics(process_metrics=False)
    server = WebhookServer(
        host="127.0.0.1",
        port=0,
        tls=ReloadingTLS(generated.cert_file, generated.key_file),
        inventory=inventory,
        metrics=metrics,
    )
    await server.start()
    client = ssl.create_default_context(cafile=str(generated.ca_file))
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client))
    try:
        yield Running(server, session, metrics)
    finally:
        await session.close()
        await server.stop()
        await server.stop()  # idempotent


async def test_enforce_path_denies_and_counts(running: Running) -> None:
    broken = copy.deepcopy(_objects()[0])
    del broken["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]
    status, text = await running.post("/validate/enforce", json.dumps(_review(broken)).encode())
    assert status == 200
    review = json.loads(text)
    assert review["apiVersion"] == "admission.k8s.io/v1"
    assert review["response"]["uid"] == "uid-1"
    assert review["response"]["allowed"] is False
    assert "PR-HC-001" in review["response"]["status"]["message"]
    assert running.count(kind="Deployment", operation="CREATE", allowed="false") == 1


async def test_audit_path_allows_with_warnings_using_the_inventory(running: Running) -> None:
    compliant = _objects()[0]
    status, text = await running.post("/validate/audit", json.dumps(_review(compliant)).encode())
    assert status == 200
    response = json.loads(text)["response"]
    assert response["allowed"] is True
    assert "warnings" not in response  # its ServiceMonitor, PDB, ... are in the inventory
    assert running.count(kind="Deployment", operation="CREATE", allowed="true") == 1


async def test_delete_is_allowed_without_evaluating(running: Running) -> None:
    status, text = await running.post(
        "/validate/enforce", json.dumps(_review(None, "DELETE")).encode()
    )
    assert status == 200
    assert json.loads(text)["response"] == {"uid": "uid-1", "allowed": True}


async def test_malformed_review_is_a_400_with_the_reason(running: Running) -> None:
    status, text = await running.post("/validate/enforce", b"{broken")
    assert status == 400
    assert text.startswith("request body is not JSON")
    assert "Traceback" not in text
    assert running.count() == 0


async def test_unknown_paths_and_methods(running: Running) -> None:
    status, _ = await running.post("/validate/other", b"{}")
    assert status == 404
    async with running.session.get(running.url("/validate/enforce")) as response:
        assert response.status == 405


async def test_an_evaluation_bug_is_a_500_without_a_traceback(
    running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*_args: Any, **_kwargs: Any) -> dict[str, Any]:
        raise RuntimeError("boom")

    monkeypatch.setattr(server_module, "decide", explode)
    status, text = await running.post(
        "/validate/enforce", json.dumps(_review(_objects()[0])).encode()
    )
    assert status == 500
    assert "could not evaluate" in text
    assert "boom" not in text
    assert "Traceback" not in text


async def test_port_is_known_only_once_started(tmp_path: Path) -> None:
    generated = generate_self_signed(tmp_path, ["127.0.0.1"])
    server = WebhookServer(
        host="127.0.0.1",
        port=0,
        tls=ReloadingTLS(generated.cert_file, generated.key_file),
        inventory=Inventory(),
        metrics=Metrics(process_metrics=False),
    )
    with pytest.raises(RuntimeError, match="not started"):
        _ = server.port


async def test_a_port_in_use_fails_start(tmp_path: Path) -> None:
    generated = generate_self_signed(tmp_path, ["127.0.0.1"])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = WebhookServer(
            host="127.0.0.1",
            port=taken.getsockname()[1],
            tls=ReloadingTLS(generated.cert_file, generated.key_file),
            inventory=Inventory(),
            metrics=Metrics(process_metrics=False),
        )
        with pytest.raises(OSError, match="in use"):
            await server.start()
        await server.stop()
