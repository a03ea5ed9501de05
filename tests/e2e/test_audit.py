"""The in-cluster audit against the real control plane: reports, events, idleness, the CLI.

The report CRDs are the real ones, vendored unchanged in tests/fixtures/crds/:
`openreports.io_reports.yaml` from the Go module github.com/openreports/reports-api
v0.2.1 (config/crd/), and `wgpolicyk8s.io_policyreports.yaml` from
kubernetes-sigs/wg-policy-prototypes (policy-report/crd/v1alpha2/, commit 25056e1; the Go
module proxy does not serve that module). Each class installs one of them, runs its own
operator, and uninstalls the CRD afterwards so that no other test's operator writes
reports.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.controlplane import ControlPlane
from tests.e2e.policy_support import (
    OPENREPORTS_CRD,
    POLICYREPORT_CRD,
    compliant_objects,
    kubectl_apply,
    metric,
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

AUDIT_INTERVAL_SECONDS = 10
REPORT = "prodready-deployment-api"


def _operator(
    cluster: ControlPlane, log: Path, report_crd: Path, other_crd: Path
) -> Iterator[OperatorProcess]:
    uninstall_crds(cluster, other_crd)
    install_crds(cluster, CRD_FILE, *MONITORING_CRDS, report_crd)
    process = start_operator(
        cluster, log, env={"PRODREADY_AUDIT_INTERVAL_SECONDS": str(AUDIT_INTERVAL_SECONDS)}
    )
    try:
        yield process
    finally:
        process.stop()
        uninstall_crds(cluster, report_crd)


def _failing(report: dict[str, Any] | None) -> set[str]:
    return {
        str(result["policy"])
        for result in (report or {}).get("results") or ()
        if result.get("result") == "fail"
    }


def _violations(cluster: ControlPlane, namespace: str) -> list[dict[str, Any]]:
    return [e for e in events(cluster, namespace, "api") if e.get("reason") == "PolicyViolation"]


def _writes(cluster: ControlPlane, namespace: str) -> list[dict[str, Any]]:
    return [
        event
        for event in cluster.audit_events()
        if str(event.get("userAgent", "")).startswith("prodready")
        and event.get("stage") == "ResponseComplete"
        and (event.get("objectRef") or {}).get("namespace") == namespace
    ]


def _lifecycle(cluster: ControlPlane, namespace: str, kind: str) -> None:
    """A hand-written Deployment fails, is fixed, is deleted; the report follows each step."""
    objects = compliant_objects(namespace)
    deployment, context = objects[0], objects[1:]

    assert kubectl_apply(cluster, namespace, without_liveness_probe(deployment)).returncode == 0
    report = wait_for(
        lambda: (r := get(cluster, kind, REPORT, namespace)) and "PR-HC-001" in _failing(r) and r,
        30,
        "the report to show the Deployment's failures",
    )
    # Without its Service, ServiceMonitor, ... the Deployment fails more than the probe.
    assert {"PR-HC-001", "PR-MO-001"} <= _failing(report)
    assert report["summary"]["fail"] == len(_failing(report))
    assert report["scope"]["kind"] == "Deployment"
    assert report["scope"]["name"] == "api"
    result = next(r for r in report["results"] if r["policy"] == "PR-HC-001")
    assert result["severity"] == "high"
    assert result["category"] == "Health checks"
    assert result["source"] == "prodready"
    assert result["properties"]["path"] == "spec.template.spec.containers[0].livenessProbe"
    assert result["resources"][0]["name"] == "api"
    assert report["metadata"]["ownerReferences"][0]["kind"] == "Deployment"

    # One PolicyViolation for the new failures; a change that fixes nothing adds none.
    wait_for(lambda: _violations(cluster, namespace), 30, "a PolicyViolation event")
    cluster.kubectl("label", "deployment", "api", "-n", namespace, "team=payments")
    time.sleep(4)
    assert len(_violations(cluster, namespace)) == 1

    # Fixed: the probe back, and the context that makes PR-MO-001 and friends pass.
    assert kubectl_apply(cluster, namespace, *context, deployment).returncode == 0
    fixed = wait_for(
        lambda: (r := get(cluster, kind, REPORT, namespace)) and not _failing(r) and r,
        30,
        "the failures to disappear from the report",
    )
    assert fixed["summary"]["fail"] == 0
    assert fixed["summary"]["pass"] > 0

    cluster.kubectl("delete", "deployment", "api", "-n", namespace)
    wait_for(lambda: get(cluster, kind, REPORT, namespace) is None, 30, "the report to be removed")


def _idle_writes(cluster: ControlPlane, operator: OperatorProcess, namespace: str) -> None:
    """Converged: two full audits later, not one write in the namespace."""
    objects = compliant_objects(namespace)
    assert kubectl_apply(cluster, namespace, *objects).returncode == 0
    wait_for(lambda: get(cluster, "deployment", "api", namespace), 30, "the Deployment")
    time.sleep(4)  # the debounced pass and its writes land
    runs = metric(operator, "prodready_audit_runs_total")
    before = len(_writes(cluster, namespace))
    time.sleep(2 * AUDIT_INTERVAL_SECONDS + 3)
    assert metric(operator, "prodready_audit_runs_total") >= runs + 2
    writes = _writes(cluster, namespace)[before:]
    assert writes == [], [(w.get("verb"), w.get("requestURI")) for w in writes]


@pytest.fixture(scope="class")
def openreports_operator(
    cluster: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    log = tmp_path_factory.mktemp("audit-openreports") / "operator.log"
    yield from _operator(cluster, log, OPENREPORTS_CRD, POLICYREPORT_CRD)


@pytest.fixture(scope="class")
def policyreports_operator(
    cluster: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    log = tmp_path_factory.mktemp("audit-policyreports") / "operator.log"
    yield from _operator(cluster, log, POLICYREPORT_CRD, OPENREPORTS_CRD)


class TestOpenReports:
    @pytest.fixture
    def operator(self, openreports_operator: OperatorProcess) -> OperatorProcess:
        return openreports_operator

    def test_report_follows_a_hand_written_deployment(
        self, cluster: ControlPlane, operator: OperatorProcess, namespace: str
    ) -> None:
        _lifecycle(cluster, namespace, "reports.openreports.io")

    def test_findings_metrics_follow_the_namespace(
        self, cluster: ControlPlane, operator: OperatorProcess, namespace: str
    ) -> None:
        objects = compliant_objects(namespace)
        assert kubectl_apply(cluster, namespace, without_liveness_probe(objects[0])).returncode == 0
        wait_for(
            lambda: (
                metric(
                    operator,
                    "prodready_findings",
                    resource_namespace=namespace,
                    rule="PR-HC-001",
                    result="fail",
                )
                == 1
            ),
            30,
            "the findings gauge",
        )
        cluster.kubectl("delete", "deployment", "api", "-n", namespace)
        wait_for(
            lambda: metric(operator, "prodready_findings", resource_namespace=namespace) == 0,
            30,
            "the namespace's findings to be cleared",
        )

    def test_report_command_prints_the_cluster_findings(
        self, cluster: ControlPlane, operator: OperatorProcess, namespace: str
    ) -> None:
        broken = without_liveness_probe(compliant_objects(namespace)[0])
        assert kubectl_apply(cluster, namespace, broken).returncode == 0
        wait_for(
            lambda: (
                "PR-HC-001" in _failing(get(cluster, "reports.openreports.io", REPORT, namespace))
            ),
            30,
            "the report",
        )
        environment = {**cluster.env(), "NO_COLOR": "1"}

        def report(*extra: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "prodready", "report", "-n", namespace, *extra],
                capture_output=True,
                text=True,
                env=environment,
                cwd=REPO,
                check=False,
            )

        table = report()
        assert table.returncode == 1, table.stderr  # an error-severity rule fails
        assert f"Deployment {namespace}/api" in table.stdout
        assert "FAIL  PR-HC-001" in table.stdout
        assert "1 object checked" in table.stdout
        document = json.loads(report("-o", "json").stdout)
        assert document["summary"]["objects"] == 1
        failing = {f["rule"] for f in document["objects"][0]["findings"] if f["result"] == "fail"}
        assert "PR-HC-001" in failing
        sarif = report("-o", "sarif")
        assert json.loads(sarif.stdout)["version"] == "2.1.0"

    def test_converged_audit_writes_nothing(
        self, cluster: ControlPlane, operator: OperatorProcess, namespace: str
    ) -> None:
        _idle_writes(cluster, operator, namespace)


class TestPolicyReports:
    @pytest.fixture
    def operator(self, policyreports_operator: OperatorProcess) -> OperatorProcess:
        return policyreports_operator

    def test_report_follows_a_hand_written_deployment(
        self, cluster: ControlPlane, operator: OperatorProcess, namespace: str
    ) -> None:
        _lifecycle(cluster, namespace, "policyreports.wgpolicyk8s.io")

    def test_converged_audit_writes_nothing(
        self, cluster: ControlPlane, operator: OperatorProcess, namespace: str
    ) -> None:
        _idle_writes(cluster, operator, namespace)
