"""The dashboard's server and its reads, against a fake client (the real cluster is in
tests/e2e/test_dashboard.py): routes, headers, caching, what is read and what is not."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any, cast

import pytest
from aiohttp.test_utils import TestClient, TestServer

from prodready.audit.reports import OPENREPORTS, build_report
from prodready.dashboard import command
from prodready.dashboard.server import DashboardServer
from prodready.kube.client import ApiError, KubeClient
from prodready.rules import evaluate
from tests.e2e.policy_support import bare_deployment, compliant_objects

NAMESPACE = "shop"


class FakeClient:
    """What the dashboard calls on a KubeClient: discovery and LISTs."""

    def __init__(self, served: dict[str, set[str]], items: dict[str, list[dict[str, Any]]]):
        self.served = served
        self.items = items
        self.lists: list[str] = []
        self.closed = False
        self.fail: dict[str, ApiError | OSError] = {}

    async def served_resources(self, api_version: str) -> set[str] | None:
        return self.served.get(api_version)

    async def list(self, path: str, *, label_selector: str | None = None) -> list[Any]:
        self.lists.append(path)
        for suffix, error in self.fail.items():
            if path.endswith(suffix):
                raise error
        plural = path.rsplit("/", 1)[1]
        return self.items.get(plural, [])

    async def close(self) -> None:
        self.closed = True


def _reports() -> list[dict[str, Any]]:
    workloads = [compliant_objects(NAMESPACE)[0], bare_deployment("worker", NAMESPACE)]
    bodies = []
    for report, workload in zip(evaluate(workloads), workloads, strict=True):
        bodies.append(build_report(OPENREPORTS, report, workload, max_results=100, now=time.time()))
    return bodies


def _fake(**served: set[str]) -> FakeClient:
    return FakeClient(
        {
            "openreports.io/v1alpha1": {"reports"},
            "prodready.io/v1alpha1": {"productionservices"},
            **{key.replace("_", "/"): value for key, value in served.items()},
        },
        {
            "reports": _reports(),
            "productionservices": [
                {
                    "metadata": {"namespace": NAMESPACE, "name": "hello"},
                    "status": {"conditions": [{"type": "Ready", "status": "True"}]},
                }
            ],
        },
    )


async def _client(fake: FakeClient, **kwargs: Any) -> TestClient[Any, Any]:
    server = DashboardServer(lambda: cast(KubeClient, fake), **kwargs)
    client: TestClient[Any, Any] = TestClient(TestServer(server.app()))
    await client.start_server()
    return client


async def test_pages_headers_and_notes() -> None:
    fake = _fake()
    client = await _client(fake, refresh_seconds=60)
    try:
        response = await client.get("/")
        assert response.status == 200
        page = await response.text()
        csp = response.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp
        assert "default-src 'none'" in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Cache-Control"] == "no-store"
        assert "Deployment shop/worker" in page
        assert "hello" in page
        # ReadinessExceptions are not served here: a note, not an error.
        assert "ReadinessException is not served" in page
        detail = await client.get("/workloads/shop/Deployment/worker")
        assert detail.status == 200
        assert "PR-HC-001" in await detail.text()
        missing = await client.get("/workloads/shop/Deployment/nope")
        assert missing.status == 404
        assert "Content-Security-Policy" in missing.headers
        assert (await client.post("/")).status == 405
        assert (await client.get("/healthz")).status == 200
        # One read per refresh period, however many pages were served.
        assert fake.lists.count("/apis/openreports.io/v1alpha1/reports") == 1
    finally:
        await client.close()
    assert fake.closed


async def test_unreadable_kinds_become_notes() -> None:
    fake = _fake(prodready_io_v1alpha1={"productionservices", "readinessexceptions"})
    fake.served["prodready.io/v1alpha1"] = {"productionservices", "readinessexceptions"}
    fake.fail["productionservices"] = ApiError(403, "Forbidden", "no", "GET", "/x")
    fake.fail["reports"] = ApiError(403, "Forbidden", "no", "GET", "/x")
    client = await _client(fake, namespaces=[NAMESPACE], refresh_seconds=0)
    try:
        page = await (await client.get("/")).text()
        assert "the policy reports could not be read: 403 Forbidden" in page
        assert "ProductionServices could not be read: 403 Forbidden" in page
        assert "/apis/prodready.io/v1alpha1/namespaces/shop/readinessexceptions" in fake.lists
    finally:
        await client.close()


async def test_no_report_crd_and_an_unreachable_cluster() -> None:
    fake = _fake()
    del fake.served["openreports.io/v1alpha1"]
    client = await _client(fake, refresh_seconds=0)
    try:
        page = await (await client.get("/")).text()
        assert "the cluster serves no policy reports" in page
        fake.served["openreports.io/v1alpha1"] = {"reports"}
        fake.items["reports"] = []
        page = await (await client.get("/")).text()
        assert "no prodready reports yet" in page
        fake.fail["reports"] = OSError("connection refused")
        response = await client.get("/")
        assert response.status == 503
        assert "cannot be reached: connection refused" in await response.text()
    finally:
        await client.close()


def _args(**overrides: Any) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    args = parser.parse_args([])
    for key, value in overrides.items():
        setattr(args, key, value)
    return args


def test_command_refuses_a_bad_port(capsys: pytest.CaptureFixture[str]) -> None:
    assert command.run(_args(port=70000)) == command.EXIT_ERROR
    assert "--port must be between 0 and 65535" in capsys.readouterr().err


def test_command_without_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    missing = tmp_path / "nope"
    assert command.run(_args(kubeconfig=str(missing))) == command.EXIT_ERROR
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert "Traceback" not in err


async def test_serve_prints_where_and_stops_when_cancelled() -> None:
    import asyncio
    import io

    import aiohttp

    out = io.StringIO()
    server = DashboardServer(lambda: cast(KubeClient, _fake()))
    task = asyncio.create_task(command.serve(server, "127.0.0.1", 0, out))
    for _ in range(200):
        if out.getvalue():
            break
        await asyncio.sleep(0.01)
    url = out.getvalue().split(" on ", 1)[1].strip()
    assert url.startswith("http://127.0.0.1:")
    async with aiohttp.ClientSession() as session, session.get(url + "healthz") as response:
        assert response.status == 200
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_the_pinned_report_api_is_read_when_both_are_served() -> None:
    """PRODREADY_REPORT_API (the operator's setting, `--report-api` here) decides which of
    two served report APIs the pages read, as it decides which one the audit writes."""
    fake = _fake(**{"wgpolicyk8s.io_v1alpha2": {"policyreports"}})
    client = await _client(fake, report_api="wgpolicyk8s")
    try:
        assert (await client.get("/")).status == 200
        assert "/apis/wgpolicyk8s.io/v1alpha2/policyreports" in fake.lists
        assert "/apis/openreports.io/v1alpha1/reports" not in fake.lists
    finally:
        await client.close()
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    assert parser.parse_args(["--report-api", "openreports"]).report_api == "openreports"
