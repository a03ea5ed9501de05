"""An `ObjectReport` as the `response` of an `admission.k8s.io/v1` AdmissionReview.

The webhook and `prodready validate -o admission` both call `to_admission_response`, so
what CI shows is exactly what the cluster would answer.

The API server caps warnings: each is cut at 256 characters and the whole set at 4 KiB.
Rather than let it cut mid-sentence, warnings are shortened here (each ≤ 256 characters;
the total ≤ 4096 bytes of UTF-8, which is never more than 4096 characters) and, when some
must be left out, the last warning says how many. Only the warnings that can be shown are
ever written out, and a denial lists at most `MAX_DENIAL_FINDINGS_PER_RULE` findings of
each rule within `MAX_DENIAL_CHARS`: the cost of an answer does not grow with the number
of findings (an object over a cap of `prodready.rules.limits` has one anyway).

Admission never denies because of creation order. A failure the object alone cannot fix
— it waits on another object: a ServiceMonitor or PodMonitor (PR-MO-001), a
PrometheusRule (PR-MO-002), a Secret (PR-CF-002), a Service or Ingress (PR-SC-001, and
PR-SC-002's wildcard Ingress), a PodDisruptionBudget or HorizontalPodAutoscaler (PR-RS-002
when the replicas the object declares are enough) — is answered as a warning, even in
enforce mode (`waits_on_other_objects`).
Helm installs a chart's Deployment before its ServiceMonitor, and `kubectl apply -f dir/`
goes in file order: denying the first would make the chart uninstallable. The audit and
the workload's report, which see everything once it exists, still count it as failed.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import Any, Final

from prodready.rules.model import Finding, ObjectReport, Result

MAX_WARNING_CHARS = 256
MAX_WARNINGS_BYTES = 4096
# A denial's message: every failing rule, with its first few fields; `kubectl` prints it
# whole, so it stays a screenful.
MAX_DENIAL_FINDINGS_PER_RULE = 5
MAX_DENIAL_CHARS = 8192
DENIED_CODE = 403
_ELLIPSIS = "..."


CROSS_OBJECT_RULES: Final[Mapping[str, str]] = {
    "PR-MO-001": "a ServiceMonitor, PodMonitor or Service",
    "PR-MO-002": "a PrometheusRule",
    "PR-CF-002": "a Secret",
    "PR-SC-001": "a Service or Ingress",
}
"""Rules whose every failure is about another object (what it waits on, for messages)."""
# PR-RS-002 joins its problems with "; ": the object's own replicas (or a bare Pod's single
# one) are its to fix, a missing or blocking PodDisruptionBudget and an HPA's minReplicas
# are not.
_OWN_REPLICA_PROBLEMS: Final = ("replicas is ", "a bare Pod ")
_INGRESS_PREFIX: Final = "Ingress "
_NOT_RENDERED_RULES: Final = frozenset({"PR-CF-002"})
_RENDERING_KIND: Final = "ProductionService"


def waits_on_other_objects(finding: Finding, *, renders_its_context: bool = False) -> bool:
    """Whether `finding` is one its object alone cannot fix (see the module docstring):
    admission warns about it rather than deny.

    A ProductionService (`renders_its_context`) renders its own Service, ServiceMonitor,
    PrometheusRule and PodDisruptionBudget, and its findings name those children: all of
    them are its own to fix, but for the Secrets it references, which it does not create.
    """
    if renders_its_context:
        return finding.rule_id in _NOT_RENDERED_RULES
    if finding.rule_id in CROSS_OBJECT_RULES:
        return True
    if finding.rule_id == "PR-RS-002":
        problems = finding.message.split("; ")
        return not any(problem.startswith(_OWN_REPLICA_PROBLEMS) for problem in problems)
    if finding.rule_id == "PR-SC-002":
        return finding.message.startswith(_INGRESS_PREFIX)
    return False


def blocking_errors(report: ObjectReport) -> list[Finding]:
    """The error-severity failures that deny admission in enforce mode: those the object
    can fix itself (`waits_on_other_objects`)."""
    rendered = report.object.kind == _RENDERING_KIND
    return [
        f
        for f in report.findings
        if f.result is Result.FAIL and not waits_on_other_objects(f, renders_its_context=rendered)
    ]


def _clean(text: str) -> str:
    # Warnings travel as HTTP Warning headers: keep them on one line.
    return " ".join(text.split())


def _shorten(text: str, limit: int = MAX_WARNING_CHARS) -> str:
    text = _clean(text)
    if len(text) <= limit:
        return text
    return text[: limit - len(_ELLIPSIS)].rstrip() + _ELLIPSIS


def _where(report: ObjectReport, finding: Finding) -> str:
    if finding.object != report.object:
        return f"{finding.object.kind} {finding.object.name} {finding.path}"
    return finding.path


def warning_text(report: ObjectReport, finding: Finding, *, waiting: bool = False) -> str:
    """One finding as a warning line: `PR-ID (severity) message [path]`; `waiting` marks
    an error admitted because it waits on another object (`waits_on_other_objects`)."""
    severity = finding.severity.value
    if waiting:
        severity += ", not denied: waits on another object, the audit checks it"
    return _shorten(f"{finding.rule_id} ({severity}) {finding.message} [{_where(report, finding)}]")


def limit_warnings(lines: Iterable[str], total: int | None = None) -> list[str]:
    """Fit `lines` in the API server's limits; the last line counts what was left out.

    `total` is how many lines `lines` yields (needed only when it is a lazy iterable):
    lines are read and shortened only until the limit is reached, so a report with a
    hundred thousand findings costs no more than one with a hundred.
    """
    if total is None:
        lines = list(lines)
        total = len(lines)
    kept: list[str] = []
    sizes: list[int] = []
    size = 0
    for line in lines:
        text = _shorten(line)
        length = len(text.encode())
        if size + length > MAX_WARNINGS_BYTES:
            break  # no longer prefix fits, with or without the note
        kept.append(text)
        sizes.append(length)
        size += length
    if len(kept) == total:
        return kept
    while kept:
        note = (
            f"{total - len(kept)} more finding(s) left out to fit the API server's warning "
            "limit; run `prodready validate` for the full report"
        )
        if size + len(note.encode()) <= MAX_WARNINGS_BYTES:
            return [*kept, note]
        kept.pop()
        size -= sizes.pop()
    return [f"{total} finding(s) left out; run `prodready validate` for the full report"]


def denial_message(report: ObjectReport, errors: list[Finding]) -> str:
    """The status message of a denial: each failing rule, its first fields and its fix."""
    by_rule: dict[str, list[Finding]] = {}
    for finding in errors:
        by_rule.setdefault(finding.rule_id, []).append(finding)
    parts = []
    for rule_id, findings in by_rule.items():
        shown = findings[:MAX_DENIAL_FINDINGS_PER_RULE]
        details = "; ".join(f"{f.message} [{_where(report, f)}]" for f in shown)
        if len(findings) > len(shown):
            details += f"; and {len(findings) - len(shown)} more"
        parts.append(f"{rule_id} {findings[0].title}: {details}. Fix: {findings[0].fix}")
    message = (
        f"prodready denied {report.object.display()} (environment {report.environment.value}): "
        f"{len(by_rule)} rule(s) failed. " + " | ".join(parts)
    )
    if len(message) > MAX_DENIAL_CHARS:
        message = message[: MAX_DENIAL_CHARS - len(_ELLIPSIS)].rstrip() + _ELLIPSIS
    return message


def to_admission_response(report: ObjectReport, *, uid: str, enforce: bool) -> dict[str, Any]:
    """The AdmissionReview `response` for `report`.

    With `enforce`, a report with an error-severity failure the object itself can fix is
    denied (HTTP 403, the message listing rule IDs, fields and fixes) and its other
    failures are returned as warnings: those waiting on another object (module docstring)
    first, marked so. Without `enforce` everything is allowed and every failure, errors
    first, becomes a warning.
    """
    errors = [f for f in report.findings if f.result is Result.FAIL]
    warned = [f for f in report.findings if f.result is Result.WARN]
    blocking = blocking_errors(report) if enforce else []
    blocked = {id(f) for f in blocking}  # by identity: a hundred thousand findings stay linear
    waiting = [f for f in errors if id(f) not in blocked] if enforce else []
    response: dict[str, Any] = {"uid": uid, "allowed": not blocking}
    if blocking:
        response["status"] = {"code": DENIED_CODE, "message": denial_message(report, blocking)}
    shown = warned if enforce else errors + warned
    lines = itertools.chain(
        (warning_text(report, f, waiting=True) for f in waiting),
        (warning_text(report, f) for f in shown),
    )
    warnings = limit_warnings(lines, len(waiting) + len(shown))
    if warnings:
        response["warnings"] = warnings
    return response
