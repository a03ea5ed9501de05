"""The engine around the rules: environments, exemptions, configuration, context matching."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from prodready.rules import (
    ConfigError,
    Environment,
    Result,
    RulesConfig,
    Severity,
    evaluate,
    load_config,
)
from prodready.rules.config import parse_config
from prodready.rules.context import Context, Workload
from prodready.rules.selectors import Selector, SelectorIndex
from tests.unit.test_rules_checks import (
    app,
    baseline,
    deployment,
    drop,
    findings,
    first,
    report_of,
    set_env,
)


def _without_environment() -> list[dict[str, Any]]:
    objects = baseline()
    del deployment(objects)["metadata"]["labels"]["prodready.io/environment"]
    return objects


# ---------------------------------------------------------------------- environments


def test_undeclared_environment_is_checked_as_prod_and_warned() -> None:
    report = report_of(_without_environment())
    assert report.environment is Environment.PROD
    assert report.environment_source == "default"
    (finding,) = [f for f in report.findings if f.rule_id == "PR-CF-003"]
    assert finding.result is Result.WARN
    assert "strictest profile, prod" in finding.message
    assert finding.patch == [
        {"op": "add", "path": "/metadata/labels/prodready.io~1environment", "value": "prod"}
    ]


def test_the_argument_is_a_default_not_an_override() -> None:
    report = report_of(_without_environment(), environment="dev")
    assert report.environment is Environment.DEV
    assert report.environment_source == "argument"
    objects = baseline()  # declares prod
    assert report_of(objects, environment="dev").environment is Environment.PROD


def test_unknown_environment_argument_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown environment"):
        evaluate([], environment="moon")


@pytest.mark.parametrize(
    ("where", "expected_source"),
    [("labels", "label"), ("annotations", "annotation")],
)
def test_environment_from_workload_metadata(where: str, expected_source: str) -> None:
    objects = _without_environment()
    deployment(objects)["metadata"].setdefault(where, {})["prodready.io/environment"] = "Production"
    report = report_of(objects)
    assert report.environment is Environment.PROD
    assert report.environment_source == expected_source


def test_environment_from_template_container_and_namespace() -> None:
    objects = _without_environment()
    template = deployment(objects)["spec"]["template"]["metadata"]
    template["labels"]["prodready.io/environment"] = "staging"
    assert report_of(objects).environment_source == "template-label"
    objects = _without_environment()
    set_env(objects, "ENVIRONMENT", "development")
    report = report_of(objects)
    assert (report.environment, report.environment_source) == (Environment.DEV, "container-env")
    objects = _without_environment()
    objects.append(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "shop", "labels": {"prodready.io/environment": "stg"}},
        }
    )
    report = report_of(objects)
    assert (report.environment, report.environment_source) == (Environment.STAGING, "namespace")


def test_disagreeing_and_unknown_declarations_are_reported() -> None:
    objects = baseline()
    set_env(objects, "ENVIRONMENT", "dev")
    (finding,) = findings(objects, "PR-CF-003")
    assert finding.failed
    assert "disagree" in finding.message
    objects = _without_environment()
    deployment(objects)["metadata"]["labels"]["prodready.io/environment"] = "qa"
    report = report_of(objects)
    assert report.environment is Environment.PROD
    (finding,) = [f for f in report.findings if f.rule_id == "PR-CF-003"]
    assert "'qa'" in finding.message


def test_dev_relaxes_security_and_skips_prod_only_rules() -> None:
    objects = baseline()
    deployment(objects)["metadata"]["labels"]["prodready.io/environment"] = "dev"
    set_env(objects, "DEBUG", "true")  # prod-only rule: not applied
    set_env(objects, "RATE_LIMIT", None)
    first(objects, "Ingress")["metadata"]["annotations"] = {}
    deployment(objects)["spec"]["replicas"] = 1
    report = report_of(objects)
    rules = {f.rule_id: f for f in report.findings}
    for prod_only in ("PR-ER-001", "PR-RS-002", "PR-SC-001", "PR-SC-002", "PR-GS-003", "PR-LG-002"):
        assert prod_only not in rules
    assert rules["PR-SC-003"].severity is Severity.WARNING
    assert rules["PR-SC-003"].result is Result.WARN
    assert report.compliant


def test_staging_keeps_error_severities_but_not_prod_only_rules() -> None:
    objects = baseline()
    deployment(objects)["metadata"]["labels"]["prodready.io/environment"] = "staging"
    set_env(objects, "RATE_LIMIT", None)
    first(objects, "Ingress")["metadata"]["annotations"] = {}
    report = report_of(objects)
    rules = {f.rule_id: f for f in report.findings}
    assert rules["PR-SC-003"].result is Result.FAIL
    assert "PR-RS-002" not in rules


# ------------------------------------------------------------------------ exemptions


def test_annotation_exemption_is_reported_as_skip_with_reason() -> None:
    objects = baseline()
    deployment(objects)["spec"]["replicas"] = 1
    # Each rule its own reason (issue 15): `RULE: reason` entries.
    deployment(objects)["metadata"]["annotations"] = {
        "prodready.io/exempt": "PR-RS-002, PR-SC-004",
        "prodready.io/exempt-reason": "PR-RS-002: singleton leader; PR-SC-004: vendor image",
    }
    report = report_of(objects)
    (skip,) = [f for f in report.findings if f.rule_id == "PR-RS-002"]
    assert skip.result is Result.SKIP
    assert "singleton leader" in skip.message
    assert "vendor image" not in skip.message
    assert "would warn: replicas is 1" in skip.message
    assert skip.path == "metadata.annotations.prodready.io/exempt"
    assert report.counts.skipped == 2
    assert [f.result for f in report.findings if f.rule_id == "PR-EX-001"] == [Result.PASS]


def test_template_annotation_exemption_and_missing_reason() -> None:
    objects = baseline()
    set_env(objects, "LOG_FORMAT", "text")
    deployment(objects)["spec"]["template"]["metadata"]["annotations"] = {
        "prodready.io/exempt": "PR-LG-001"
    }
    report = report_of(objects)
    # An exemption without a reason exempts nothing (issue 15); the failure says why.
    (failure,) = [f for f in report.findings if f.rule_id == "PR-LG-001"]
    assert failure.result is Result.FAIL
    assert "not exempted" in failure.message
    assert "no reason of its own" in failure.message
    (meta,) = [f for f in report.findings if f.rule_id == "PR-EX-001"]
    assert meta.failed
    assert "without a prodready.io/exempt-reason" in meta.message
    assert not report.compliant


def test_exemption_annotation_naming_nothing() -> None:
    objects = baseline()
    deployment(objects)["metadata"]["annotations"] = {"prodready.io/exempt": " , "}
    (meta,) = findings(objects, "PR-EX-001")
    assert "names no rule" in meta.message


def test_config_exemptions_by_glob(tmp_path: Path) -> None:
    path = tmp_path / "prodready.yaml"
    path.write_text(
        "exemptions:\n"
        "  - rules: [PR-MO-002]\n"
        "    namespace: 'sh*'\n"
        "    name: 'a?i'\n"
        "    reason: alerts live in the platform repo\n"
        "  - rules: [PR-MO-001]\n"
        "    namespace: other\n"
        "    reason: never matches\n"
    )
    objects = baseline()
    drop(objects, "PrometheusRule")
    drop(objects, "ServiceMonitor")
    report = evaluate(objects, config=load_config(path))[0]
    by_rule = {f.rule_id: f for f in report.findings}
    assert by_rule["PR-MO-002"].result is Result.SKIP
    assert (
        "configuration exemption: alerts live in the platform repo" in by_rule["PR-MO-002"].message
    )
    assert by_rule["PR-MO-001"].result is Result.FAIL


def test_exemption_of_a_rule_with_nothing_to_say_adds_nothing() -> None:
    objects = baseline()
    drop(objects, "Ingress")
    deployment(objects)["metadata"]["annotations"] = {
        "prodready.io/exempt": "PR-SC-003",
        "prodready.io/exempt-reason": "internal",
    }
    assert findings(objects, "PR-SC-003") == []


# ------------------------------------------------------------------------- configuration


def test_config_overrides_and_disables(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "severity: {PR-SC-005: error}\n"
        "disabled: [PR-MO-002]\n"
        "env_vars: {log_format: APP_LOG_FORMAT}\n"
        "sensitive_names: [pin]\n"
    )
    config = load_config(path)
    objects = baseline()
    drop(objects, "PrometheusRule")
    app(objects)["image"] = "shop/api:latest"
    set_env(objects, "LOG_FORMAT", None)
    set_env(objects, "APP_LOG_FORMAT", "json")
    set_env(objects, "ATM_PIN", "1234")
    report = evaluate(objects, config=config)[0]
    by_rule: dict[str, list[Any]] = {}
    for finding in report.findings:
        by_rule.setdefault(finding.rule_id, []).append(finding)
    assert by_rule["PR-SC-005"][0].result is Result.FAIL
    assert by_rule["PR-SC-005"][0].severity is Severity.ERROR
    assert "PR-MO-002" not in by_rule
    assert [f.result for f in by_rule["PR-LG-001"]] == [Result.PASS]
    assert [f.message for f in by_rule["PR-LG-003"] if f.failed] == [
        "container app: ATM_PIN looks sensitive and carries a literal value"
    ]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("severity: {PR-ZZ-001: error}\n", "severity.PR-ZZ-001.[key]: unknown rule ID"),
        ("severity: {PR-SC-005: fatal}\n", "severity.PR-SC-005"),
        ("disabled: [nope]\n", "disabled.0: unknown rule ID 'nope'"),
        ("exemptions: [{rules: [PR-RS-002]}]\n", "exemptions.0.reason"),
        ("exemptions: [{rules: [], reason: x}]\n", "exemptions.0.rules"),
        ("colour: blue\n", "colour"),
        ("env_vars: {log_format: ''}\n", "env_vars.log_format"),
        ("- a list\n", "must be a mapping"),
        ("severity: [\n", ":2: not valid YAML"),
    ],
)
def test_config_errors_name_the_file_and_field(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert str(path) in message
    assert fragment in message


def test_config_file_problems(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert load_config(empty) == RulesConfig()
    big = tmp_path / "big.yaml"
    big.write_text("disabled: []\n")
    monkeypatch.setattr("prodready.rules.config.MAX_CONFIG_BYTES", 4)
    with pytest.raises(ConfigError, match="larger than"):
        load_config(big)
    assert parse_config(None) == RulesConfig()


def test_a_validated_file_says_what_the_dataclass_defaults_say() -> None:
    """The file's pydantic model and the engine's dataclass agree on every default, and
    a file that sets every field comes through whole."""
    assert parse_config({}) == RulesConfig()
    document = {
        "severity": {"PR-SC-005": "error"},
        "disabled": ["PR-MO-002"],
        "env_vars": {"log_format": "APP_LOG_FORMAT", "shutdown_timeout": "GRACE"},
        "exemptions": [{"rules": ["PR-RS-002"], "namespace": "preview-*", "reason": "one"}],
        "sensitive_names": ["password"],
        "secrets_complete": True,
        "third_party_images": ["docker.io/library/*"],
        "health_path": "/healthz",
    }
    config = parse_config(document)
    assert config.severity == {"PR-SC-005": Severity.ERROR}
    assert isinstance(config.severity["PR-SC-005"], Severity)
    assert config.disabled == ["PR-MO-002"]
    assert (config.env_vars.log_format, config.env_vars.shutdown_timeout) == (
        "APP_LOG_FORMAT",
        "GRACE",
    )
    assert config.env_vars.log_level == RulesConfig().env_vars.log_level
    (exemption,) = config.exemptions
    assert (exemption.rules, exemption.namespace, exemption.name, exemption.reason) == (
        ["PR-RS-002"],
        "preview-*",
        "*",
        "one",
    )
    assert config.sensitive_names == ["password"]
    assert config.secrets_complete is True
    assert config.third_party_images == ["docker.io/library/*"]
    assert config.health_path == "/healthz"


# ------------------------------------------------------------------------------ context


def test_selector_index_matches_like_kubernetes() -> None:
    index = SelectorIndex[str](empty_matches_all=True)
    index.add("a", Selector({"app": "x"}), "exact")
    index.add("a", Selector({}, ({"key": "tier", "operator": "In", "values": ["web"]},)), "expr")
    index.add(None, Selector({"app": "x"}), "anywhere")
    index.add("a", Selector({}), "everything")
    assert index.match("a", {"app": "x", "tier": "web"}) == [
        "exact",
        "expr",
        "anywhere",
        "everything",
    ]
    assert index.match("b", {"app": "x"}) == ["anywhere"]
    services = SelectorIndex[str](empty_matches_all=False)
    services.add("a", Selector({}), "no selector")
    assert services.match("a", {"app": "x"}) == []


@pytest.mark.parametrize(
    ("expression", "labels", "matches"),
    [
        ({"key": "k", "operator": "NotIn", "values": ["a"]}, {"k": "b"}, True),
        ({"key": "k", "operator": "Exists"}, {}, False),
        ({"key": "k", "operator": "DoesNotExist"}, {}, True),
        ({"key": "k", "operator": "Bogus"}, {"k": "a"}, False),
        ({"operator": "Exists"}, {"k": "a"}, False),
    ],
)
def test_match_expressions(
    expression: dict[str, Any], labels: dict[str, str], matches: bool
) -> None:
    selector = Selector.from_label_selector({"matchExpressions": [expression]})
    assert selector is not None
    assert selector.matches(labels) is matches


def test_malformed_selectors_match_nothing() -> None:
    assert Selector.from_label_selector("x") is None
    assert Selector.from_label_selector({"matchLabels": ["x"]}) is None
    assert Selector.from_map(["x"]) is None
    selector = Selector.from_label_selector(None)
    assert selector is not None
    assert selector.empty


def test_serving_containers_follow_service_target_ports() -> None:
    objects = baseline()
    pod = deployment(objects)["spec"]["template"]["spec"]
    del app(objects)["ports"]
    pod["containers"].append(
        {"name": "proxy", "image": "envoy:1", "ports": [{"containerPort": 9901}]}
    )
    first(objects, "Service")["spec"]["ports"] = [{"port": 80, "targetPort": 9901}]
    context = Context.build(o for o in objects if o["kind"] != "Deployment")
    workload = Workload(deployment(objects), context)
    assert [c.name for c in workload.serving_containers] == ["proxy"]
    first(objects, "Service")["spec"]["ports"] = [{"port": 80, "targetPort": 1234}]
    del pod["containers"][1]["ports"]
    context = Context.build(o for o in objects if o["kind"] != "Deployment")
    workload = Workload(deployment(objects), context)
    assert [c.name for c in workload.serving_containers] == ["app"]


def test_namespaces_must_match_and_missing_means_default() -> None:
    objects = baseline()
    first(objects, "Service")["metadata"]["namespace"] = "elsewhere"
    context = Context.build(o for o in objects if o["kind"] != "Deployment")
    assert Workload(deployment(objects), context).services == []
    for obj in objects:
        obj["metadata"].pop("namespace", None)
    context = Context.build(o for o in objects if o["kind"] != "Deployment")
    workload = Workload(deployment(objects), context)
    assert len(workload.services) == 1
    assert workload.ref.namespace is None
    assert workload.exposed


def test_service_monitor_namespace_selectors() -> None:
    objects = baseline()
    monitor = first(objects, "ServiceMonitor")
    monitor["metadata"]["namespace"] = "monitoring"
    assert findings(objects, "PR-MO-001")[0].failed
    monitor["spec"]["namespaceSelector"] = {"matchNames": ["shop"]}
    assert findings(objects, "PR-MO-001")[0].result is Result.PASS
    monitor["spec"]["namespaceSelector"] = {"any": True}
    assert findings(objects, "PR-MO-001")[0].result is Result.PASS


def test_settings_from_visible_config_maps() -> None:
    objects = baseline()
    set_env(objects, "LOG_FORMAT", None)
    objects.append(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "logging", "namespace": "shop"},
            "data": {"FORMAT": "text", "LEVEL": "INFO"},
        }
    )
    app(objects)["envFrom"] = [{"configMapRef": {"name": "logging"}, "prefix": "LOG_"}]
    (finding,) = findings(objects, "PR-LG-001")
    assert finding.failed
    assert "'text'" in finding.message
    assert finding.patch is None  # the value lives in the ConfigMap
    app(objects)["envFrom"] = []
    app(objects)["env"].append(
        {"name": "LOG_FORMAT", "valueFrom": {"configMapKeyRef": {"name": "logging", "key": "nope"}}}
    )
    assert findings(objects, "PR-LG-001")[0].failed
    app(objects)["env"][-1]["valueFrom"] = {"secretKeyRef": {"name": "s", "key": "k"}}
    assert findings(objects, "PR-LG-001")[0].result is Result.PASS
    app(objects)["env"][-1]["valueFrom"] = {"fieldRef": {"fieldPath": "metadata.name"}}
    assert findings(objects, "PR-LG-001")[0].result is Result.PASS


def test_env_from_secrets_with_known_keys() -> None:
    objects = baseline()
    set_env(objects, "LOG_FORMAT", None)
    app(objects)["envFrom"] = [{"secretRef": {"name": "db-credentials"}}]
    assert findings(objects, "PR-LG-001")[0].failed  # the Secret's keys do not include it
    first(objects, "Secret")["stringData"] = {"LOG_FORMAT": "json"}
    assert findings(objects, "PR-LG-001")[0].result is Result.PASS  # set, value not read
