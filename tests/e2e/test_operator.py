"""The operator against the real control plane: create, update, drift, secrets, monitoring,
deletion, idempotence and status — everything crosses the real apiserver."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.controlplane import ControlPlane
from tests.e2e.support import (
    CRD_FILE,
    MONITORING_CRDS,
    OperatorProcess,
    condition,
    events,
    get,
    install_crds,
    production_service as service,
    start_operator,
    uninstall_crds,
    wait_for,
)

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def operator(
    cluster: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    install_crds(cluster, CRD_FILE, *MONITORING_CRDS)
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    process = start_operator(cluster, log)
    yield process
    process.stop()


def apply(cluster: ControlPlane, namespace: str, body: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(body))


def ready(cluster: ControlPlane, namespace: str, name: str) -> bool:
    return (
        condition(get(cluster, "productionservice", name, namespace), "Ready").get("status")
        == "True"
    )


def kinds_present(cluster: ControlPlane, namespace: str, name: str) -> set[str]:
    found = set()
    for kind in (
        "deployment",
        "service",
        "poddisruptionbudget",
        "servicemonitor",
        "prometheusrule",
        "horizontalpodautoscaler",
        "ingress",
        "configmap",
    ):
        result = cluster.kubectl(
            "get",
            kind,
            "-n",
            namespace,
            "-l",
            f"prodready.io/service={name}",
            "-o",
            "name",
            check=False,
        )
        if result.stdout.strip():
            found.add(kind)
    return found


def test_create_renders_children_and_becomes_ready(
    cluster: ControlPlane, operator: OperatorProcess, namespace: str
) -> None:
    apply(cluster, namespace, service("web"))
    # kubectl wait is what users and CI pipelines run.
    cluster.kubectl(
        "wait", "-n", namespace, "--for=condition=Ready", "productionservice/web", "--timeout=60s"
    )
    deployment = get(cluster, "deployment", "web", namespace)
    assert deployment is not None
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.example.com/shop/web:1.4.2"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert (
        container["readinessProbe"]["periodSeconds"] <= container["livenessProbe"]["periodSeconds"]
    )
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 30
    owner = deployment["metadata"]["ownerReferences"][0]
    assert owner["kind"] == "ProductionService"
    assert owner["controller"] is True
    with_fields = json.loads(
        cluster.kubectl(
            "get", "deployment", "web", "-n", namespace, "-o", "json", "--show-managed-fields"
        ).stdout
    )
    managers = {entry["manager"] for entry in with_fields["metadata"]["managedFields"]}
    assert "prodready" in managers
    assert not any(k.startswith("kopf.") for k in deployment["metadata"].get("annotations", {}))

    assert {"deployment", "service", "poddisruptionbudget", "servicemonitor"} <= kinds_present(
        cluster, namespace, "web"
    )
    obj = get(cluster, "productionservice", "web", namespace)
    assert obj is not None
    status = obj["status"]
    assert status["observedGeneration"] == obj["metadata"]["generation"]
    assert status["readyReplicas"] == 2
    assert {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"} in status["children"]
    assert condition(obj, "PolicyCompliant")["status"] in ("True", "False")
    assert "compliance" in status
    # A new service's first children are no news (status lists them): no Event for them.
    assert not any(e["reason"] == "Applied" for e in events(cluster, namespace, "web"))

    # The printer columns show what the conditions say.
    table = cluster.kubectl("get", "productionservice", "web", "-n", namespace).stdout
    assert "True" in table.splitlines()[1]


def test_update_follows_spec_and_prunes(
    cluster: ControlPlane, operator: OperatorProcess, namespace: str
) -> None:
    body = service(
        "shop",
        env=[{"name": "FEATURE_FLAGS", "value": "checkout-v2"}],
        autoscaling={"minReplicas": 2, "maxReplicas": 5},
    )
    apply(cluster, namespace, body)
    wait_for(
        lambda: "horizontalpodautoscaler" in kinds_present(cluster, namespace, "shop"),
        30,
        "the HPA",
    )
    wait_for(lambda: ready(cluster, namespace, "shop"), 60, "Ready")

    updated = copy.deepcopy(body)
    updated["spec"]["image"] = "registry.example.com/shop/web:1.5.0"
    updated["spec"]["replicas"] = 3
    updated["spec"]["env"] = [{"name": "FEATURE_FLAGS", "value": "checkout-v3"}]
    del updated["spec"]["autoscaling"]
    apply(cluster, namespace, updated)

    def followed() -> bool:
        deployment = get(cluster, "deployment", "shop", namespace) or {}
        spec = deployment.get("spec", {})
        container = spec.get("template", {}).get("spec", {}).get("containers", [{}])[0]
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        return (
            container.get("image") == "registry.example.com/shop/web:1.5.0"
            and spec.get("replicas") == 3
            and env.get("FEATURE_FLAGS") == "checkout-v3"
        )

    wait_for(followed, 30, "the Deployment to follow the new spec")
    wait_for(
        lambda: "horizontalpodautoscaler" not in kinds_present(cluster, namespace, "shop"),
        30,
        "the HPA to be pruned",
    )
    wait_for(lambda: ready(cluster, namespace, "shop"), 60, "Ready after the rollout")
    obj = get(cluster, "productionservice", "shop", namespace)
    assert obj is not None
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"] == 2
    assert obj["status"]["readyReplicas"] == 3
    reasons = [e["reason"] for e in events(cluster, namespace, "shop")]
    assert "Pruned" in reasons
    assert "Applied" in reasons  # the changed spec, applied


def test_drift_is_corrected(
    cluster: ControlPlane, operator: OperatorProcess, namespace: str
) -> None:
    apply(cluster, namespace, service("drift"))
    wait_for(lambda: ready(cluster, namespace, "drift"), 60, "Ready")

    patch = [
        {
            "op": "replace",
            "path": "/spec/template/spec/containers/0/livenessProbe/periodSeconds",
            "value": 300,
        }
    ]
    cluster.kubectl(
        "patch", "deployment", "drift", "-n", namespace, "--type=json", "-p", json.dumps(patch)
    )

    def restored() -> bool:
        deployment = get(cluster, "deployment", "drift", namespace) or {}
        probe = deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]
        return bool(probe["periodSeconds"] == 30)

    wait_for(restored, 20, "the probe to be restored")

    # A label edit changes no generation: the reconciler must still see it as drift.
    cluster.kubectl(
        "label", "deployment", "drift", "-n", namespace, "--overwrite",
        "prodready.io/environment=tampered",
    )  # fmt: skip

    def relabelled() -> bool:
        deployment = get(cluster, "deployment", "drift", namespace) or {}
        return bool(deployment["metadata"]["labels"]["prodready.io/environment"] == "staging")

    wait_for(relabelled, 20, "the environment label to be restored")

    cluster.kubectl("delete", "service", "drift", "-n", namespace)
    wait_for(lambda: get(cluster, "service", "drift", namespace), 20, "the Service to come back")
    assert any(e["reason"] == "DriftCorrected" for e in events(cluster, namespace, "drift"))


def test_missing_secret_holds_back_and_heals(
    cluster: ControlPlane, operator: OperatorProcess, namespace: str
) -> None:
    body = service(
        "vault",
        secretEnv=[{"name": "SECRET_KEY", "secretName": "vault-secrets", "key": "secret-key"}],
    )
    apply(cluster, namespace, body)

    def stalled() -> dict[str, Any]:
        obj = get(cluster, "productionservice", "vault", namespace)
        found = condition(obj, "Ready")
        return found if found.get("reason") == "SecretMissing" else {}

    found = wait_for(stalled, 30, "the SecretMissing condition")
    assert "vault-secrets" in found["message"]
    assert (
        condition(get(cluster, "productionservice", "vault", namespace), "Stalled")["status"]
        == "True"
    )
    assert get(cluster, "deployment", "vault", namespace) is None  # held back
    assert get(cluster, "service", "vault", namespace) is not None  # the rest is applied
    assert any(e["reason"] == "SecretMissing" for e in events(cluster, namespace, "vault"))

    canary = "canary-value-7f3a9c1e-do-not-leak"
    cluster.kubectl(
        "create",
        "secret",
        "generic",
        "vault-secrets",
        "-n",
        namespace,
        f"--from-literal=secret-key={canary}",
    )
    wait_for(lambda: ready(cluster, namespace, "vault"), 90, "Ready once the Secret exists")
    deployment = get(cluster, "deployment", "vault", namespace)
    assert deployment is not None
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {
        "name": "SECRET_KEY",
        "valueFrom": {"secretKeyRef": {"name": "vault-secrets", "key": "secret-key"}},
    } in env

    # The canary: a Secret value never reaches logs, events, status or reports.
    assert canary not in operator.log.read_text()
    assert canary not in json.dumps(events(cluster, namespace, "vault"))
    assert canary not in json.dumps(get(cluster, "productionservice", "vault", namespace))


def test_monitoring_crds_missing_then_installed(
    cluster: ControlPlane, operator: OperatorProcess, namespace: str
) -> None:
    uninstall_crds(cluster, *MONITORING_CRDS)
    try:
        apply(cluster, namespace, service("metrics"))

        def crd_missing() -> bool:
            obj = get(cluster, "productionservice", "metrics", namespace)
            return condition(obj, "MonitoringReady").get("reason") == "MonitoringCRDMissing"

        wait_for(crd_missing, 30, "the MonitoringCRDMissing condition")
        wait_for(lambda: ready(cluster, namespace, "metrics"), 60, "Ready without monitoring")
    finally:
        install_crds(cluster, *MONITORING_CRDS)
    wait_for(
        lambda: get(cluster, "servicemonitor", "metrics", namespace),
        60,
        "the ServiceMonitor once the CRD exists",
    )
    wait_for(
        lambda: (
            condition(
                get(cluster, "productionservice", "metrics", namespace), "MonitoringReady"
            ).get("status")
            == "True"
        ),
        30,
        "MonitoringReady=True",
    )


def test_delete_removes_children(
    cluster: ControlPlane, operator: OperatorProcess, namespace: str
) -> None:
    apply(cluster, namespace, service("gone"))
    wait_for(lambda: get(cluster, "deployment", "gone", namespace), 30, "the Deployment")
    cluster.kubectl("delete", "productionservice", "gone", "-n", namespace)
    # Owner references hand the children to the garbage collector, whose discovery of a
    # new CRD kind can lag by its resync period.
    wait_for(lambda: not kinds_present(cluster, namespace, "gone"), 90, "children to be collected")


def _operator_writes(cluster: ControlPlane, namespace: str) -> list[dict[str, Any]]:
    # Only this test's namespace: other tests' namespaces are being torn down meanwhile.
    return [
        event
        for event in cluster.audit_events()
        if str(event.get("userAgent", "")).startswith("prodready")
        and event.get("stage") == "ResponseComplete"
        and (event.get("objectRef") or {}).get("namespace") == namespace
    ]


def test_converged_operator_writes_nothing(
    cluster: ControlPlane, operator: OperatorProcess, namespace: str
) -> None:
    for name in ("idle-a", "idle-b"):
        apply(cluster, namespace, service(name))
    for name in ("idle-a", "idle-b"):
        wait_for(lambda n=name: ready(cluster, namespace, n), 60, f"{name} Ready")  # type: ignore[misc]
    # Wait until the last writes of convergence (status, events) have landed: the count
    # stays the same for three seconds. Then count over three resync periods (10 s each).
    counts: list[int] = []

    def settled() -> bool:
        counts.append(len(_operator_writes(cluster, namespace)))
        return len(counts) > 12 and counts[-1] == counts[-13]

    wait_for(settled, 30, "convergence writes to stop")
    before = counts[-1]
    time.sleep(31)
    writes = _operator_writes(cluster, namespace)[before:]
    assert writes == [], [(w.get("verb"), w.get("requestURI")) for w in writes]


def test_invalid_spec_is_rejected_by_the_apiserver(
    cluster: ControlPlane, operator: OperatorProcess, namespace: str
) -> None:
    bad = service("bad")
    bad["spec"]["health"] = {"readiness": {"periodSeconds": 60}, "liveness": {"periodSeconds": 30}}
    result = cluster.kubectl(
        "apply", "-n", namespace, "-f", "-", input=json.dumps(bad), check=False
    )
    assert result.returncode != 0
    assert "readiness" in result.stderr.lower()


def test_operator_logs_are_json_with_object_context(
    cluster: ControlPlane, operator: OperatorProcess, namespace: str
) -> None:
    apply(cluster, namespace, service("logged"))
    wait_for(lambda: ready(cluster, namespace, "logged"), 60, "Ready")

    def reconciled() -> list[dict[str, Any]]:
        return [
            line
            for line in operator.log_lines()
            if line.get("message") == "reconciled" and line.get("namespace") == namespace
        ]

    lines = wait_for(reconciled, 10, "a 'reconciled' log line for the namespace")
    for line in lines:
        assert {"name", "uid", "reconcile_id", "level", "timestamp", "logger"} <= set(line)
        assert line["name"] == "logged"


def test_metrics_and_health(operator: OperatorProcess) -> None:
    assert operator.status("/healthz") == 200
    assert operator.status("/readyz") == 200
    text = operator.text("/metrics")
    assert 'prodready_reconciles_total{result="success"}' in text
    assert "prodready_reconcile_duration_seconds_bucket" in text


def test_cli_run_rejects_bad_settings(tmp_path: Path) -> None:
    result = subprocess.run(
        ["prodready", "run"],
        env={
            "PATH": str(Path(sys.executable).parent),
            "PRODREADY_HEALTH_PORT": "nope",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "PRODREADY_HEALTH_PORT" in result.stderr
    assert "Traceback" not in result.stderr


def kstatus(cluster: ControlPlane, namespace: str, name: str) -> str:
    """What sigs.k8s.io/cli-utils' kstatus (as Flux uses it) says about the object."""
    body = cluster.kubectl("get", "productionservice", name, "-n", namespace, "-o", "json").stdout
    result = subprocess.run(
        [str(cluster.bin_dir / "kstatus")], input=body, capture_output=True, text=True,
        timeout=30, check=True,
    )  # fmt: skip
    return str(json.loads(result.stdout)["status"])


def test_kstatus_in_progress_while_rolling_out_then_current(
    cluster: ControlPlane, operator: OperatorProcess, namespace: str
) -> None:
    # No node matches: the pods stay Pending, so the rollout cannot finish.
    # (A node label the default allow-lists let a ProductionService select.)
    body = service("rolling", pod={"nodeSelector": {"kubernetes.io/os": "no-such-os"}})
    apply(cluster, namespace, body)
    wait_for(lambda: kstatus(cluster, namespace, "rolling") == "InProgress", 30, "InProgress")
    obj = get(cluster, "productionservice", "rolling", namespace)
    assert condition(obj, "Reconciling")["status"] == "True"
    assert condition(obj, "Ready")["status"] == "False"

    del body["spec"]["pod"]
    apply(cluster, namespace, body)
    wait_for(lambda: kstatus(cluster, namespace, "rolling") == "Current", 60, "Current")
    assert ready(cluster, namespace, "rolling")


def test_kstatus_failed_while_stalled(
    cluster: ControlPlane, operator: OperatorProcess, namespace: str
) -> None:
    apply(cluster, namespace, service("stuck", envFromSecrets=[{"secretName": "absent"}]))
    wait_for(lambda: kstatus(cluster, namespace, "stuck") == "Failed", 30, "Failed (Stalled)")
