"""AdmissionReview responses: deny in enforce mode, warn otherwise, within API server limits."""

from __future__ import annotations

from dataclasses import replace

from prodready.rules import Finding, Result, Severity, evaluate, to_admission_response
from prodready.rules.admission import MAX_WARNING_CHARS, MAX_WARNINGS_BYTES, limit_warnings
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
    (report,) = evaluate(objects)
    other = replace(report.object, name="child")
    finding = replace(report.findings[0], object=other, result=Result.WARN)
    response = to_admission_response(replace(report, findings=(finding,)), uid="u", enforce=False)
    assert "Deployment child" in response["warnings"][0]
