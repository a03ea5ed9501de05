"""The ReadinessPolicy and ReadinessException CRDs: generated, structural, described, and in
agreement with the pydantic models (the apiserver's side is tests/e2e/test_api_policy.py)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import ValidationError

from prodready.api.crd import (
    CRDS,
    PRODUCTION_SERVICE,
    READINESS_EXCEPTION,
    READINESS_POLICY,
    CrdDefinition,
    all_crds_yaml,
    apply_defaults,
    crd,
    crd_files,
    crd_yaml,
    openapi_schema,
)
from prodready.api.policy import (
    ReadinessException,
    ReadinessExceptionSpec,
    ReadinessPolicy,
    ReadinessPolicySpec,
)
from tests.unit.test_api_crd import _nodes, strict

REPO = Path(__file__).resolve().parents[2]
POLICY_CRDS = (READINESS_POLICY, READINESS_EXCEPTION)


def _example(name: str) -> dict[str, Any]:
    (document,) = [d for d in yaml.safe_load_all((REPO / "examples" / name).read_text()) if d]
    return dict(document)


def test_the_production_service_crd_is_unchanged() -> None:
    """Generalising the generator kept the ProductionService CRD byte for byte."""
    assert crd_yaml() == crd_yaml(PRODUCTION_SERVICE)
    assert (REPO / "crds" / PRODUCTION_SERVICE.file_name).read_text() == crd_yaml()


def test_every_crd_has_a_file_name_and_is_deterministic() -> None:
    assert list(crd_files()) == [
        "prodready.io_productionservices.yaml",
        "prodready.io_readinesspolicies.yaml",
        "prodready.io_readinessexceptions.yaml",
    ]
    assert crd_files() == crd_files()
    documents = list(yaml.safe_load_all(all_crds_yaml()))
    assert [d["metadata"]["name"] for d in documents] == [c.name for c in CRDS]
    for definition in POLICY_CRDS:
        text = crd_yaml(definition)
        assert "tests/unit/test_api_policy.py" in text.splitlines()[1]
        assert "&id" not in text
        assert "*id" not in text


@pytest.mark.parametrize(
    ("definition", "scope", "short"),
    [(READINESS_POLICY, "Cluster", ["rpol"]), (READINESS_EXCEPTION, "Namespaced", ["rex"])],
    ids=["policy", "exception"],
)
def test_names_scope_columns(definition: CrdDefinition, scope: str, short: list[str]) -> None:
    spec = crd(definition)["spec"]
    assert spec["scope"] == scope
    assert spec["names"]["shortNames"] == short
    assert spec["names"]["categories"] == ["prodready"]
    (version,) = spec["versions"]
    assert version["subresources"] == {"status": {}}
    assert version["additionalPrinterColumns"][-1]["name"] == "Age"


@pytest.mark.parametrize("definition", POLICY_CRDS, ids=lambda d: d.kind)
def test_schema_is_structural_and_bounded(definition: CrdDefinition) -> None:
    for path, node in _nodes(openapi_schema(definition)):
        for forbidden in ("$ref", "title", "anyOf", "propertyNames", "patternProperties"):
            assert forbidden not in node, (path, forbidden)
        if path in (".metadata", ".apiVersion", ".kind"):
            continue
        assert node.get("type") in {"object", "array", "string", "integer", "boolean"}, path
        if node.get("type") == "array":
            assert "maxItems" in node, path
        if node.get("type") == "string" and "enum" not in node and "format" not in node:
            assert "maxLength" in node, path
        if "pattern" in node:
            assert not re.search(r"\(\?[=!<]|\\[1-9]", node["pattern"]), path
        for rule in node.get("x-kubernetes-validations", ()):
            assert rule["message"], path
        if "x-kubernetes-validations" in node and node.get("default") == {}:
            # The apiserver checks `{}` against the rules without nested defaulting: each
            # rule must then hold on an empty object (they test with has()).
            for rule in node["x-kubernetes-validations"]:
                assert rule["rule"].startswith("!has("), (path, rule["rule"])


@pytest.mark.parametrize("definition", POLICY_CRDS, ids=lambda d: d.kind)
def test_every_field_is_described_for_kubectl_explain(definition: CrdDefinition) -> None:
    schema = openapi_schema(definition)
    for top in ("spec", "status"):
        for path, node in _nodes(schema["properties"][top], top):
            if path.endswith(("[]", "{}")):
                continue
            if re.search(r"[sS]elector\.", path) or ".envVars." in path or ".conditions" in path:
                continue  # variable names and conditions are described by their field
            assert node.get("description"), f"{path} has no description"


def test_examples_validate_against_models_and_schemas() -> None:
    for name, model, definition in (
        ("policy.yaml", ReadinessPolicy, READINESS_POLICY),
        ("exception.yaml", ReadinessException, READINESS_EXCEPTION),
    ):
        document = _example(name)
        model.model_validate(document)
        if definition.scope == "Namespaced":
            document["metadata"]["namespace"] = "shop"
        schema = strict(openapi_schema(definition))
        jsonschema.Draft4Validator(schema).validate(
            apply_defaults(document, openapi_schema(definition))
        )


@pytest.mark.parametrize(
    ("model", "definition"),
    [(ReadinessPolicySpec, READINESS_POLICY), (ReadinessExceptionSpec, READINESS_EXCEPTION)],
)
def test_apiserver_defaults_agree_with_the_models(model: Any, definition: CrdDefinition) -> None:
    """What the apiserver fills in is what pydantic fills in."""
    document = _example("exception.yaml")["spec"] if model is ReadinessExceptionSpec else {}
    spec_schema = openapi_schema(definition)["properties"]["spec"]
    defaulted = apply_defaults(document, spec_schema)
    assert model.model_validate(defaulted) == model.model_validate(document)
    dumped = model.model_validate(document).model_dump(by_alias=True, mode="json")
    for key, value in defaulted.items():
        assert dumped[key] == value or (
            isinstance(value, dict) and value.items() <= dumped[key].items()
        ), key


def test_a_policy_without_spec_is_stored_with_every_default() -> None:
    schema = openapi_schema(READINESS_POLICY)
    assert "spec" not in schema.get("required", [])
    assert schema["properties"]["spec"]["default"] == {}
    assert "required" in openapi_schema(READINESS_EXCEPTION)


BAD_POLICIES = [
    {"mode": "Block"},
    {"disabled": ["PR-LM-001"]},
    {"severity": {"PR-LM-001": "warning"}},
    {"severity": {"hc-1": "error"}},
    {"annotationExemptions": {"rules": ["PR-LM-001"]}},
    {"environment": {"value": "prod", "namespaceLabel": "x"}},
    {"environment": {}},
    {"exemptions": [{"rules": ["PR-LM-001"], "reason": "r"}]},
    {"exemptions": [{"rules": ["PR-RS-002"], "reason": " "}]},
    {"exemptions": [{"rules": [], "reason": "r"}]},
    {"maxExceptionDays": 0},
    {
        "namespaceSelector": {
            "matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]
        }
    },
    {"namespaceSelector": {"matchLabels": {"not a key!": "x"}}},
    {"unknown": True},
]


@pytest.mark.parametrize("spec", BAD_POLICIES, ids=lambda s: next(iter(s)))
def test_bad_policies_are_refused(spec: dict[str, Any]) -> None:
    document = _example("policy.yaml")
    document["spec"] = spec
    with pytest.raises(ValidationError):
        ReadinessPolicy.model_validate(document)


def _bad_exception(**spec: Any) -> dict[str, Any]:
    document = _example("exception.yaml")
    document["spec"].update(spec)
    return document


BAD_EXCEPTIONS = {
    "no-rules": {"rules": []},
    "twice": {
        "rules": [{"rule": "PR-RS-002", "reason": "a"}, {"rule": "PR-RS-002", "reason": "b"}]
    },
    "limits": {"rules": [{"rule": "PR-LM-001", "reason": "a"}]},
    "blank": {"rules": [{"rule": "PR-RS-002", "reason": "\t"}]},
    "blanket": {"match": {"kinds": ["Deployment"]}},
    "naive-time": {"expires": "2026-12-31T00:00:00"},
    "approver": {"approvedBy": ""},
}


@pytest.mark.parametrize("case", sorted(BAD_EXCEPTIONS))
def test_bad_exceptions_are_refused(case: str) -> None:
    with pytest.raises(ValidationError):
        ReadinessException.model_validate(_bad_exception(**BAD_EXCEPTIONS[case]))


def test_an_exception_without_expires_is_refused() -> None:
    document = _example("exception.yaml")
    del document["spec"]["expires"]
    with pytest.raises(ValidationError, match="expires"):
        ReadinessException.model_validate(document)


def test_crds_all_prints_every_crd(capsys: pytest.CaptureFixture[str]) -> None:
    from prodready.cli import main

    assert main(["crds", "--all"]) == 0
    assert capsys.readouterr().out == all_crds_yaml()
    assert main(["crds"]) == 0
    assert capsys.readouterr().out == crd_yaml()
