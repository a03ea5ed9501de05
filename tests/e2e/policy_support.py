"""Helpers shared by the webhook and audit e2e tests: workloads, kubectl apply, metrics, logs."""

from __future__ import annotations

import copy
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from prodready.webhook.configuration import FailurePolicy, render_webhook_configuration
from tests.cluster.controlplane import ControlPlane
from tests.e2e.support import REPO, OperatorProcess, wait_for

COMPLIANT_FILE = REPO / "tests" / "fixtures" / "rules" / "compliant.yaml"
CRD_DIR = REPO / "tests" / "fixtures" / "crds"
OPENREPORTS_CRD = CRD_DIR / "openreports.io_reports.yaml"
POLICYREPORT_CRD = CRD_DIR / "wgpolicyk8s.io_policyreports.yaml"


def compliant_objects(namespace: str, name: str = "api") -> list[dict[str, Any]]:
    """The compliant fixture (Deployment first, then its context, its Secret included) in
    `namespace`: the audit looks up the Secrets a workload references, and reports one
    that does not exist."""
    objects = []
    for document in yaml.safe_load_all(COMPLIANT_FILE.read_text()):
        if not document:
            continue
        body = copy.deepcopy(document)
        body["metadata"]["namespace"] = namespace
        if body["kind"] == "Deployment":
            body["metadata"]["name"] = name
        objects.append(body)
    return objects


def compliant_deployment(namespace: str, name: str = "api") -> dict[str, Any]:
    """Just the compliant Deployment (compliant only with its context applied)."""
    return compliant_objects(namespace, name)[0]


def without_liveness_probe(deployment: dict[str, Any]) -> dict[str, Any]:
    """The Deployment failing PR-HC-001 (an error-severity rule) and nothing else."""
    broken = copy.deepcopy(deployment)
    del broken["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]
    return broken


def bare_deployment(name: str, namespace: str) -> dict[str, Any]:
    """A hand-written Deployment that fails many rules (no probes, no limits, `latest`)."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "registry.example.com/team/app:latest",
                            "ports": [{"containerPort": 8080}],
                        }
                    ]
                },
            },
        },
    }


def kubectl_apply(
    cluster: ControlPlane, namespace: str, *objects: dict[str, Any], extra: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """`kubectl apply` of `objects` (not checked: tests look at the exit code and stderr)."""
    document = json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)})
    return cluster.kubectl("apply", "-n", namespace, "-f", "-", *extra, input=document, check=False)


def label_namespace(cluster: ControlPlane, namespace: str, *labels: str) -> None:
    """Add labels (`key=value`) to a namespace."""
    cluster.kubectl("label", "namespace", namespace, "--overwrite", *labels)


_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][\w:]*)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$")


def metric(operator: OperatorProcess, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include `labels` (0 when absent)."""
    total = 0.0
    for line in operator.text("/metrics").splitlines():
        match = _SAMPLE.match(line)
        if match is None or match.group("name") != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group("labels") or ""))
        if all(found.get(key) == value for key, value in labels.items()):
            total += float(match.group("value"))
    return total


def log_field(operator: OperatorProcess, message: str, field: str) -> Any:
    """A field of the operator's first log line with `message` (waits for it)."""

    def find() -> Any:
        for line in operator.log_lines():
            if line.get("message") == message and field in line:
                return line[field]
        return None

    return wait_for(find, 30, f"the log line {message!r}")


def webhook_endpoint(operator: OperatorProcess) -> tuple[int, Path]:
    """The operator's webhook port and the CA file of its generated certificate."""
    port = int(log_field(operator, "admission webhook listening", "port"))
    ca_file = Path(
        log_field(
            operator,
            "webhook serving a generated self-signed certificate; use its CA as the "
            "webhook configuration's caBundle",
            "ca_file",
        )
    )
    return port, ca_file


E2E_LABEL = "prodready.io/e2e"
"""Only namespaces carrying this label are sent to a test's webhook configuration (other
tests' namespaces, and the cluster's own, never wait on it)."""


def e2e_webhook_configuration(
    operator: OperatorProcess, name: str, failure_policy: FailurePolicy = "Fail"
) -> dict[str, Any]:
    """The operator's ValidatingWebhookConfiguration for its generated certificate, every
    entry narrowed to namespaces labelled `E2E_LABEL`."""
    port, ca_file = webhook_endpoint(operator)
    document = render_webhook_configuration(
        operator_namespace="default",
        url=f"https://127.0.0.1:{port}",
        ca_bundle=ca_file.read_bytes(),
        name=name,
        failure_policy=failure_policy,
        timeout_seconds=10,
    )
    for webhook in document["webhooks"]:
        webhook["namespaceSelector"]["matchExpressions"].append(
            {"key": E2E_LABEL, "operator": "Exists"}
        )
    return document
