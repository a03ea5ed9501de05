"""ReadinessPolicies and ReadinessExceptions in a running operator (issue 15), against the
real kube-apiserver: a policy change applies to the next admission request with no
restart, the policy's status counts what it decides for, an exception needs a role that
`edit` does not grant, applies at once, and stops applying when it expires (with its
Event and metric), and `prodready validate --policy` gives the findings the audit gives.

One operator and one ValidatingWebhookConfiguration serve the module; every entry also
requires the label `prodready.io/e2e`, which only these tests' namespaces carry. `alice`
holds the built-in `edit` ClusterRole in the test namespace.
"""

from __future__ import annotations

import datetime
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
    bare_deployment,
    compliant_objects,
    e2e_webhook_configuration,
    kubectl_apply,
    label_namespace,
    metric,
    without_liveness_probe,
)
from tests.e2e.support import (
    CRD_FILE,
    MONITORING_CRDS,
    POLICY_CRDS,
    REPO,
    OperatorProcess,
    get,
    install_crds,
    start_operator,
    wait_for,
)
from tests.generate import documents, helm_template

pytestmark = pytest.mark.cluster

CONFIGURATION = "prodready-e2e-policies"
AUDIT_INTERVAL_SECONDS = 10


@pytest.fixture(scope="module")
def operator(
    cluster: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    install_crds(cluster, CRD_FILE, *POLICY_CRDS, *MONITORING_CRDS, OPENREPORTS_CRD)
    process = start_operator(
        cluster,
        tmp_path_factory.mktemp("policies") / "operator.log",
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


def _as(
    cluster: ControlPlane, user: str, *args: str, body: Any = None
) -> subprocess.CompletedProcess[str]:
    return cluster.kubectl(
        "--as", user, *args, input=None if body is None else json.dumps(body), check=False
    )


def _dry_run(
    cluster: ControlPlane, namespace: str, obj: dict[str, Any]
) -> subprocess.CompletedProcess[str]:
    return _as(cluster, "alice", "apply", "-n", namespace, "--dry-run=server", "-f", "-", body=obj)


def _policy(name: str, namespace: str, mode: str, **spec: Any) -> dict[str, Any]:
    """A policy selecting only `namespace` (by a label the test puts on it)."""
    return {
        "apiVersion": "prodready.io/v1alpha1",
        "kind": "ReadinessPolicy",
        "metadata": {"name": name},
        "spec": {
            "mode": mode,
            "namespaceSelector": {"matchLabels": {"policy-e2e": namespace}},
            **spec,
        },
    }


@pytest.fixture
def shop(cluster: ControlPlane, operator: OperatorProcess, namespace: str) -> str:
    """A namespace with neither enforce nor audit label, where alice may `edit`, and the
    context a compliant Deployment needs (Service, PDB, ServiceMonitor, ...)."""
    label_namespace(cluster, namespace, f"{E2E_LABEL}=true", f"policy-e2e={namespace}")
    cluster.kubectl(
        "create", "rolebinding", "alice-edit", "--clusterrole=edit", "--user=alice",
        "-n", namespace,
    )  # fmt: skip
    context = compliant_objects(namespace)[1:]
    assert kubectl_apply(cluster, namespace, *context).returncode == 0
    return namespace


def _status(cluster: ControlPlane, kind: str, name: str, namespace: str | None = None) -> Any:
    # (-n is ignored for a cluster-scoped kind)
    body = get(cluster, kind, name, namespace or "default")
    return (body or {}).get("status") or {}


def test_a_policy_switched_from_audit_to_enforce_denies_the_next_request(
    cluster: ControlPlane, operator: OperatorProcess, shop: str
) -> None:
    broken = without_liveness_probe(compliant_objects(shop)[0])
    # No policy selects the namespace yet: not checked at all (no label either).
    quiet = _dry_run(cluster, shop, broken)
    assert quiet.returncode == 0, quiet.stderr
    assert "PR-HC-001" not in quiet.stderr
    name = f"audit-{shop}"
    cluster.kubectl("apply", "-f", "-", input=json.dumps(_policy(name, shop, "Audit")))

    def warned() -> bool:
        result = _dry_run(cluster, shop, broken)
        return result.returncode == 0 and "PR-HC-001" in result.stderr

    wait_for(warned, 30, "the Audit policy to warn")
    assert _as(cluster, "alice", "apply", "-n", shop, "-f", "-", body=broken).returncode == 0
    cluster.kubectl(
        "patch", "readinesspolicy", name, "--type=merge", "-p", '{"spec":{"mode":"Enforce"}}'
    )

    # A new Deployment (an update that leaves the spec as it was is only warned about).
    another = {**broken, "metadata": {**broken["metadata"], "name": "api-2"}}

    def denied() -> bool:
        result = _dry_run(cluster, shop, another)
        return result.returncode != 0 and "PR-HC-001" in result.stderr

    # The operator follows its watch of the policy: no restart, the next reviews deny.
    wait_for(denied, 15, "the Enforce policy to deny")
    # The status says what the policy decides for: one workload, not compliant.
    generation = (get(cluster, "readinesspolicy", name, "default") or {})["metadata"]["generation"]

    def counted() -> Any:
        status = _status(cluster, "readinesspolicy", name)
        ready = [c for c in status.get("conditions") or () if c["type"] == "Ready"]
        return (
            status.get("observedGeneration") == generation
            and status.get("matched") == 1
            and status.get("nonCompliant") == 1
            and ready
            and ready[0]["status"] == "True"
        )

    wait_for(counted, 2 * AUDIT_INTERVAL_SECONDS + 20, "the policy's status counts")
    cluster.kubectl("delete", "readinesspolicy", name)


def test_a_policy_naming_an_unknown_rule_says_so_in_its_status(
    cluster: ControlPlane, operator: OperatorProcess, shop: str
) -> None:
    name = f"typo-{shop}"
    policy = _policy(name, shop, "Audit", disabled=["PR-ZZ-999"])
    cluster.kubectl("apply", "-f", "-", input=json.dumps(policy))

    def not_ready() -> Any:
        conditions = _status(cluster, "readinesspolicy", name).get("conditions") or ()
        ready = [c for c in conditions if c["type"] == "Ready"]
        return ready and ready[0]["status"] == "False" and "PR-ZZ-999" in ready[0]["message"]

    wait_for(not_ready, 2 * AUDIT_INTERVAL_SECONDS + 20, "Ready=False naming the rule")
    cluster.kubectl("delete", "readinesspolicy", name)


def _exception_role(cluster: ControlPlane) -> str:
    """The chart's ClusterRole for authoring exceptions, applied as the chart would."""
    objects = documents(helm_template(None, namespace="prodready"))
    role = next(
        o
        for o in objects
        if o["kind"] == "ClusterRole" and str(o["metadata"]["name"]).endswith("exception-author")
    )
    cluster.kubectl("apply", "-f", "-", input=json.dumps(role))
    return str(role["metadata"]["name"])


def _exception(name: str, expires: datetime.datetime) -> dict[str, Any]:
    return {
        "apiVersion": "prodready.io/v1alpha1",
        "kind": "ReadinessException",
        "metadata": {"name": name},
        "spec": {
            "rules": [{"rule": "PR-HC-001", "reason": "the /livez endpoint lands with v2"}],
            "match": {"names": ["api"], "kinds": ["Deployment"]},
            "expires": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "approvedBy": "jane.doe (OPS-2231)",
        },
    }


def test_an_exception_needs_its_own_role_applies_at_once_and_expires(
    cluster: ControlPlane, operator: OperatorProcess, shop: str
) -> None:
    policy = f"enforce-{shop}"
    cluster.kubectl("apply", "-f", "-", input=json.dumps(_policy(policy, shop, "Enforce")))
    broken = without_liveness_probe(compliant_objects(shop)[0])
    wait_for(lambda: _dry_run(cluster, shop, broken).returncode != 0, 30, "enforcement")
    expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=40)
    exception = _exception("livez", expires)
    # `edit` cannot waive rules.
    refused = _as(cluster, "alice", "apply", "-n", shop, "-f", "-", body=exception)
    assert refused.returncode != 0
    assert "forbidden" in refused.stderr.lower()
    role = _exception_role(cluster)
    cluster.kubectl(
        "create", "rolebinding", "alice-exceptions", f"--clusterrole={role}", "--user=alice",
        "-n", shop,
    )  # fmt: skip
    created = _as(cluster, "alice", "apply", "-n", shop, "-f", "-", body=exception)
    assert created.returncode == 0, created.stderr

    def admitted() -> bool:
        return _dry_run(cluster, shop, broken).returncode == 0

    wait_for(admitted, 15, "the excepted rule to stop denying")
    wait_for(
        lambda: _status(cluster, "readinessexception", "livez", shop).get("state") == "Active",
        2 * AUDIT_INTERVAL_SECONDS,
        "the exception's status Active",
    )
    # Once it expires it stops applying, says so and is counted.
    wait_for(lambda: _dry_run(cluster, shop, broken).returncode != 0, 60, "the expired exception")
    wait_for(
        lambda: _status(cluster, "readinessexception", "livez", shop).get("state") == "Expired",
        AUDIT_INTERVAL_SECONDS + 10,
        "the exception's status Expired",
    )

    def announced() -> bool:
        events = cluster.kubectl(
            "get", "events", "-n", shop, "--field-selector", "reason=ExceptionExpired", "-o", "json"
        )
        return bool(json.loads(events.stdout)["items"])

    wait_for(announced, 15, "the ExceptionExpired Event")
    assert metric(operator, "prodready_exceptions_expired_total") >= 1
    cluster.kubectl("delete", "readinesspolicy", policy)


def _report_findings(report: dict[str, Any]) -> set[tuple[str, str]]:
    return {(r["policy"], r["result"]) for r in report.get("results") or ()}


def test_validate_with_the_policy_file_finds_what_the_audit_finds(
    cluster: ControlPlane, operator: OperatorProcess, shop: str, tmp_path: Path
) -> None:
    policy = _policy(f"same-{shop}", shop, "Audit", severity={"PR-SC-005": "error"})
    cluster.kubectl("apply", "-f", "-", input=json.dumps(policy))
    # `keyed` asks its Secret for a key it lacks: offline the Secret is in the input, in the
    # cluster the audit reads its key names by name; PR-CF-002 fails both ways.
    keyed = compliant_objects(shop, "keyed")[0]
    for entry in keyed["spec"]["template"]["spec"]["containers"][0]["env"]:
        if "secretKeyRef" in entry.get("valueFrom", {}):
            entry["valueFrom"]["secretKeyRef"]["key"] = "missing-key"
    workloads = [bare_deployment("legacy", shop), compliant_objects(shop)[0], keyed]
    assert kubectl_apply(cluster, shop, *workloads).returncode == 0

    def reports() -> Any:
        listed = cluster.kubectl("get", "reports.openreports.io", "-n", shop, "-o", "json")
        items = json.loads(listed.stdout)["items"]
        by_name = {item["scope"]["name"]: item for item in items if "scope" in item}
        return by_name if {"legacy", "api", "keyed"} <= set(by_name) else None

    audited = wait_for(reports, 2 * AUDIT_INTERVAL_SECONDS + 20, "the audit's reports")
    namespace = get(cluster, "namespace", shop, "default")
    inputs = tmp_path / "workloads.yaml"
    inputs.write_text(yaml.safe_dump_all([*compliant_objects(shop)[1:], *workloads, namespace]))
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(yaml.safe_dump(policy))
    result = subprocess.run(
        [sys.executable, "-m", "prodready", "validate", "--policy", str(policy_file), "-o",
         "json", str(inputs)],
        capture_output=True, text=True, check=False, cwd=REPO,
    )  # fmt: skip
    assert result.returncode in (0, 1), result.stderr
    offline = {
        report["object"]["name"]: {
            (finding["rule"], finding["result"]) for finding in report["findings"]
        }
        for report in json.loads(result.stdout)["objects"]
        if report["object"]["kind"] == "Deployment"
    }
    assert ("PR-CF-002", "fail") in offline["keyed"]
    for name in ("legacy", "api", "keyed"):
        assert offline[name] == _report_findings(audited[name]), name
    cluster.kubectl("delete", "readinesspolicy", policy["metadata"]["name"])


# -- no way around enforcement from one's own manifest (as alice, who holds `edit`) --------


def _with_env(deployment: dict[str, Any], name: str, value: str) -> dict[str, Any]:
    changed = json.loads(json.dumps(deployment))
    env = changed["spec"]["template"]["spec"]["containers"][0]["env"]
    changed["spec"]["template"]["spec"]["containers"][0]["env"] = [
        *(e for e in env if e["name"] != name),
        {"name": name, "value": value},
    ]
    return changed


ELEVEN_RULES = (
    *("HC-001", "HC-002", "HC-003", "RS-001", "RS-002", "SC-001"),
    *("SC-002", "SC-004", "SC-005", "LG-001", "MO-001"),
)


@pytest.fixture
def enforced(cluster: ControlPlane, shop: str) -> str:
    """`shop`, labelled for enforcement and as a prod namespace."""
    label_namespace(cluster, shop, "prodready.io/enforce=true", "prodready.io/environment=prod")
    probe = without_liveness_probe(compliant_objects(shop, "probe")[0])
    wait_for(lambda: _dry_run(cluster, shop, probe).returncode != 0, 30, "enforcement")
    return shop


@pytest.mark.parametrize(
    ("where", "annotations"),
    [
        # An error-severity rule, with a reason: in Enforce a workload's own annotation
        # exempts warnings only.
        ("workload", {"prodready.io/exempt": "PR-HC-001", "prodready.io/exempt-reason": "x"}),
        # No reason at all.
        ("workload", {"prodready.io/exempt": "PR-HC-001"}),
        # Eleven rules under one reason: no rule has a reason of its own.
        (
            "workload",
            {
                "prodready.io/exempt": ",".join(f"PR-{rule}" for rule in ELEVEN_RULES),
                "prodready.io/exempt-reason": "x",
            },
        ),
        # The same, on the pod template.
        ("template", {"prodready.io/exempt": "PR-HC-001", "prodready.io/exempt-reason": "x"}),
    ],
)
def test_an_exemption_annotation_cannot_switch_enforcement_off(
    cluster: ControlPlane,
    operator: OperatorProcess,
    enforced: str,
    where: str,
    annotations: dict[str, str],
) -> None:
    broken = without_liveness_probe(compliant_objects(enforced)[0])
    metadata = broken["metadata"] if where == "workload" else broken["spec"]["template"]["metadata"]
    metadata["annotations"] = annotations
    result = _dry_run(cluster, enforced, broken)
    assert result.returncode != 0, result.stderr
    assert "PR-HC-001" in result.stderr


def test_an_optional_configmap_that_does_not_exist_sets_nothing(
    cluster: ControlPlane, operator: OperatorProcess, enforced: str
) -> None:
    deployment = compliant_objects(enforced)[0]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["env"] = [e for e in container["env"] if e["name"] != "LOG_FORMAT"]
    container["envFrom"] = [{"configMapRef": {"name": "nowhere", "optional": True}}]
    result = _dry_run(cluster, enforced, deployment)
    assert result.returncode != 0, result.stderr
    assert "PR-LG-001" in result.stderr
    # The ConfigMap exists and says json: the variable is read from it.
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "nowhere"},
        "data": {"LOG_FORMAT": "json"},
    }
    assert kubectl_apply(cluster, enforced, config_map).returncode == 0
    wait_for(
        lambda: _dry_run(cluster, enforced, deployment).returncode == 0,
        15,
        "the ConfigMap to be seen",
    )


def test_a_workload_cannot_lower_its_namespace_environment(
    cluster: ControlPlane, operator: OperatorProcess, enforced: str
) -> None:
    debug = _with_env(compliant_objects(enforced)[0], "DEBUG", "true")
    debug["metadata"]["labels"]["prodready.io/environment"] = "dev"
    result = _dry_run(cluster, enforced, debug)
    assert result.returncode != 0, result.stderr
    assert "PR-ER-001" in result.stderr  # DEBUG is off in prod: the namespace says prod
