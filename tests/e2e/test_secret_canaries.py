"""Secrets in plain sight, in the cluster (issue 17): the audit finds a private key under an
innocent variable name and a cloud key in a ConfigMap, names the variable, the key and the
kind of secret, and never writes the value anywhere: not in the reports, the events, the
operator's log, nor `prodready report`'s output.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests.cluster.controlplane import ControlPlane
from tests.e2e.policy_support import OPENREPORTS_CRD, POLICYREPORT_CRD, kubectl_apply
from tests.e2e.support import (
    CRD_FILE,
    MONITORING_CRDS,
    REPO,
    OperatorProcess,
    install_crds,
    start_operator,
    uninstall_crds,
    wait_for,
)

pytestmark = pytest.mark.cluster

REPORTS = "reports.openreports.io"
# Canaries: shaped like the secrets they stand for, made up for this test.
KEY_BODY = "b3BlbnNzaC1rZXktdjEAAAAACanaryH17doNotLeakAAAAAAAAABAAAAMwAAAAtzc2gtZW"
PRIVATE_KEY = f"-----BEGIN OPENSSH PRIVATE KEY-----\n{KEY_BODY}\n-----END OPENSSH PRIVATE KEY-----"
AWS_KEY = "AKIAZ7H17CANARYQ2X9Z"
CANARIES = (KEY_BODY, AWS_KEY)


@pytest.fixture(scope="module")
def operator(
    cluster: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    uninstall_crds(cluster, POLICYREPORT_CRD)
    install_crds(cluster, CRD_FILE, *MONITORING_CRDS, OPENREPORTS_CRD)
    log = tmp_path_factory.mktemp("secret-canaries") / "operator.log"
    process = start_operator(cluster, log, env={"PRODREADY_AUDIT_INTERVAL_SECONDS": "10"})
    try:
        yield process
    finally:
        process.stop()
        uninstall_crds(cluster, OPENREPORTS_CRD)


def _objects(namespace: str) -> list[dict[str, Any]]:
    labels = {"app": "leaky"}
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "leaky", "namespace": namespace},
            "spec": {
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "containers": [
                            {
                                "name": "app",
                                "image": "registry.example.com/leaky:1.0",
                                "env": [{"name": "the_good_stuff", "value": PRIVATE_KEY}],
                            }
                        ]
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": namespace},
            "data": {"S3_BUCKET": "assets", "aws.conf": f"[default]\nkey_id = {AWS_KEY}\n"},
        },
    ]


def _results(cluster: ControlPlane, namespace: str) -> list[dict[str, Any]]:
    listed = cluster.kubectl("get", REPORTS, "-n", namespace, "-o", "json")
    return [
        result
        for report in json.loads(listed.stdout).get("items", [])
        for result in report.get("results") or ()
    ]


def _failing(cluster: ControlPlane, namespace: str) -> dict[str, str]:
    return {
        str(r["policy"]): str(r.get("message", ""))
        for r in _results(cluster, namespace)
        if r.get("result") == "fail"
    }


def test_the_audit_names_secrets_in_plain_sight_and_never_their_values(
    cluster: ControlPlane, operator: OperatorProcess, namespace: str
) -> None:
    assert kubectl_apply(cluster, namespace, *_objects(namespace)).returncode == 0
    failing = wait_for(
        lambda: (f := _failing(cluster, namespace)) and {"PR-LG-003", "PR-CF-004"} <= set(f) and f,
        60,
        "reports naming the literal private key and the ConfigMap's cloud key",
    )
    assert "the_good_stuff holds a literal private key" in failing["PR-LG-003"]
    assert "aws.conf holds a literal AWS access key" in failing["PR-CF-004"]

    report = subprocess.run(
        [sys.executable, "-m", "prodready", "report", "-n", namespace, "-o", "json"],
        capture_output=True,
        text=True,
        env={**cluster.env(), "NO_COLOR": "1"},
        cwd=REPO,
        check=False,
    )
    reports = cluster.kubectl("get", REPORTS, "-n", namespace, "-o", "json").stdout
    events = cluster.kubectl("get", "events", "-n", namespace, "-o", "json").stdout
    for canary in CANARIES:
        for where, text in (
            ("reports", reports),
            ("events", events),
            ("operator log", operator.log.read_text()),
            ("prodready report", report.stdout + report.stderr),
        ):
            assert canary not in text, f"a secret value reached the {where}"
