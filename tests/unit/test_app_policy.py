"""PolicyRuntime: the webhook's TLS, start/stop, store changes, kopf handlers; the store's
seeding (kube/store.py `seed`) as the operator's start-up calls it."""

from __future__ import annotations

import json
import socket
import ssl
from pathlib import Path
from typing import Any, cast

import aiohttp
import kopf
import pytest

from prodready.app.policy import PolicyRuntime, default_environment, register_handlers
from prodready.config import load_settings
from prodready.kube.client import ApiError, KubeClient
from prodready.kube.store import AUDITED_RESOURCES, ObjectStore, seed
from prodready.observability.metrics import Metrics
from prodready.webhook.certificates import generate_self_signed
from tests.cluster.controlplane import free_port


class SeedApi:
    """Discovery and LISTs for the store's first fill."""

    def __init__(self) -> None:
        self.listed: list[str] = []

    async def served_resources(self, api_version: str) -> set[str] | None:
        return {"apps/v1": {"deployments", "statefulsets", "daemonsets"}, "v1": {"services"}}.get(
            api_version
        )

    async def list(self, path: str, *, label_selector: str | None = None) -> list[dict[str, Any]]:
        self.listed.append(path)
        if path.endswith("/deployments"):
            namespace = path.split("/")[5] if "/namespaces/" in path else "shop"
            return [{"metadata": {"name": "api", "namespace": namespace, "resourceVersion": "1"}}]
        return []


def _runtime(api: SeedApi, **environment: str) -> PolicyRuntime:
    settings = load_settings(
        {"PRODREADY_WEBHOOK_HOST": "127.0.0.1", "PRODREADY_WEBHOOK_PORT": str(free_port())}
        | environment
    )
    runtime = PolicyRuntime(
        settings,
        cast(KubeClient, api),
        Metrics(process_metrics=False),
        store=ObjectStore(),
        is_leading=lambda: False,
    )
    runtime.store.subscribe(runtime.on_change)
    return runtime


async def _seed(runtime: PolicyRuntime, api: SeedApi) -> None:
    await seed(cast(KubeClient, api), runtime.store, AUDITED_RESOURCES, runtime.settings.namespaces)


async def test_seed_start_serves_a_generated_certificate_and_stop_cleans_up() -> None:
    api = SeedApi()
    runtime = _runtime(api)
    await _seed(runtime, api)
    await runtime.start()
    try:
        stored = runtime.store.get("Deployment", "shop", "api")
        assert stored is not None
        assert stored["kind"] == "Deployment"  # LIST items carry no kind: filled in
        assert "/apis/monitoring.coreos.com/v1/servicemonitors" not in api.listed  # not served
        generated = runtime.generated
        assert generated is not None
        assert runtime.webhook is not None
        context = ssl.create_default_context(cafile=str(generated.ca_file))
        review = {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "u",
                "kind": {"kind": "Deployment"},
                "operation": "DELETE",
                "namespace": "shop",
            },
        }
        async with (
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session,
            session.post(
                f"https://127.0.0.1:{runtime.webhook.port}/validate/enforce",
                data=json.dumps(review),
            ) as response,
        ):
            assert (await response.json())["response"]["allowed"] is True
    finally:
        await runtime.stop()
    assert not generated.directory.exists()
    await runtime.stop()  # idempotent


async def test_mounted_certificate_files_are_served_and_watched(tmp_path: Path) -> None:
    generated = generate_self_signed(tmp_path, ["127.0.0.1"])
    api = SeedApi()
    runtime = _runtime(
        api,
        PRODREADY_WEBHOOK_CERT_FILE=str(generated.cert_file),
        PRODREADY_WEBHOOK_KEY_FILE=str(generated.key_file),
        PRODREADY_NAMESPACES="shop,web",
        PRODREADY_ENVIRONMENT_DEFAULT="staging",
    )
    await _seed(runtime, api)
    await runtime.start()
    try:
        assert runtime.generated is None
        assert runtime.tls is not None
        assert runtime.tls.cert_file == generated.cert_file
        assert [task.get_name() for task in runtime._tasks] == ["audit", "vap-sync", "webhook-tls"]
        assert runtime.store.namespaces() == ["shop", "web"]
        assert default_environment(runtime.settings) == "staging"
    finally:
        await runtime.stop()
    assert generated.cert_file.exists()  # mounted files are not ours to delete


async def test_store_changes_reach_the_audit() -> None:
    runtime = _runtime(SeedApi())
    assert default_environment(runtime.settings) is None
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "api", "namespace": "shop", "resourceVersion": "1"},
    }
    runtime.store.apply_event({"type": "ADDED", "object": deployment})
    assert "shop" in runtime.auditor._dirty
    runtime.auditor._dirty.forget("shop")
    # A rollout's progress (status only) is no change to the rules' view.
    rollout = {**deployment, "metadata": {**deployment["metadata"], "resourceVersion": "2"}}
    runtime.store.put({**rollout, "status": {"readyReplicas": 1}})
    assert "shop" not in runtime.auditor._dirty
    # Neither is a ProductionService (the controller's, not the audit's).
    runtime.store.put({"kind": "ProductionService", "metadata": {"name": "a", "namespace": "x"}})
    assert "x" not in runtime.auditor._dirty
    runtime.auditor._full_due = False
    runtime.on_report_crd_event()
    assert runtime.auditor._full_due is True


async def test_the_report_crd_watch_asks_for_a_full_pass() -> None:
    runtime = _runtime(SeedApi())
    current: list[PolicyRuntime | None] = [None]
    registry = kopf.OperatorRegistry()
    register_handlers(registry, lambda: current[0])
    handlers = list(registry._watching.get_all_handlers())
    assert [h.selector.any_name for h in handlers if h.selector] == ["customresourcedefinitions"]
    crd = handlers[0]
    await crd.fn(event={"type": "ADDED"})  # before start-up: no runtime yet, nothing happens
    current[0] = runtime
    runtime.auditor._full_due = False
    await crd.fn(event={"type": None})  # kopf's initial listing: the start-up audit covers it
    assert runtime.auditor._full_due is False
    await crd.fn(event={"type": "ADDED"})
    assert runtime.auditor._full_due is True


async def test_seeding_skips_a_forbidden_kind_and_raises_other_list_errors() -> None:
    api = SeedApi()
    original = api.list

    async def forbidden_services(path: str, *, label_selector: str | None = None) -> list[Any]:
        if path.endswith("/services"):
            raise ApiError(403, "Forbidden", "services is forbidden", "GET", path)
        return await original(path, label_selector=label_selector)

    api.list = forbidden_services  # type: ignore[method-assign]
    store = ObjectStore()
    await seed(cast(KubeClient, api), store, AUDITED_RESOURCES)
    assert store.get("Deployment", "shop", "api") is not None

    async def forbidden_deployments(path: str, *, label_selector: str | None = None) -> list[Any]:
        raise ApiError(403, "Forbidden", "deployments is forbidden", "GET", path)

    # ... unless the process cannot work without that kind.
    api.list = forbidden_deployments  # type: ignore[method-assign]
    with pytest.raises(ApiError):
        await seed(
            cast(KubeClient, api), store, AUDITED_RESOURCES, required=frozenset({"Deployment"})
        )

    async def broken(path: str, *, label_selector: str | None = None) -> list[Any]:
        raise ApiError(500, "InternalError", "etcd", "GET", path)

    api.list = broken  # type: ignore[method-assign]
    with pytest.raises(ApiError):
        await seed(cast(KubeClient, api), store, AUDITED_RESOURCES)


async def test_a_failed_start_removes_the_generated_certificate() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        runtime = _runtime(SeedApi(), PRODREADY_WEBHOOK_PORT=str(taken.getsockname()[1]))
        with pytest.raises(OSError, match="in use"):
            await runtime.start()
    assert runtime.generated is None
    assert runtime.webhook is None


async def test_policy_objects_and_namespaces_reach_the_audit() -> None:
    runtime = _runtime(SeedApi())
    store = runtime.store
    store.put({"kind": "Namespace", "metadata": {"name": "shop", "labels": {"tier": "prod"}}})
    assert "shop" in runtime.auditor._dirty  # its labels select policies
    exception = {"kind": "ReadinessException", "metadata": {"name": "e", "namespace": "web"}}
    store.put(exception)
    assert "web" in runtime.auditor._dirty
    runtime.auditor._full_due = False
    store.put({"kind": "ReadinessPolicy", "metadata": {"name": "production"}})
    assert runtime.auditor._full_due is True  # a policy may select any namespace
    # The audit's own status write coming back is no change.
    runtime.auditor._dirty.forget("web")
    store.put({**exception, "status": {"state": "Active"}}, written=True)
    assert "web" not in runtime.auditor._dirty
