"""The dashboard served from the operator: the chart's option and the process's wiring."""

from __future__ import annotations

from typing import Any

import aiohttp
import kopf
import pytest

from prodready.config import load_settings
from prodready.dashboard import serving
from tests.cluster.controlplane import free_port
from tests.unit.test_chart import env_of, render


def _kind(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == kind)


def test_off_by_default_in_the_chart() -> None:
    objects = render()
    assert "PRODREADY_DASHBOARD_PORT" not in env_of(objects)
    ports = _kind(objects, "Service")["spec"]["ports"]
    assert "http-dashboard" not in {p["name"] for p in ports}


def test_the_chart_serves_it_on_its_own_port() -> None:
    peers = [{"namespaceSelector": {"matchLabels": {"team": "platform"}}}]
    objects = render({"readinessDashboard": {"enabled": True, "port": 8091, "from": peers}})
    env = env_of(objects)
    assert env["PRODREADY_DASHBOARD_PORT"]["value"] == "8091"
    container = _kind(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "http-dashboard", "containerPort": 8091, "protocol": "TCP"} in container[
        "ports"
    ]
    service_ports = _kind(objects, "Service")["spec"]["ports"]
    assert {
        "name": "http-dashboard",
        "port": 8091,
        "targetPort": "http-dashboard",
        "protocol": "TCP",
    } in service_ports
    rules = _kind(objects, "NetworkPolicy")["spec"]["ingress"]
    assert {"ports": [{"port": "http-dashboard", "protocol": "TCP"}], "from": peers} in rules
    settings = load_settings({"PRODREADY_DASHBOARD_PORT": env["PRODREADY_DASHBOARD_PORT"]["value"]})
    assert settings.dashboard_port == 8091


@pytest.mark.parametrize("port", [8080, 9443, 0, 70000])
def test_the_chart_refuses_a_port_taken_or_out_of_range(port: int) -> None:
    from tests.generate import GenerateError

    with pytest.raises(GenerateError, match="readinessDashboard"):
        render({"readinessDashboard": {"enabled": True, "port": port}})


def test_no_handlers_without_a_port() -> None:
    registry = kopf.OperatorRegistry()
    serving.register(registry, load_settings({}))
    assert list(registry._activities.get_all_handlers()) == []


async def test_the_operator_serves_it_from_start_up_to_clean_up() -> None:
    port = free_port()
    settings = load_settings(
        {"PRODREADY_DASHBOARD_PORT": str(port), "PRODREADY_HEALTH_HOST": "127.0.0.1"}
    )
    registry = kopf.OperatorRegistry()
    serving.register(registry, settings)
    handlers = {h.id: h for h in registry._activities.get_all_handlers()}
    assert set(handlers) == {"start-dashboard", "stop-dashboard"}
    url = f"http://127.0.0.1:{port}/healthz"
    await handlers["start-dashboard"].fn()
    try:
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            assert response.status == 200
    finally:
        await handlers["stop-dashboard"].fn()
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            await session.get(url)
