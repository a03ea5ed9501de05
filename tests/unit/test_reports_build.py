"""Policy reports as data: building, capping, comparing, reading back, and the CRD schemas."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from prodready import rules
from prodready.audit.reports import (
    ANNOTATION_OMITTED,
    OPENREPORTS,
    POLICY_REPORT,
    ReportFlavor,
    build_report,
    category_of,
    content_digest,
    failing_rules,
    parse_report,
    report_name,
    scope_of,
)

FIXTURES = Path(__file__).parents[1] / "fixtures"
NOW = 1_900_000_000.0


def _objects() -> list[dict[str, Any]]:
    documents = yaml.safe_load_all((FIXTURES / "rules" / "compliant.yaml").read_text())
    return [d for d in documents if d and d["kind"] != "Secret"]


def _broken() -> dict[str, Any]:
    deployment = copy.deepcopy(_objects()[0])
    deployment["metadata"]["uid"] = "0b9d-uid"
    del deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]
    return deployment


def _report(deployment: dict[str, Any] | None = None) -> rules.ObjectReport:
    return rules.evaluate([deployment or _broken(), *_objects()[1:]])[0]


def _build(flavor: ReportFlavor = OPENREPORTS, **kwargs: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {"max_results": 1000, "now": NOW}
    arguments.update(kwargs)
    return build_report(flavor, _report(), _broken(), **arguments)


def _schema(flavor: ReportFlavor) -> dict[str, Any]:
    crd = yaml.safe_load(
        (
            FIXTURES / "crds" / f"{flavor.crd_name.split('.', 1)[1]}_{flavor.resource.plural}.yaml"
        ).read_text()
    )
    version = flavor.resource.api_version.split("/")[1]
    return next(v for v in crd["spec"]["versions"] if v["name"] == version)["schema"][
        "openAPIV3Schema"
    ]


def _pruned(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Fields the apiserver would prune: keys a structural schema does not declare."""
    found: list[str] = []
    if isinstance(value, dict):
        if "properties" in schema:
            for key, item in value.items():
                if path == "" and key in ("apiVersion", "kind", "metadata"):
                    continue
                if key not in schema["properties"]:
                    found.append(f"{path}.{key}")
                else:
                    found.extend(_pruned(item, schema["properties"][key], f"{path}.{key}"))
    elif isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            found.extend(_pruned(item, schema["items"], f"{path}[{index}]"))
    return found


@pytest.mark.parametrize("flavor", [OPENREPORTS, POLICY_REPORT], ids=lambda f: f.name)
def test_reports_fit_the_real_crd_schemas_without_pruning(flavor: ReportFlavor) -> None:
    body = _build(flavor)
    schema = _schema(flavor)
    jsonschema.validate(body, schema)
    # A field the apiserver prunes would differ from what was built at every comparison,
    # and the audit would write the report on every pass.
    assert _pruned(body, schema) == []


def test_report_shape() -> None:
    body = _build()
    assert body["apiVersion"] == "openreports.io/v1alpha1"
    assert body["kind"] == "Report"
    metadata = body["metadata"]
    assert metadata["name"] == "prodready-deployment-api"
    assert metadata["namespace"] == "shop"
    assert metadata["labels"] == {"app.kubernetes.io/managed-by": "prodready"}
    assert metadata["annotations"]["prodready.io/environment"] == "prod"
    assert metadata["ownerReferences"] == [
        {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api", "uid": "0b9d-uid"}
    ]
    assert body["scope"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "api",
        "namespace": "shop",
        "uid": "0b9d-uid",
    }
    assert body["source"] == "prodready"
    assert body["configuration"] == {"limits": {"maxResults": 1000}}
    report = _report()
    assert body["summary"] == {
        "pass": report.counts.passed,
        "fail": 1,
        "warn": 0,
        "error": 0,
        "skip": 0,
    }
    first = body["results"][0]  # failures first
    assert first["policy"] == "PR-HC-001"
    assert first["rule"] == "every long-running container has a liveness probe"
    assert first["category"] == "Health checks"
    assert first["severity"] == "high"
    assert first["result"] == "fail"
    assert first["scored"] is True
    assert first["source"] == "prodready"
    assert first["resources"] == [body["scope"]]
    assert first["properties"] == {
        "path": "spec.template.spec.containers[0].livenessProbe",
        "fix": rules.RULES_BY_ID["PR-HC-001"].fix,
        "severity": "error",
        "container": "app",
    }
    assert first["timestamp"] == {"seconds": int(NOW), "nanos": 0}
    assert all(r["result"] == "pass" for r in body["results"][1:])


def test_policy_report_has_no_report_level_fields() -> None:
    body = _build(POLICY_REPORT)
    assert body["apiVersion"] == "wgpolicyk8s.io/v1alpha2"
    assert body["kind"] == "PolicyReport"
    assert "source" not in body
    assert "configuration" not in body


def test_warnings_are_medium_and_unscored() -> None:
    deployment = _broken()
    deployment["spec"]["template"]["spec"]["containers"][0]["image"] = "registry/x:latest"
    report = rules.evaluate([deployment, *_objects()[1:]])[0]
    body = build_report(OPENREPORTS, report, deployment, max_results=100, now=NOW)
    warned = next(r for r in body["results"] if r["result"] == "warn")
    assert warned["severity"] == "medium"
    assert warned["scored"] is False
    assert [r["result"] for r in body["results"][:2]] == ["fail", "warn"]


def test_results_are_capped_by_count_failures_first() -> None:
    body = _build(max_results=3)
    assert len(body["results"]) == 3
    assert body["results"][0]["result"] == "fail"
    report = _report()
    omitted = len(report.findings) - 3
    assert body["metadata"]["annotations"][ANNOTATION_OMITTED] == str(omitted)
    assert body["summary"]["pass"] == report.counts.passed  # the summary counts everything
    assert body["configuration"]["limits"]["maxResults"] == 3


def test_results_are_capped_by_size() -> None:
    limit = 4096
    body = _build(max_bytes=limit)
    assert len(json.dumps(body, separators=(",", ":")).encode()) <= limit
    assert 0 < len(body["results"]) < len(_report().findings)
    assert ANNOTATION_OMITTED in body["metadata"]["annotations"]


def test_long_messages_are_shortened() -> None:
    finding = _report().findings[0]
    long = rules.ObjectReport(
        object=_report().object,
        environment=rules.Environment.PROD,
        environment_source="label",
        findings=(
            rules.Finding(
                rule_id=finding.rule_id,
                title=finding.title,
                severity=finding.severity,
                result=finding.result,
                object=finding.object,
                container=None,
                path=finding.path,
                message="word " * 400,
                fix=finding.fix,
            ),
        ),
        counts=rules.Counts(failed=1),
        score=0.0,
        compliant=False,
        input_index=0,
    )
    body = build_report(OPENREPORTS, long, _broken(), max_results=10, now=NOW)
    message = body["results"][0]["message"]
    assert len(message) == 1024
    assert message.endswith("...")
    assert "container" not in body["results"][0]["properties"]


def test_workload_without_uid_gets_no_owner_reference() -> None:
    deployment = _broken()
    del deployment["metadata"]["uid"]
    body = build_report(OPENREPORTS, _report(), deployment, max_results=10, now=NOW)
    assert "ownerReferences" not in body["metadata"]
    assert "uid" not in body["scope"]


def test_names() -> None:
    assert report_name("Deployment", "api") == "prodready-deployment-api"
    assert report_name("CronJob", "nightly.backup") == "prodready-cronjob-nightly.backup"
    long = report_name("StatefulSet", "a" * 253)
    assert len(long) == 253
    assert long != report_name("StatefulSet", "a" * 252 + "b")
    assert category_of("PR-MO-002") == "Monitoring"
    assert category_of("PR-XX-001") == "prodready"
    assert category_of("custom") == "prodready"


def test_digest_ignores_timestamps_and_server_metadata() -> None:
    body = _build()
    later = _build(now=NOW + 3600)
    assert content_digest(body) == content_digest(later)
    live = copy.deepcopy(body)
    live["metadata"].update(
        {"uid": "r-uid", "resourceVersion": "42", "creationTimestamp": "2030-01-01T00:00:00Z"}
    )
    live["metadata"]["labels"]["team"] = "payments"  # someone else's label
    live["metadata"]["annotations"]["note"] = "kept"
    live["metadata"]["ownerReferences"][0]["blockOwnerDeletion"] = False
    assert content_digest(live) == content_digest(body)
    changed = copy.deepcopy(body)
    changed["results"][0]["message"] = "different"
    assert content_digest(changed) != content_digest(body)
    assert content_digest(_build(max_results=2)) != content_digest(body)


def test_failing_rules_and_scope() -> None:
    body = _build()
    assert failing_rules(body) == frozenset({"PR-HC-001"})
    assert scope_of(body) == ("Deployment", "api")
    assert scope_of({"scope": {}}) is None


def test_parse_report_round_trip() -> None:
    report = _report()
    parsed = parse_report(_build(), index=3)
    assert parsed.object == report.object
    assert parsed.counts == report.counts
    assert parsed.score == report.score
    assert parsed.compliant is False
    assert parsed.environment is rules.Environment.PROD
    assert parsed.environment_source == "label"
    assert parsed.input_index == 3
    first = parsed.findings[0]
    assert (first.rule_id, first.result, first.severity) == (
        "PR-HC-001",
        rules.Result.FAIL,
        rules.Severity.ERROR,
    )
    assert first.container == "app"
    assert first.path == "spec.template.spec.containers[0].livenessProbe"
    assert len(parsed.findings) == len(report.findings)


def test_parse_report_tolerates_what_other_tools_write() -> None:
    body = {
        "metadata": {"name": "other", "namespace": "shop", "annotations": {}},
        "summary": {"pass": 1, "error": 2},
        "results": [
            {"policy": "PR-HC-002", "result": "error"},
            {"policy": "custom-policy", "rule": "custom rule", "result": "warn", "severity": "low"},
            {"policy": "PR-HC-001", "result": "fail", "severity": "critical",
             "properties": {"severity": "nonsense"}},
            {"policy": "PR-HC-003", "result": "pass", "severity": "high"},
        ],
    }  # fmt: skip
    parsed = parse_report(body)
    assert parsed.object.name == "other"
    assert parsed.object.namespace == "shop"
    assert parsed.counts == rules.Counts(passed=1, failed=2)
    assert parsed.compliant is False
    assert parsed.environment is rules.Environment.PROD
    assert parsed.environment_source == "report"
    custom, unknown_severity, high = parsed.findings
    assert custom.title == "custom rule"
    assert custom.severity is rules.Severity.WARNING
    assert custom.fix == ""
    assert unknown_severity.severity is rules.Severity.WARNING
    assert high.severity is rules.Severity.ERROR
    assert 0.0 <= parsed.score <= 100.0
