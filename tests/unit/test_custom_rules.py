"""Custom rules in CEL (issue 16): the model, compiling once with positions, the cost bound,
the engine (exemptions, exceptions, severity, disabled on custom IDs), every output, and
`prodready test`.
"""

from __future__ import annotations

import json
import shutil
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from prodready.api.crd import READINESS_POLICY, openapi_schema
from prodready.api.policy import CustomRule, ReadinessPolicy
from prodready.cli import main
from prodready.rules import Result, Severity
from prodready.rules.custom import (
    COST_BUDGET,
    Extent,
    activation,
    compile_custom_rules,
    estimated_cost,
    evaluate_rule,
    extent_of,
    shape_of,
)
from prodready.rules.policy import PolicyError, compile_policy, policy_set_from_objects
from tests.unit.test_policy import (
    NOW,
    exception,
    namespace,
    policy,
    policy_set,
    results,
    workload_report,
)
from tests.unit.test_rules_checks import baseline, deployment

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "custom-rules"

OWNER = {
    "id": "ACME-OWN-001",
    "title": "workloads name an owning team",
    "expression": "has(object.metadata.labels) && 'team' in object.metadata.labels",
    "messageExpression": "'label team is missing on ' + object.metadata.name",
    "fix": "Add metadata.labels.team",
}


def rule(**fields: Any) -> dict[str, Any]:
    return {**OWNER, **fields}


def compiled(*rules: dict[str, Any]) -> tuple[list[Any], list[str]]:
    return compile_custom_rules([CustomRule.model_validate(r) for r in rules])


def verdict(expression: str, obj: dict[str, Any], ns: dict[str, Any] | None = None) -> Any:
    (compiled_rule,), problems = compiled(rule(expression=expression, messageExpression=None))
    assert problems == []
    return evaluate_rule(compiled_rule, activation(obj, ns), extent_of(obj, ns))


# -- the model -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule_id", "ok"),
    [
        ("ACME-OWN-001", True),
        ("AC-X", True),
        ("TEAM1-LABELS-REQ1", True),
        ("PR-HC-001", False),  # the checklist's prefix
        ("PR-OWN-1", False),
        ("acme-own-001", False),
        ("A-OWN", False),
        ("ACME_OWN_001", False),
        ("ACMEACMEACM-OWN", False),
    ],
)
def test_a_custom_rule_id_is_in_the_users_own_prefix(rule_id: str, ok: bool) -> None:
    if ok:
        assert CustomRule.model_validate(rule(id=rule_id)).id == rule_id
    else:
        with pytest.raises(ValidationError):
            CustomRule.model_validate(rule(id=rule_id))


def test_the_crd_says_what_pydantic_says() -> None:
    schema = openapi_schema(READINESS_POLICY)
    spec = schema["properties"]["spec"]
    custom = spec["properties"]["customRules"]
    assert custom["maxItems"] == 64
    assert custom["x-kubernetes-list-map-keys"] == ["id"]
    item = custom["items"]
    rules = [v["rule"] for v in item["x-kubernetes-validations"]]
    assert "!self.id.startsWith('PR-')" in rules
    assert item["properties"]["id"]["maxLength"] == 24
    assert set(item["properties"]["kinds"]["items"]["enum"]) >= {"Deployment", "CronJob", "Pod"}
    # Rule IDs elsewhere in the policy take custom IDs too.
    assert spec["properties"]["disabled"]["items"]["maxLength"] == 24


def test_rule_ids_elsewhere_in_a_policy_take_custom_ids() -> None:
    model = ReadinessPolicy.model_validate(
        policy(
            "p",
            customRules=[OWNER],
            severity={"ACME-OWN-001": "warning"},
            disabled=["ACME-OWN-001"],
            annotationExemptions={"rules": ["ACME-OWN-001"]},
            exemptions=[{"rules": ["ACME-OWN-001"], "reason": "legacy"}],
        )
    )
    assert model.spec.custom_rules[0].id == "ACME-OWN-001"
    with pytest.raises(ValidationError, match="defined more than once"):
        ReadinessPolicy.model_validate(policy("p", customRules=[OWNER, OWNER]))


# -- compiling -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"expression": "object.metadata.name == "},
            "spec.customRules[0] (ACME-OWN-001).expression: line 1, column 25: Syntax error",
        ),
        (
            {"expression": "true &&\n  objct.metadata.name == 'a'"},
            "expression: line 2, column 3: undeclared reference to 'objct'",
        ),
        (
            {"expression": "object.metadata.name.shout() == 'A'"},
            "expression: line 1, column 22: undeclared reference to function 'shout'",
        ),
        (
            {"messageExpression": "'missing on ' + "},
            "(ACME-OWN-001).messageExpression: line 1, column 17",
        ),
        (
            {
                "expression": "object.a.all(x, object.b.all(y, object.c.all(z, "
                "object.d.all(w, true))))"
            },
            "comprehensions nest 4 deep; at most 3",
        ),
    ],
)
def test_a_broken_expression_names_the_rule_and_the_position(
    fields: dict[str, Any], expected: str
) -> None:
    rules, problems = compiled(rule(**fields))
    assert rules == []
    assert len(problems) == 1
    assert expected in problems[0]


def test_a_policy_with_a_broken_expression_is_not_ready_and_validate_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = policy("acme", customRules=[rule(expression="object.metadata.name == ")])
    compiled_policy = compile_policy(broken)
    assert compiled_policy.custom_rules == ()
    assert "ACME-OWN-001" in compiled_policy.problems[0]
    assert "line 1, column 25" in compiled_policy.problems[0]
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(broken))
    workloads = tmp_path / "app.yaml"
    workloads.write_text(yaml.safe_dump_all(baseline()))
    assert main(["validate", str(workloads), "--policy", str(path)]) == 2
    err = capsys.readouterr().err
    assert "ReadinessPolicy acme: spec.customRules[0] (ACME-OWN-001).expression" in err
    assert "line 1, column 25" in err
    assert "Traceback" not in err


def test_an_unknown_id_elsewhere_in_the_policy_is_still_a_problem() -> None:
    compiled_policy = compile_policy(policy("p", customRules=[OWNER], disabled=["ACME-TYPO-1"]))
    assert compiled_policy.problems == (
        "spec.disabled: unknown rule ID ACME-TYPO-1 (see `prodready rules`)",
    )


def test_shape_counts_nesting_outside_string_literals() -> None:
    shape, _ = shape_of("object.a.all(x, x.exists(y, y == ').all(z, ')) && size(object.b) > 0")
    assert shape.depth == 2
    assert shape_of("object.a.map(x, x).filter(y, y > 1)")[0].depth == 1


# -- evaluating ----------------------------------------------------------------------------


def _workload(**labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "api", "namespace": "shop", "labels": labels},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "registry.acme.example/api:1",
                            "resources": {"requests": {"memory": "128Mi"}},
                        }
                    ]
                }
            }
        },
    }


def test_true_passes_false_fails_with_the_message() -> None:
    (owner,), _ = compiled(OWNER)
    good, bad = _workload(team="payments"), _workload()
    assert evaluate_rule(owner, activation(good, None), extent_of(good)).passed
    failed = evaluate_rule(owner, activation(bad, None), extent_of(bad))
    assert (failed.passed, failed.message, failed.error) == (
        False,
        "label team is missing on api",
        False,
    )


def test_namespace_object_is_the_namespace_or_null() -> None:
    ns = namespace({"tier": "gold"})
    expression = "namespaceObject != null && namespaceObject.metadata.labels.tier == 'gold'"
    assert verdict(expression, _workload(), ns).passed
    assert not verdict(expression, _workload(), None).passed


def test_quantities_and_string_functions_as_the_apiserver_offers_them() -> None:
    memory = (
        "object.spec.template.spec.containers.all(c, "
        "quantity(c.resources.requests.memory).isGreaterThan(quantity('64Mi')) && "
        "quantity(c.resources.requests.memory).compareTo(quantity('1Gi')) < 0 && "
        "quantity('1k').asInteger() == 1000 && isQuantity('12Mi') && !isQuantity('12 MB'))"
    )
    assert verdict(memory, _workload()).passed
    assert verdict("object.metadata.name.upperAscii() == 'API'", _workload()).passed
    assert verdict("object.metadata.name.matches('^a[a-z]+$')", _workload()).passed


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("object.metadata.labels.team == 'x'", "no such key: 'team'"),
        ("object.metadata.name + 1 == 'x'", "expression failed to evaluate"),
        ("object.metadata.name", "expression returned str, not a bool"),
        ("quantity(object.metadata.name).isGreaterThan(quantity('1'))", "not a Kubernetes"),
        ("int(object.metadata.name) > 1", "int(): string parse error"),
    ],
)
def test_an_evaluation_error_fails_the_rule_with_the_error(expression: str, message: str) -> None:
    result = verdict(expression, _workload())
    assert not result.passed
    assert result.error
    assert message in result.message


def test_a_broken_message_expression_keeps_the_failure() -> None:
    (owner,), _ = compiled(rule(messageExpression="'no team on ' + object.metadata.nope"))
    obj = _workload()
    result = evaluate_rule(owner, activation(obj, None), extent_of(obj))
    assert not result.passed
    assert result.message.startswith("workloads name an owning team (messageExpression failed")


# -- the cost bound ------------------------------------------------------------------------


def _hostile_object(items: int, string: int = 10, big: int = 0) -> dict[str, Any]:
    obj = _workload()
    obj["metadata"]["annotations"] = {f"k{i}": "v" * string for i in range(items)}
    if big:
        obj["metadata"]["labels"]["big"] = "b" * big
    return obj


@pytest.mark.parametrize(
    ("expression", "obj"),
    [
        # Nested comprehensions over a large map: 2,000 ** 3 iterations if it ran.
        (
            "object.metadata.annotations.all(a, object.metadata.annotations.all(b, "
            "object.metadata.annotations.exists(c, a + b + c == 'x')))",
            _hostile_object(2_000),
        ),
        # Strings built from a 2 MB value in a loop: gigabytes copied if it ran.
        (
            "object.metadata.annotations.all(a, size(object.metadata.labels.big + "
            "object.metadata.labels.big + a) < 1)",
            _hostile_object(300, big=2_000_000),
        ),
        # The same string repeated by the expression alone (CEL has no repeat operator).
        (
            " + ".join(["object.metadata.labels.big"] * 60) + " == ''",
            _hostile_object(1, big=2_000_000),
        ),
    ],
)
def test_a_hostile_expression_is_refused_by_its_bound_not_run(
    expression: str, obj: dict[str, Any]
) -> None:
    started = time.monotonic()
    result = verdict(expression, obj)
    elapsed = time.monotonic() - started
    assert not result.passed
    assert result.error
    assert "is over the budget of" in result.message
    assert elapsed < 2.0, elapsed  # converting the object is what it costs


def test_the_bound_lets_ordinary_rules_run_on_large_objects() -> None:
    obj = _hostile_object(500, string=10_000)  # a large last-applied-configuration, say
    (owner,), _ = compiled(OWNER)
    assert estimated_cost(owner.shape, extent_of(obj)) < COST_BUDGET
    nested = "object.spec.template.spec.containers.all(c, c.image.startsWith('registry'))"
    assert verdict(nested, obj).passed


def test_extent_stops_counting_at_its_limit() -> None:
    assert extent_of({"a": ["xy"] * 3}) == Extent(items=3, string=2, nodes=6, characters=7)
    extent = extent_of({"a": list(range(50))}, limit=10)
    assert (extent.items, extent.nodes) == (50, 10)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("object.metadata.labels.big.replace('b', object.metadata.labels.big) == ''", "replace"),
        ("object.metadata.labels.big.split('').all(c, c == 'b')", "split() would return"),
    ],
)
def test_string_functions_refuse_to_build_huge_values(expression: str, message: str) -> None:
    result = verdict(expression, _hostile_object(1, big=200_000))
    assert result.error
    assert message in result.message


def test_errors_do_not_quote_values_from_the_workload() -> None:
    obj = _workload(token="hunter2")
    for expression in (
        "duration(object.metadata.labels.token) > duration('1s')",
        "object.metadata.name.matches(object.metadata.labels.token + '[')",
        "quantity(object.metadata.labels.token).isGreaterThan(quantity('1'))",
    ):
        result = verdict(expression, obj)
        assert result.error
        assert "hunter2" not in result.message


def test_an_expression_at_the_budget_runs_in_well_under_a_second() -> None:
    # Two nested comprehensions over 300 annotations: just under the budget.
    obj = _hostile_object(300)
    expression = (
        "object.metadata.annotations.all(a, object.metadata.annotations.exists(b, "
        "a == b && b.startsWith('k')))"
    )
    (compiled_rule,), _ = compiled(rule(expression=expression, messageExpression=None))
    cost = estimated_cost(compiled_rule.shape, extent_of(obj))
    assert COST_BUDGET / 10 < cost <= COST_BUDGET
    started = time.monotonic()
    assert evaluate_rule(compiled_rule, activation(obj, None), extent_of(obj)).passed
    assert time.monotonic() - started < 1.0


# -- in the engine -------------------------------------------------------------------------


def _objects(**labels: str) -> list[dict[str, Any]]:
    objects = baseline()
    deployment(objects)["metadata"]["labels"].update(labels)
    return objects


def test_custom_rules_run_beside_the_checklist_in_the_deciding_policy() -> None:
    policies = policy_set(policy("acme", customRules=[OWNER]))
    failing = workload_report(_objects(), policies)
    (finding,) = [f for f in failing.findings if f.rule_id == "ACME-OWN-001"]
    assert (finding.result, finding.severity, finding.message) == (
        Result.FAIL,
        Severity.ERROR,
        "label team is missing on api",
    )
    assert finding.fix == "Add metadata.labels.team"
    assert not failing.compliant
    passing = workload_report(_objects(team="payments"), policies)
    assert results(passing, "ACME-OWN-001") == [Result.PASS]
    assert passing.compliant
    # Another policy deciding: its own rules only.
    assert results(workload_report(_objects(), policy_set()), "ACME-OWN-001") == []


def test_kinds_limit_where_a_custom_rule_applies() -> None:
    policies = policy_set(policy("acme", customRules=[rule(kinds=["StatefulSet"])]))
    assert results(workload_report(_objects(), policies), "ACME-OWN-001") == []


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"severity": {"ACME-OWN-001": "warning"}}, [Result.WARN]),
        ({"disabled": ["ACME-OWN-001"]}, []),
        (
            {"exemptions": [{"rules": ["ACME-OWN-001", "PR-RS-002"], "reason": "legacy"}]},
            [Result.SKIP],
        ),
    ],
)
def test_severity_disabled_and_exemptions_work_on_custom_ids(
    spec: dict[str, Any], expected: list[Result]
) -> None:
    policies = policy_set(policy("acme", customRules=[OWNER], **spec))
    assert results(workload_report(_objects(), policies), "ACME-OWN-001") == expected


def test_a_readiness_exception_excepts_a_custom_rule() -> None:
    policies = policy_set(
        policy("acme", customRules=[OWNER]),
        exception(rules={"ACME-OWN-001": "the team is being named"}),
    )
    report = workload_report(_objects(), policies)
    (finding,) = [f for f in report.findings if f.rule_id == "ACME-OWN-001"]
    assert finding.result is Result.SKIP
    assert "ReadinessException shop/allow" in finding.message


def test_an_exception_for_a_custom_id_no_policy_declares_is_a_problem() -> None:
    objects = [policy("acme", customRules=[OWNER]), exception(rules={"ACME-GONE-1": "typo"})]
    with pytest.raises(PolicyError, match="unknown rule ID ACME-GONE-1"):
        policy_set_from_objects(objects)
    assert policy_set_from_objects(objects[:1]).custom_rule_ids == {"ACME-OWN-001"}


@pytest.mark.parametrize(("mode", "expected"), [("Enforce", Result.FAIL), ("Audit", Result.SKIP)])
def test_the_exempt_annotation_takes_custom_ids_as_the_policy_allows(
    mode: str, expected: Result
) -> None:
    objects = _objects()
    deployment(objects)["metadata"]["annotations"] = {
        "prodready.io/exempt": "ACME-OWN-001",
        "prodready.io/exempt-reason": "ACME-OWN-001: named in the next release",
    }
    report = workload_report(objects, policy_set(policy("acme", mode, customRules=[OWNER])))
    assert results(report, "ACME-OWN-001") == [expected]
    # The annotation names a rule the deciding policy knows: PR-EX-001 is content.
    assert Result.FAIL not in results(report, "PR-EX-001")


def test_an_error_at_evaluation_is_a_failing_finding_of_that_rule() -> None:
    policies = policy_set(
        policy("acme", customRules=[rule(expression="object.metadata.labels.team != ''")])
    )
    (finding,) = [
        f for f in workload_report(_objects(), policies).findings if f.rule_id == "ACME-OWN-001"
    ]
    assert finding.result is Result.FAIL
    assert "no such key: 'team'" in finding.message


def test_a_production_service_renders_children_the_custom_rules_judge() -> None:
    service = yaml.safe_load((REPO / "examples" / "minimal.yaml").read_text())
    service["metadata"]["namespace"] = "shop"
    policies = policy_set(policy("acme", customRules=[OWNER]))
    (report,) = [
        r
        for r in __import__("prodready.rules", fromlist=["evaluate"]).evaluate(
            [service], policies=policies, now=NOW
        )
        if r.object.kind == "ProductionService"
    ]
    custom = [f for f in report.findings if f.rule_id == "ACME-OWN-001"]
    assert custom
    assert {f.object.kind for f in custom} <= {"Deployment", "StatefulSet"}


# -- the outputs ---------------------------------------------------------------------------


def test_sarif_describes_custom_rules(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "validate",
            str(EXAMPLE / "workloads.yaml"),
            "--policy",
            str(EXAMPLE / "policy.yaml"),
            "-o",
            "sarif",
        ]
    )
    assert code == 1
    log = json.loads(capsys.readouterr().out)
    run = log["runs"][0]
    descriptors = {d["id"]: d for d in run["tool"]["driver"]["rules"]}
    assert descriptors["ACME-REG-001"]["shortDescription"]["text"] == (
        "images come from the approved registry"
    )
    assert descriptors["ACME-MEM-001"]["defaultConfiguration"]["level"] == "warning"
    for result in run["results"]:
        assert run["tool"]["driver"]["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
    assert any(r["ruleId"] == "ACME-REG-001" for r in run["results"])


def test_json_carries_custom_findings(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["validate", str(EXAMPLE / "workloads.yaml"), "--policy", str(EXAMPLE / "policy.yaml")]
    assert main([*args, "-o", "json"]) == 1
    document = json.loads(capsys.readouterr().out)
    messages = {
        f["message"]
        for report in document["objects"]
        for f in report["findings"]
        if f["rule"] == "ACME-REG-001"
    }
    assert "images outside registry.acme.example: docker.io/acme/cart:0.9" in messages


# -- prodready test ------------------------------------------------------------------------


def test_the_example_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["test", str(EXAMPLE), "--show-passed"]) == 0
    out = capsys.readouterr().out
    assert "acme custom rules" in out
    assert "ok    ACME-MEM-001  Deployment shop/batch-shim: skip" in out
    assert "12 case(s): 12 as expected, 0 not" in out


def _copy_example(tmp_path: Path) -> Path:
    target = tmp_path / "custom-rules"
    shutil.copytree(EXAMPLE, target)
    return target


def _edit_test(directory: Path, change: Any) -> None:
    path = directory / "prodready-test.yaml"
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data))


def test_a_wrong_expectation_exits_1_and_says_what_was_found(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = _copy_example(tmp_path)
    _edit_test(directory, lambda d: d["results"][1].update(result="pass"))
    assert main(["test", str(directory)]) == 1
    out = capsys.readouterr().out
    assert (
        "FAIL  ACME-OWN-001  Deployment shop/legacy-cart: expected pass, got fail "
        "(label team is missing on Deployment legacy-cart)"
    ) in out
    assert "12 case(s): 11 as expected, 1 not" in out


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["results"][0].update(rule="ACME-NOPE-1"), "results[0].rule: unknown rule ID"),
        (
            lambda d: d["results"][0].update(resources=["nothing"]),
            "results[0].resources[0]: no workload nothing in the resources",
        ),
        (lambda d: d["results"][0].update(result="maybe"), "results.0.result"),
        (lambda d: d.update(resources=["missing.yaml"]), "resources[0]:"),
        (lambda d: d.pop("results"), "results: Field required"),
    ],
)
def test_a_usage_error_exits_2_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: Any, message: str
) -> None:
    directory = _copy_example(tmp_path)
    _edit_test(directory, change)
    assert main(["test", str(directory)]) == 2
    err = capsys.readouterr().err
    assert message in err.replace("results[0].result", "results.0.result")
    assert "Traceback" not in err


def test_a_directory_without_a_test_file_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["test", str(tmp_path)]) == 2
    assert "no test file prodready-test.yaml" in capsys.readouterr().err


def test_an_ambiguous_name_asks_for_namespace_or_kind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = _copy_example(tmp_path)
    workloads = directory / "workloads.yaml"
    documents = list(yaml.safe_load_all(workloads.read_text()))
    twin = json.loads(json.dumps(documents[1]))
    twin["metadata"]["namespace"] = "other"
    workloads.write_text(yaml.safe_dump_all([*documents, twin]))
    assert main(["test", str(directory)]) == 2
    assert "checkout names 2 workloads; give namespace/name or a kind" in (capsys.readouterr().err)


def test_now_and_environment_are_honoured(tmp_path: Path) -> None:
    directory = _copy_example(tmp_path)
    expires = (NOW + timedelta(days=5)).isoformat()
    (directory / "exception.yaml").write_text(
        yaml.safe_dump(
            exception(
                "owner-later",
                rules={"ACME-OWN-001": "naming the team"},
                names=["legacy-cart"],
                expires=NOW + timedelta(days=5),
            )
        )
    )

    def change(data: dict[str, Any]) -> None:
        data["policies"].append("exception.yaml")
        data["now"] = NOW.isoformat()
        data["environment"] = "dev"
        data["results"] = [
            {"rule": "ACME-OWN-001", "resources": ["legacy-cart"], "result": "skip"},
        ]

    _edit_test(directory, change)
    assert expires
    assert main(["test", str(directory)]) == 0


def test_a_rule_that_does_not_apply_says_which_policy_decides(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = _copy_example(tmp_path)
    workloads = directory / "workloads.yaml"
    documents = [d for d in yaml.safe_load_all(workloads.read_text()) if d["kind"] != "Namespace"]
    workloads.write_text(yaml.safe_dump_all(documents))
    assert main(["test", str(directory)]) == 1
    out = capsys.readouterr().out
    assert (
        "expected fail, got skip (the rule does not apply to this workload, for which "
        "default decides (Audit))"
    ) in out


# -- the benchmark -------------------------------------------------------------------------


def test_the_benchmark_rules_compile_and_its_row_reaches_the_results() -> None:
    from benchmarks import custom_rules, report
    from benchmarks.corpus import Corpus
    from benchmarks.measure import Measurement

    compiled_policy = compile_policy(custom_rules.policy(True))
    assert compiled_policy.problems == ()
    assert len(compiled_policy.custom_rules) == 10

    def measured(seconds: float) -> Measurement:
        return Measurement(
            seconds=seconds, cpu_seconds=seconds, peak_rss_mib=100, exit_code=1, stderr_tail=""
        )

    result = custom_rules.CustomRulesResult(
        corpus=Corpus(Path("/corpus"), 500, 10_000, 48_553, 3_487),
        rules=10,
        without=measured(12.0),
        with_rules=measured(17.0),
        compile_ms=5.0,
    )
    assert result.seconds_per_rule == pytest.approx(0.5)
    assert result.microseconds_per_rule_and_workload == pytest.approx(50)
    run = report.Run(None, None, None, seconds=10, custom_rules=result)
    assert "validate 10,000 workloads with 10 custom rules, s per custom rule | 0.50" in (
        report.table(run)
    )
    assert report.as_json(run)["custom_rules"]["seconds_per_rule"] == pytest.approx(0.5)


def test_a_hostile_rule_in_enforce_is_an_error_finding_of_that_rule_not_a_hang() -> None:
    hostile = rule(
        expression="object.metadata.annotations.all(a, object.metadata.annotations.all(b, "
        "object.metadata.annotations.exists(c, a + b + c == 'x')))",
        messageExpression=None,
    )
    objects = _objects(team="payments")
    deployment(objects)["metadata"]["annotations"] = {f"k{i}": "v" for i in range(3_000)}
    policies = policy_set(policy("acme", customRules=[hostile, {**OWNER, "id": "ACME-OWN-002"}]))
    started = time.monotonic()
    report = workload_report(objects, policies)
    assert time.monotonic() - started < 5.0
    (finding,) = [f for f in report.findings if f.rule_id == "ACME-OWN-001"]
    assert finding.result is Result.FAIL
    assert "not evaluated: its estimated cost" in finding.message
    assert not report.compliant  # in Enforce, the webhook denies
    # The policy's other rules still ran.
    assert results(report, "ACME-OWN-002") == [Result.PASS]


def test_a_value_cel_cannot_hold_fails_the_custom_rules_with_its_type() -> None:
    # An unquoted date in YAML is a date, which JSON (and so the apiserver) never holds.
    objects = _objects(team="payments")
    deployment(objects)["metadata"]["annotations"] = {"released": yaml.safe_load("2024-01-01")}
    report = workload_report(objects, policy_set(policy("acme", customRules=[OWNER])))
    (finding,) = [f for f in report.findings if f.rule_id == "ACME-OWN-001"]
    assert finding.result is Result.FAIL
    assert finding.message == (
        "the object cannot be given to CEL: Failed to convert Python object of type date to Value"
    )


def test_prodready_rules_lists_a_policys_custom_rules(capsys: pytest.CaptureFixture[str]) -> None:
    policy_file = str(EXAMPLE / "policy.yaml")
    assert main(["rules", "--policy", policy_file]) == 0
    table = capsys.readouterr().out
    assert "ACME-REG-001 error    custom         images come from the approved registry" in table
    assert main(["rules", "--policy", policy_file, "-o", "json"]) == 0
    listed = {rule["id"]: rule for rule in json.loads(capsys.readouterr().out)}
    assert "PR-HC-001" in listed
    assert listed["ACME-MEM-001"]["severity"] == "warning"
    assert listed["ACME-MEM-001"]["policy"] == "acme"


def test_prodready_rules_refuses_a_broken_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(policy("acme", customRules=[rule(expression="1 +")])))
    assert main(["rules", "--policy", str(path)]) == 2
    assert "(ACME-OWN-001).expression: line 1" in capsys.readouterr().err


def test_the_custom_rules_of_one_workload_share_a_budget() -> None:
    # Each rule alone is within its budget; together they would not be.
    expensive = (
        "object.metadata.annotations.all(a, object.metadata.annotations.exists(b, "
        "a == b && b.startsWith('k')))"
    )
    rules = [
        rule(id=f"ACME-COST-{i}", expression=expensive, messageExpression=None) for i in range(8)
    ]
    objects = _objects(team="payments")
    deployment(objects)["metadata"]["annotations"] = {f"k{i}": "v" for i in range(300)}
    report = workload_report(objects, policy_set(policy("acme", customRules=rules)))
    custom = [f for f in report.findings if f.rule_id.startswith("ACME-COST-")]
    ran = [f for f in custom if f.result is Result.PASS]
    refused = [f for f in custom if f.result is Result.FAIL]
    assert ran
    assert refused
    assert len(ran) + len(refused) == 8
    assert "this workload's custom rules have used" in refused[0].message


def test_validate_only_and_disable_name_custom_rules_of_the_policy(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`--only` and `--disable` take a `--policy` file's custom rule IDs (and prefixes)
    as they take the checklist's; an ID neither knows is a usage error."""
    policy, workloads = str(EXAMPLE / "policy.yaml"), str(EXAMPLE / "workloads.yaml")

    def rules_of(*flags: str) -> set[str]:
        main(["validate", "--policy", policy, *flags, "-o", "json", workloads])
        document = json.loads(capsys.readouterr().out)
        return {f["rule"] for o in document["objects"] for f in o["findings"]}

    assert rules_of("--only", "ACME-OWN-001") == {"ACME-OWN-001"}
    assert rules_of("--only", "ACME-OWN-001,PR-HC-001") == {"ACME-OWN-001", "PR-HC-001"}
    remaining = rules_of("--disable", "ACME")
    assert not {rule for rule in remaining if rule.startswith("ACME-")}
    assert "PR-HC-001" in remaining
    assert main(["validate", "--policy", policy, "--only", "NOPE-1", workloads]) == 2
    assert "--only NOPE-1: no rule has this ID" in capsys.readouterr().err
    assert main(["validate", "--only", "ACME-OWN-001", workloads]) == 2  # no --policy
