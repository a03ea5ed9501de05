"""The plain data the rules engine produces: severities, results, findings and reports.

Plain frozen dataclasses rather than pydantic models: a 10,000-object run creates hundreds
of thousands of findings, and validation buys nothing for values the engine builds itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

# A policy's mode and the checklist's profiles (the environments a ProductionService
# declares): one enum each, defined in the layer below and re-exported for the engine.
from prodready.api.enforcement import Mode as Mode  # noqa: PLC0414 - re-export
from prodready.api.environment import Environment as Environment  # noqa: PLC0414 - re-export


class Severity(StrEnum):
    """How much a failing rule matters: an `error` denies admission, a `warning` does not."""

    ERROR = "error"
    WARNING = "warning"


class Result(StrEnum):
    """The outcome of one check: `fail` and `warn` are failures of error and warning rules."""

    PASS = "pass"  # noqa: S105 - a result name, not a password
    FAIL = "fail"
    WARN = "warn"
    SKIP = "skip"


# What the score weighs a check by; see `score` below.
SEVERITY_WEIGHT: dict[Severity, int] = {Severity.ERROR: 3, Severity.WARNING: 1}

JsonPatch = list[dict[str, Any]]


@dataclass(frozen=True, slots=True, kw_only=True)
class ObjectRef:
    """Which Kubernetes object a report or finding is about."""

    api_version: str
    kind: str
    namespace: str | None
    name: str

    def display(self) -> str:
        """`Kind namespace/name` (or `Kind name` for cluster-scoped and namespace-less input)."""
        if self.namespace:
            return f"{self.kind} {self.namespace}/{self.name}"
        return f"{self.kind} {self.name}"

    def as_dict(self) -> dict[str, Any]:
        """The Kubernetes-style spelling used by the JSON output."""
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """One rule's verdict on one object (and, for container rules, one container).

    `path` is a JSONPath-like pointer into `object` (`spec.template.spec.containers[0]
    .livenessProbe`); `patch` is an RFC 6902 JSON patch against that same object that would
    make the rule pass, when one can be derived without guessing application details.
    """

    rule_id: str
    title: str
    severity: Severity
    result: Result
    object: ObjectRef
    container: str | None
    path: str
    message: str
    fix: str
    patch: JsonPatch | None = None

    @property
    def failed(self) -> bool:
        """True for `fail` and `warn`: the rule's requirement is not met."""
        return self.result in (Result.FAIL, Result.WARN)

    def as_dict(self) -> dict[str, Any]:
        """The stable JSON shape of a finding (see `prodready.rules` for the whole document)."""
        return {
            "rule": self.rule_id,
            "title": self.title,
            "severity": self.severity.value,
            "result": self.result.value,
            "object": self.object.as_dict(),
            "container": self.container,
            "path": self.path,
            "message": self.message,
            "fix": self.fix,
            "patch": self.patch,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Counts:
    """How many findings of each result an object (or a whole run) has."""

    passed: int = 0
    failed: int = 0
    warned: int = 0
    skipped: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(
            passed=self.passed + other.passed,
            failed=self.failed + other.failed,
            warned=self.warned + other.warned,
            skipped=self.skipped + other.skipped,
        )

    def as_dict(self) -> dict[str, int]:
        """Keyed by the result names (`pass`, `fail`, `warn`, `skip`)."""
        return {
            "pass": self.passed,
            "fail": self.failed,
            "warn": self.warned,
            "skip": self.skipped,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class ObjectReport:
    """Everything the rules said about one workload object.

    `input_index` is the position of the object in the iterable given to `evaluate`, so a
    caller that knows where each input came from (a file and line) can map reports back.
    `environment_source` says where the environment came from: `spec`, `label`,
    `annotation`, `template-label`, `template-annotation`, `container-env`, `namespace`,
    `argument` (the caller's default, e.g. `--env`), `default` (none declared: prod) or
    `policy` (the deciding ReadinessPolicy's environment, a floor).
    `policy` names the ReadinessPolicy that decided (None: none did), `policy_source` says
    what decided in words (`ReadinessPolicy production`, `namespace label
    prodready.io/enforce`, `default`) and `mode` is its mode: the webhook denies only in
    Enforce, and a workload in Off has no findings.
    """

    object: ObjectRef
    environment: Environment
    environment_source: str
    findings: tuple[Finding, ...]
    counts: Counts
    score: float
    compliant: bool
    input_index: int
    policy: str | None = None
    policy_source: str = "default"
    mode: Mode = Mode.AUDIT

    def failures(self) -> list[Finding]:
        """Findings whose result is `fail` or `warn`, in report order."""
        return [f for f in self.findings if f.failed]


def count(findings: tuple[Finding, ...] | list[Finding]) -> Counts:
    """Count findings by result."""
    passed = failed = warned = skipped = 0
    for finding in findings:
        result = finding.result
        if result is Result.PASS:
            passed += 1
        elif result is Result.FAIL:
            failed += 1
        elif result is Result.WARN:
            warned += 1
        else:
            skipped += 1
    return Counts(passed=passed, failed=failed, warned=warned, skipped=skipped)


def score(findings: tuple[Finding, ...] | list[Finding]) -> float:
    """Percentage of evaluated checks that passed, weighted by severity.

    Each non-skipped finding weighs 3 if its (effective) severity is `error` and 1 if it
    is `warning`; the score is 100 × passed weight / total weight, rounded to one decimal.
    Skipped (exempted) findings are left out: an exemption is a decision, not a pass. An
    object with nothing to check scores 100.
    """
    return weighted_score(*score_weights(findings))


def score_weights(findings: Iterable[Finding]) -> tuple[int, int]:
    """(passed weight, total weight) of `findings`, as `score` weighs them: the parts of a
    run (a process's share of its objects) add up to the run's score."""
    total = 0
    passed = 0
    for finding in findings:
        if finding.result is Result.SKIP:
            continue
        weight = SEVERITY_WEIGHT[finding.severity]
        total += weight
        if finding.result is Result.PASS:
            passed += weight
    return passed, total


def weighted_score(passed: int, total: int) -> float:
    """The score (0-100, one decimal) of a passed and a total weight (100: nothing weighed)."""
    if total == 0:
        return 100.0
    return round(100.0 * passed / total, 1)
