"""The generated CRD: current, structural, and in agreement with the pydantic models."""

from __future__ import annotations

import argparse
import copy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from prodready.api import command as crds_command, parse_production_service
from prodready.api.crd import (
    CRD_NAME,
    apply_defaults,
    crd,
    crd_yaml,
    openapi_schema,
    structural_schema,
)
from prodready.api.sensitive import SENSITIVE_NAME_PATTERN
from prodready.cli import main

REPO = Path(__file__).resolve().parents[2]
CRD_FILE = REPO / "crds" / "prodready.io_productionservices.yaml"
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))


def _nodes(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path or "(root)", schema
    for name, prop in schema.get("properties", {}).items():
        yield from _nodes(prop, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from _nodes(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _nodes(schema["additionalProperties"], f"{path}{{}}")


def strict(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with unknown fields rejected (the apiserver prunes them instead)."""
    result = copy.deepcopy(schema)
    for _, node in _nodes(result):
        if "properties" in node:
            node["additionalProperties"] = False
    return result


def _ps_objects() -> list[dict[str, Any]]:
    return [
        document
        for path in EXAMPLES
        for document in yaml.safe_load_all(path.read_text())
        if document and document.get("kind") == "ProductionService"
    ]


def test_crd_file_is_current() -> None:
    assert CRD_FILE.read_text() == crd_yaml(), (
        "crds/prodready.io_productionservices.yaml is stale: run `make generate`"
    )


def test_crd_yaml_is_deterministic() -> None:
    assert crd_yaml() == crd_yaml()


def test_crds_command_prints_the_crd(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["crds"]) == 0
    assert capsys.readouterr().out == crd_yaml()
    parser = argparse.ArgumentParser()
    crds_command.add_arguments(parser)
    assert crds_command.run(parser.parse_args([])) == 0


def test_names_scope_and_subresources() -> None:
    spec = crd()["spec"]
    assert crd()["metadata"]["name"] == CRD_NAME == "productionservices.prodready.io"
    assert spec["group"] == "prodready.io"
    assert spec["scope"] == "Namespaced"
    assert spec["names"]["kind"] == "ProductionService"
    assert spec["names"]["plural"] == "productionservices"
    assert spec["names"]["shortNames"] == ["ps", "prodsvc"]
    assert spec["names"]["categories"] == ["prodready"]
    (version,) = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}
    columns = {column["name"]: column["jsonPath"] for column in version["additionalPrinterColumns"]}
    assert columns["Ready"] == '.status.conditions[?(@.type=="Ready")].status'
    assert columns["Compliant"] == '.status.conditions[?(@.type=="PolicyCompliant")].status'
    assert columns["Environment"] == ".spec.environment"
    assert columns["Replicas"] == ".status.replicas"
    assert columns["Age"] == ".metadata.creationTimestamp"


def test_schema_is_structural() -> None:
    """Every node has a type (or is int-or-string), no $ref, no null, no bare anyOf."""
    for path, node in _nodes(openapi_schema()):
        assert "$ref" not in node, path
        assert "title" not in node, path
        assert node.get("additionalProperties") is not False, path
        assert not ("properties" in node and "additionalProperties" in node), path
        assert "x-kubernetes-preserve-unknown-fields" not in node, path
        if node.get("x-kubernetes-int-or-string"):
            assert node["anyOf"] == [{"type": "integer"}, {"type": "string"}], path
            continue
        if path == ".metadata":
            assert node == {"type": "object"}
            continue
        assert node.get("type") in {"object", "array", "string", "integer", "number", "boolean"}, (
            path
        )
        assert "anyOf" not in node, path
        assert node.get("default", 0) is not None, path


def test_every_spec_and_status_field_is_described() -> None:
    schema = openapi_schema()
    for top in ("spec", "status"):
        for path, node in _nodes(schema["properties"][top], top):
            if path.endswith("[]") or path.endswith("{}"):
                continue  # list items and map values are described by their field
            assert node.get("description"), f"{path} has no description (kubectl explain)"


def test_strings_and_lists_are_bounded_for_cel_cost() -> None:
    """CEL cost estimation needs maxItems/maxLength on what the rules iterate."""
    spec = openapi_schema()["properties"]["spec"]
    for path, node in _nodes(spec, "spec"):
        if node.get("type") == "array":
            assert "maxItems" in node, path
        if node.get("type") == "object" and "additionalProperties" in node:
            assert "maxProperties" in node, path
        if node.get("type") == "string" and "enum" not in node:
            assert "maxLength" in node, path


def test_cel_rules_use_the_python_sensitive_name_pattern() -> None:
    rules = openapi_schema()["properties"]["spec"]["x-kubernetes-validations"]
    lg003 = next(rule for rule in rules if rule["message"].startswith("PR-LG-003"))
    assert f"matches('{SENSITIVE_NAME_PATTERN}')" in lg003["rule"]
    assert lg003["fieldPath"] == ".env"


def test_every_pattern_is_re2_compatible() -> None:
    """No look-around or backreferences: the apiserver compiles patterns with Go's RE2."""
    for path, node in _nodes(openapi_schema()):
        if "pattern" in node:
            assert not re.search(r"\(\?[=!<]|\\[1-9]", node["pattern"]), path
            re.compile(node["pattern"])


def test_crd_defaults_agree_with_the_models() -> None:
    """What the apiserver stores after defaulting parses to the same model as the input."""
    schema = openapi_schema()
    for document in _ps_objects():
        defaulted = apply_defaults(document, schema)
        assert parse_production_service(defaulted) == parse_production_service(document)
        model = parse_production_service(document).model_dump(
            by_alias=True, exclude_none=True, mode="json"
        )
        # Every defaulted value the apiserver fills in is what pydantic fills in.
        _assert_subset(defaulted["spec"], model["spec"], "spec")


def _assert_subset(stored: Any, model: Any, path: str) -> None:
    if isinstance(stored, dict):
        for key, value in stored.items():
            assert key in model, path + "." + key
            _assert_subset(value, model[key], f"{path}.{key}")
    elif isinstance(stored, list):
        assert len(stored) == len(model), path
        for index, (item, expected) in enumerate(zip(stored, model, strict=True)):
            _assert_subset(item, expected, f"{path}[{index}]")
    elif isinstance(stored, int | float) and not isinstance(stored, bool):
        assert stored == model, path
    else:
        assert str(stored) == str(model), path


def test_object_defaults_with_cel_rules_are_spelled_out() -> None:
    """The apiserver checks `default: {}` against CEL rules without nested defaulting."""
    for path, node in _nodes(openapi_schema()):
        if "x-kubernetes-validations" in node and "default" in node:
            assert node["default"] != {}, path


@pytest.mark.parametrize("document", _ps_objects(), ids=lambda d: d["metadata"]["name"])
def test_examples_validate_against_the_crd_schema(document: dict[str, Any]) -> None:
    schema = strict(openapi_schema())
    jsonschema.Draft4Validator(schema).validate(apply_defaults(document, openapi_schema()))


def test_schema_rejects_unknown_fields_and_bad_values() -> None:
    schema = strict(openapi_schema())
    (document, *_) = _ps_objects()
    validator = jsonschema.Draft4Validator(schema)
    for mutate in (
        lambda d: d["spec"].update(replica=3),
        lambda d: d["spec"].update(environment="qa"),
        lambda d: d["spec"]["health"].update(path="health"),
        lambda d: d["spec"].update(replicas=-1),
    ):
        bad = copy.deepcopy(document)
        mutate(bad)
        assert not validator.is_valid(bad)


def test_converter_handles_constants_bounds_and_list_defaults() -> None:
    from typing import Literal

    from pydantic import BaseModel, Field

    class Inner(BaseModel):
        tags: list[str] = Field(["a"], max_length=4)

    class Sample(BaseModel):
        kind: Literal["only"] = "only"
        ratio: float = Field(0.5, gt=0, lt=1)
        inner: Inner = Inner(tags=["b", "c"])

    schema = structural_schema(Sample)
    assert schema["properties"]["kind"]["enum"] == ["only"]
    ratio = schema["properties"]["ratio"]
    assert (ratio["minimum"], ratio["exclusiveMinimum"]) == (0, True)
    assert (ratio["maximum"], ratio["exclusiveMaximum"]) == (1, True)
    assert schema["properties"]["inner"]["default"] == {"tags": ["b", "c"]}


def test_converter_refuses_unions_a_structural_schema_cannot_express() -> None:
    from pydantic import BaseModel

    class Ambiguous(BaseModel):
        value: int | str | None = None

    with pytest.raises(ValueError, match="no structural schema"):
        structural_schema(Ambiguous)
