"""AdmissionReview responses: deny in enforce mode, warn otherwise, within API server limits."""

from __future__ import annotations

from dataclasses import replace

import pytest

from prodready.rules import (
    Finding,
    ObjectReport,
    Result,
    Severity,
    evaluate,
    to_admission_response,
)
from prodready.rules.admission import (
    MAX_WARNING_CHARS,
    MAX_WARNINGS_BYTES,
    limit_warnings,
    waits_on_other_objects,
)
from tests.unit.test_rules_checks import app, baseline, deployment, report_of, set_env


def test_enforce_denies_with_rule_ids_fields_and_fixes() -> None:
    report = report_of(_objects_with_failures())
    response = to_admission_response(report, uid="abc", enforce=True)
    assert response["uid"] == "abc"
    assert response["allowed"] is False
    status = response["status"]
    assert status["code"] == 403
    assert "PR-LG-001" in status["message"]
    assert "spec.template.spec.containers[0].env" in status["message"]
    assert "Fix: Set the log-format variable" in status["message"]
    # errors are in the message; warnings stay warnings
    assert [w.split()[0] for w in response["warnings"]] == ["PR-SC-005"]


def test_warn_mode_allows_and_warns_errors_first() -> None:
    report = report_of(_objects_with_failures())
    response = to_admission_response(report, uid="abc", enforce=False)
    assert response["allowed"] is True
    assert "status" not in response
    assert [w.split()[0] for w in response["warnings"]] == ["PR-LG-001", "PR-SC-005"]


def test_compliant_objects_are_allowed_without_warnings() -> None:
    response = to_admission_response(report_of(baseline()), uid="u", enforce=True)
    assert response == {"uid": "u", "allowed": True}


def _objects_with_failures() -> list[dict[str, object]]:
    objects = baseline()
    set_env(objects, "LOG_FORMAT", "text")
    app(objects)["image"] = "shop/api:latest"
    return objects


def test_warnings_fit_the_api_server_limits() -> None:
    report = report_of(baseline())
    template = Finding(
        rule_id="PR-SC-004",
        title="t",
        severity=Severity.WARNING,
        result=Result.WARN,
        object=report.object,
        container="c",
        path="spec.template.spec.containers[0].securityContext",
        message="é" * 400,
        fix="fix",
    )
    report = replace(report, findings=tuple(replace(template, container=str(i)) for i in range(60)))
    response = to_admission_response(report, uid="u", enforce=True)
    warnings = response["warnings"]
    assert all(len(w) <= MAX_WARNING_CHARS for w in warnings)
    assert sum(len(w.encode()) for w in warnings) <= MAX_WARNINGS_BYTES
    assert warnings[-1].startswith(f"{60 - (len(warnings) - 1)} more finding(s) left out")
    assert all("\n" not in w for w in warnings)


def test_limit_warnings_edge_cases() -> None:
    assert limit_warnings([]) == []
    assert limit_warnings(["a\nb"]) == ["a b"]
    huge = ["x" * 300] * 100
    kept = limit_warnings(huge)
    assert len(kept[0]) == MAX_WARNING_CHARS
    assert kept[0].endswith("...")
    assert "left out" in kept[-1]


def test_rendered_findings_name_their_object() -> None:
    objects = baseline()
    deployment(objects)["metadata"]["name"] = "api"
    (report,) = [r for r in evaluate(objects) if r.object.kind == "Deployment"]
    other = replace(report.object, name="child")
    finding = replace(report.findings[0], object=other, result=Result.WARN)
    response = to_admission_response(replace(report, findings=(finding,)), uid="u", enforce=False)
    assert "Deployment child" in response["warnings"][0]


# -- admission never denies because of creation order (issue 15) -------------------------


def _failing(rule_id: str, message: str) -> tuple[ObjectReport, Finding]:
    report = report_of(baseline())
    finding = Finding(
        rule_id=rule_id,
        title="t",
        severity=Severity.ERROR,
        result=Result.FAIL,
        object=report.object,
        container=None,
        path="spec",
        message=message,
        fix="fix",
    )
    return replace(report, findings=(finding,)), finding


@pytest.mark.parametrize(
    ("rule_id", "message", "waits"),
    [
        ("PR-MO-001", "no metrics endpoint is declared or scraped", True),
        ("PR-MO-002", "no PrometheusRule in namespace shop alerts on api", True),
        ("PR-CF-002", "Secret db does not exist", True),
        ("PR-SC-001", "Service api is not TLS", True),
        ("PR-RS-002", "no PodDisruptionBudget selects the pods", True),
        ("PR-RS-002", "the HPA's minReplicas is 1; no PodDisruptionBudget selects the pods", True),
        ("PR-RS-002", "PodDisruptionBudget api blocks every eviction (node drains hang)", True),
        ("PR-RS-002", "replicas is 1; no PodDisruptionBudget selects the pods", False),
        ("PR-RS-002", "a bare Pod is a single replica that nothing recreates", False),
        ("PR-SC-002", "Ingress web allows CORS from any origin", True),
        ("PR-SC-002", "container app: CORS_ALLOWED_ORIGINS is not set", False),
        ("PR-HC-001", "container app has no livenessProbe", False),
    ],
)
def test_what_waits_on_another_object_is_a_warning_in_enforce(
    rule_id: str, message: str, waits: bool
) -> None:
    report, finding = _failing(rule_id, message)
    assert waits_on_other_objects(finding) is waits
    response = to_admission_response(report, uid="u", enforce=True)
    assert response["allowed"] is waits
    if waits:
        assert response["warnings"] == [
            f"{rule_id} (error, not denied: waits on another object, the audit checks it) "
            f"{message} [spec]"
        ]
    else:
        assert rule_id in response["status"]["message"]
    # Audit mode: allowed and warned either way, unmarked.
    audit = to_admission_response(report, uid="u", enforce=False)
    assert audit["allowed"] is True
    assert audit["warnings"][0].startswith(f"{rule_id} (error) ")


def test_a_production_services_rendered_children_are_its_own_to_fix() -> None:
    service = {
        "apiVersion": "prodready.io/v1alpha1",
        "kind": "ProductionService",
        "metadata": {"name": "shop", "namespace": "x"},
        "spec": {
            "image": "registry.example.com/shop/web:1.4.2",
            "replicas": 2,
            "environment": "prod",
            "exposure": {"host": "shop.example.com", "tlsSecretName": "shop-tls"},
        },
    }
    (report,) = evaluate([service])
    failing = [f for f in report.findings if f.result is Result.FAIL]
    assert failing
    assert all(f.object.kind == "Deployment" for f in failing)  # its rendered child
    assert not any(waits_on_other_objects(f) for f in failing)
    assert to_admission_response(report, uid="u", enforce=True)["allowed"] is False


def test_the_rules_own_messages_are_split_as_the_admission_expects() -> None:
    """PR-RS-002's own text, from the check itself: replicas the object declares deny, a
    missing PodDisruptionBudget alone does not (if its severity is raised to error)."""
    objects = baseline()
    objects = [o for o in objects if o.get("kind") != "PodDisruptionBudget"]
    (report,) = [r for r in evaluate(objects) if r.object.kind == "Deployment"]
    (missing,) = [f for f in report.findings if f.rule_id == "PR-RS-002"]
    assert waits_on_other_objects(missing) is True
    deployment(objects)["spec"]["replicas"] = 1
    (report,) = [r for r in evaluate(objects) if r.object.kind == "Deployment"]
    (both,) = [f for f in report.findings if f.rule_id == "PR-RS-002"]
    assert both.failed
    assert waits_on_other_objects(both) is False
