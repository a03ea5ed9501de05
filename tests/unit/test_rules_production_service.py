"""ProductionServices are checked through the objects they render (PR-PS-001 and the rest)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from prodready.rules import Environment, Result, evaluate, to_admission_response

render = pytest.importorskip("prodready.render", reason="the renderer is not importable")

EXAMPLES = Path(__file__).parent.parent.parent / "examples"


def _example(name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((EXAMPLES / name).read_text())
    return document


def _minimal() -> dict[str, Any]:
    return {
        "apiVersion": "prodready.io/v1alpha1",
        "kind": "ProductionService",
        "metadata": {"name": "hello", "namespace": "shop"},
        "spec": {"image": "ghcr.io/example/hello:0.1.0", "environment": "dev"},
    }


def test_a_rendered_production_service_passes_and_reports_itself() -> None:
    (report,) = evaluate([_minimal()])
    assert report.object.kind == "ProductionService"
    assert report.environment is Environment.DEV
    assert report.environment_source == "spec"
    spec_findings = [f for f in report.findings if f.rule_id == "PR-PS-001"]
    assert [f.result for f in spec_findings] == [Result.PASS]
    children = {f.object.kind for f in report.findings if f.rule_id != "PR-PS-001"}
    assert children == {"Deployment"}
    assert all(f.patch is None for f in report.findings)  # fix the spec, not its output


def test_an_invalid_spec_is_an_error_finding_for_that_object() -> None:
    broken = copy.deepcopy(_minimal())
    broken["spec"]["replicas"] = "many"
    (report,) = evaluate([broken], environment="staging")
    (finding,) = report.findings
    assert finding.result is Result.FAIL
    assert finding.rule_id == "PR-PS-001"
    assert finding.path.startswith("spec")
    assert "cannot be rendered" in finding.message
    assert not report.compliant
    assert report.environment is Environment.DEV  # from the spec, even when rendering fails
    response = to_admission_response(report, uid="u", enforce=True)
    assert response["allowed"] is False


def test_a_spec_error_naming_a_checklist_rule_is_reported_under_that_rule() -> None:
    broken = copy.deepcopy(_minimal())
    broken["spec"]["env"] = [{"name": "DB_PASSWORD", "value": "hunter2"}]
    (report,) = evaluate([broken])
    (finding,) = report.findings
    assert finding.result is Result.FAIL
    assert finding.rule_id in {"PR-LG-003", "PR-PS-001"}
    assert "hunter2" not in finding.message


def test_the_examples_are_compliant_in_prod() -> None:
    (report,) = evaluate([_example("fastapi-postgres-redis.yaml")])
    assert report.environment is Environment.PROD
    assert [f.message for f in report.findings if f.failed] == []
