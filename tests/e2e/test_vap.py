"""The checklist inside the apiserver (issue 16): the generated ValidatingAdmissionPolicy
denies with no webhook, and the operator applies and removes it as a policy asks.

* With no operator running and no webhook registered, the output of `prodready
  admission-policy --policy FILE` applied to the real apiserver denies a Deployment
  without a liveness probe in the policy's Enforce namespace, and a workload failing the
  policy's own custom rule, and admits the compliant one.
* With the operator running, `enforceInApiserver: true` makes the VAP and its binding
  appear (owned by the policy), a custom rule then denies without any webhook, and turning
  the field off makes them go.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from prodready.api.crd import PRODUCTION_SERVICE, READINESS_EXCEPTION, READINESS_POLICY, crd
from tests.cluster.controlplane import ControlPlane
from tests.e2e.policy_support import compliant_deployment, without_liveness_probe
from tests.e2e.support import REPO, OperatorProcess, start_operator, wait_for

T = TypeVar("T")
SELECT_LABEL = "prodready.io/vap-e2e"
TEAM_RULE = {
    "id": "ACME-OWN-001",
    "title": "Workloads name an owning team",
    "severity": "error",
    "kinds": ["Deployment", "StatefulSet", "DaemonSet"],
    "expression": "has(object.metadata.labels) && 'team' in object.metadata.labels",
    "messageExpression": "'label team is missing on ' + object.metadata.name",
    "fix": "Add metadata.labels.team",
}


def policy(name: str, select: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "prodready.io/v1alpha1",
        "kind": "ReadinessPolicy",
        "metadata": {"name": name},
        "spec": {
            "mode": "Enforce",
            "namespaceSelector": {"matchLabels": {SELECT_LABEL: select}},
            "customRules": [TEAM_RULE],
            **spec,
        },
    }


def dry_run(cluster: ControlPlane, namespace: str, obj: dict[str, Any]) -> tuple[bool, str]:
    """(admitted, kubectl's output) of a server-side dry-run create."""
    result = cluster.kubectl(
        "create", "-n", namespace, "--dry-run=server", "-f", "-", input=json.dumps(obj), check=False
    )
    return result.returncode == 0, result.stdout + result.stderr


def poll(produce: Callable[[], T], accept: Callable[[T], bool], timeout: float, what: str) -> T:
    """`produce()` again until `accept` takes its value (tests/e2e/support.wait_for)."""

    def check() -> T | None:
        value = produce()
        return value if accept(value) else None

    result: T = wait_for(check, timeout, what)
    return result


def with_team(deployment: dict[str, Any]) -> dict[str, Any]:
    labelled = copy.deepcopy(deployment)
    labelled["metadata"].setdefault("labels", {})["team"] = "payments"
    return labelled


@pytest.fixture(scope="module")
def crds(cluster: ControlPlane) -> ControlPlane:
    """The CRDs as the code defines them now (the files in crds/ are regenerated later)."""
    for definition in (PRODUCTION_SERVICE, READINESS_POLICY, READINESS_EXCEPTION):
        body = crd(definition)
        cluster.kubectl(
            "apply", "--server-side", "--force-conflicts", "-f", "-", input=json.dumps(body)
        )
        cluster.wait_established(body["metadata"]["name"])
    return cluster


def test_without_the_operator_the_generated_vap_denies(
    crds: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    cluster = crds
    cluster.kubectl("label", "namespace", namespace, f"{SELECT_LABEL}={namespace}")
    # A workload admitted before the policy existed: its metadata may still change.
    legacy = without_liveness_probe(with_team(compliant_deployment(namespace, "legacy")))
    cluster.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(legacy))
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(json.dumps(policy(f"offline-{namespace}", namespace)))
    printed = subprocess.run(
        [sys.executable, "-m", "prodready", "admission-policy", "--policy", str(policy_file)],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    assert "kind: ValidatingAdmissionPolicyBinding" in printed.stdout
    cluster.kubectl("apply", "-f", "-", input=printed.stdout)
    try:
        deployment = with_team(compliant_deployment(namespace))
        unprobed = without_liveness_probe(deployment)
        admitted, output = poll(
            lambda: dry_run(cluster, namespace, unprobed),
            lambda answer: not answer[0],
            30,
            "the VAP to deny",
        )
        assert not admitted
        assert "ValidatingAdmissionPolicy" in output, output
        assert "PR-HC-001" in output, output
        admitted, output = dry_run(cluster, namespace, compliant_deployment(namespace))
        assert not admitted
        assert "ACME-OWN-001: label team is missing on api" in output, output
        admitted, output = dry_run(cluster, namespace, deployment)
        assert admitted, output
        # An UPDATE that leaves spec as it was is left to the webhook; one that changes it
        # must comply.
        relabel = cluster.kubectl(
            "label", "-n", namespace, "deployment/legacy", "tier=web", check=False
        )
        assert relabel.returncode == 0, relabel.stderr
        respec = cluster.kubectl(
            "patch", "-n", namespace, "deployment/legacy", "--type=merge",
            "-p", '{"spec": {"minReadySeconds": 7}}', check=False,
        )  # fmt: skip
        assert respec.returncode != 0
        assert "PR-HC-001" in respec.stderr, respec.stderr
    finally:
        cluster.kubectl("delete", "-f", "-", input=printed.stdout, check=False)


@pytest.fixture(scope="module")
def operator(
    crds: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    process = start_operator(crds, tmp_path_factory.mktemp("vap") / "operator.log")
    try:
        yield process
    finally:
        process.stop()


def _vap_objects(cluster: ControlPlane, name: str) -> list[dict[str, Any]]:
    found = []
    for kind in ("validatingadmissionpolicy", "validatingadmissionpolicybinding"):
        result = cluster.kubectl("get", kind, name, "-o", "json", "--ignore-not-found", check=False)
        if result.stdout.strip():
            found.append(json.loads(result.stdout))
    return found


def test_the_operator_applies_and_removes_the_vap(
    crds: ControlPlane, operator: OperatorProcess, namespace: str
) -> None:
    assert operator.status("/readyz") == 200
    plane = crds
    plane.kubectl("label", "namespace", namespace, f"{SELECT_LABEL}={namespace}")
    name = f"apiserver-{namespace}"[:63]
    body = policy(name, namespace, enforceInApiserver=True)
    plane.kubectl("apply", "-f", "-", input=json.dumps(body))
    try:
        objects = poll(
            lambda: _vap_objects(plane, f"prodready-{name}"),
            lambda found: len(found) == 2,
            60,
            "the operator to apply the VAP and its binding",
        )
        uid = json.loads(plane.kubectl("get", "readinesspolicy", name, "-o", "json").stdout)[
            "metadata"
        ]["uid"]
        for obj in objects:
            assert obj["metadata"]["ownerReferences"][0]["uid"] == uid
            assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "prodready"
        binding = next(o for o in objects if o["kind"] == "ValidatingAdmissionPolicyBinding")
        assert binding["spec"]["validationActions"] == ["Deny"]
        # No webhook is registered in this module: a denial is the apiserver's own.
        unlabelled = compliant_deployment(namespace)
        admitted, output = poll(
            lambda: dry_run(plane, namespace, unlabelled),
            lambda answer: not answer[0],
            30,
            "the VAP to deny the custom rule",
        )
        assert "ValidatingAdmissionPolicy" in output, output
        assert "ACME-OWN-001" in output, output
        admitted, output = dry_run(plane, namespace, with_team(unlabelled))
        assert admitted, output

        body["spec"]["enforceInApiserver"] = False
        plane.kubectl("apply", "-f", "-", input=json.dumps(body))
        wait_for(
            lambda: not _vap_objects(plane, f"prodready-{name}"),
            60,
            "the operator to delete the VAP and its binding",
        )
        admitted, output = poll(
            lambda: dry_run(plane, namespace, unlabelled),
            lambda answer: answer[0],
            30,
            "the VAP to stop denying",
        )
    finally:
        plane.kubectl("delete", "readinesspolicy", name, "--ignore-not-found", check=False)
