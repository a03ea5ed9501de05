"""The ProductionService models: defaults from the checklist, wire names, cross-field rules."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from prodready.api import (
    API_VERSION,
    GROUP,
    KIND,
    PLURAL,
    VERSION,
    ProductionService,
    SpecError,
    parse_production_service,
)
from prodready.api.models import Environment, ProductionServiceStatus
from prodready.api.quantity import parse_quantity
from prodready.api.sensitive import (
    QUALIFIED_NAME_PATTERN,
    SENSITIVE_NAME_PATTERN,
    is_sensitive_name,
)


def service(**spec: Any) -> dict[str, Any]:
    """A ProductionService dict with the required fields and `spec` overrides."""
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": "api", "namespace": "shop"},
        "spec": {"image": "ghcr.io/example/api:1.0", "environment": "dev", **spec},
    }


def test_identity_constants() -> None:
    assert (GROUP, VERSION, KIND, PLURAL) == (
        "prodready.io",
        "v1alpha1",
        "ProductionService",
        "productionservices",
    )
    assert API_VERSION == "prodready.io/v1alpha1"


def test_defaults_are_the_checklists() -> None:
    spec = parse_production_service(service()).spec
    assert spec.replicas == 2
    assert spec.ports.http == 8000
    assert spec.ports.metrics is None
    assert spec.health.path == "/health"
    assert (spec.health.liveness.initial_delay_seconds, spec.health.liveness.period_seconds) == (
        10,
        30,
    )
    assert (
        spec.health.readiness.initial_delay_seconds,
        spec.health.readiness.period_seconds,
    ) == (5, 10)
    assert spec.health.startup.enabled
    assert spec.shutdown.grace_period_seconds == 30
    assert spec.shutdown.pre_stop_delay_seconds == 5
    assert spec.logging.format.value == "json"
    assert spec.logging.level.value == "INFO"
    assert spec.security.debug is False
    assert spec.metrics.enabled
    assert spec.metrics.path == "/metrics"
    assert spec.metrics.alerts.enabled
    assert spec.resources.requests.cpu == "100m"
    assert spec.resources.limits.memory == "256Mi"
    assert spec.resources.limits.cpu is None
    assert spec.exposure is None
    assert spec.autoscaling is None


def test_default_variable_names_are_the_ones_the_rules_engine_reads() -> None:
    spec = parse_production_service(service()).spec
    assert spec.settings_variables() == [
        "ENVIRONMENT",
        "LOG_FORMAT",
        "LOG_LEVEL",
        "DEBUG",
        "CORS_ALLOWED_ORIGINS",
        "RATE_LIMIT",
    ]


def test_wire_format_is_camel_case_and_round_trips() -> None:
    obj = service(
        secretEnv=[{"name": "DATABASE_URL", "secretName": "db", "key": "url"}],
        autoscaling={"maxReplicas": 4, "targetCPUUtilizationPercentage": 60},
        metrics={"alerts": {"for": "10m"}},
    )
    ps = parse_production_service(obj)
    assert ps.spec.secret_env[0].secret_name == "db"
    assert ps.spec.autoscaling is not None
    assert ps.spec.autoscaling.target_cpu_utilization_percentage == 60
    assert ps.spec.metrics.alerts.for_ == "10m"
    dumped = ps.model_dump(by_alias=True, exclude_none=True, mode="json")
    assert dumped["spec"]["secretEnv"] == [
        {"name": "DATABASE_URL", "secretName": "db", "key": "url", "optional": False}
    ]
    assert dumped["spec"]["autoscaling"]["targetCPUUtilizationPercentage"] == 60
    assert dumped["spec"]["metrics"]["alerts"]["for"] == "10m"
    assert ProductionService.model_validate(dumped) == ps


def test_python_names_are_accepted_too() -> None:
    ps = ProductionService.model_validate(
        {
            "api_version": API_VERSION,
            "kind": KIND,
            "metadata": {"name": "api"},
            "spec": {"image": "x:1", "environment": Environment.STAGING, "env_from_secrets": []},
        }
    )
    assert ps.spec.environment is Environment.STAGING
    assert ps.namespace == "default"
    assert ps.name == "api"


def test_integer_quantities_become_strings() -> None:
    spec = parse_production_service(
        service(resources={"requests": {"cpu": 1, "memory": 1000}, "limits": {"memory": 2000}})
    ).spec
    assert spec.resources.requests.cpu == "1"
    assert spec.resources.limits.memory == "2000"


def test_metadata_keeps_fields_it_does_not_model() -> None:
    obj = service()
    obj["metadata"]["resourceVersion"] = "42"
    ps = parse_production_service(obj)
    assert ps.metadata.model_dump(by_alias=True)["resourceVersion"] == "42"


def test_status_model_reads_and_ignores_unknown_fields() -> None:
    status = ProductionServiceStatus.model_validate(
        {
            "observedGeneration": 3,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Available",
                    "message": "",
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                }
            ],
            "compliance": {
                "compliant": False,
                "errors": 1,
                "findings": [{"ruleId": "PR-LG-001", "severity": "error", "result": "fail"}],
            },
            "someFutureField": 1,
        }
    )
    assert status.conditions[0].type == "Ready"
    assert status.compliance is not None
    assert status.compliance.findings[0].rule_id == "PR-LG-001"


@pytest.mark.parametrize(
    ("spec", "field", "rule"),
    [
        (
            {"health": {"readiness": {"periodSeconds": 60}}},
            "spec.health.readiness.periodSeconds",
            "PR-HC-003",
        ),
        (
            {"shutdown": {"gracePeriodSeconds": 10, "preStopDelaySeconds": 10}},
            "spec.shutdown.preStopDelaySeconds",
            "PR-GS-002",
        ),
        (
            {"env": [{"name": "A", "value": "1"}, {"name": "DB_PASSWORD", "value": "hunter2"}]},
            "spec.env[1].value",
            "PR-LG-003",
        ),
        ({"environment": "prod", "replicas": 1}, "spec.replicas", "PR-RS-002"),
        (
            {"environment": "prod", "autoscaling": {"minReplicas": 1, "maxReplicas": 3}},
            "spec.autoscaling.minReplicas",
            "PR-RS-002",
        ),
        (
            {"autoscaling": {"minReplicas": 5, "maxReplicas": 3}},
            "spec.autoscaling.minReplicas",
            "schema",
        ),
        (
            {"resources": {"requests": {"memory": "1Gi"}}},
            "spec.resources.limits.memory",
            "schema",
        ),
        (
            {"resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "500m"}}},
            "spec.resources.limits.cpu",
            "schema",
        ),
        (
            {
                "env": [{"name": "A", "value": "1"}],
                "secretEnv": [{"name": "A", "secretName": "s", "key": "k"}],
            },
            "spec.env[0].name",
            "schema",
        ),
        ({"env": [{"name": "LOG_LEVEL", "value": "DEBUG"}]}, "spec.env[0].name", "schema"),
        (
            {"secretEnv": [{"name": "DEBUG", "secretName": "s", "key": "k"}]},
            "spec.secretEnv[0].name",
            "schema",
        ),
        (
            {"pod": {"labels": {"prodready.io/service": "x"}}},
            "spec.pod.labels[prodready.io/service]",
            "schema",
        ),
        ({"environment": "qa"}, "spec.environment", "schema"),
        ({"image": ""}, "spec.image", "schema"),
        ({"replicas": -1}, "spec.replicas", "schema"),
        ({"logging": {"level": "TRACE"}}, "spec.logging.level", "schema"),
        ({"security": {"rateLimit": "lots"}}, "spec.security.rateLimit", "schema"),
        (
            {"security": {"corsAllowedOrigins": ["a,b"]}},
            "spec.security.corsAllowedOrigins[0]",
            "schema",
        ),
        ({"exposure": {"host": "Not A Host"}}, "spec.exposure.host", "schema"),
        ({"metrics": {"interval": "soon"}}, "spec.metrics.interval", "schema"),
        # PR-XX-1 has a custom rule ID's shape since issue 16; lower case and blanks are not.
        (
            {"exemptions": [{"rule": "pr-rs-002", "reason": "r"}]},
            "spec.exemptions[0].rule",
            "schema",
        ),
        ({"exemptions": [{"rule": "hc 1", "reason": "r"}]}, "spec.exemptions[0].rule", "schema"),
        (
            {"exemptions": [{"rule": "PR-RS-002", "reason": ""}]},
            "spec.exemptions[0].reason",
            "schema",
        ),
        ({"healthz": {}}, "spec.healthz", "schema"),
        (
            {"pod": {"tolerations": [{"operator": "Equal"}]}},
            "spec.pod.tolerations[0].operator",
            "schema",
        ),
        (
            {"pod": {"tolerations": [{"key": "k", "tolerationSeconds": 9}]}},
            "spec.pod.tolerations[0].tolerationSeconds",
            "schema",
        ),
        (
            {"pod": {"tolerations": [{"operator": "Exists", "value": "v"}]}},
            "spec.pod.tolerations[0].value",
            "schema",
        ),
        (
            {"env": [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]},
            "spec.env[1].name",
            "schema",
        ),
    ],
)
def test_invalid_specs_name_field_and_rule(spec: dict[str, Any], field: str, rule: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_production_service(service(**spec))
    assert (caught.value.field, caught.value.rule) == (field, rule)
    assert field in str(caught.value)
    assert rule in str(caught.value)


def test_missing_image_is_named() -> None:
    obj = service()
    del obj["spec"]["image"]
    with pytest.raises(SpecError, match=r"spec\.image: required field is missing \[schema\]"):
        parse_production_service(obj)


@pytest.mark.parametrize("name", ["1api", "Api", "a" * 64, "api.v2", "api_v2", "-api", "api-"])
def test_names_must_be_dns_1035_labels(name: str) -> None:
    obj = service()
    obj["metadata"]["name"] = name
    with pytest.raises(SpecError) as caught:
        parse_production_service(obj)
    assert caught.value.field == "metadata.name"


@pytest.mark.parametrize(
    ("rule", "spec"),
    [
        ("PR-LG-003", {"env": [{"name": "DB_PASSWORD", "value": "hunter2"}]}),
        ("PR-RS-002", {"environment": "prod", "replicas": 1}),
    ],
)
def test_exemptions_lift_the_rules_they_name(rule: str, spec: dict[str, Any]) -> None:
    with pytest.raises(SpecError):
        parse_production_service(service(**spec))
    exempted = service(**spec, exemptions=[{"rule": rule, "reason": "reviewed"}])
    assert parse_production_service(exempted).spec.is_exempt(rule)


@pytest.mark.parametrize("rule", ["ACME-OWN-001", "PR-XX-1", "TEAM-A-B", "X1-Y"])
def test_exemptions_name_custom_rules_of_a_readiness_policy(rule: str) -> None:
    exempted = service(exemptions=[{"rule": rule, "reason": "reviewed"}])
    assert parse_production_service(exempted).spec.is_exempt(rule)


def test_an_exemption_rule_id_is_as_long_as_a_policy_allows() -> None:
    too_long = "ACME-" + "A" * 10 + "-" + "B" * 11
    with pytest.raises(SpecError) as caught:
        parse_production_service(service(exemptions=[{"rule": too_long, "reason": "r"}]))
    assert caught.value.field == "spec.exemptions[0].rule"


def test_sensitive_names_may_appear_without_a_literal_value() -> None:
    ps = parse_production_service(
        service(env=[{"name": "API_KEY"}, {"name": "TOKEN", "value": ""}])
    )
    assert [variable.name for variable in ps.spec.env] == ["API_KEY", "TOKEN"]


@pytest.mark.parametrize(
    "name",
    [
        "PASSWORD",
        "DB_PASSWORD",
        "db_passwd",
        "SECRET_KEY",
        "JWT_SECRET",
        "GITHUB_TOKEN",
        "API_KEY",
        "APIKEY",
        "STRIPE_API_KEY",
        "AUTHORIZATION",
        "CREDIT_CARD",
        "PRIVATE_KEY",
        "AWS_ACCESS_KEY_ID",
        "GOOGLE_CREDENTIALS",
        "dbPassword",
        "apiKey",
        "APIKey",
        "TOKEN2",
        "spring.datasource.password",
        "PASSPHRASE",
    ],
)
def test_sensitive_names(name: str) -> None:
    assert is_sensitive_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "DATABASE_URL",
        "LOG_LEVEL",
        "TOKENIZER_MODEL",
        "MAX_TOKENS",
        "PASSWORDLESS_LOGIN",
        "SECRETARY_EMAIL",
        "KEYCLOAK_URL",
        "CARD_LIMIT",
        "API_URL",
        "AUTHOR",
    ],
)
def test_ordinary_names(name: str) -> None:
    assert not is_sensitive_name(name)


def test_cel_patterns_give_the_python_verdict() -> None:
    """The CEL rule matches the name as written with the same two patterns (see
    test_sensitive_names.py for generated names and Go's RE2)."""
    import re

    checked = ("APIkey", "API_KEY", "Token", "my-secret", "creditCard", "x.password.y")
    for name in (*checked, "dbPassword", "DB_PASSWORD_FILE", "TOKEN_TTL", "SECRET_NAME"):
        cel = re.search(SENSITIVE_NAME_PATTERN, name) and not re.search(
            QUALIFIED_NAME_PATTERN, name
        )
        assert bool(cel) == is_sensitive_name(name), name


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("100m", Decimal("0.1")),
        ("1", Decimal(1)),
        ("128Mi", Decimal(128 * 1024**2)),
        ("1.5Gi", Decimal(3 * 1024**3 // 2)),
        ("2k", Decimal(2000)),
        ("1e3", Decimal(1000)),
        ("1E", Decimal(10**18)),
        (".5", Decimal("0.5")),
    ],
)
def test_parse_quantity(text: str, value: Decimal) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "ten", "1Qi", "1 Mi", "--1"])
def test_parse_quantity_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError, match="not a Kubernetes quantity"):
        parse_quantity(text)
