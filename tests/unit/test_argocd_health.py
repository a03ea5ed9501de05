"""The Argo CD health check (integrations/argocd/health.lua), run by Lua 5.1 as Argo CD runs
it (gopher-lua is 5.1), on ProductionServices with the conditions the operator writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lupa import lua51

from prodready.api import conditions as cond

SCRIPT = Path(__file__).resolve().parents[2] / "integrations" / "argocd" / "health.lua"
NOW = "2026-12-01T00:00:00Z"


def health(obj: dict[str, Any]) -> tuple[str, str]:
    """(status, message) as Argo CD would show them for `obj`."""
    lua = lua51.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute(SCRIPT.read_text())
    return str(result["status"]), str(result["message"])


def service(*wanted: cond.Condition, generation: int = 2, observed: int = 2) -> dict[str, Any]:
    return {
        "apiVersion": "prodready.io/v1alpha1",
        "kind": "ProductionService",
        "metadata": {"name": "hello", "namespace": "demo", "generation": generation},
        "spec": {"image": "ghcr.io/example/hello:0.1.0"},
        "status": {
            "observedGeneration": observed,
            "conditions": cond.merge_conditions([], wanted, generation=observed, now=NOW),
        },
    }


def test_ready_is_healthy() -> None:
    obj = service(
        cond.Condition(cond.READY, True, "Available", "2/2 replicas ready"),
        cond.Condition(cond.POLICY_COMPLIANT, True, "Compliant", "every rule passes"),
    )
    assert health(obj) == ("Healthy", "Available: 2/2 replicas ready")


def test_ready_but_not_compliant_is_still_healthy() -> None:
    # Compliance is the policy's verdict, shown by the Compliant column; not an outage.
    obj = service(
        cond.Condition(cond.READY, True, "Available", "2/2 replicas ready"),
        cond.Condition(cond.POLICY_COMPLIANT, False, "RuleFailed", "PR-SC-001"),
    )
    assert health(obj)[0] == "Healthy"


def test_a_rollout_is_progressing() -> None:
    obj = service(
        cond.Condition(cond.READY, False, "RollingOut", "1/2 replicas updated"),
        cond.Condition(cond.RECONCILING, True, "RollingOut", "1/2 replicas updated"),
    )
    assert health(obj) == ("Progressing", "RollingOut: 1/2 replicas updated")


@pytest.mark.parametrize(
    ("reason", "message"),
    [
        ("ProgressDeadlineExceeded", "ReplicaSet hello-abc has timed out progressing"),
        ("SecretMissing", "waiting for Secret demo/db (key password)"),
        ("NameConflict", "Service/hello exists and is not ours"),
    ],
)
def test_stalled_is_degraded(reason: str, message: str) -> None:
    obj = service(
        cond.Condition(cond.READY, False, reason, message),
        cond.Condition(cond.STALLED, True, reason, message),
    )
    assert health(obj) == ("Degraded", f"{reason}: {message}")


def test_a_failing_reconcile_is_degraded_while_it_retries() -> None:
    obj = service(
        cond.Condition(cond.READY, False, "ReconcileError", "applying the Deployment: 422"),
        cond.Condition(cond.RECONCILING, True, "RetryingAfterError", "ApiError: 422"),
    )
    assert health(obj) == ("Degraded", "ReconcileError: applying the Deployment: 422")


def test_ready_unknown_is_progressing() -> None:
    obj = service(cond.Condition(cond.READY, None, "Reconciling", "first pass"))
    assert health(obj) == ("Progressing", "Reconciling: first pass")


def test_a_new_generation_not_yet_observed_is_progressing() -> None:
    obj = service(
        cond.Condition(cond.READY, True, "Available", "2/2 replicas ready"),
        generation=3,
        observed=2,
    )
    assert health(obj) == ("Progressing", "Waiting for the operator to observe generation 3")


@pytest.mark.parametrize("status", [None, {}, {"conditions": []}])
def test_no_status_yet_is_progressing(status: dict[str, Any] | None) -> None:
    obj: dict[str, Any] = {"metadata": {"name": "hello", "generation": 1}}
    if status is not None:
        obj["status"] = status
    assert health(obj) == ("Progressing", "Waiting for the prodready operator to reconcile")


def test_conditions_without_ready_are_progressing() -> None:
    obj = service(cond.Condition(cond.MONITORING, False, "CrdMissing", "no ServiceMonitor CRD"))
    assert health(obj) == ("Progressing", "Waiting for the Ready condition")
