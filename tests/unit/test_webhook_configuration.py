"""The ValidatingWebhookConfiguration and `prodready webhook-config`."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from prodready.cli import main
from prodready.webhook.admission import CONTROLLER_OWNERS
from prodready.webhook.certificates import generate_self_signed
from prodready.webhook.configuration import (
    AUDIT_LABEL,
    AUDIT_PATH,
    AUTHORIZE_PATH,
    ENFORCE_LABEL,
    ENFORCE_PATH,
    POLICY_PATH,
    ServiceTarget,
    render_webhook_configuration,
)

CA = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
WORKLOAD_RESOURCES = [
    ["deployments", "statefulsets", "daemonsets", "replicasets"],
    ["jobs", "cronjobs"],
    ["pods"],
    ["pods/ephemeralcontainers"],
    ["productionservices"],
]


def _by_name(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in document["webhooks"]}


def _expressions(entry: dict[str, Any]) -> list[dict[str, Any]]:
    return list(entry["namespaceSelector"]["matchExpressions"])


def test_url_configuration_for_local_runs() -> None:
    document = render_webhook_configuration(
        operator_namespace="prodready",
        url="https://127.0.0.1:9443/",
        ca_bundle=CA,
        failure_policy="Ignore",
        timeout_seconds=7,
    )
    assert document["apiVersion"] == "admissionregistration.k8s.io/v1"
    assert document["kind"] == "ValidatingWebhookConfiguration"
    entries = _by_name(document)
    assert set(entries) == {
        "enforce.workloads.prodready.io",
        "audit.workloads.prodready.io",
        "productionservices.prodready.io",
        "policy.workloads.prodready.io",
        "authorize.productionservices.prodready.io",
    }
    for entry in entries.values():
        assert entry["timeoutSeconds"] == 7
        assert entry["sideEffects"] == "None"
        assert entry["admissionReviewVersions"] == ["v1"]
        assert entry["matchPolicy"] == "Equivalent"
        assert base64.b64decode(entry["clientConfig"]["caBundle"]) == CA
        # Never the operator's own namespace, never kube-system.
        assert {
            "key": "kubernetes.io/metadata.name",
            "operator": "NotIn",
            "values": ["prodready", "kube-system"],
        } in _expressions(entry)
    enforce = entries["enforce.workloads.prodready.io"]
    assert enforce["clientConfig"]["url"] == "https://127.0.0.1:9443" + ENFORCE_PATH
    assert {"key": ENFORCE_LABEL, "operator": "In", "values": ["true"]} in _expressions(enforce)
    assert [rule["resources"] for rule in enforce["rules"]] == WORKLOAD_RESOURCES
    # Whose object it is comes from who sends it (matchConditions), never from a label.
    assert enforce["objectSelector"] == {}
    assert [c["name"] for c in enforce["matchConditions"]] == [
        "not-the-operator",
        "not-a-controllers-own-object",
    ]
    assert enforce["matchConditions"][0]["expression"] == (
        "request.userInfo.username != 'system:serviceaccount:prodready:prodready'"
    )
    audit = entries["audit.workloads.prodready.io"]
    assert audit["clientConfig"]["url"].endswith(AUDIT_PATH)
    assert {"key": AUDIT_LABEL, "operator": "In", "values": ["true"]} in _expressions(audit)
    assert {"key": ENFORCE_LABEL, "operator": "NotIn", "values": ["true"]} in _expressions(audit)
    assert [rule["resources"] for rule in audit["rules"]] == WORKLOAD_RESOURCES
    assert audit["matchConditions"] == enforce["matchConditions"]
    services = entries["productionservices.prodready.io"]
    assert services["clientConfig"]["url"].endswith(ENFORCE_PATH)
    assert {"key": AUDIT_LABEL, "operator": "NotIn", "values": ["true"]} in _expressions(services)
    assert {"key": ENFORCE_LABEL, "operator": "NotIn", "values": ["true"]} in _expressions(services)
    assert services["objectSelector"] == {}
    # The failure policy asked for applies to the enforce entries; audit never blocks, and
    # the authorization check never admits unchecked.
    assert {name: entry["failurePolicy"] for name, entry in entries.items()} == {
        "enforce.workloads.prodready.io": "Ignore",
        "productionservices.prodready.io": "Ignore",
        "audit.workloads.prodready.io": "Ignore",
        "policy.workloads.prodready.io": "Ignore",
        "authorize.productionservices.prodready.io": "Fail",
    }
    # Namespaces with neither label: workloads go where ReadinessPolicies decide.
    policy = entries["policy.workloads.prodready.io"]
    assert policy["clientConfig"]["url"].endswith(POLICY_PATH)
    assert [rule["resources"] for rule in policy["rules"]] == WORKLOAD_RESOURCES[:-1]
    assert policy["matchConditions"] == enforce["matchConditions"]
    authorize = entries["authorize.productionservices.prodready.io"]
    assert authorize["clientConfig"]["url"] == "https://127.0.0.1:9443" + AUTHORIZE_PATH
    assert authorize["rules"] == [
        {
            "apiGroups": ["prodready.io"],
            "apiVersions": ["v1alpha1"],
            "operations": ["CREATE", "UPDATE"],
            "resources": ["productionservices"],
            "scope": "Namespaced",
        }
    ]
    # Every namespace but the operator's and kube-system, whatever their mode labels.
    assert _expressions(authorize) == [
        {
            "key": "kubernetes.io/metadata.name",
            "operator": "NotIn",
            "values": ["prodready", "kube-system"],
        }
    ]
    assert authorize["objectSelector"] == {}
    assert "matchConditions" not in authorize


def test_enforce_entries_fail_closed_by_default() -> None:
    document = render_webhook_configuration(operator_namespace="p", url="https://h:1")
    policies = {entry["name"]: entry["failurePolicy"] for entry in document["webhooks"]}
    assert policies == {
        "enforce.workloads.prodready.io": "Fail",
        "productionservices.prodready.io": "Fail",
        "audit.workloads.prodready.io": "Ignore",
        "policy.workloads.prodready.io": "Ignore",
        "authorize.productionservices.prodready.io": "Fail",
    }


def test_service_configuration_for_in_cluster_runs() -> None:
    document = render_webhook_configuration(
        operator_namespace="kube-system",
        service=ServiceTarget("prodready-webhook", "kube-system", 8443),
        excluded_namespaces=["kube-system", "monitoring"],
        annotations={"cert-manager.io/inject-ca-from": "kube-system/prodready-webhook"},
    )
    assert document["metadata"]["annotations"] == {
        "cert-manager.io/inject-ca-from": "kube-system/prodready-webhook"
    }
    entry = document["webhooks"][0]
    assert entry["clientConfig"] == {
        "service": {
            "name": "prodready-webhook",
            "namespace": "kube-system",
            "port": 8443,
            "path": ENFORCE_PATH,
        }
    }
    assert entry["failurePolicy"] == "Fail"
    assert _expressions(entry)[-1]["values"] == ["kube-system", "monitoring"]


def test_the_schema_of_the_apiserver_accepts_it() -> None:
    for document in (
        render_webhook_configuration(operator_namespace="p", url="https://h:1", ca_bundle=CA),
        render_webhook_configuration(operator_namespace="p", service=ServiceTarget("s", "p")),
    ):
        kubernetes_validate.validate(document, "1.33.0", strict=True)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({}, "exactly one of url and service"),
        ({"url": "https://h", "service": ServiceTarget("s", "p")}, "exactly one"),
        ({"url": "https://h", "timeout_seconds": 31}, "between 1 and 30"),
    ],
)
def test_invalid_arguments(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        render_webhook_configuration(operator_namespace="p", **arguments)


def test_command_prints_yaml_with_the_ca(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRODREADY_WEBHOOK_FAILURE_POLICY", "Ignore")
    generated = generate_self_signed(tmp_path, ["127.0.0.1"])
    code = main(
        [
            "webhook-config",
            "--url",
            "https://127.0.0.1:9443",
            "--ca-bundle-file",
            str(generated.ca_file),
            "--exclude-namespace",
            "monitoring",
        ]
    )
    assert code == 0
    document = yaml.safe_load(capsys.readouterr().out)
    entry = document["webhooks"][0]
    assert base64.b64decode(entry["clientConfig"]["caBundle"]) == generated.ca_file.read_bytes()
    assert entry["failurePolicy"] == "Ignore"  # from the settings
    assert entry["timeoutSeconds"] == 5
    assert _expressions(entry)[-1]["values"] == ["prodready", "kube-system", "monitoring"]


def test_command_json_for_a_service_with_cert_manager(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "webhook-config",
            "--service",
            "prodready-webhook",
            "-n",
            "ops",
            "--inject-ca-from",
            "ops/prodready-webhook",
            "--failure-policy",
            "Ignore",
            "--timeout-seconds",
            "3",
            "-o",
            "json",
        ]
    )
    assert code == 0
    document = json.loads(capsys.readouterr().out)
    assert document["metadata"]["annotations"] == {
        "cert-manager.io/inject-ca-from": "ops/prodready-webhook"
    }
    entry = document["webhooks"][0]
    assert entry["clientConfig"]["service"]["namespace"] == "ops"
    assert entry["timeoutSeconds"] == 3
    assert "caBundle" not in entry["clientConfig"]


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "cannot read"), (b"hello", "holds no PEM certificate")],
)
def test_command_refuses_an_unusable_ca_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes | None, message: str
) -> None:
    path = tmp_path / "ca.crt"
    if content is not None:
        path.write_bytes(content)
    code = main(["webhook-config", "--url", "https://h", "--ca-bundle-file", str(path)])
    assert code == 2
    assert message in capsys.readouterr().err


def test_command_reports_invalid_arguments_and_settings(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["webhook-config", "--url", "https://h", "--timeout-seconds", "0"]) == 2
    assert "between 1 and 30" in capsys.readouterr().err
    monkeypatch.setenv("PRODREADY_WEBHOOK_TIMEOUT_SECONDS", "99")
    assert main(["webhook-config", "--url", "https://h"]) == 2
    assert "PRODREADY_WEBHOOK_TIMEOUT_SECONDS" in capsys.readouterr().err


# -- every combination of namespace labels reaches exactly one decision -------------------


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A label selector's matchExpressions, as the apiserver reads them."""
    for requirement in selector.get("matchExpressions", []):
        key, operator = requirement["key"], requirement["operator"]
        values = requirement.get("values", [])
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def _sent_to(document: dict[str, Any], labels: dict[str, str], resource: str) -> list[str]:
    """The paths of the checklist entries (not /authorize) a request is sent to."""
    return [
        entry["clientConfig"]["url"].removeprefix("https://h:1")
        for entry in document["webhooks"]
        if entry["name"] != "authorize.productionservices.prodready.io"
        and _selects(entry["namespaceSelector"], labels)
        and any(resource in rule["resources"] for rule in entry["rules"])
    ]


LABEL_VALUES = [None, "true", "false", ""]
RESOURCES = [r for rules in WORKLOAD_RESOURCES for r in rules]


@pytest.mark.parametrize("enforce", LABEL_VALUES)
@pytest.mark.parametrize("audit", LABEL_VALUES)
@pytest.mark.parametrize("resource", RESOURCES)
def test_every_combination_of_namespace_labels_reaches_exactly_one_decision(
    enforce: str | None, audit: str | None, resource: str
) -> None:
    document = render_webhook_configuration(operator_namespace="p", url="https://h:1")
    labels = {"kubernetes.io/metadata.name": "shop"}
    if enforce is not None:
        labels[ENFORCE_LABEL] = enforce
    if audit is not None:
        labels[AUDIT_LABEL] = audit
    if enforce == "true":  # enforcement wins over audit
        expected = [ENFORCE_PATH]
    elif audit == "true":
        expected = [AUDIT_PATH]
    elif resource == "productionservices":  # the operator's own API: always enforced
        expected = [ENFORCE_PATH]
    else:
        expected = [POLICY_PATH]  # no label: what ReadinessPolicies select, in their mode
    assert _sent_to(document, labels, resource) == expected


def test_the_operator_namespace_and_kube_system_reach_no_entry() -> None:
    document = render_webhook_configuration(operator_namespace="p", url="https://h:1")
    for namespace in ("p", "kube-system"):
        labels = {"kubernetes.io/metadata.name": namespace, ENFORCE_LABEL: "true"}
        assert not [e for e in document["webhooks"] if _selects(e["namespaceSelector"], labels)]


def test_the_operator_is_known_by_its_username() -> None:
    default = render_webhook_configuration(operator_namespace="ops", url="https://h:1")
    chosen = render_webhook_configuration(
        operator_namespace="ops", url="https://h:1", operator_user="admin"
    )
    for document, user in (
        (default, "system:serviceaccount:ops:prodready"),
        (chosen, "admin"),
    ):
        conditions = document["webhooks"][0]["matchConditions"]
        assert conditions[0]["expression"] == f"request.userInfo.username != '{user}'"
    with pytest.raises(ValueError, match="cannot be used in a matchCondition"):
        render_webhook_configuration(
            operator_namespace="ops", url="https://h:1", operator_user="it's"
        )
    with pytest.raises(ValueError, match="must not be empty"):
        render_webhook_configuration(operator_namespace="ops", url="https://h:1", operator_user="")


def test_controllers_own_objects_are_named_in_the_condition() -> None:
    """The CEL names every owner kind and controller of `admission.CONTROLLER_OWNERS`; the
    e2e test (tests/e2e/test_webhook_bypass.py) has the apiserver evaluate it."""
    document = render_webhook_configuration(operator_namespace="p", url="https://h:1")
    expression = document["webhooks"][0]["matchConditions"][1]["expression"]
    for owner, controller in CONTROLLER_OWNERS.items():
        assert f"'{owner}': '{controller}'" in expression
    assert "request.subResource == 'ephemeralcontainers'" in expression
    assert "'system:kube-controller-manager'" in expression
    assert "'system:masters' in request.userInfo.groups" in expression


@pytest.mark.parametrize(
    ("arguments", "user"),
    [
        ([], "system:serviceaccount:ops:prodready"),
        (["--operator-service-account", "guard"], "system:serviceaccount:ops:guard"),
        (["--operator-user", "admin"], "admin"),
    ],
)
def test_command_takes_the_operators_identity(
    capsys: pytest.CaptureFixture[str], arguments: list[str], user: str
) -> None:
    code = main(["webhook-config", "--url", "https://h", "-n", "ops", *arguments])
    assert code == 0
    out = capsys.readouterr().out
    assert "&id" not in out  # no YAML anchors for shared lists
    document = yaml.safe_load(out)
    condition = document["webhooks"][0]["matchConditions"][0]
    assert condition["expression"] == f"request.userInfo.username != '{user}'"


def test_the_chart_names_the_operator_by_its_service_account() -> None:
    """The chart's entries equal the rendered ones (tests/unit/test_chart.py) with the
    release's ServiceAccount as the operator's username, whatever it is named."""
    from tests.unit.test_chart import NAMESPACE, RELEASE, one, render

    objects = render({"serviceAccount": {"name": "guard"}})
    configuration = one(objects, "ValidatingWebhookConfiguration")
    bundles = {w["clientConfig"].get("caBundle") for w in configuration["webhooks"]}
    expected = render_webhook_configuration(
        operator_namespace=NAMESPACE,
        service=ServiceTarget(RELEASE, NAMESPACE, 443),
        ca_bundle=base64.b64decode(bundles.pop() or ""),
        operator_user=f"system:serviceaccount:{NAMESPACE}:guard",
    )
    assert configuration["webhooks"] == expected["webhooks"]
    assert one(objects, "ServiceAccount")["metadata"]["name"] == "guard"
