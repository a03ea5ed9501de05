"""Policies as data the rules evaluate (`prodready.rules.policy`, issue 15).

Which policy decides (every combination of namespace labels and policies reaches exactly
one decision, whatever the order they are given in), the environment floor, what an
exemption annotation may exempt, exceptions (expiry, the policy's longest duration,
`skip` naming the exception), values from a ConfigMap that does not exist in Enforce, Off,
and `prodready validate --policy`.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from prodready.cli import main
from prodready.rules import Result, Severity, evaluate, load_config
from prodready.rules.model import Environment, Mode, ObjectReport
from prodready.rules.policy import (
    AnnotationAllowance,
    PolicyError,
    PolicySet,
    compile_exception,
    compile_policy,
    default_policy,
    exception_state,
    exemption_reasons,
    label_mode,
    load_policy_file,
    policy_set_from_objects,
    resolve,
    stricter,
    with_disabled,
)
from tests.unit.test_rules_checks import app, baseline, deployment, set_env

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 6, 1, tzinfo=UTC)
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod"}


def policy(name: str, mode: str = "Enforce", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "prodready.io/v1alpha1",
        "kind": "ReadinessPolicy",
        "metadata": {"name": name},
        "spec": {"mode": mode, **spec},
    }


def exception(
    name: str = "allow",
    *,
    namespace: str = "shop",
    rules: dict[str, str] | None = None,
    expires: datetime = NOW + timedelta(days=10),
    created: datetime | None = None,
    **match: Any,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if created is not None:
        metadata["creationTimestamp"] = created.isoformat()
    return {
        "apiVersion": "prodready.io/v1alpha1",
        "kind": "ReadinessException",
        "metadata": metadata,
        "spec": {
            "rules": [
                {"rule": rule, "reason": reason}
                for rule, reason in (rules or {"PR-LG-001": "text logs until v2"}).items()
            ],
            "match": match or {"names": ["api"]},
            "expires": expires.isoformat(),
            "approvedBy": "OPS-1",
        },
    }


def policy_set(*objects: dict[str, Any], **options: Any) -> PolicySet:
    return PolicySet(
        policies=[compile_policy(o) for o in objects if o["kind"] == "ReadinessPolicy"],
        exceptions=[compile_exception(o) for o in objects if o["kind"] == "ReadinessException"],
        **options,
    )


def namespace(labels: dict[str, str] | None = None, name: str = "shop") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def workload_report(
    objects: list[dict[str, Any]], policies: PolicySet | None = None, now: datetime = NOW
) -> ObjectReport:
    reports = [
        r for r in evaluate(objects, policies=policies, now=now) if r.object.kind in WORKLOAD_KINDS
    ]
    assert len(reports) == 1
    return reports[0]


def results(report: ObjectReport, rule_id: str) -> list[Result]:
    return [f.result for f in report.findings if f.rule_id == rule_id]


def decide(policies: PolicySet, *, labels: dict[str, str] | None = None, ns: Any = None) -> Any:
    return resolve(
        policies,
        kind="Deployment",
        namespace="shop",
        name="api",
        labels=labels or {},
        namespace_labels=ns or {},
        now=NOW,
    )


# -- which policy decides ----------------------------------------------------------------


def test_without_policies_the_default_decides() -> None:
    effective = decide(PolicySet())
    assert (effective.mode, effective.policy, effective.source) == (Mode.AUDIT, None, "default")
    assert decide(PolicySet(default=default_policy(mode=Mode.OFF))).mode is Mode.OFF


@pytest.mark.parametrize(
    ("labels", "mode"),
    [
        ({}, None),
        ({"prodready.io/enforce": "true"}, Mode.ENFORCE),
        ({"prodready.io/audit": "true"}, Mode.AUDIT),
        ({"prodready.io/enforce": "true", "prodready.io/audit": "true"}, Mode.ENFORCE),
        ({"prodready.io/enforce": "false"}, None),
    ],
)
def test_namespace_labels_are_a_policy_with_default_settings(
    labels: dict[str, str], mode: Mode | None
) -> None:
    assert label_mode(labels) is mode
    effective = decide(PolicySet(), ns=labels)
    assert effective.mode is (mode or Mode.AUDIT)
    assert effective.policy is None


def test_strictest_mode_wins_then_the_first_name() -> None:
    both = policy_set(policy("b-audit", "Audit"), policy("c-enforce"), policy("a-off", "Off"))
    assert decide(both).policy == "c-enforce"
    ties = policy_set(policy("zeta"), policy("alpha"), policy("mid"))
    assert decide(ties).policy == "alpha"
    assert decide(policy_set(policy("only-off", "Off"))).mode is Mode.OFF


def test_a_policy_beats_the_label_at_equal_mode_and_the_stricter_label_beats_a_policy() -> None:
    audit_policy = policy_set(policy("relaxed", "Audit", disabled=["PR-MO-002"]))
    enforce = {"prodready.io/enforce": "true"}
    effective = decide(audit_policy, ns=enforce)
    assert (effective.mode, effective.policy) == (Mode.ENFORCE, None)
    assert effective.source == "namespace label prodready.io/enforce"
    assert effective.config.disabled == []  # the label's default settings, not merged
    same = decide(audit_policy, ns={"prodready.io/audit": "true"})
    assert (same.mode, same.policy) == (Mode.AUDIT, "relaxed")
    off = decide(policy_set(policy("quiet", "Off")), ns=enforce)
    assert off.mode is Mode.ENFORCE


LABELS = {
    "none": {},
    "enforce": {"prodready.io/enforce": "true"},
    "audit": {"prodready.io/audit": "true"},
    "both": {"prodready.io/enforce": "true", "prodready.io/audit": "true"},
}
STRICTNESS = {Mode.ENFORCE: 2, Mode.AUDIT: 1, Mode.OFF: 0}


@pytest.mark.parametrize("label_case", sorted(LABELS))
def test_every_combination_of_labels_and_policies_reaches_one_decision(label_case: str) -> None:
    """All 4 label cases x every subset of {Enforce, Audit, Off} policies, in every order:
    one decision, the same whatever the order, and the strictest of all candidates."""
    modes = ["Enforce", "Audit", "Off"]
    for size in range(len(modes) + 1):
        for chosen in itertools.combinations(modes, size):
            objects = [policy(f"p-{mode.lower()}", mode) for mode in chosen]
            decisions = {
                (decide(policy_set(*order), ns=LABELS[label_case]).mode,
                 decide(policy_set(*order), ns=LABELS[label_case]).source)
                for order in itertools.permutations(objects)
            }  # fmt: skip
            assert len(decisions) == 1, (label_case, chosen, decisions)
            ((mode, _),) = decisions
            candidates = [Mode(m) for m in chosen]
            if label_mode(LABELS[label_case]) is not None:
                candidates.append(label_mode(LABELS[label_case]))  # type: ignore[arg-type]
            expected = max(candidates, key=STRICTNESS.__getitem__, default=Mode.AUDIT)
            assert mode is expected, (label_case, chosen)


def test_selectors_pick_namespaces_and_workloads() -> None:
    selective = policy_set(
        policy(
            "payments",
            namespaceSelector={"matchLabels": {"team": "payments"}},
            objectSelector={
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["web"]}]
            },
        )
    )
    assert decide(selective, ns={"team": "payments"}, labels={"tier": "web"}).policy == "payments"
    assert decide(selective, ns={"team": "search"}, labels={"tier": "web"}).policy is None
    assert decide(selective, ns={"team": "payments"}, labels={"tier": "db"}).policy is None


def test_reports_name_the_policy_that_decided() -> None:
    objects = [*baseline(), namespace({"tier": "production"})]
    report = workload_report(
        objects,
        policy_set(policy("prod", namespaceSelector={"matchLabels": {"tier": "production"}})),
    )
    assert (report.policy, report.mode, report.policy_source) == (
        "prod",
        Mode.ENFORCE,
        "ReadinessPolicy prod",
    )
    assert report.compliant


def test_off_checks_nothing() -> None:
    objects = baseline()
    set_env(objects, "LOG_FORMAT", "text")
    report = workload_report(objects, policy_set(policy("off", "Off")))
    assert report.mode is Mode.OFF
    assert report.findings == ()
    assert report.compliant


def test_config_and_policies_are_exclusive() -> None:
    with pytest.raises(ValueError, match="either config or policies"):
        evaluate(baseline(), config=load_config_text("{}"), policies=PolicySet())


def load_config_text(text: str) -> Any:
    from prodready.rules.config import parse_config

    return parse_config(yaml.safe_load(text))


# -- environment: a floor ----------------------------------------------------------------


def test_stricter() -> None:
    assert stricter(Environment.DEV, Environment.PROD) is Environment.PROD
    assert stricter(Environment.STAGING, Environment.DEV) is Environment.STAGING


def test_a_dev_label_cannot_lower_a_prod_namespace() -> None:
    objects = [*baseline(), namespace({"prodready.io/environment": "prod"})]
    deployment(objects)["metadata"]["labels"]["prodready.io/environment"] = "dev"
    report = workload_report(objects)
    assert (report.environment, report.environment_source) == (Environment.PROD, "namespace")
    (declared,) = [f for f in report.findings if f.rule_id == "PR-CF-003"]
    assert declared.result is Result.WARN
    assert "disagree" in declared.message


def test_a_workload_may_raise_its_namespace() -> None:
    objects = [*baseline(), namespace({"prodready.io/environment": "dev"})]
    report = workload_report(objects)  # the Deployment declares prod
    assert (report.environment, report.environment_source) == (Environment.PROD, "label")


def test_the_policy_sets_the_floor_by_value_or_from_a_namespace_label() -> None:
    objects = [*baseline(), namespace({"example.com/stage": "staging"})]
    deployment(objects)["metadata"]["labels"]["prodready.io/environment"] = "dev"
    by_value = workload_report(objects, policy_set(policy("p", environment={"value": "prod"})))
    assert (by_value.environment, by_value.environment_source) == (Environment.PROD, "policy")
    by_label = policy_set(policy("p", environment={"namespaceLabel": "example.com/stage"}))
    assert workload_report(objects, by_label).environment is Environment.STAGING
    del deployment(objects)["metadata"]["labels"]["prodready.io/environment"]
    undeclared = workload_report(objects, by_label)
    assert (undeclared.environment, undeclared.environment_source) == (
        Environment.STAGING,
        "policy",
    )


def test_a_production_service_cannot_lower_its_namespace() -> None:
    service = {
        "apiVersion": "prodready.io/v1alpha1",
        "kind": "ProductionService",
        "metadata": {"name": "api", "namespace": "shop"},
        "spec": {"image": "ghcr.io/acme/api:1.0.0", "environment": "dev"},
    }
    objects = [service, namespace({"prodready.io/environment": "prod"})]
    (report,) = evaluate(objects, now=NOW)
    assert report.environment is Environment.PROD


# -- annotation exemptions ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("listed", "text", "expected"),
    [
        ("PR-RS-002", "one leader", {"PR-RS-002": "one leader"}),
        ("PR-RS-002,PR-SC-004", "one reason for both", {"PR-RS-002": None, "PR-SC-004": None}),
        (
            "PR-RS-002, PR-SC-004",
            "PR-RS-002: one leader; PR-SC-004: vendor image",
            {"PR-RS-002": "one leader", "PR-SC-004": "vendor image"},
        ),
        (
            "PR-RS-002,PR-SC-004",
            "PR-RS-002: one leader",
            {"PR-RS-002": "one leader", "PR-SC-004": None},
        ),
        ("PR-RS-002", "", {"PR-RS-002": None}),
        ("PR-RS-002", "PR-RS-002:   ", {"PR-RS-002": None}),
        (" , ", "x", {}),
    ],
)
def test_each_rule_needs_its_own_reason(
    listed: str, text: str, expected: dict[str, str | None]
) -> None:
    assert exemption_reasons(listed, text) == expected


def _annotated(rules: str, reason: str) -> list[dict[str, Any]]:
    objects = baseline()
    set_env(objects, "LOG_FORMAT", "text")  # PR-LG-001, an error
    deployment(objects)["spec"]["replicas"] = 1  # PR-RS-002, a warning
    deployment(objects)["metadata"]["annotations"] = {
        "prodready.io/exempt": rules,
        "prodready.io/exempt-reason": reason,
    }
    return objects


BOTH = ("PR-LG-001,PR-RS-002", "PR-LG-001: text logs; PR-RS-002: one leader")


def test_in_enforce_the_annotation_exempts_warnings_only() -> None:
    report = workload_report(_annotated(*BOTH), policy_set(policy("strict")))
    assert results(report, "PR-LG-001") == [Result.FAIL]
    (failure,) = [f for f in report.findings if f.rule_id == "PR-LG-001"]
    assert "ReadinessPolicy strict (Enforce) does not let" in failure.message
    assert results(report, "PR-RS-002") == [Result.SKIP]
    assert not report.compliant


def test_the_namespace_label_enforces_the_same_default() -> None:
    objects = [*_annotated(*BOTH), namespace({"prodready.io/enforce": "true"})]
    report = workload_report(objects)
    assert results(report, "PR-LG-001") == [Result.FAIL]
    assert results(report, "PR-RS-002") == [Result.SKIP]


def test_in_audit_the_annotation_exempts_anything_with_a_reason() -> None:
    report = workload_report(_annotated(*BOTH), policy_set(policy("lenient", "Audit")))
    assert results(report, "PR-LG-001") == [Result.SKIP]
    assert report.compliant


@pytest.mark.parametrize(
    ("annotation_exemptions", "lg", "rs"),
    [
        ({"allow": "None"}, Result.FAIL, Result.WARN),
        ({"allow": "All"}, Result.SKIP, Result.SKIP),
        ({"allow": "None", "rules": ["PR-LG-001"]}, Result.SKIP, Result.WARN),
    ],
)
def test_the_policy_says_what_the_annotation_may_exempt(
    annotation_exemptions: dict[str, Any], lg: Result, rs: Result
) -> None:
    policies = policy_set(policy("p", annotationExemptions=annotation_exemptions))
    report = workload_report(_annotated(*BOTH), policies)
    assert results(report, "PR-LG-001") == [lg]
    assert results(report, "PR-RS-002") == [rs]


def test_a_shared_reason_exempts_nothing_even_in_audit() -> None:
    report = workload_report(_annotated("PR-LG-001,PR-RS-002", "legacy"))
    assert results(report, "PR-LG-001") == [Result.FAIL]
    assert results(report, "PR-RS-002") == [Result.WARN]
    (failure,) = [f for f in report.findings if f.rule_id == "PR-RS-002" and f.failed]
    assert "no reason of its own" in failure.message


def test_annotation_allowance_reads_the_effective_severity() -> None:
    effective = decide(policy_set(policy("p", severity={"PR-RS-002": "error"})))
    assert effective.annotation_allow is AnnotationAllowance.WARNINGS
    assert not effective.annotation_may_exempt("PR-RS-002", Severity.ERROR)
    assert effective.annotation_may_exempt("PR-RS-002", Severity.WARNING)
    report = workload_report(
        _annotated(*BOTH), policy_set(policy("p", severity={"PR-RS-002": "error"}))
    )
    assert results(report, "PR-RS-002") == [Result.FAIL]


# -- policy exemptions -------------------------------------------------------------------


def test_policy_exemptions_match_by_image_glob() -> None:
    def exempting(image: str) -> PolicySet:
        return policy_set(
            policy(
                "p",
                exemptions=[{"rules": ["PR-LG-001"], "image": image, "reason": "vendor logs"}],
            )
        )

    objects = baseline()
    set_env(objects, "LOG_FORMAT", "text")
    image = app(objects)["image"]
    report = workload_report(objects, exempting(image.split(":")[0] + ":*"))
    (skip,) = [f for f in report.findings if f.rule_id == "PR-LG-001"]
    assert skip.result is Result.SKIP
    assert "vendor logs" in skip.message
    assert results(workload_report(objects, exempting("other/*")), "PR-LG-001") == [Result.FAIL]


# -- exceptions --------------------------------------------------------------------------


def _failing_logs() -> list[dict[str, Any]]:
    objects = baseline()
    set_env(objects, "LOG_FORMAT", "text")
    return objects


def test_an_exception_is_a_skip_naming_it() -> None:
    report = workload_report(_failing_logs(), policy_set(policy("p"), exception()))
    (skip,) = [f for f in report.findings if f.rule_id == "PR-LG-001"]
    assert skip.result is Result.SKIP
    assert "ReadinessException shop/allow" in skip.message
    assert "approved by OPS-1" in skip.message
    assert "until 2026-06-11T00:00:00Z" in skip.message
    assert "text logs until v2" in skip.message
    assert "would fail" in skip.message
    assert report.compliant


def test_an_expired_exception_stops_applying() -> None:
    expired = exception(expires=NOW - timedelta(seconds=1))
    report = workload_report(_failing_logs(), policy_set(policy("p"), expired))
    assert results(report, "PR-LG-001") == [Result.FAIL]
    effective = decide(policy_set(policy("p"), expired))
    assert effective.refused_exceptions == (
        "ReadinessException shop/allow expired at 2026-05-31T23:59:59Z",
    )
    assert exception_state(compile_exception(expired), NOW) == "Expired"
    assert exception_state(compile_exception(exception()), NOW) == "Active"


def test_an_exception_longer_than_the_policy_allows_does_not_apply() -> None:
    long = exception(created=NOW - timedelta(days=1), expires=NOW + timedelta(days=30))
    short_policy = policy_set(policy("p", maxExceptionDays=14), long)
    assert results(workload_report(_failing_logs(), short_policy), "PR-LG-001") == [Result.FAIL]
    (why,) = decide(short_policy).refused_exceptions
    assert "longer than the 14 day(s) ReadinessPolicy p allows" in why
    # Measured from its creation: 31 days, within a policy that allows 31.
    assert results(
        workload_report(_failing_logs(), policy_set(policy("p", maxExceptionDays=31), long)),
        "PR-LG-001",
    ) == [Result.SKIP]


@pytest.mark.parametrize(
    ("match", "applies"),
    [
        ({"names": ["api"]}, True),
        ({"names": ["other"]}, False),
        ({"names": ["api"], "kinds": ["StatefulSet"]}, False),
        ({"selector": {"matchLabels": {"app.kubernetes.io/name": "api"}}}, True),
        ({"selector": {"matchLabels": {"app.kubernetes.io/name": "web"}}}, False),
    ],
)
def test_an_exception_covers_what_it_matches(match: dict[str, Any], applies: bool) -> None:
    policies = policy_set(policy("p"), exception(**match))
    expected = [Result.SKIP] if applies else [Result.FAIL]
    assert results(workload_report(_failing_logs(), policies), "PR-LG-001") == expected


def test_an_exception_of_another_namespace_does_not_apply() -> None:
    policies = policy_set(policy("p"), exception(namespace="elsewhere"))
    assert results(workload_report(_failing_logs(), policies), "PR-LG-001") == [Result.FAIL]


def test_an_exception_applies_without_any_policy() -> None:
    report = workload_report(_failing_logs(), policy_set(exception()))
    assert results(report, "PR-LG-001") == [Result.SKIP]


# -- values nobody can see ---------------------------------------------------------------


def _log_format_from_missing_config_map() -> list[dict[str, Any]]:
    objects = baseline()
    set_env(objects, "LOG_FORMAT", None)
    app(objects)["envFrom"] = [{"configMapRef": {"name": "settings", "optional": True}}]
    return objects


def test_in_enforce_a_config_map_that_does_not_exist_sets_nothing() -> None:
    objects = _log_format_from_missing_config_map()
    enforce = workload_report(objects, policy_set(policy("p")))
    assert results(enforce, "PR-LG-001") == [Result.FAIL]
    audit = workload_report(objects, policy_set(policy("p", "Audit")))
    assert results(audit, "PR-LG-001") == [Result.PASS]  # set, value unknown


def test_in_enforce_a_key_ref_to_a_config_map_that_does_not_exist_is_missing() -> None:
    objects = baseline()
    set_env(objects, "LOG_FORMAT", None)
    app(objects)["env"].append(
        {
            "name": "LOG_FORMAT",
            "valueFrom": {"configMapKeyRef": {"name": "gone", "key": "f", "optional": True}},
        }
    )
    assert results(workload_report(objects, policy_set(policy("p"))), "PR-LG-001") == [Result.FAIL]


def test_in_enforce_a_config_map_that_exists_is_read() -> None:
    objects = _log_format_from_missing_config_map()
    objects.append(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": "shop"},
            "data": {"LOG_FORMAT": "json"},
        }
    )
    assert results(workload_report(objects, policy_set(policy("p"))), "PR-LG-001") == [Result.PASS]


# -- compiling and loading ---------------------------------------------------------------


def test_the_rules_file_and_a_policy_say_the_same(tmp_path: Path) -> None:
    """Everything the old configuration file says is expressible in a ReadinessPolicy."""
    from prodready.rules.config import RulesConfig
    from prodready.rules.config_file import ConfigFile

    # Every field of the file is set below: a new field must be added to both.
    assert (
        {f.name for f in dataclasses.fields(RulesConfig)}
        == set(ConfigFile.model_fields)
        == {
            "severity",
            "disabled",
            "env_vars",
            "exemptions",
            "sensitive_names",
            "secrets_complete",
            "third_party_images",
            "health_path",
        }
    )
    path = tmp_path / "prodready.yaml"
    path.write_text(
        "severity: {PR-SC-005: error}\n"
        "disabled: [PR-MO-002]\n"
        "env_vars: {log_format: APP_LOG_FORMAT, debug: APP_DEBUG}\n"
        "exemptions:\n"
        "  - {rules: [PR-RS-002], namespace: 'preview-*', kind: Deployment, reason: one}\n"
        "sensitive_names: [password]\n"
        "secrets_complete: true\n"
        "third_party_images: ['docker.io/library/*']\n"
        "health_path: /healthz\n"
    )
    spec = {
        "severity": {"PR-SC-005": "error"},
        "disabled": ["PR-MO-002"],
        "envVars": {"logFormat": "APP_LOG_FORMAT", "debug": "APP_DEBUG"},
        "exemptions": [
            {
                "rules": ["PR-RS-002"],
                "namespace": "preview-*",
                "kind": "Deployment",
                "reason": "one",
            }
        ],
        "sensitiveNames": ["password"],
        "secretsComplete": True,
        "thirdPartyImages": ["docker.io/library/*"],
        "healthPath": "/healthz",
    }
    assert compile_policy(policy("p", **spec)).config == load_config(path)


def test_unknown_rule_ids_are_problems_not_crashes() -> None:
    compiled = compile_policy(
        policy(
            "p",
            disabled=["PR-ZZ-999", "PR-MO-002"],
            exemptions=[{"rules": ["PR-ZZ-998"], "reason": "r"}],
        )
    )
    assert compiled.config.disabled == ["PR-MO-002"]
    assert compiled.config.exemptions == []
    assert compiled.problems == (
        "spec.disabled: unknown rule ID PR-ZZ-999 (see `prodready rules`)",
        "spec.exemptions[0].rules: unknown rule ID PR-ZZ-998 (see `prodready rules`)",
    )
    with pytest.raises(PolicyError, match=r"ReadinessPolicy p: spec\.disabled: unknown rule ID"):
        policy_set_from_objects([policy("p", disabled=["PR-ZZ-999"])])


def test_invalid_objects_name_the_field() -> None:
    with pytest.raises(PolicyError, match=r"ReadinessPolicy p: invalid:\n  spec.mode: Input"):
        compile_policy(policy("p", "Block"))
    bad = exception()
    bad["spec"]["rules"][0]["reason"] = "  "
    with pytest.raises(PolicyError, match=r"shop/allow: invalid:\n  spec.rules\[0\]\.reason: must"):
        compile_exception(bad)
    with pytest.raises(PolicyError, match="holds only ReadinessPolicy and ReadinessException"):
        policy_set_from_objects([namespace()])
    with pytest.raises(PolicyError, match="defined more than once"):
        policy_set_from_objects([policy("p"), policy("p")])


def test_with_disabled_reaches_every_policy_and_the_default() -> None:
    policies = with_disabled(policy_set(policy("p")), {"PR-MO-002", "PR-LM-001"})
    assert policies.policies[0].config.disabled == ["PR-MO-002"]
    assert policies.default.config.disabled == ["PR-MO-002"]
    unchanged = policy_set(policy("p"))
    assert with_disabled(unchanged, ()) is unchanged


def test_the_examples_load(tmp_path: Path) -> None:
    policies = load_policy_file(str(REPO / "examples" / "policy.yaml"))
    (production,) = policies.policies
    assert production.mode is Mode.ENFORCE
    assert production.max_exception == timedelta(days=30)
    (checkout,) = policy_set_from_objects(
        yaml.safe_load_all((REPO / "examples" / "exception.yaml").read_text())
    ).exceptions
    assert set(checkout.reasons) == {"PR-HC-001", "PR-RS-003"}
    empty = tmp_path / "empty.yaml"
    empty.write_text("---\n")
    with pytest.raises(PolicyError, match="holds no ReadinessPolicy"):
        load_policy_file(str(empty))
    with pytest.raises(PolicyError, match=r"missing\.yaml"):
        load_policy_file(str(tmp_path / "missing.yaml"))


# -- prodready validate --policy ---------------------------------------------------------


def _write(path: Path, *documents: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump_all(list(documents)))
    return path


def test_validate_policy_checks_as_the_cluster_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    objects = _annotated(*BOTH)
    manifests = _write(tmp_path / "app.yaml", *objects, namespace({"tier": "production"}))
    policies = _write(
        tmp_path / "policy.yaml",
        policy("prod", namespaceSelector={"matchLabels": {"tier": "production"}}),
    )
    assert main(["validate", "--policy", str(policies), "-o", "json", str(manifests)]) == 1
    out = capsys.readouterr().out
    assert '"rule":"PR-LG-001"' in out.replace(" ", "")
    # Without the policy the annotation (Audit by default) exempts the error.
    assert main(["validate", "-o", "json", str(manifests)]) == 0
    capsys.readouterr()


def test_validate_policy_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    manifests = _write(tmp_path / "app.yaml", *baseline())
    policies = _write(tmp_path / "policy.yaml", policy("p"))
    config = tmp_path / "rules.yaml"
    config.write_text("disabled: [PR-MO-002]\n")
    assert (
        main(["validate", "--policy", str(policies), "--config", str(config), str(manifests)]) == 2
    )
    assert "use --policy" in capsys.readouterr().err
    assert main(["validate", "--config", str(policies), str(manifests)]) == 2
    assert f"holds a ReadinessPolicy, not a rules configuration: use --policy {policies}" in (
        capsys.readouterr().err
    )
    broken = _write(tmp_path / "broken.yaml", policy("p", "Block"))
    assert main(["validate", "--policy", str(broken), str(manifests)]) == 2
    assert "spec.mode" in capsys.readouterr().err


def test_validate_policy_with_only_disables_in_the_policies_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    objects = _failing_logs()
    manifests = _write(tmp_path / "app.yaml", *objects)
    policies = _write(tmp_path / "policy.yaml", policy("p"))
    args = ["validate", "--policy", str(policies), str(manifests)]
    assert main(args) == 1
    assert main([*args, "--only", "PR-HC"]) == 0
    capsys.readouterr()


def test_evaluate_accepts_the_same_objects_twice_without_state() -> None:
    policies = policy_set(policy("p"), exception())
    objects = _failing_logs()
    first = workload_report(copy.deepcopy(objects), policies)
    assert workload_report(objects, policies) == first
