"""The operator's own production behaviour: graceful shutdown and high availability,
against the real apiserver with real `prodready run` processes."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.controlplane import ControlPlane
from tests.e2e.support import (
    CRD_FILE,
    MONITORING_CRDS,
    OperatorProcess,
    condition,
    get,
    install_crds,
    start_operator,
    wait_for,
)

pytestmark = pytest.mark.cluster

CHILD_KINDS = "deployments,services,poddisruptionbudgets,servicemonitors,prometheusrules"


def service(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "prodready.io/v1alpha1",
        "kind": "ProductionService",
        "metadata": {"name": name},
        "spec": {"image": f"registry.example.com/team/{name}:1.0.0", "environment": "dev"},
    }


def apply_many(cluster: ControlPlane, namespace: str, names: list[str]) -> None:
    items = [service(name) for name in names]
    document = json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=document)


def children_of(cluster: ControlPlane, namespace: str, name: str) -> set[str]:
    listing = cluster.kubectl_json(
        "get", CHILD_KINDS, "-n", namespace, "-l", f"prodready.io/service={name}"
    )
    items = listing.get("items")
    assert isinstance(items, list)
    return {str(item["kind"]) for item in items}


def is_ready(cluster: ControlPlane, namespace: str, name: str) -> bool:
    obj = get(cluster, "productionservice", name, namespace)
    return condition(obj, "Ready").get("status") == "True"


@pytest.fixture(scope="module")
def crds(cluster: ControlPlane) -> None:
    install_crds(cluster, CRD_FILE, *MONITORING_CRDS)


def test_sigterm_mid_reconcile_finishes_in_flight_work(
    cluster: ControlPlane, crds: None, namespace: str, tmp_path: Path
) -> None:
    operator = start_operator(cluster, tmp_path / "operator.log")
    names = [f"svc-{n:02d}" for n in range(30)]
    apply_many(cluster, namespace, names)
    # Stop as soon as the first of these services has been reconciled (one of another
    # test's namespace, still being deleted, does not count): the rest are in flight or
    # queued.
    wait_for(
        lambda: any(
            entry.get("message") == "reconciled" and entry.get("namespace") == namespace
            for entry in operator.log_lines()
        ),
        30,
        "the first reconcile",
        interval=0.05,
    )
    assert operator.stop(signal.SIGTERM, timeout=30) == 0
    messages = [line.get("message") for line in operator.log_lines()]
    # Our clean-up ran to its end, after the shutdown began (kopf logs its own lines after).
    assert "stopped" in messages[messages.index("shutting down") :]

    # Status is written only after every child was applied: a service with a status has
    # all of its children. Nothing is half-applied.
    complete = {"Deployment", "Service", "PodDisruptionBudget", "ServiceMonitor", "PrometheusRule"}
    with_status = 0
    for name in names:
        obj = get(cluster, "productionservice", name, namespace) or {}
        if (obj.get("status") or {}).get("observedGeneration"):
            with_status += 1
            assert children_of(cluster, namespace, name) == complete, name
    assert with_status >= 1

    # A new operator picks up where the old one stopped.
    successor = start_operator(cluster, tmp_path / "successor.log")
    try:
        for name in names:
            wait_for(lambda n=name: is_ready(cluster, namespace, n), 90, f"{name} Ready")  # type: ignore[misc]
    finally:
        successor.stop()


def _lease_holder(cluster: ControlPlane) -> str:
    result = cluster.kubectl(
        "get", "lease", "prodready", "-n", "default", "-o", "jsonpath={.spec.holderIdentity}",
        check=False,
    )  # fmt: skip
    return result.stdout.strip()


def _leads(operator: OperatorProcess) -> bool:
    return any(line.get("message") == "became leader" for line in operator.log_lines())


def _reconciled(operator: OperatorProcess, namespace: str) -> list[str]:
    return [
        str(line.get("name"))
        for line in operator.log_lines()
        if line.get("message") == "reconciled" and line.get("namespace") == namespace
    ]


def test_two_replicas_never_both_act_and_the_standby_takes_over(
    cluster: ControlPlane, crds: None, namespace: str, tmp_path: Path
) -> None:
    first = start_operator(cluster, tmp_path / "first.log", standalone=False)
    wait_for(lambda: _leads(first), 30, "the first replica to lead")
    second = start_operator(cluster, tmp_path / "second.log", standalone=False)
    try:
        apply_many(cluster, namespace, ["ha-a"])
        wait_for(lambda: is_ready(cluster, namespace, "ha-a"), 60, "ha-a Ready")
        assert _reconciled(first, namespace)
        assert _reconciled(second, namespace) == []
        assert not _leads(second)
        assert _lease_holder(cluster).startswith(
            next(line["identity"] for line in first.log_lines() if line.get("identity"))
        )

        # The leader dies without handing over: the standby waits for the Lease to expire.
        first.stop(signal.SIGKILL)
        wait_for(lambda: _leads(second), 45, "the standby to take the Lease")
        apply_many(cluster, namespace, ["ha-b"])
        wait_for(lambda: is_ready(cluster, namespace, "ha-b"), 60, "ha-b Ready via the standby")
        assert "ha-b" in _reconciled(second, namespace)
    finally:
        first.stop(signal.SIGKILL)
        second.stop()
    # A graceful stop hands the Lease over at once.
    assert _lease_holder(cluster) == ""


def test_api_error_is_reported_retried_and_heals(
    cluster: ControlPlane, crds: None, namespace: str, tmp_path: Path
) -> None:
    # A quota of zero Deployments: the apiserver refuses the operator's apply (403).
    cluster.kubectl(
        "create", "quota", "no-deployments", "-n", namespace, "--hard=count/deployments.apps=0"
    )
    operator = start_operator(cluster, tmp_path / "operator.log")
    try:
        apply_many(cluster, namespace, ["quota"])

        def reported() -> dict[str, Any]:
            found = condition(get(cluster, "productionservice", "quota", namespace), "Reconciling")
            return found if found.get("reason") == "RetryingAfterError" else {}

        found = wait_for(reported, 30, "the Reconciling condition with the error")
        # Status names the step and our own object, not the apiserver's text (which can
        # describe other objects); the full error is in the operator's log.
        assert found["message"] == "ApiError: create Deployment/quota failed: HTTP 403 Forbidden"
        obj = get(cluster, "productionservice", "quota", namespace)
        assert condition(obj, "Ready")["reason"] == "ReconcileError"
        events = cluster.kubectl_json(
            "get", "events", "-n", namespace, "--field-selector=reason=ReconcileError"
        )["items"]
        assert isinstance(events, list)
        assert events
        errors = [
            line for line in operator.log_lines() if line.get("message") == "reconcile failed"
        ]
        assert errors
        assert errors[0]["name"] == "quota"
        assert "exceeded quota" in errors[0]["exception"]

        # Retried with backoff, not in a hot loop, and healed once the quota is gone.
        cluster.kubectl("delete", "quota", "no-deployments", "-n", namespace)
        wait_for(lambda: is_ready(cluster, namespace, "quota"), 120, "Ready after the quota")
        assert operator.process.poll() is None, "the operator must not crash"
    finally:
        operator.stop()


def test_namespaced_operator_ignores_other_namespaces(
    cluster: ControlPlane, crds: None, namespace: str, tmp_path: Path
) -> None:
    other = f"{namespace}-other"
    cluster.kubectl("create", "namespace", other)
    operator = start_operator(
        cluster, tmp_path / "operator.log", env={"PRODREADY_NAMESPACES": namespace}
    )
    try:
        apply_many(cluster, other, ["outside"])
        apply_many(cluster, namespace, ["inside"])
        wait_for(lambda: is_ready(cluster, namespace, "inside"), 60, "the watched namespace")
        assert get(cluster, "deployment", "outside", other) is None
        assert not (get(cluster, "productionservice", "outside", other) or {}).get("status")
    finally:
        operator.stop()
        cluster.kubectl("delete", "namespace", other, "--wait=false", check=False)
