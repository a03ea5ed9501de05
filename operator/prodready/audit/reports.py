"""Policy reports as plain data: build them from rule reports, compare them, read them back.

Two report APIs exist and both are supported: OpenReports (`openreports.io/v1alpha1`
Report, preferred: where the Policy WG's reports moved) and the older wgpolicyk8s.io
`PolicyReport` (`v1alpha2`, what Policy Reporter and Kyverno long used). Their results
have the same shape; OpenReports adds a report-level `source` and `configuration`.
With both CRDs installed, `auto` writes OpenReports; `PRODREADY_REPORT_API` pins one
(`openreports` or `wgpolicyk8s`: `flavors_for`), for the audit and `prodready report`
alike, so a cluster whose Policy Reporter reads PolicyReports keeps getting them.

One report per workload (`prodready-<kind>-<name>`, scope = the workload), not one per
namespace:

* `kubectl get reports -n shop` lists each workload with its pass/fail/warn counts (the
  CRD's printer columns, and `-o wide` adds the scope's kind and name) — a per-namespace
  report would be one row that says "3 failures somewhere";
* Policy Reporter groups results by resource either way, and this is the shape Kyverno and
  Trivy write, so dashboards built for them work unchanged;
* a change rewrites one small object, not the namespace's whole report, and a report can
  never grow with the namespace (only with one workload's containers);
* the report has an ownerReference to its workload: deleted with it by the garbage
  collector, even when the operator is down.

Every report is bounded anyway: at most `max_results` results and `max_bytes` (1 MiB,
below etcd's 1.5 MiB object limit) of JSON. Failures are kept first (fail, warn, skip,
then pass); the summary always counts every result, and the annotation
`prodready.io/results-omitted` (plus OpenReports' `configuration.limits.maxResults`) says
that some were left out.

Severities: the engine's `error` is `high`, `warning` is `medium` (the CRDs' enum has no
"error"/"warning"); the engine's own severity is kept in the result's properties.
`scored` is true for error-severity rules only, matching the CRDs' definition of `warn`
("non-scored policies whose requirements were not met").
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from prodready import rules
from prodready.api.labels import DOMAIN, LABEL_MANAGED_BY, MANAGED_BY
from prodready.api.resource import Resource
from prodready.kube.events import object_reference
from prodready.rules.model import score as checklist_score

__all__ = [
    "FLAVORS",
    "OPENREPORTS",
    "POLICY_REPORT",
    "REPORT_CRD_NAMES",
    "REPORT_MAX_BYTES",
    "ReportFlavor",
    "build_report",
    "content_digest",
    "failing_rules",
    "flavors_for",
    "parse_report",
    "report_name",
    "scope_of",
    "unavailable_message",
]

SOURCE: Final = "prodready"
REPORT_MAX_BYTES: Final = 1024 * 1024
MESSAGE_MAX_CHARS: Final = 1024
NAME_MAX: Final = 253
NAME_PREFIX: Final = "prodready"

ANNOTATION_ENVIRONMENT: Final = f"{DOMAIN}/environment"
ANNOTATION_ENVIRONMENT_SOURCE: Final = f"{DOMAIN}/environment-source"
ANNOTATION_SCORE: Final = f"{DOMAIN}/score"
ANNOTATION_OMITTED: Final = f"{DOMAIN}/results-omitted"
SELECTOR: Final = f"{LABEL_MANAGED_BY}={MANAGED_BY}"

SEVERITY_NAMES: Final = {rules.Severity.ERROR: "high", rules.Severity.WARNING: "medium"}
_ENGINE_SEVERITY: Final = {"critical": "error", "high": "error", "medium": "warning"}
# Where failures go first when a report must be cut.
_PRIORITY: Final = {"fail": 0, "warn": 1, "error": 2, "skip": 3, "pass": 4}
CATEGORIES: Final = {
    "HC": "Health checks",
    "GS": "Graceful shutdown",
    "LG": "Structured logging",
    "ER": "Error handling",
    "CF": "Configuration",
    "SC": "Security",
    "MO": "Monitoring",
    "RS": "Resources and availability",
    "EX": "Exemptions",
    "PS": "ProductionService",
}
_INVALID_NAME_CHARACTERS: Final = re.compile(r"[^a-z0-9.-]")


@dataclass(frozen=True)
class ReportFlavor:
    """One of the report APIs: where it lives and which optional fields its schema has."""

    name: str
    resource: Resource
    crd_name: str
    report_level_fields: bool  # `source` and `configuration` at the top (OpenReports)
    api: str  # its name in PRODREADY_REPORT_API


OPENREPORTS: Final = ReportFlavor(
    "OpenReports",
    Resource("openreports.io/v1alpha1", "Report", "reports"),
    "reports.openreports.io",
    report_level_fields=True,
    api="openreports",
)
POLICY_REPORT: Final = ReportFlavor(
    "PolicyReport",
    Resource("wgpolicyk8s.io/v1alpha2", "PolicyReport", "policyreports"),
    "policyreports.wgpolicyk8s.io",
    report_level_fields=False,
    api="wgpolicyk8s",
)
FLAVORS: Final = (OPENREPORTS, POLICY_REPORT)
"""In order of preference: the first one the cluster serves is written."""
REPORT_CRD_NAMES: Final = frozenset(flavor.crd_name for flavor in FLAVORS)
AUTO: Final = "auto"


def flavors_for(api: str = AUTO) -> tuple[ReportFlavor, ...]:
    """The report APIs to look for, in order, under `PRODREADY_REPORT_API=api`.

    `auto`: both, OpenReports first; `openreports` or `wgpolicyk8s`: that one only, so a
    cluster serving both gets the pinned one (and one serving only the other, none).
    """
    if api == AUTO:
        return FLAVORS
    for flavor in FLAVORS:
        if flavor.api == api:
            return (flavor,)
    choices = ", ".join([AUTO, *(flavor.api for flavor in FLAVORS)])
    raise ValueError(f"PRODREADY_REPORT_API: must be one of {choices} (got {api!r})")


def unavailable_message(api: str = AUTO) -> str:
    """Why no report can be read or written: the CRDs that `api` looks for are not served."""
    flavors = flavors_for(api)
    wanted = " nor ".join(f"the {flavor.name} CRD ({flavor.crd_name})" for flavor in flavors)
    if len(flavors) > 1:
        return f"the cluster serves no policy reports: neither {wanted} is installed"
    return (
        f"the cluster serves no policy reports of the pinned API (PRODREADY_REPORT_API="
        f"{api}): {wanted} is not installed"
    )


def report_name(kind: str, name: str) -> str:
    """`prodready-<kind>-<name>`, shortened with a hash suffix when too long for a name."""
    full = f"{NAME_PREFIX}-{kind.lower()}-{name}"
    full = _INVALID_NAME_CHARACTERS.sub("-", full)
    if len(full) <= NAME_MAX:
        return full
    digest = hashlib.sha256(f"{kind}/{name}".encode()).hexdigest()[:10]
    return full[: NAME_MAX - len(digest) - 1].rstrip(".-") + "-" + digest


def category_of(rule_id: str) -> str:
    """The checklist section of a rule ID (`PR-HC-001` → Health checks)."""
    parts = rule_id.split("-")
    return CATEGORIES.get(parts[1], SOURCE) if len(parts) > 2 else SOURCE


def _result(finding: rules.Finding, resource: Mapping[str, str], seconds: int) -> dict[str, Any]:
    properties = {
        "path": finding.path,
        "fix": finding.fix,
        "severity": finding.severity.value,
    }
    if finding.container:
        properties["container"] = finding.container
    message = " ".join(finding.message.split())
    if len(message) > MESSAGE_MAX_CHARS:
        message = message[: MESSAGE_MAX_CHARS - 3].rstrip() + "..."
    return {
        "source": SOURCE,
        "policy": finding.rule_id,
        "rule": finding.title,
        "category": category_of(finding.rule_id),
        "severity": SEVERITY_NAMES[finding.severity],
        "result": finding.result.value,
        "scored": finding.severity is rules.Severity.ERROR,
        "message": message,
        "resources": [dict(resource)],
        "properties": properties,
        "timestamp": {"seconds": seconds, "nanos": 0},
    }


def _size(document: object) -> int:
    return len(json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode())


def build_report(
    flavor: ReportFlavor,
    report: rules.ObjectReport,
    workload: Mapping[str, Any],
    *,
    max_results: int,
    now: float,
    max_bytes: int = REPORT_MAX_BYTES,
) -> dict[str, Any]:
    """The report object for one workload (see the module docstring for its shape)."""
    reference = object_reference(workload)
    seconds = int(now)
    ordered = sorted(report.findings, key=lambda f: _PRIORITY[f.result.value])
    counts = report.counts
    body: dict[str, Any] = {
        "apiVersion": flavor.resource.api_version,
        "kind": flavor.resource.kind,
        "metadata": {
            "name": report_name(reference["kind"], reference["name"]),
            "namespace": reference["namespace"],
            "labels": {LABEL_MANAGED_BY: MANAGED_BY},
            "annotations": {
                ANNOTATION_ENVIRONMENT: report.environment.value,
                ANNOTATION_ENVIRONMENT_SOURCE: report.environment_source,
                ANNOTATION_SCORE: f"{report.score:g}",
            },
        },
        "scope": dict(reference),
        "summary": {
            "pass": counts.passed,
            "fail": counts.failed,
            "warn": counts.warned,
            "error": 0,
            "skip": counts.skipped,
        },
        "results": [],
    }
    if "uid" in reference:
        # Not a controller reference and not blocking: the report follows the workload to
        # the garbage collector, and creating it needs no permission on the owner.
        body["metadata"]["ownerReferences"] = [
            {
                "apiVersion": reference["apiVersion"],
                "kind": reference["kind"],
                "name": reference["name"],
                "uid": reference["uid"],
            }
        ]
    if flavor.report_level_fields:
        body["source"] = SOURCE
        body["configuration"] = {"limits": {"maxResults": max_results}}
    # Room for the omitted-count annotation, which is only known once the results are cut.
    budget = max_bytes - _size(body) - 64
    results: list[dict[str, Any]] = []
    for finding in ordered[:max_results]:
        result = _result(finding, reference, seconds)
        cost = _size(result) + 1
        if cost > budget:
            break
        budget -= cost
        results.append(result)
    body["results"] = results
    omitted = len(ordered) - len(results)
    if omitted:
        body["metadata"]["annotations"][ANNOTATION_OMITTED] = str(omitted)
    return body


def _without_timestamp(result: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in result.items() if key != "timestamp"}


def content_digest(body: Mapping[str, Any]) -> str:
    """A digest of what prodready writes in a report, timestamps left out.

    The same for the object built here and for the object the apiserver returns (which
    adds metadata of its own), so "write only when the content changed" compares live
    reports with desired ones.
    """
    metadata = body.get("metadata") or {}
    labels = metadata.get("labels") or {}
    annotations = metadata.get("annotations") or {}
    content = {
        "labels": {key: labels[key] for key in sorted(labels) if key == LABEL_MANAGED_BY},
        "annotations": {
            key: annotations[key] for key in sorted(annotations) if key.startswith(f"{DOMAIN}/")
        },
        "ownerReferences": [
            {key: reference.get(key) for key in ("apiVersion", "kind", "name", "uid")}
            for reference in metadata.get("ownerReferences") or ()
        ],
        "scope": body.get("scope"),
        "source": body.get("source"),
        "configuration": body.get("configuration"),
        "summary": body.get("summary"),
        "results": [_without_timestamp(result) for result in body.get("results") or ()],
    }
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def failing_rules(body: Mapping[str, Any]) -> frozenset[str]:
    """The error-severity rules a report lists as failing (`result: fail`)."""
    return frozenset(
        str(result.get("policy"))
        for result in body.get("results") or ()
        if result.get("result") == "fail"
    )


def scope_of(body: Mapping[str, Any]) -> tuple[str, str] | None:
    """(kind, name) of the workload a report is about, if it names one."""
    scope = body.get("scope") or {}
    if scope.get("kind") and scope.get("name"):
        return str(scope["kind"]), str(scope["name"])
    return None


def _ref(reference: Mapping[str, Any], namespace: str) -> rules.ObjectRef:
    return rules.ObjectRef(
        api_version=str(reference.get("apiVersion") or ""),
        kind=str(reference.get("kind") or ""),
        namespace=str(reference.get("namespace") or namespace) or None,
        name=str(reference.get("name") or ""),
    )


def _finding(result: Mapping[str, Any], scope: rules.ObjectRef) -> rules.Finding | None:
    try:
        outcome = rules.Result(str(result.get("result")))
    except ValueError:
        return None  # `error` or a value another tool wrote: nothing the engine produces
    properties = result.get("properties") or {}
    severity_name = str(
        properties.get("severity") or _ENGINE_SEVERITY.get(str(result.get("severity")), "warning")
    )
    try:
        severity = rules.Severity(severity_name)
    except ValueError:
        severity = rules.Severity.WARNING
    rule_id = str(result.get("policy") or "")
    rule = rules.RULES_BY_ID.get(rule_id)
    resources = result.get("resources") or ()
    obj = _ref(resources[0], scope.namespace or "") if resources else scope
    return rules.Finding(
        rule_id=rule_id,
        title=rule.title if rule else str(result.get("rule") or rule_id),
        severity=severity,
        result=outcome,
        object=obj,
        container=str(properties["container"]) if properties.get("container") else None,
        path=str(properties.get("path") or ""),
        message=str(result.get("message") or ""),
        fix=str(properties.get("fix") or (rule.fix if rule else "")),
    )


def parse_report(body: Mapping[str, Any], index: int = 0) -> rules.ObjectReport:
    """A report read from the cluster, as the engine's ObjectReport (for the CLI's formats).

    Counts come from the summary, which covers results a capped report left out.
    """
    metadata = body.get("metadata") or {}
    namespace = str(metadata.get("namespace") or "")
    annotations = metadata.get("annotations") or {}
    scope = _ref(body.get("scope") or {"name": metadata.get("name")}, namespace)
    findings = tuple(
        finding
        for result in body.get("results") or ()
        if (finding := _finding(result, scope)) is not None
    )
    summary = body.get("summary") or {}
    counts = rules.Counts(
        passed=int(summary.get("pass") or 0),
        failed=int(summary.get("fail") or 0) + int(summary.get("error") or 0),
        warned=int(summary.get("warn") or 0),
        skipped=int(summary.get("skip") or 0),
    )
    try:
        environment = rules.Environment(str(annotations.get(ANNOTATION_ENVIRONMENT)))
    except ValueError:
        environment = rules.Environment.PROD
    try:
        score = float(annotations[ANNOTATION_SCORE])
    except (KeyError, TypeError, ValueError):
        score = checklist_score(list(findings))
    return rules.ObjectReport(
        object=scope,
        environment=environment,
        environment_source=str(annotations.get(ANNOTATION_ENVIRONMENT_SOURCE) or "report"),
        findings=findings,
        counts=counts,
        score=score,
        compliant=counts.failed == 0,
        input_index=index,
    )
