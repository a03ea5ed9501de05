"""Bounded work per object: the caps checked before the rules run (PR-LM-001), the
evaluation deadline, and answers whose size does not grow with the number of findings."""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from benchmarks.bounded import LIFTED, deployment, review, small_containers
from hypothesis import given, strategies as st

from prodready.rules import (
    DEFAULT_LIMITS,
    RULES_BY_ID,
    Deadline,
    DeadlineExceeded,
    Finding,
    Limits,
    ObjectReport,
    Result,
    RulesConfig,
    Severity,
    evaluate,
    to_admission_response,
)
from prodready.rules.admission import (
    MAX_DENIAL_CHARS,
    MAX_DENIAL_FINDINGS_PER_RULE,
    MAX_WARNINGS_BYTES,
    limit_warnings,
)
from prodready.rules.config import ConfigError, parse_config
from prodready.webhook.admission import Mode, decide, evaluation_budget, parse_review

FIXTURE = Path(__file__).parent.parent / "fixtures" / "rules" / "compliant.yaml"
LIMITS_RULE = "PR-LM-001"


def workload_reports(objects: Any, **options: Any) -> list[ObjectReport]:
    """The reports of the workloads: a LoadBalancer Service or an Ingress beside them is
    checked on its own too (PR-SC-006, PR-SC-007, issue 17), which these tests do not read."""
    return [r for r in evaluate(objects, **options) if r.object.kind not in ("Service", "Ingress")]


def _compliant() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(FIXTURE.read_text()) if d]


def _pod(obj: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = obj["spec"]["template"]["spec"]
    return spec


# ------------------------------------------------------------------ 10,000 containers


def test_ten_thousand_containers_are_answered_at_once_by_the_cap() -> None:
    objects = deployment(10_000)
    started = time.perf_counter()
    (report,) = workload_reports(objects)
    seconds = time.perf_counter() - started
    assert seconds < 1.0, seconds  # measured: well under a millisecond
    (finding,) = report.findings
    assert finding.rule_id == LIMITS_RULE
    assert finding.result is Result.FAIL
    assert finding.path == "spec.template.spec.containers"
    assert "10,000 containers" in finding.message
    assert "at most 500 per pod" in finding.message
    assert finding.fix == RULES_BY_ID[LIMITS_RULE].fix
    assert not report.compliant


@pytest.fixture(scope="module")
def rule_by_rule() -> tuple[ObjectReport, float]:
    """10,000 containers evaluated with the caps lifted, and how long that took."""
    lifted = Limits(**LIFTED)
    evaluate(deployment(1_000), limits=lifted)  # warm the imports and caches
    objects = deployment(10_000)
    started = time.perf_counter()
    (report,) = workload_reports(objects, limits=lifted)
    return report, time.perf_counter() - started


def test_ten_thousand_containers_evaluated_rule_by_rule_cost_linear_time(
    rule_by_rule: tuple[ObjectReport, float],
) -> None:
    # With the caps lifted, every rule still runs: before, 4,000 containers took 40 s.
    report, seconds = rule_by_rule
    # 15 findings per container (every container rule judged each one).
    assert len(report.findings) > 15 * 10_000
    # Generous for a busy CI machine (measured 1.3-4 s on 2 cores; quadratic took hours).
    # test_hostile_input_scale counts the calls, which does not depend on the machine.
    assert seconds < 30, seconds


# ------------------------------------------------------------------ caps


def _with(change: Callable[[dict[str, Any]], None]) -> list[dict[str, Any]]:
    objects = _compliant()
    change(objects[0])
    return objects


def _containers(obj: dict[str, Any], count: int, field: str = "containers") -> None:
    app = _pod(obj)["containers"][0]
    _pod(obj)[field] = [{**app, "name": f"c{i}"} for i in range(count)]


def _env(obj: dict[str, Any], count: int) -> None:
    _pod(obj)["containers"][0]["env"] = [{"name": f"V{i}", "value": "x"} for i in range(count)]


def _key(obj: dict[str, Any], key: str, count: int, item: Callable[[int], Any]) -> None:
    _pod(obj)["containers"][0][key] = [item(i) for i in range(count)]


CAPS: dict[str, tuple[Callable[[dict[str, Any]], None], str, str]] = {
    "containers": (
        lambda o: _containers(o, 501),
        "spec.template.spec.containers",
        "declares 501 containers (containers, initContainers and ephemeralContainers "
        "together); prodready evaluates at most 500 per pod",
    ),
    "init and ephemeral containers count": (
        lambda o: (
            _containers(o, 200, "initContainers"),
            _containers(o, 301, "ephemeralContainers"),
        ),
        "spec.template.spec.containers",
        "declares 502 containers",
    ),
    "env": (
        lambda o: _env(o, 5_001),
        "spec.template.spec.containers[0].env",
        "container app declares 5,001 env entries; prodready evaluates at most 5,000 per container",
    ),
    "envFrom": (
        lambda o: _key(o, "envFrom", 501, lambda i: {"configMapRef": {"name": f"m{i}"}}),
        "spec.template.spec.containers[0].envFrom",
        "501 envFrom sources; prodready evaluates at most 500 per container",
    ),
    "ports": (
        lambda o: _key(o, "ports", 1_001, lambda i: {"containerPort": 1 + i}),
        "spec.template.spec.containers[0].ports",
        "1,001 ports; prodready evaluates at most 1,000 per container",
    ),
    "volumeMounts": (
        lambda o: _key(o, "volumeMounts", 1_001, lambda i: {"name": "tmp", "mountPath": f"/{i}"}),
        "spec.template.spec.containers[0].volumeMounts",
        "1,001 volumeMounts; prodready evaluates at most 1,000 per container",
    ),
    "volumes": (
        lambda o: _pod(o).__setitem__(
            "volumes", [{"name": f"v{i}", "emptyDir": {}} for i in range(1_001)]
        ),
        "spec.template.spec.volumes",
        "declares 1,001 volumes; prodready evaluates at most 1,000 per pod",
    ),
    "entries in all": (
        lambda o: (_containers(o, 5), *(_env_of(c, 4_001) for c in _pod(o)["containers"])),
        "spec.template.spec",
        "entries in all; prodready evaluates at most 20,000 per pod",
    ),
}


def _env_of(container: dict[str, Any], count: int) -> None:
    container["env"] = [{"name": f"V{i}", "value": "x"} for i in range(count)]


@pytest.mark.parametrize("cap", sorted(CAPS))
def test_each_cap_trips_with_the_field_and_the_cap_named(cap: str) -> None:
    change, path, message = CAPS[cap]
    (report,) = workload_reports(_with(change))
    (finding,) = report.findings
    assert (finding.rule_id, finding.result, finding.path) == (LIMITS_RULE, Result.FAIL, path)
    assert message in finding.message
    assert finding.message.endswith("it was not evaluated rule by rule")


def test_at_the_caps_the_object_is_evaluated_rule_by_rule() -> None:
    def at_caps(obj: dict[str, Any]) -> None:
        _env(obj, 5_000)
        _key(obj, "ports", 1_000, lambda i: {"containerPort": 1 + i})

    (report,) = workload_reports(_with(at_caps))
    assert LIMITS_RULE not in {f.rule_id for f in report.findings}
    assert len(report.findings) > 20


def test_the_largest_object_within_the_caps_evaluates_quickly() -> None:
    objects = deployment(DEFAULT_LIMITS.containers, env=34)  # 19,501 entries in all
    started = time.perf_counter()
    (report,) = workload_reports(objects)
    seconds = time.perf_counter() - started
    assert LIMITS_RULE not in {f.rule_id for f in report.findings}
    # Far below the webhook's deadline (3 s by default; measured about 0.3 s).
    assert seconds < evaluation_budget(5), seconds


def test_cronjob_caps_name_their_own_path() -> None:
    cronjob = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "nightly", "namespace": "shop"},
        "spec": {
            "jobTemplate": {
                "spec": {
                    "template": {"spec": {"containers": [{"name": f"c{i}"} for i in range(600)]}}
                }
            }
        },
    }
    (report,) = workload_reports([cronjob])
    (finding,) = report.findings
    assert finding.path == "spec.jobTemplate.spec.template.spec.containers"


def test_the_cap_cannot_be_exempted_by_annotation() -> None:
    def exempted(obj: dict[str, Any]) -> None:
        _containers(obj, 501)
        obj["metadata"]["annotations"] = {
            "prodready.io/exempt": LIMITS_RULE,
            "prodready.io/exempt-reason": "please",
        }

    (report,) = workload_reports(_with(exempted))
    assert [(f.rule_id, f.result) for f in report.findings] == [(LIMITS_RULE, Result.FAIL)]


def test_the_environment_of_an_object_over_a_cap_comes_from_its_labels() -> None:
    objects = deployment(600)
    objects[0]["metadata"]["labels"]["prodready.io/environment"] = "dev"
    (report,) = workload_reports(objects)
    assert (report.environment.value, report.environment_source) == ("dev", "label")
    del objects[0]["metadata"]["labels"]["prodready.io/environment"]
    (report,) = workload_reports(objects, environment="staging")
    assert (report.environment.value, report.environment_source) == ("staging", "argument")
    (report,) = workload_reports(objects)
    assert (report.environment.value, report.environment_source) == ("prod", "default")
    # An over-cap object is refused in every profile, with any configured severity.
    config = RulesConfig(severity={"PR-HC-001": Severity.WARNING})
    (report,) = workload_reports(objects, config=config, environment="dev")
    assert [f.result for f in report.findings] == [Result.FAIL]


def test_a_production_service_whose_rendered_workload_is_over_a_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from prodready.rules import engine

    big = deployment(501)[0]

    def rendered(obj: Any) -> tuple[list[dict[str, Any]], None]:
        return [copy.deepcopy(big)], None

    monkeypatch.setattr(engine, "_render", rendered)
    service = {
        "apiVersion": "prodready.io/v1alpha1",
        "kind": "ProductionService",
        "metadata": {"name": "big", "namespace": "shop"},
        "spec": {"environment": "staging"},
    }
    (report,) = workload_reports([service])
    assert report.environment.value == "staging"
    failed = [f for f in report.findings if f.failed]
    assert [(f.rule_id, f.object.kind, f.path) for f in failed] == [
        (LIMITS_RULE, "Deployment", "spec.template.spec.containers")
    ]


# ------------------------------------------------------------------ the deadline


class Ticks:
    """A clock that advances one second each time it is read."""

    def __init__(self) -> None:
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        return float(self.reads)


def test_a_passed_deadline_stops_evaluation_naming_the_object() -> None:
    deadline = Deadline(at=0.0, seconds=0.25, clock=lambda: 1.0)
    with pytest.raises(DeadlineExceeded) as raised:
        evaluate(_compliant(), deadline=deadline)
    assert str(raised.value) == (
        "prodready could not finish evaluating Deployment shop/api within 0.25 s; "
        "the object is too large or complex to check in time"
    )
    assert raised.value.ref is not None
    assert raised.value.ref.name == "api"


def test_the_deadline_is_checked_between_rules() -> None:
    clock = Ticks()
    deadline = Deadline.after(5, clock=clock)  # read once here: expires at the 6th read
    with pytest.raises(DeadlineExceeded):
        evaluate(_compliant(), deadline=deadline)
    # It stopped after 5 rules, not at the end: one check before each rule.
    assert clock.reads == 6


def test_a_deadline_not_reached_changes_nothing() -> None:
    far = Deadline.after(3600)
    assert evaluate(_compliant(), deadline=far) == evaluate(_compliant())


def test_a_production_service_render_checks_the_deadline_first() -> None:
    service = {
        "apiVersion": "prodready.io/v1alpha1",
        "kind": "ProductionService",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {},
    }
    with pytest.raises(DeadlineExceeded, match="ProductionService shop/web"):
        evaluate([service], deadline=Deadline(at=0.0, seconds=1, clock=lambda: 1.0))


def _deployment_review(operation: str = "CREATE", old: dict[str, Any] | None = None) -> Any:
    body = json.loads(review(_compliant()[0]))
    body["request"]["operation"] = operation
    if old is not None:
        body["request"]["oldObject"] = old
    return parse_review(json.dumps(body).encode())


def _expired() -> Deadline:
    return Deadline(at=0.0, seconds=0.001, clock=lambda: 1.0)


def test_the_webhook_denies_in_enforce_what_it_could_not_finish() -> None:
    response = decide(_deployment_review(), Mode.ENFORCE, _compliant()[1:], deadline=_expired())
    assert response["allowed"] is False
    assert response["status"]["code"] == 403
    message = response["status"]["message"]
    assert message.startswith(
        "prodready could not finish evaluating Deployment shop/api within 0.001 s; "
        "the object is too large or complex to check in time."
    )
    assert "prodready validate" in message


def test_the_webhook_allows_with_a_warning_in_audit_what_it_could_not_finish() -> None:
    response = decide(_deployment_review(), Mode.AUDIT, _compliant()[1:], deadline=_expired())
    assert response["allowed"] is True
    (warning,) = response["warnings"]
    assert "could not finish evaluating Deployment shop/api within 0.001 s" in warning


def test_an_update_leaving_the_spec_alone_is_not_wedged_by_the_deadline() -> None:
    old = _compliant()[0]
    response = decide(
        _deployment_review("UPDATE", old=old),
        Mode.ENFORCE,
        _compliant()[1:],
        deadline=_expired(),
    )
    assert response["allowed"] is True
    assert "could not finish evaluating" in response["warnings"][0]
    changed = copy.deepcopy(old)
    changed["spec"]["replicas"] = 7
    response = decide(
        _deployment_review("UPDATE", old=changed),
        Mode.ENFORCE,
        _compliant()[1:],
        deadline=_expired(),
    )
    assert response["allowed"] is False


def test_the_webhook_budget_leaves_room_for_the_apiserver() -> None:
    assert evaluation_budget(5) == 3.0
    assert evaluation_budget(1) == 0.6
    assert evaluation_budget(30) == 18.0


def test_the_webhook_denies_an_object_over_a_cap_with_its_finding() -> None:
    response = decide(parse_review(review(small_containers(10_000))), Mode.ENFORCE)
    assert response["allowed"] is False
    message = response["status"]["message"]
    assert "PR-LM-001" in message
    assert "10,000 containers" in message
    assert "spec.template.spec.containers" in message


# ------------------------------------------------------------------ answers stay small


def _old_limit_warnings(lines: list[str]) -> list[str]:
    """The quadratic pop-and-recount version this one replaced, as the reference."""
    from prodready.rules.admission import _shorten

    lines = [_shorten(line) for line in lines]

    def size(kept: list[str]) -> int:
        return sum(len(w.encode()) for w in kept)

    if size(lines) <= MAX_WARNINGS_BYTES:
        return lines
    kept = list(lines)
    while kept:
        omitted = len(lines) - len(kept)
        note = (
            f"{omitted} more finding(s) left out to fit the API server's warning limit; "
            "run `prodready validate` for the full report"
        )
        if omitted and size(kept) + len(note.encode()) <= MAX_WARNINGS_BYTES:
            return [*kept, note]
        kept.pop()
    return [f"{len(lines)} finding(s) left out; run `prodready validate` for the full report"]


@given(
    st.lists(
        st.text(alphabet=st.characters(codec="utf-8"), max_size=400).filter(str.strip),
        max_size=80,
    )
)
def test_one_pass_limit_warnings_agrees_with_the_reference(lines: list[str]) -> None:
    assert limit_warnings(lines) == _old_limit_warnings(lines)
    assert limit_warnings(iter(lines), len(lines)) == _old_limit_warnings(lines)


def test_limit_warnings_reads_only_what_it_can_show() -> None:
    read = 0

    def lines() -> Iterator[str]:
        nonlocal read
        for index in itertools.count():
            read += 1
            yield f"finding {index} " + "x" * 100

    kept = limit_warnings(lines(), 1_000_000)
    assert read < 50
    assert kept[-1].startswith(f"{1_000_000 - len(kept) + 1} more finding(s) left out")
    assert sum(len(w.encode()) for w in kept) <= MAX_WARNINGS_BYTES


def test_answers_for_a_hundred_thousand_findings_stay_small_and_quick(
    rule_by_rule: tuple[ObjectReport, float],
) -> None:
    report, _ = rule_by_rule
    assert len(report.findings) > 100_000
    for enforce in (True, False):
        started = time.perf_counter()
        response = to_admission_response(report, uid="u", enforce=enforce)
        seconds = time.perf_counter() - started
        assert seconds < 0.5, seconds
        assert sum(len(w.encode()) for w in response.get("warnings", ())) <= MAX_WARNINGS_BYTES
    message = to_admission_response(report, uid="u", enforce=True)["status"]["message"]
    assert len(message) <= MAX_DENIAL_CHARS
    # Each failing rule is listed, with its first few fields and a count of the rest.
    assert message.startswith("prodready denied Deployment shop/big (environment prod): ")
    assert "PR-LG-001 logs are JSON: container c0: LOG_FORMAT is not set" in message
    assert f"; and {10_000 - MAX_DENIAL_FINDINGS_PER_RULE} more. Fix: " in message


@pytest.mark.parametrize(
    "config",
    [
        {"disabled": [LIMITS_RULE]},
        {"severity": {LIMITS_RULE: "warning"}},
        {"exemptions": [{"rules": [LIMITS_RULE], "reason": "big on purpose"}]},
    ],
)
def test_the_cap_cannot_be_configured_away(config: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(config, source="prodready.yaml")
    assert str(raised.value).startswith("prodready.yaml: invalid rules configuration:")
    assert "PR-LM-001 cannot be disabled, exempted or given another severity" in str(raised.value)


def test_a_denial_message_is_cut_at_its_limit() -> None:
    (report,) = workload_reports(_compliant())
    ref = report.object
    long_findings = tuple(
        Finding(
            rule_id=f"PR-XX-{index:03}",
            title="a rule",
            severity=Severity.ERROR,
            result=Result.FAIL,
            object=ref,
            container=None,
            path="spec",
            message="x" * 2_000,
            fix="fix it",
        )
        for index in range(10)
    )
    failing = dataclasses.replace(report, findings=long_findings, compliant=False)
    message = to_admission_response(failing, uid="u", enforce=True)["status"]["message"]
    assert len(message) == MAX_DENIAL_CHARS
    assert message.endswith("...")
    assert message.startswith("prodready denied Deployment shop/api (environment prod): 10 rule")


def test_a_hostile_container_name_does_not_grow_the_message() -> None:
    def long_name(obj: dict[str, Any]) -> None:
        _env(obj, 5_001)
        _pod(obj)["containers"][0]["name"] = "n" * 100_000

    (report,) = workload_reports(_with(long_name))
    (finding,) = report.findings
    assert finding.message.startswith(f"container {'n' * 63} declares 5,001 env entries")
    assert len(finding.message) < 300
