"""Custom rules in CEL (issue 16), against the real kube-apiserver: a rule of the team's own
is written into a ReadinessPolicy (by the cluster admin: the policy is cluster-scoped, which
a namespace admin cannot create), tested offline with `prodready test`, and enforced by the
operator's webhook for the namespace admin's Deployments; a policy whose expression does
not compile is not Ready, and its status names the rule and the position.

One operator and one ValidatingWebhookConfiguration serve the module; every entry also
requires the label `prodready.io/e2e`, which only these tests' namespaces carry.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster.controlplane import ControlPlane
from tests.e2e.policy_support import (
    E2E_LABEL,
    OPENREPORTS_CRD,
    compliant_deployment,
    compliant_objects,
    e2e_webhook_configuration,
    kubectl_apply,
    label_namespace,
)
from tests.e2e.support import (
    CRD_FILE,
    MONITORING_CRDS,
    POLICY_CRDS,
    REPO,
    OperatorProcess,
    condition,
    events,
    get,
    install_crds,
    production_service,
    start_operator,
    wait_for,
)

pytestmark = pytest.mark.cluster

CONFIGURATION = "prodready-e2e-custom-rules"
AUDIT_INTERVAL_SECONDS = 10

OWNER_RULE = {
    "id": "ACME-OWN-001",
    "title": "workloads name an owning team",
    "severity": "error",
    "kinds": ["Deployment", "StatefulSet", "DaemonSet"],
    "expression": "has(object.metadata.labels) && 'team' in object.metadata.labels",
    "messageExpression": "'label team is missing on ' + object.metadata.name",
    "fix": "Add metadata.labels.team",
}


@pytest.fixture(scope="module")
def operator(
    cluster: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    install_crds(cluster, CRD_FILE, *POLICY_CRDS, *MONITORING_CRDS, OPENREPORTS_CRD)
    process = start_operator(
        cluster,
        tmp_path_factory.mktemp("custom-rules") / "operator.log",
        env={"PRODREADY_AUDIT_INTERVAL_SECONDS": str(AUDIT_INTERVAL_SECONDS)},
    )
    document = e2e_webhook_configuration(process, CONFIGURATION)
    cluster.kubectl("apply", "-f", "-", input=json.dumps(document))
    try:
        yield process
    finally:
        cluster.kubectl(
            "delete", "validatingwebhookconfiguration", CONFIGURATION, "--ignore-not-found",
            check=False,
        )  # fmt: skip
        cluster.kubectl("delete", "readinesspolicies", "--all", check=False)
        process.stop()


@pytest.fixture
def team(cluster: ControlPlane, operator: OperatorProcess, namespace: str) -> str:
    """A namespace bob administers (the built-in `admin` ClusterRole), with the context a
    compliant Deployment needs."""
    label_namespace(cluster, namespace, f"{E2E_LABEL}=true", f"custom-e2e={namespace}")
    cluster.kubectl(
        "create", "rolebinding", "bob-admin", "--clusterrole=admin", "--user=bob",
        "-n", namespace,
    )  # fmt: skip
    assert kubectl_apply(cluster, namespace, *compliant_objects(namespace)[1:]).returncode == 0
    return namespace


def _policy(
    name: str, namespace: str, *rules: dict[str, Any], mode: str = "Enforce"
) -> dict[str, Any]:
    return {
        "apiVersion": "prodready.io/v1alpha1",
        "kind": "ReadinessPolicy",
        "metadata": {"name": name},
        "spec": {
            "mode": mode,
            "namespaceSelector": {"matchLabels": {"custom-e2e": namespace}},
            "customRules": list(rules),
        },
    }


def _as_bob(
    cluster: ControlPlane, *args: str, body: Any = None
) -> subprocess.CompletedProcess[str]:
    return cluster.kubectl(
        "--as", "bob", *args, input=None if body is None else json.dumps(body), check=False
    )


def _with_team(deployment: dict[str, Any], name: str) -> dict[str, Any]:
    labelled = copy.deepcopy(deployment)
    labelled["metadata"]["name"] = name
    labelled["metadata"].setdefault("labels", {})["team"] = "payments"
    return labelled


def _prodready_test(directory: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "prodready", "test", str(directory), "--show-passed"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_team_writes_tests_and_enforces_a_rule_of_its_own(
    cluster: ControlPlane, team: str, tmp_path: Path
) -> None:
    policy = _policy(f"acme-{team}", team, OWNER_RULE)
    # The policy is cluster-scoped: a namespace admin cannot write one.
    refused = _as_bob(cluster, "create", "-f", "-", body=policy)
    assert refused.returncode != 0
    assert "forbidden" in refused.stderr.lower()

    # Tested offline first, as a CI job would.
    unlabelled = compliant_deployment(team, "unowned")
    labelled = _with_team(compliant_deployment(team), "owned")
    # The Namespace as it is in the cluster: its labels are what the policy selects.
    namespace_object = get(cluster, "namespace", team, "default")
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(policy))
    (tmp_path / "workloads.yaml").write_text(
        yaml.safe_dump_all([namespace_object, *compliant_objects(team)[1:], unlabelled, labelled])
    )
    test_file = {
        "policies": ["policy.yaml"],
        "resources": ["workloads.yaml"],
        "results": [
            {"rule": "ACME-OWN-001", "resources": ["owned"], "result": "pass"},
            {"rule": "ACME-OWN-001", "resources": [f"{team}/unowned"], "result": "fail"},
        ],
    }
    (tmp_path / "prodready-test.yaml").write_text(yaml.safe_dump(test_file))
    tested = _prodready_test(tmp_path)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "2 case(s): 2 as expected, 0 not" in tested.stdout

    # Then applied by the cluster admin and enforced by the operator's webhook.
    cluster.kubectl("apply", "-f", "-", input=json.dumps(policy))

    def denied() -> str | None:
        # A dry run: the operator follows the policy through its watch, a moment later.
        result = _as_bob(
            cluster, "apply", "-n", team, "--dry-run=server", "-f", "-", body=unlabelled
        )
        return result.stderr if result.returncode != 0 and "ACME-OWN-001" in result.stderr else None

    wait_for(denied, 30, "the webhook to deny for the custom rule")
    refused = _as_bob(cluster, "apply", "-n", team, "-f", "-", body=unlabelled)
    assert refused.returncode != 0
    assert "ACME-OWN-001" in refused.stderr
    assert "label team is missing on unowned" in refused.stderr
    assert get(cluster, "deployment", "unowned", team) is None

    admitted = _as_bob(cluster, "apply", "-n", team, "-f", "-", body=labelled)
    assert admitted.returncode == 0, admitted.stderr
    assert get(cluster, "deployment", "owned", team) is not None
    cluster.kubectl("delete", "readinesspolicy", policy["metadata"]["name"])


def test_a_policy_whose_expression_does_not_compile_is_not_ready(
    cluster: ControlPlane, team: str
) -> None:
    name = f"broken-{team}"
    broken = {**OWNER_RULE, "expression": "has(object.metadata.labels) && "}
    cluster.kubectl("apply", "-f", "-", input=json.dumps(_policy(name, team, broken)))

    def not_ready() -> str | None:
        status = (get(cluster, "readinesspolicy", name, "default") or {}).get("status") or {}
        ready = [c for c in status.get("conditions") or () if c["type"] == "Ready"]
        if ready and ready[0]["status"] == "False":
            return str(ready[0]["message"])
        return None

    message = wait_for(not_ready, 2 * AUDIT_INTERVAL_SECONDS + 30, "Ready=False")
    assert "spec.customRules[0] (ACME-OWN-001).expression: line 1, column 32" in message
    # The rule that does not compile is left out: it denies nothing.
    unlabelled = compliant_deployment(team, "unowned")
    admitted = _as_bob(cluster, "apply", "-n", team, "--dry-run=server", "-f", "-", body=unlabelled)
    assert admitted.returncode == 0, admitted.stderr
    cluster.kubectl("delete", "readinesspolicy", name)


def test_in_audit_a_custom_rule_warns_and_the_audit_reports_it(
    cluster: ControlPlane, team: str
) -> None:
    name = f"audit-{team}"
    cluster.kubectl(
        "apply", "-f", "-", input=json.dumps(_policy(name, team, OWNER_RULE, mode="Audit"))
    )
    unlabelled = compliant_deployment(team, "unowned")

    def warned() -> str | None:
        result = _as_bob(
            cluster, "apply", "-n", team, "--dry-run=server", "-f", "-", body=unlabelled
        )
        return result.stderr if result.returncode == 0 and "ACME-OWN-001" in result.stderr else None

    warning = wait_for(warned, 30, "the webhook to warn for the custom rule")
    assert "label team is missing on unowned" in warning
    assert _as_bob(cluster, "apply", "-n", team, "-f", "-", body=unlabelled).returncode == 0

    def reported() -> Any:
        listed = cluster.kubectl("get", "reports.openreports.io", "-n", team, "-o", "json")
        for item in json.loads(listed.stdout)["items"]:
            if (item.get("scope") or {}).get("name") == "unowned":
                results = {(r["policy"], r["result"]) for r in item.get("results") or ()}
                if ("ACME-OWN-001", "fail") in results:
                    return item
        return None

    report = wait_for(reported, 2 * AUDIT_INTERVAL_SECONDS + 30, "the audit's report")
    (result,) = [r for r in report["results"] if r["policy"] == "ACME-OWN-001"]
    assert result["message"] == "label team is missing on unowned"

    def announced() -> Any:
        return [
            e
            for e in events(cluster, team, "unowned")
            if "ACME-OWN-001 (workloads name an owning team)" in e.get("message", "")
        ]

    wait_for(announced, 2 * AUDIT_INTERVAL_SECONDS + 30, "the violation Event naming the rule")
    cluster.kubectl("delete", "readinesspolicy", name)


COST_RULE = {
    "id": "ACME-COST-001",
    "title": "workloads name a cost centre",
    "severity": "error",
    "kinds": ["Deployment"],
    "expression": "has(object.metadata.labels) && 'cost-centre' in object.metadata.labels",
    "messageExpression": "'label cost-centre is missing on ' + object.metadata.name",
}


def test_a_production_service_exempts_itself_from_a_custom_rule(
    cluster: ControlPlane, team: str
) -> None:
    # The service exists before the policy: the policy arriving makes it non-compliant.
    cluster.kubectl("apply", "-n", team, "-f", "-", input=json.dumps(production_service("web")))

    def compliance() -> tuple[str, str, dict[str, Any]] | None:
        obj = get(cluster, "productionservice", "web", team)
        found = condition(obj, "PolicyCompliant")
        if not found or obj is None:
            return None
        return found["status"], found["message"], obj["status"].get("compliance") or {}

    wait_for(compliance, 60, "a PolicyCompliant condition")
    name = f"cost-{team}"
    cluster.kubectl(
        "apply", "-f", "-", input=json.dumps(_policy(name, team, COST_RULE, mode="Audit"))
    )

    def failing() -> tuple[str, str, dict[str, Any]] | None:
        answer = compliance()
        return answer if answer and "ACME-COST-001" in answer[1] else None

    status, message, _ = wait_for(failing, 60, "PolicyCompliant=False naming the custom rule")
    assert status == "False"
    assert "error-severity rules fail" in message

    # A ProductionService is always held to the checklist at admission: a change that
    # keeps failing the rule is refused, naming it.
    scaled = production_service("web", replicas=3)
    refused = cluster.kubectl("apply", "-n", team, "-f", "-", input=json.dumps(scaled), check=False)
    assert refused.returncode != 0
    assert "ACME-COST-001" in refused.stderr

    exempted = production_service(
        "web", exemptions=[{"rule": "ACME-COST-001", "reason": "billed to the platform team"}]
    )
    applied = cluster.kubectl(
        "apply", "-n", team, "-f", "-", input=json.dumps(exempted), check=False
    )
    assert applied.returncode == 0, applied.stderr

    def lifted() -> tuple[str, str, dict[str, Any]] | None:
        answer = compliance()
        return answer if answer and "ACME-COST-001" not in answer[1] else None

    status, message, summary = wait_for(lifted, 60, "the exemption to lift the custom rule")
    assert status == "True", message
    skipped = [f for f in summary.get("findings") or () if f.get("ruleId") == "ACME-COST-001"]
    assert skipped, summary
    assert all(f["result"] == "skip" for f in skipped), skipped
    assert any("billed to the platform team" in f.get("message", "") for f in skipped), skipped
    cluster.kubectl("delete", "productionservice", "web", "-n", team)
    cluster.kubectl("delete", "readinesspolicy", name)
