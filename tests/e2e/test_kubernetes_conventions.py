"""Kubernetes conventions against the real apiserver: events.k8s.io Events with series, and
the report API pinned with PRODREADY_REPORT_API while both report CRDs are installed.

(The printer columns are proven in test_api_server.py, with the CRD's other behaviour.)
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from prodready.kube.client import KubeClient
from prodready.kube.events import EventRecorder
from tests.cluster.controlplane import ControlPlane
from tests.e2e.policy_support import (
    OPENREPORTS_CRD,
    POLICYREPORT_CRD,
    compliant_objects,
    kubectl_apply,
    without_liveness_probe,
)
from tests.e2e.support import (
    CRD_FILE,
    MONITORING_CRDS,
    REPO,
    OperatorProcess,
    events,
    get,
    install_crds,
    start_operator,
    uninstall_crds,
    wait_for,
)

pytestmark = pytest.mark.cluster

REPORT = "prodready-deployment-api"


def _new_events(cluster: ControlPlane, namespace: str) -> list[dict[str, Any]]:
    listed = cluster.kubectl_json("get", "events.events.k8s.io", "-n", namespace)
    return list(listed["items"])  # type: ignore[call-overload]


async def test_a_repeated_event_is_one_object_with_a_series(
    cluster: ControlPlane, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster.kubectl("create", "configmap", "settings", "-n", namespace)
    config_map = cluster.kubectl_json("get", "configmap", "settings", "-n", namespace)
    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig))
    client = KubeClient.login()
    try:
        recorder = EventRecorder(client, instance="e2e")
        for _ in range(3):
            await recorder.warning(config_map, "PolicyViolation", "PR-CF-004 fails")
        await recorder.normal(config_map, "PolicyViolation", "PR-CF-004 passes now")
        policy = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
        await recorder.normal(policy, "Audited", f"namespace {namespace} audited")
    finally:
        await client.close()

    # The apiserver accepted every write (a refused one is only logged): two Events, the
    # first with a series of three.
    found = {e["note"]: e for e in _new_events(cluster, namespace)}
    assert set(found) == {"PR-CF-004 fails", "PR-CF-004 passes now"}
    repeated = found["PR-CF-004 fails"]
    assert repeated["series"]["count"] == 3
    assert repeated["series"]["lastObservedTime"] >= repeated["eventTime"]
    assert repeated["regarding"]["uid"] == config_map["metadata"]["uid"]  # type: ignore[index]
    assert (repeated["reportingController"], repeated["reportingInstance"]) == ("prodready", "e2e")
    assert "series" not in found["PR-CF-004 passes now"]

    # The core API (what `kubectl get events` and `kubectl describe` read) shows the same.
    (core,) = [e for e in events(cluster, namespace, "settings") if e["type"] == "Warning"]
    assert core["message"] == "PR-CF-004 fails"
    assert core["involvedObject"]["kind"] == "ConfigMap"
    assert core["series"]["count"] == 3
    described = cluster.kubectl("describe", "configmap", "settings", "-n", namespace).stdout
    assert "PolicyViolation" in described
    assert "PR-CF-004 fails" in described

    # A cluster-scoped object's event lives in `default`.
    audited = [
        e
        for e in _new_events(cluster, "default")
        if e["regarding"]["kind"] == "Namespace" and e["regarding"]["name"] == namespace
    ]
    assert [e["note"] for e in audited] == [f"namespace {namespace} audited"]


@pytest.fixture(scope="module")
def pinned(
    cluster: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """An operator told PRODREADY_REPORT_API=wgpolicyk8s, with both report CRDs installed."""
    install_crds(cluster, CRD_FILE, *MONITORING_CRDS, OPENREPORTS_CRD, POLICYREPORT_CRD)
    log = tmp_path_factory.mktemp("pinned") / "operator.log"
    process = start_operator(
        cluster,
        log,
        env={"PRODREADY_AUDIT_INTERVAL_SECONDS": "10", "PRODREADY_REPORT_API": "wgpolicyk8s"},
    )
    try:
        yield process
    finally:
        process.stop()
        # No other module's operator may find reports to write.
        uninstall_crds(cluster, OPENREPORTS_CRD, POLICYREPORT_CRD)


def _report(cluster: ControlPlane, namespace: str, *extra: str) -> subprocess.CompletedProcess[str]:
    environment = {**cluster.env(), "NO_COLOR": "1"}
    environment.pop("PRODREADY_REPORT_API", None)
    return subprocess.run(
        [sys.executable, "-m", "prodready", "report", "-n", namespace, "-o", "json", *extra],
        capture_output=True,
        text=True,
        env=environment,
        cwd=REPO,
        check=False,
    )


def test_the_pinned_report_api_is_written_and_read_when_both_are_served(
    cluster: ControlPlane, pinned: OperatorProcess, namespace: str, tmp_path: Path
) -> None:
    broken = without_liveness_probe(compliant_objects(namespace)[0])
    assert kubectl_apply(cluster, namespace, broken).returncode == 0

    def failing() -> set[str]:
        report = get(cluster, "policyreports.wgpolicyk8s.io", REPORT, namespace) or {}
        return {r["policy"] for r in report.get("results") or () if r.get("result") == "fail"}

    wait_for(lambda: "PR-HC-001" in failing(), 60, "the PolicyReport")
    # Only the pinned API: OpenReports, though served (and auto's choice), stays empty.
    openreports = cluster.kubectl_json("get", "reports.openreports.io", "-n", namespace)
    assert openreports["items"] == []

    # `prodready report` reads the API it is told, as the operator writes it.
    pinned_read = _report(cluster, namespace, "--report-api", "wgpolicyk8s")
    assert pinned_read.returncode == 1, pinned_read.stderr
    document = json.loads(pinned_read.stdout)
    assert document["summary"]["objects"] == 1
    assert "PR-HC-001" in pinned_read.stdout
    from_env = subprocess.run(
        [sys.executable, "-m", "prodready", "report", "-n", namespace, "-o", "json"],
        capture_output=True,
        text=True,
        env={**cluster.env(), "PRODREADY_REPORT_API": "wgpolicyk8s"},
        cwd=REPO,
        check=False,
    )
    assert from_env.returncode == 1, from_env.stderr
    # Unpinned, the reader picks OpenReports, where this operator writes nothing.
    auto = _report(cluster, namespace)
    assert auto.returncode == 0, auto.stderr
    assert "no prodready reports" in auto.stderr
