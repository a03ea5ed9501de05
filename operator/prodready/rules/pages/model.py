"""What a page shows, as plain data built from a `Run` (and, for the dashboard, the cluster's
ProductionServices and ReadinessExceptions, given as the dicts the apiserver returns).

Pure: no I/O and no clock of its own (`now` is an argument), so `validate -o html` and
the dashboard show the same numbers for the same reports, and the numbers equal the JSON
output's `summary` (a test holds them to it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from prodready.rules.formats import Run
from prodready.rules.model import Counts, Finding, ObjectRef, ObjectReport, Result, Severity, score
from prodready.rules.registry import RULES_BY_ID

# An exception that expires within this many days is "expiring soon" on the dashboard.
EXPIRING_SOON_DAYS = 14


@dataclass(frozen=True, slots=True, kw_only=True)
class Summary:
    """The run's totals: the same figures as `-o json`'s `summary`."""

    objects: int
    compliant: int
    counts: Counts
    score: float
    failed: bool
    fail_on: Severity


@dataclass(frozen=True, slots=True, kw_only=True)
class NamespaceRow:
    """One namespace's workloads: how many, how many compliant, their findings' score."""

    namespace: str
    workloads: int
    compliant: int
    counts: Counts
    score: float


@dataclass(slots=True, kw_only=True)
class RuleRow:
    """One rule across the run: how often it failed or was exempted, and why it matters."""

    rule_id: str
    title: str
    severity: Severity
    section: str
    why: str
    fix: str
    failed: int = 0
    warned: int = 0
    skipped: int = 0
    workloads: int = 0

    @property
    def failures(self) -> int:
        """Failed plus warned: how often the rule's requirement was not met."""
        return self.failed + self.warned


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkloadRow:
    """One workload: its report, where it came from, and the findings a page lists."""

    report: ObjectReport
    location: str
    shown: tuple[Finding, ...]  # failures first, then exemptions; passes are only counted
    failing_rules: tuple[str, ...]

    @property
    def ref(self) -> ObjectRef:
        """The workload's reference."""
        return self.report.object

    @property
    def namespace(self) -> str:
        """Its namespace, or '' for input without one."""
        return self.report.object.namespace or ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Overview:
    """Everything a report page shows about a run's workloads."""

    summary: Summary
    namespaces: tuple[NamespaceRow, ...]
    rules: tuple[RuleRow, ...]  # rules that failed or were exempted, most failures first
    workloads: tuple[WorkloadRow, ...]  # most errors first, then warnings, then name
    errors: tuple[str, ...]  # input errors

    @property
    def exemptions(self) -> list[tuple[WorkloadRow, Finding]]:
        """Every skipped finding (an exemption or exception) with its workload."""
        return [
            (row, finding)
            for row in self.workloads
            for finding in row.shown
            if finding.result is Result.SKIP
        ]


_ORDER = {Result.FAIL: 0, Result.WARN: 1, Result.SKIP: 2, Result.PASS: 3}


def _sort_key(row: WorkloadRow) -> tuple[int, int, str, str, str]:
    counts = row.report.counts
    ref = row.ref
    return (-counts.failed, -counts.warned, ref.namespace or "", ref.kind, ref.name)


def overview(run: Run) -> Overview:
    """The page model of a run (one pass over its findings)."""
    rules: dict[str, RuleRow] = {}
    by_namespace: dict[str, list[ObjectReport]] = {}
    rows: list[WorkloadRow] = []
    for report in run.reports:
        by_namespace.setdefault(report.object.namespace or "", []).append(report)
        shown: list[Finding] = []
        failing: dict[str, None] = {}
        for finding in report.findings:
            result = finding.result
            if result is Result.PASS:
                continue
            shown.append(finding)
            row = rules.get(finding.rule_id)
            if row is None:
                rule = RULES_BY_ID.get(finding.rule_id)
                row = RuleRow(
                    rule_id=finding.rule_id,
                    title=rule.title if rule else finding.title,
                    severity=rule.severity if rule else finding.severity,
                    section=rule.section if rule else "",
                    why=rule.why if rule else "",
                    fix=rule.fix if rule else finding.fix,
                )
                rules[finding.rule_id] = row
            if result is Result.FAIL:
                row.failed += 1
            elif result is Result.WARN:
                row.warned += 1
            else:
                row.skipped += 1
            if result is not Result.SKIP and finding.rule_id not in failing:
                failing[finding.rule_id] = None
                row.workloads += 1
        shown.sort(key=lambda f: _ORDER[f.result])
        source = run.source_of(report)
        rows.append(
            WorkloadRow(
                report=report,
                location=f"{source.file}:{source.line}",
                shown=tuple(shown),
                failing_rules=tuple(failing),
            )
        )
    rows.sort(key=_sort_key)
    namespaces = tuple(
        NamespaceRow(
            namespace=namespace,
            workloads=len(reports),
            compliant=sum(1 for r in reports if r.compliant),
            counts=sum((r.counts for r in reports), Counts()),
            score=score([f for r in reports for f in r.findings]),
        )
        for namespace, reports in sorted(by_namespace.items())
    )
    ranked = sorted(rules.values(), key=lambda r: (-r.failures, -r.skipped, r.rule_id))
    summary = Summary(
        objects=len(run.reports),
        compliant=sum(1 for r in run.reports if r.compliant),
        counts=run.counts,
        score=run.score,
        failed=run.failed,
        fail_on=run.fail_on,
    )
    return Overview(
        summary=summary,
        namespaces=namespaces,
        rules=tuple(ranked),
        workloads=tuple(rows),
        errors=tuple(str(error) for error in run.errors),
    )


# ------------------------------------------------------------------------- dashboard


@dataclass(frozen=True, slots=True, kw_only=True)
class ConditionRow:
    """One status condition of a ProductionService."""

    type: str
    status: str
    reason: str
    message: str
    since: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceRow:
    """A ProductionService and what its status says."""

    namespace: str
    name: str
    ready: str  # the Ready condition's status: True, False or Unknown
    compliant: bool | None
    score: int | None
    conditions: tuple[ConditionRow, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ExceptionRow:
    """A ReadinessException: which rules it excepts and why, who approved it, until when."""

    namespace: str
    name: str
    rules: tuple[tuple[str, str], ...]  # (rule ID, reason)
    covers: str  # the workloads it matches, as its spec.match says
    approved_by: str
    expires: datetime | None
    days_left: float | None
    status: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Dashboard:
    """The dashboard's model: the reports' overview and what the cluster adds to it."""

    overview: Overview
    services: tuple[ServiceRow, ...]
    exceptions: tuple[ExceptionRow, ...]  # expiring soonest first
    generated_at: datetime
    notes: tuple[str, ...] = field(default_factory=tuple)  # what could not be read, and why

    @property
    def expiring(self) -> tuple[ExceptionRow, ...]:
        """Exceptions not yet expired that expire within `EXPIRING_SOON_DAYS`."""
        return tuple(
            row
            for row in self.exceptions
            if row.days_left is not None and 0 <= row.days_left <= EXPIRING_SOON_DAYS
        )

    def workload(self, namespace: str, kind: str, name: str) -> WorkloadRow | None:
        """The row of one workload, if a report covers it."""
        for row in self.overview.workloads:
            ref = row.ref
            if ref.name == name and ref.kind == kind and (ref.namespace or "") == namespace:
                return row
        return None


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def service_row(body: Mapping[str, Any]) -> ServiceRow:
    """A ProductionService as the dashboard lists it (its status only; never its spec)."""
    metadata = body.get("metadata") or {}
    status = body.get("status") or {}
    conditions = tuple(
        ConditionRow(
            type=_text(c.get("type")),
            status=_text(c.get("status")),
            reason=_text(c.get("reason")),
            message=_text(c.get("message")),
            since=_text(c.get("lastTransitionTime")),
        )
        for c in status.get("conditions") or ()
        if isinstance(c, Mapping)
    )
    ready = next((c.status for c in conditions if c.type == "Ready"), "Unknown")
    compliance = status.get("compliance") or {}
    compliant = compliance.get("compliant")
    raw_score = compliance.get("score")
    return ServiceRow(
        namespace=_text(metadata.get("namespace")),
        name=_text(metadata.get("name")),
        ready=ready,
        compliant=compliant if isinstance(compliant, bool) else None,
        score=int(raw_score) if isinstance(raw_score, int | float) else None,
        conditions=conditions,
    )


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp (`2026-12-01T00:00:00Z`), or a date; None when unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _exception_rules(spec: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    # Entries of a rule and its own reason: spec.rules (api.policy.ReadinessExceptionSpec),
    # else whichever list of the spec holds such entries.
    for value in (spec.get("rules"), *spec.values()):
        if isinstance(value, list) and any(
            isinstance(item, Mapping) and "rule" in item for item in value
        ):
            return tuple(
                (_text(item.get("rule")), _text(item.get("reason")))
                for item in value
                if isinstance(item, Mapping)
            )
    return ()


def _covers(match: Any) -> str:
    if not isinstance(match, Mapping):
        return ""
    kinds = "/".join(_text(kind) for kind in match.get("kinds") or ()) or "any kind"
    parts = []
    if match.get("names"):
        parts.append(", ".join(_text(name) for name in match["names"]))
    if isinstance(match.get("selector"), Mapping):
        labels = (match["selector"].get("matchLabels") or {}).items()
        parts.append(
            "labels " + ", ".join(f"{k}={v}" for k, v in labels) if labels else "a selector"
        )
    return f"{kinds}: {'; '.join(parts)}" if parts else kinds


def exception_row(body: Mapping[str, Any], now: datetime) -> ExceptionRow:
    """A ReadinessException as the dashboard lists it."""
    metadata = body.get("metadata") or {}
    spec = body.get("spec") or {}
    status = body.get("status") or {}
    expires = parse_time(spec.get("expires"))
    days_left = None if expires is None else (expires - now).total_seconds() / 86400
    state = _text(status.get("phase") or status.get("state"))
    if not state:
        state = "Expired" if days_left is not None and days_left < 0 else "Active"
    return ExceptionRow(
        namespace=_text(metadata.get("namespace")),
        name=_text(metadata.get("name")),
        rules=_exception_rules(spec),
        covers=_covers(spec.get("match")),
        approved_by=_text(spec.get("approvedBy")),
        expires=expires,
        days_left=days_left,
        status=state,
    )


def dashboard(
    run: Run,
    *,
    services: Iterable[Mapping[str, Any]] = (),
    exceptions: Iterable[Mapping[str, Any]] = (),
    now: datetime,
    notes: Iterable[str] = (),
) -> Dashboard:
    """The dashboard's model from the reports (as a run) and the cluster's objects."""
    service_rows = sorted(
        (service_row(body) for body in services),
        key=lambda row: (row.ready == "True", row.namespace, row.name),
    )
    exception_rows = sorted(
        (exception_row(body, now) for body in exceptions),
        key=lambda row: (
            row.expires is None,
            row.expires or now,
            row.namespace,
            row.name,
        ),
    )
    return Dashboard(
        overview=overview(run),
        services=tuple(service_rows),
        exceptions=tuple(exception_rows),
        generated_at=now,
        notes=tuple(notes),
    )
