"""SpecError and parse_production_service: one clear error naming field, rule and problem."""

from __future__ import annotations

from typing import Any

import pytest

from prodready.api import SCHEMA_RULE, SpecError, parse_production_service
from prodready.api.parse import format_path


def test_spec_error_carries_and_names_field_rule_and_message() -> None:
    error = SpecError("spec.env[2].value", "PR-LG-003", "a literal secret")
    assert (error.field, error.rule, error.message) == (
        "spec.env[2].value",
        "PR-LG-003",
        "a literal secret",
    )
    assert str(error) == "spec.env[2].value: a literal secret [PR-LG-003]"
    assert "PR-LG-003" in repr(error)
    assert isinstance(error, ValueError)


@pytest.mark.parametrize(
    ("location", "text"),
    [
        (("spec", "env", 2, "value"), "spec.env[2].value"),
        (
            ("spec", "pod", "labels", "app.kubernetes.io/name"),
            "spec.pod.labels[app.kubernetes.io/name]",
        ),
        ((), "(object)"),
        ((0,), "[0]"),
    ],
)
def test_format_path(location: tuple[int | str, ...], text: str) -> None:
    assert format_path(location) == text


def test_non_mapping_is_a_spec_error() -> None:
    bad: Any = ["not", "a", "mapping"]
    with pytest.raises(SpecError) as caught:
        parse_production_service(bad)
    assert caught.value.rule == SCHEMA_RULE


def test_wrong_api_version_and_kind_are_named() -> None:
    with pytest.raises(SpecError) as caught:
        parse_production_service(
            {
                "apiVersion": "apps/v1",
                "kind": "ProductionService",
                "metadata": {"name": "a"},
                "spec": {"image": "x:1", "environment": "dev"},
            }
        )
    assert caught.value.field == "apiVersion"


def test_several_problems_are_combined_into_one_message() -> None:
    with pytest.raises(SpecError) as caught:
        parse_production_service(
            {
                "apiVersion": "prodready.io/v1alpha1",
                "kind": "ProductionService",
                "metadata": {"name": "a"},
                "spec": {"replicas": "many"},
            }
        )
    error = caught.value
    assert error.field == "spec.image"
    assert "and 2 more" in error.message
    assert "spec.environment" in error.message
    assert "spec.replicas" in error.message


def test_error_messages_never_echo_values() -> None:
    """A rejected value may be a secret: no message may contain it."""
    secret = "hunter2-very-secret-value"
    for spec in (
        {"image": "x:1", "environment": "dev", "env": [{"name": "DB_PASSWORD", "value": secret}]},
        {"image": "x:1", "environment": "dev", "env": [{"name": "A", "value": {"x": secret}}]},
        {"image": "x:1", "environment": secret},
        {"image": "x:1", "environment": "dev", "replicas": secret},
    ):
        with pytest.raises(SpecError) as caught:
            parse_production_service(
                {
                    "apiVersion": "prodready.io/v1alpha1",
                    "kind": "ProductionService",
                    "metadata": {"name": "a"},
                    "spec": spec,
                }
            )
        assert secret not in str(caught.value)
