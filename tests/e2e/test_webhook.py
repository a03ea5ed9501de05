"""The admission webhook called by the real kube-apiserver over HTTPS.

The operator runs as a real `prodready run` process serving its generated self-signed
certificate; each test registers a ValidatingWebhookConfiguration (rendered by
`render_webhook_configuration`, with the operator's CA as caBundle and a `url` client
config) and removes it afterwards, whatever happens. Every registered entry also requires
the namespace label `prodready.io/e2e`, which only these tests' namespaces carry, so even a
configuration that outlived its test could never touch another test's objects.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster.controlplane import ControlPlane
from tests.e2e.policy_support import (
    E2E_LABEL,
    bare_deployment,
    compliant_objects,
    e2e_webhook_configuration,
    kubectl_apply,
    label_namespace,
    metric,
    webhook_endpoint,
    without_liveness_probe,
)
from tests.e2e.support import (
    CRD_FILE,
    MONITORING_CRDS,
    POLICY_CRDS,
    OperatorProcess,
    get,
    install_crds,
    start_operator,
    wait_for,
)

pytestmark = pytest.mark.cluster

ENFORCE = "prodready.io/enforce=true"
AUDIT = "prodready.io/audit=true"
_configurations = itertools.count()


@pytest.fixture(scope="module")
def operator(
    cluster: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    install_crds(cluster, CRD_FILE, *POLICY_CRDS, *MONITORING_CRDS)
    log = tmp_path_factory.mktemp("webhook") / "operator.log"
    process = start_operator(cluster, log)
    yield process
    process.stop()


def _configuration(operator: OperatorProcess, name: str, failure_policy: str) -> dict[str, Any]:
    return e2e_webhook_configuration(
        operator, name, "Fail" if failure_policy == "Fail" else "Ignore"
    )


Register = Callable[..., str]


@pytest.fixture
def webhook(cluster: ControlPlane) -> Iterator[Register]:
    """Registers configurations for one test; deletes every one of them afterwards."""
    registered: list[str] = []

    def register(
        operator: OperatorProcess, probe_namespace: str, *, failure_policy: str = "Ignore"
    ) -> str:
        name = f"prodready-e2e-{next(_configurations)}"
        registered.append(name)
        document = _configuration(operator, name, failure_policy)
        cluster.kubectl("apply", "-f", "-", input=json.dumps(document))
        _wait_until_called(cluster, probe_namespace)
        return name

    try:
        yield register
    finally:
        for name in registered:
            cluster.kubectl(
                "delete", "validatingwebhookconfiguration", name, "--ignore-not-found", check=False
            )


def _wait_until_called(cluster: ControlPlane, namespace: str) -> None:
    """The apiserver picks configurations up asynchronously: probe with a dry run until an
    enforce-mode denial comes back from the webhook."""
    label_namespace(cluster, namespace, ENFORCE, f"{E2E_LABEL}=true")

    def denied() -> bool:
        result = kubectl_apply(
            cluster,
            namespace,
            bare_deployment("probe", namespace),
            extra=("--dry-run=server",),
        )
        return result.returncode != 0 and "prodready denied" in result.stderr

    wait_for(denied, 30, "the apiserver to call the webhook")


@pytest.fixture
def enforce_namespace(cluster: ControlPlane, namespace: str) -> str:
    label_namespace(cluster, namespace, ENFORCE, f"{E2E_LABEL}=true")
    return namespace


@pytest.fixture
def audit_namespace(cluster: ControlPlane, namespace: str) -> str:
    label_namespace(cluster, namespace, AUDIT, f"{E2E_LABEL}=true")
    return namespace


def test_enforce_namespace_denies_a_non_compliant_deployment(
    cluster: ControlPlane, operator: OperatorProcess, webhook: Register, enforce_namespace: str
) -> None:
    webhook(operator, enforce_namespace)
    denied_before = metric(
        operator, "prodready_webhook_requests_total", kind="Deployment", allowed="false"
    )
    result = kubectl_apply(cluster, enforce_namespace, bare_deployment("web", enforce_namespace))
    assert result.returncode != 0
    assert 'admission webhook "enforce.workloads.prodready.io" denied the request' in result.stderr
    assert "PR-HC-001" in result.stderr
    assert "Fix:" in result.stderr
    assert get(cluster, "deployment", "web", enforce_namespace) is None
    assert (
        metric(operator, "prodready_webhook_requests_total", kind="Deployment", allowed="false")
        > denied_before
    )
    assert metric(operator, "prodready_webhook_duration_seconds_count", kind="Deployment") > 0


def test_compliant_deployment_is_admitted_with_its_context_from_the_cluster(
    cluster: ControlPlane, operator: OperatorProcess, webhook: Register, enforce_namespace: str
) -> None:
    webhook(operator, enforce_namespace)
    objects = compliant_objects(enforce_namespace)
    deployment, context = objects[0], objects[1:]
    # Without its ServiceMonitor the Deployment fails PR-MO-001, which waits on another
    # object: admitted with a warning saying so (the audit holds it to the rule).
    alone = kubectl_apply(cluster, enforce_namespace, deployment)
    assert alone.returncode == 0, alone.stderr
    assert "PR-MO-001 (error, not denied: waits on another object" in alone.stderr
    # With the context applied, the webhook judges it with that context (the operator's
    # store learns of it through its watches): no PR-MO-001 any more.
    assert kubectl_apply(cluster, enforce_namespace, *context).returncode == 0

    def admitted_without_warning() -> bool:
        # A server-side dry run of a new name: always sent, even when nothing changed.
        probe = {**deployment, "metadata": {**deployment["metadata"], "name": "api-probe"}}
        result = kubectl_apply(cluster, enforce_namespace, probe, extra=("--dry-run=server",))
        return result.returncode == 0 and "PR-MO-001" not in result.stderr

    wait_for(admitted_without_warning, 30, "the Deployment judged with its ServiceMonitor")
    assert get(cluster, "deployment", "api", enforce_namespace) is not None


def test_audit_namespace_admits_with_warnings(
    cluster: ControlPlane, operator: OperatorProcess, webhook: Register, namespace: str
) -> None:
    webhook(operator, namespace)
    # The probe labelled it for enforcement; switch it to audit.
    cluster.kubectl("label", "namespace", namespace, "prodready.io/enforce-")
    label_namespace(cluster, namespace, AUDIT)

    def admitted_with_warnings() -> str:
        result = kubectl_apply(cluster, namespace, bare_deployment("web", namespace))
        return result.stderr if result.returncode == 0 and "Warning:" in result.stderr else ""

    stderr = wait_for(admitted_with_warnings, 30, "an admission with warnings")
    assert "Warning: PR-HC-001 (error)" in stderr
    assert get(cluster, "deployment", "web", namespace) is not None


def test_unlabelled_namespace_no_policy_selects_is_admitted_unchecked(
    cluster: ControlPlane, operator: OperatorProcess, webhook: Register, namespace: str
) -> None:
    probe = f"{namespace}-probe"
    cluster.kubectl("create", "namespace", probe)
    try:
        webhook(operator, probe)
        label_namespace(cluster, namespace, f"{E2E_LABEL}=true")
        # Sent to the policy entry (a ReadinessPolicy could select it), which finds none
        # selecting it: admitted without a rule run, not even a warning.
        before = metric(operator, "prodready_webhook_requests_total", kind="Deployment")
        result = kubectl_apply(cluster, namespace, bare_deployment("web", namespace))
        assert result.returncode == 0, result.stderr
        assert "Warning" not in result.stderr
        after = metric(operator, "prodready_webhook_requests_total", kind="Deployment")
        assert after == before + 1
    finally:
        cluster.kubectl("delete", "namespace", probe, "--wait=false", check=False)


def _production_service(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "prodready.io/v1alpha1",
        "kind": "ProductionService",
        "metadata": {"name": name},
        "spec": {"image": "registry.example.com/shop/web:1.4.2", "replicas": 2, **spec},
    }


def test_non_compliant_production_service_is_denied(
    cluster: ControlPlane, operator: OperatorProcess, webhook: Register, namespace: str
) -> None:
    webhook(operator, namespace)
    # ProductionServices are held to the checklist in every namespace not in audit mode.
    cluster.kubectl("label", "namespace", namespace, "prodready.io/enforce-")
    exposure = {"host": "shop.example.com", "tlsSecretName": "shop-tls"}
    # Exposed in prod without CORS origins (CORS applies to exposed workloads only).
    bad = _production_service("shop", environment="prod", exposure=exposure)
    result = kubectl_apply(cluster, namespace, bad)
    assert result.returncode != 0
    assert 'admission webhook "productionservices.prodready.io" denied the request' in (
        result.stderr
    )
    assert "PR-SC-002" in result.stderr
    good = _production_service(
        "shop",
        environment="prod",
        exposure=exposure,
        security={"corsAllowedOrigins": ["https://shop.example.com"], "rateLimit": "100/minute"},
    )
    result = kubectl_apply(cluster, namespace, good)
    assert result.returncode == 0, result.stderr


def test_server_side_dry_run_is_answered_the_same_and_creates_nothing(
    cluster: ControlPlane, operator: OperatorProcess, webhook: Register, enforce_namespace: str
) -> None:
    webhook(operator, enforce_namespace)
    dry = kubectl_apply(
        cluster,
        enforce_namespace,
        bare_deployment("dry", enforce_namespace),
        extra=("--dry-run=server",),
    )
    assert dry.returncode != 0
    assert "PR-HC-001" in dry.stderr
    objects = compliant_objects(enforce_namespace, "dry-ok")
    assert kubectl_apply(cluster, enforce_namespace, *objects[1:]).returncode == 0
    wait_for(
        lambda: (
            kubectl_apply(
                cluster, enforce_namespace, objects[0], extra=("--dry-run=server",)
            ).returncode
            == 0
        ),
        30,
        "a dry-run admission of the compliant Deployment",
    )
    assert get(cluster, "deployment", "dry-ok", enforce_namespace) is None


def test_exemption_annotation_is_honoured(
    cluster: ControlPlane, operator: OperatorProcess, webhook: Register, enforce_namespace: str
) -> None:
    webhook(operator, enforce_namespace)
    objects = compliant_objects(enforce_namespace, "batchy")
    assert kubectl_apply(cluster, enforce_namespace, *objects[1:]).returncode == 0
    broken = without_liveness_probe(objects[0])

    def denied_for_liveness_only() -> bool:
        result = kubectl_apply(cluster, enforce_namespace, broken)
        return result.returncode != 0 and "1 rule(s) failed. PR-HC-001" in result.stderr

    wait_for(denied_for_liveness_only, 30, "a denial for PR-HC-001 alone")
    broken["metadata"]["annotations"] = {
        "prodready.io/exempt": "PR-HC-001",
        "prodready.io/exempt-reason": "the worker is restarted by its supervisor",
    }
    # In Enforce a workload's own annotation may exempt warnings only: an error-severity
    # rule needs a ReadinessException (or a policy that allows it, below).
    refused = kubectl_apply(cluster, enforce_namespace, broken)
    assert refused.returncode != 0
    assert "does not let the prodready.io/exempt annotation exempt this rule" in refused.stderr
    allowing = {
        "apiVersion": "prodready.io/v1alpha1",
        "kind": "ReadinessPolicy",
        "metadata": {"name": f"exempt-{enforce_namespace}"},
        "spec": {
            "mode": "Enforce",
            "namespaceSelector": {
                "matchLabels": {"kubernetes.io/metadata.name": enforce_namespace}
            },
            "annotationExemptions": {"allow": "All"},
        },
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(allowing))
    try:
        wait_for(
            lambda: kubectl_apply(cluster, enforce_namespace, broken).returncode == 0,
            30,
            "the policy that lets annotations exempt to apply",
        )
    finally:
        cluster.kubectl("delete", "readinesspolicy", f"exempt-{enforce_namespace}")


def test_update_that_changes_no_spec_is_not_denied_but_a_spec_change_is(
    cluster: ControlPlane, operator: OperatorProcess, webhook: Register, namespace: str
) -> None:
    # A non-compliant Deployment that existed before its namespace opted in.
    result = kubectl_apply(cluster, namespace, bare_deployment("legacy", namespace))
    assert result.returncode == 0, result.stderr
    webhook(operator, namespace)  # labels the namespace for enforcement
    annotate = cluster.kubectl(
        "annotate", "deployment", "legacy", "-n", namespace, "team=payments", check=False
    )
    assert annotate.returncode == 0, annotate.stderr
    assert "Warning: PR-HC-001" in annotate.stderr
    image = cluster.kubectl(
        "set", "image", "deployment/legacy", "-n", namespace, "app=registry.example.com/a:2",
        check=False,
    )  # fmt: skip
    assert image.returncode != 0
    assert "PR-HC-001" in image.stderr


@contextlib.contextmanager
def _own_operator(cluster: ControlPlane, log: Path) -> Iterator[OperatorProcess]:
    process = start_operator(cluster, log)
    try:
        yield process
    finally:
        process.stop(signal.SIGTERM)


def test_operator_down_admits_with_ignore_and_rejects_with_fail(
    cluster: ControlPlane, webhook: Register, enforce_namespace: str, tmp_path: Path
) -> None:
    with _own_operator(cluster, tmp_path / "ignore.log") as operator:
        webhook(operator, enforce_namespace, failure_policy="Ignore")
    # The operator is gone: the apiserver cannot reach the webhook and, with Ignore, admits.
    result = kubectl_apply(
        cluster, enforce_namespace, bare_deployment("while-down", enforce_namespace)
    )
    assert result.returncode == 0, result.stderr

    with _own_operator(cluster, tmp_path / "fail.log") as operator:
        name = webhook(operator, enforce_namespace, failure_policy="Fail")
    result = kubectl_apply(
        cluster, enforce_namespace, bare_deployment("rejected", enforce_namespace)
    )
    assert result.returncode != 0
    assert "failed calling webhook" in result.stderr
    cluster.kubectl("delete", "validatingwebhookconfiguration", name)
    assert get(cluster, "deployment", "rejected", enforce_namespace) is None


def test_webhook_config_command_renders_a_configuration_the_apiserver_accepts(
    cluster: ControlPlane, operator: OperatorProcess
) -> None:
    _, ca_file = webhook_endpoint(operator)
    rendered = subprocess.run(
        [
            sys.executable, "-m", "prodready", "webhook-config",
            "--service", "prodready-webhook", "--namespace", "prodready",
            "--ca-bundle-file", str(ca_file), "--name", "prodready-e2e-render",
        ],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    document = yaml.safe_load(rendered.stdout)
    for entry in document["webhooks"]:
        entry["namespaceSelector"]["matchExpressions"].append(
            {"key": E2E_LABEL, "operator": "Exists"}
        )
    try:
        result = cluster.kubectl(
            "apply", "--dry-run=server", "-f", "-", input=json.dumps(document), check=False
        )
        assert result.returncode == 0, result.stderr
    finally:
        cluster.kubectl(
            "delete", "validatingwebhookconfiguration", "prodready-e2e-render",
            "--ignore-not-found", check=False,
        )  # fmt: skip
