"""Every rule, shown by files: `tests/fixtures/rules/<RULE-ID>/success*.yaml` and `failure*.yaml`.

The way Polaris keeps its checks: beside each rule ID, minimal real manifests (with the
context objects the rule reads) that pass it and that fail it, each opening with a comment
saying what it shows; a failure fixture also has a `# message: <fragment>` line, a piece of
the message it must fail with, so it cannot pass by failing for another reason. One
parametrized test reads every file through the same loader as `prodready validate`,
evaluates it with `prodready.rules.evaluate` and checks that rule's result; a rule in the
registry without both kinds of file fails the suite, so a new rule comes with its fixtures.

Only the named rule is asserted: a fixture is small, so other rules may well fail on it.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from prodready.rules import (
    RULES,
    RULES_BY_ID,
    Finding,
    ObjectReport,
    Result,
    Rule,
    Severity,
    evaluate,
)
from prodready.rules.limits import LIMITS_RULE_ID
from prodready.rules.loader import LoadResult, load_bytes, load_inputs

FIXTURES = Path(__file__).parent.parent / "fixtures" / "rules"
KINDS = ("success", "failure")
# Reported only about an object over a cap; an object within every cap has no finding.
SILENT_WHEN_PASSING = frozenset({LIMITS_RULE_ID})
_MESSAGE = re.compile(r"^# message: (.+)$", re.MULTILINE)


def _fixture_files() -> list[Path]:
    return sorted(
        path
        for path in FIXTURES.glob("*/*.yaml")
        if path.parent.name.startswith("PR-") and path.name.startswith(KINDS)
    )


FILES = _fixture_files()


def _report(path: Path, rule: Rule) -> ObjectReport:
    result = LoadResult()
    load_bytes(path.read_bytes(), str(path), result)
    assert result.errors == [], [str(e) for e in result.errors]
    # Ingresses, LoadBalancer Services and ConfigMaps get reports of their own too: the
    # fixture shows the one object of a kind the rule judges.
    reports = [
        r for r in evaluate(loaded.obj for loaded in result.objects) if r.object.kind in rule.kinds
    ]
    assert len(reports) == 1, f"{path.name} should hold exactly one object {rule.id} judges"
    return reports[0]


def _expected_message(path: Path) -> str | None:
    match = _MESSAGE.search(path.read_text())
    return match.group(1).strip() if match else None


def _findings(report: ObjectReport, rule_id: str) -> list[Finding]:
    return [f for f in report.findings if f.rule_id == rule_id]


def test_every_rule_has_passing_and_failing_fixtures() -> None:
    present = {(path.parent.name, path.name.split("-")[0].split(".")[0]) for path in FILES}
    missing = [
        f"{rule.id}/{kind}*.yaml"
        for rule in RULES
        for kind in KINDS
        if (rule.id, kind) not in present
    ]
    assert missing == [], f"rules without fixtures: {missing}"


def test_every_fixture_belongs_to_a_rule_and_is_named_for_what_it_shows() -> None:
    for directory in sorted(p for p in FIXTURES.iterdir() if p.is_dir()):
        assert directory.name in RULES_BY_ID, f"{directory.name} is not a rule in the registry"
        for path in sorted(directory.iterdir()):
            assert path in FILES, f"{path.name}: name it success*.yaml or failure*.yaml"
            assert path.read_text().startswith("# "), f"{path}: say what it shows in a comment"
            if path.name.startswith("failure"):
                assert _expected_message(path), f"{path}: add a '# message: <fragment>' line"


def test_the_fixtures_are_found() -> None:
    # A glob that silently matches nothing would pass every parametrized case below.
    assert len(FILES) >= 2 * len(RULES)


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_rule_fixture(path: Path) -> None:
    rule = RULES_BY_ID[path.parent.name]
    report = _report(path, rule)
    found = _findings(report, rule.id)
    if path.name.startswith("success"):
        if rule.id in SILENT_WHEN_PASSING:
            assert found == []
            assert report.findings, "the workload was not evaluated rule by rule"
            return
        assert found, f"{rule.id} said nothing about {path.name}"
        assert all(f.result is Result.PASS for f in found), [f.message for f in found]
        return
    failed = [f for f in found if f.failed]
    assert failed, f"{rule.id} did not fail on {path.name}: {[f.message for f in found]}"
    expected = Result.FAIL if rule.severity is Severity.ERROR else Result.WARN
    assert {f.result for f in failed} == {expected}
    for finding in failed:
        assert finding.severity is rule.severity
        assert finding.message
        assert finding.path
        assert finding.fix == rule.fix
    fragment = _expected_message(path)
    assert fragment is not None
    assert any(fragment in f.message for f in failed), (fragment, [f.message for f in failed])
    if expected is Result.FAIL:
        assert not report.compliant


def test_the_limits_fixture_is_read_by_validate_within_the_alias_budget() -> None:
    # The PR-LM-001 failure repeats one volume by alias; the loader must accept it as input
    # (not refuse it as an alias bomb), or the fixture would show the loader, not the rule.
    path = FIXTURES / LIMITS_RULE_ID / "failure.yaml"
    result = load_inputs([str(path)], io.BytesIO())
    assert result.errors == []
    (loaded,) = result.objects
    assert len(loaded.obj["spec"]["template"]["spec"]["volumes"]) == 1_001
