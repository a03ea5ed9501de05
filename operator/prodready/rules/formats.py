"""`prodready validate` output: table, JSON, SARIF 2.1.0, JUnit XML and AdmissionReviews.

All formats render one `Run` (the reports, where each object came from, input errors) and
return text; only the command decides where it goes.

JSON (`-o json`), a stable shape — fields are only ever added:

```json
{
  "schemaVersion": 1,
  "tool": {"name": "prodready", "version": "0.1.0"},
  "summary": {"objects": 2, "compliant": 1, "pass": 40, "fail": 2, "warn": 5, "skip": 1,
              "score": 87.5, "failOn": "error", "failed": true},
  "objects": [{
    "object": {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "shop", "name": "api"},
    "source": {"file": "deploy/api.yaml", "line": 1},
    "environment": "prod", "environmentSource": "label",
    "compliant": false, "score": 71.4, "counts": {"pass": 20, "fail": 1, "warn": 3, "skip": 0},
    "findings": [{"rule": "PR-HC-001", "title": "...", "severity": "error", "result": "fail",
                  "object": {...}, "container": "app", "path": "spec.template...",
                  "message": "...", "fix": "...", "patch": [{"op": "add", ...}] | null}]
  }],
  "errors": [{"file": "broken.yaml", "line": 3, "message": "invalid YAML: ..."}]
}
```
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import prodready
from prodready.rules.admission import to_admission_response
from prodready.rules.context import EXEMPT_KEY
from prodready.rules.loader import STDIN_NAME, InputError, LoadedObject
from prodready.rules.model import (
    Counts,
    Finding,
    ObjectReport,
    Result,
    Severity,
    score,
    score_weights,
    weighted_score,
)
from prodready.rules.registry import RULES
from prodready.rules.secrets import secret_kind

if TYPE_CHECKING:
    from prodready.rules.locate import Locator

TOOL_NAME = "prodready"
JSON_SCHEMA_VERSION = 1
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
FINGERPRINT_KEY = "prodready/v1"
# Where each rule is documented: the catalogue, one heading per rule ID.
RULES_DOC_URL = "https://github.com/prodready/prodready/blob/main/docs/rules.md"
# SARIF results that carry a fix, at most: each costs a pure-Python ruamel.yaml round trip
# of its document; `prodready fix` applies any number.
MAX_SARIF_FIXES = 100
# Rules whose failure means the object holds a secret value in plain sight.
_SECRET_RULES = frozenset({"PR-LG-003", "PR-CF-001", "PR-CF-004"})
_UID_NAMESPACE = "5f1c4f52-7a0e-4c55-9a3b-6b2f0c7a9e10"


@dataclass(frozen=True, slots=True, kw_only=True)
class Totals:
    """What a run's summary says, added up report by report: the totals of the parts of a
    run (each process's share of its objects) add up to the run's."""

    objects: int = 0
    compliant: int = 0
    counts: Counts = field(default_factory=Counts)
    # (passed weight, total weight) of every finding (`prodready.rules.model.score_weights`).
    weights: tuple[int, int] = (0, 0)
    failed: bool = False

    def __add__(self, other: Totals) -> Totals:
        return Totals(
            objects=self.objects + other.objects,
            compliant=self.compliant + other.compliant,
            counts=self.counts + other.counts,
            weights=(self.weights[0] + other.weights[0], self.weights[1] + other.weights[1]),
            failed=self.failed or other.failed,
        )

    @property
    def score(self) -> float:
        """The score over every finding (see `prodready.rules.model.score`)."""
        return weighted_score(*self.weights)


@dataclass(slots=True)
class Run:
    """One `prodready validate` run: reports, their sources, input errors, the fail-on level."""

    reports: list[ObjectReport]
    sources: list[LoadedObject]
    errors: list[InputError] = field(default_factory=list)
    fail_on: Severity = Severity.ERROR
    # Finds a finding's field in its file (SARIF regions and fixes); None: document lines.
    locator: Locator | None = None

    def source_of(self, report: ObjectReport) -> LoadedObject:
        """Where the report's object was written."""
        return self.sources[report.input_index]

    @property
    def counts(self) -> Counts:
        """Counts over every report."""
        total = Counts()
        for report in self.reports:
            total = total + report.counts
        return total

    @property
    def score(self) -> float:
        """The score over every finding of the run (see `prodready.rules.model.score`)."""
        return score([f for report in self.reports for f in report.findings])

    def failing(self, finding: Finding) -> bool:
        """Whether `finding` fails the run at the `--fail-on` level."""
        if self.fail_on is Severity.WARNING:
            return finding.failed
        return finding.result is Result.FAIL

    @property
    def failed(self) -> bool:
        """True when any finding fails at the `--fail-on` level."""
        return any(self.failing(f) for report in self.reports for f in report.findings)

    @property
    def totals(self) -> Totals:
        """The summary's figures over every report."""
        return Totals(
            objects=len(self.reports),
            compliant=sum(1 for r in self.reports if r.compliant),
            counts=self.counts,
            weights=score_weights(f for report in self.reports for f in report.findings),
            failed=self.failed,
        )


def _dumps(document: object) -> str:
    # Compact on purpose: an indented dump takes Python's slow encoder path, which costs
    # more than checking the objects on large inputs. Pipe through `jq` to read it.
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")) + "\n"


def summary_line(run: Run) -> str:
    """`N objects: … passed, … failed, … warnings, … skipped; score …%; … compliant`."""
    return summary_text(run.totals, run.errors)


def summary_text(totals: Totals, errors: list[InputError]) -> str:
    """`summary_line` of a run's totals and input errors."""
    counts = totals.counts
    compliant = totals.compliant
    objects = totals.objects
    line = (
        f"{objects} object{'s' if objects != 1 else ''} checked: {counts.passed} passed, "
        f"{counts.failed} failed, {counts.warned} warnings, {counts.skipped} skipped; "
        f"score {totals.score:g}%; {compliant} of {objects} compliant"
    )
    if errors:
        line += f"; {len(errors)} input error{'s' if len(errors) != 1 else ''}"
    return line


def _location(source: LoadedObject) -> str:
    return f"{source.file}:{source.line}"


# ---------------------------------------------------------------------------- table

_COLOURS = {
    Result.FAIL: "\033[31m",
    Result.WARN: "\033[33m",
    Result.SKIP: "\033[36m",
    Result.PASS: "\033[32m",
}
_BOLD = "\033[1m"
_DIM = "\033[2m"
_RESET = "\033[0m"


def render_table(run: Run, *, colour: bool, show_passed: bool) -> str:
    """Findings grouped by object; failures and skips only unless `show_passed`."""
    return "\n".join(
        table_piece(run, report, colour=colour, show_passed=show_passed) for report in run.reports
    )


def table_piece(run: Run, report: ObjectReport, *, colour: bool, show_passed: bool) -> str:
    """One object's lines of the table (`render_table` joins them with newlines), so a run
    split over processes renders the same text piece by piece."""

    def paint(text: str, code: str) -> str:
        return f"{code}{text}{_RESET}" if colour else text

    lines: list[str] = []
    status = "compliant" if report.compliant else "NOT COMPLIANT"
    header = (
        f"{report.object.display()}  [{report.environment.value}, score {report.score:g}%, "
        f"{status}]  {_location(run.source_of(report))}"
    )
    lines.append(paint(header, _BOLD))
    shown = [f for f in report.findings if show_passed or f.result is not Result.PASS]
    if not shown:
        lines.append(f"  all {report.counts.passed} checks passed")
    for finding in shown:
        label = paint(f"{finding.result.value.upper():4}", _COLOURS[finding.result])
        where = finding.path
        if finding.object != report.object:
            where = f"{finding.object.kind} {finding.object.name}: {where}"
        lines.append(f"  {label}  {finding.rule_id}  {finding.message}")
        lines.append(paint(f"              at {where}", _DIM))
        if finding.failed:
            lines.append(paint(f"              fix: {finding.fix}", _DIM))
    lines.append("")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- json


def _source_dict(source: LoadedObject) -> dict[str, Any]:
    return {"file": source.file, "line": source.line}


def summary_dict(totals: Totals, fail_on: Severity) -> dict[str, Any]:
    """The JSON document's `summary`."""
    return {
        "objects": totals.objects,
        "compliant": totals.compliant,
        **totals.counts.as_dict(),
        "score": totals.score,
        "failOn": fail_on.value,
        "failed": totals.failed,
    }


def report_dict(run: Run, report: ObjectReport) -> dict[str, Any]:
    """One entry of the JSON document's `objects`."""
    return {
        "object": report.object.as_dict(),
        "source": _source_dict(run.source_of(report)),
        "environment": report.environment.value,
        "environmentSource": report.environment_source,
        "compliant": report.compliant,
        "score": report.score,
        "counts": report.counts.as_dict(),
        "findings": [f.as_dict() for f in report.findings],
    }


def run_dict(run: Run) -> dict[str, Any]:
    """The JSON document (see the module docstring)."""
    return {
        "schemaVersion": JSON_SCHEMA_VERSION,
        "tool": {"name": TOOL_NAME, "version": prodready.__version__},
        "summary": summary_dict(run.totals, run.fail_on),
        "objects": [report_dict(run, report) for report in run.reports],
        "errors": _errors_list(run.errors),
    }


def _errors_list(errors: list[InputError]) -> list[dict[str, Any]]:
    return [{"file": e.file, "line": e.line, "message": e.message} for e in errors]


def json_piece(run: Run, report: ObjectReport) -> str:
    """One entry of `objects` as the compact JSON `render_json` writes it."""
    return json.dumps(report_dict(run, report), ensure_ascii=False, separators=(",", ":"))


def json_chunks(
    summary: dict[str, Any], objects: Iterable[str], errors: list[InputError]
) -> Iterator[str]:
    """The JSON document, text piece by text piece: byte for byte `_dumps(run_dict(run))`,
    without holding the whole document (nor its dicts) in memory at once. `objects` is the
    text of the `objects` entries joined by commas, in pieces cut anywhere."""
    head = {
        "schemaVersion": JSON_SCHEMA_VERSION,
        "tool": {"name": TOOL_NAME, "version": prodready.__version__},
        "summary": summary,
    }
    yield _dumps(head)[:-2] + ',"objects":['
    yield from objects
    yield '],"errors":' + _dumps(_errors_list(errors))[:-1] + "}\n"


def joined(pieces: Iterable[str], separator: str) -> Iterator[str]:
    """`separator.join(pieces)`, piece by piece."""
    for position, piece in enumerate(pieces):
        yield piece if position == 0 else separator + piece


def iter_json(run: Run) -> Iterator[str]:
    """`-o json`, streamed (see `json_chunks`)."""
    return json_chunks(
        summary_dict(run.totals, run.fail_on),
        joined((json_piece(run, report) for report in run.reports), ","),
        run.errors,
    )


def render_json(run: Run) -> str:
    """`-o json`."""
    return "".join(iter_json(run))


# ---------------------------------------------------------------------------- sarif


def artifact_uri(file: str) -> str:
    """A relative URI for files under the working directory (what code scanning expects)."""
    if file == STDIN_NAME:
        return "stdin"
    path = Path(file)
    if path.is_absolute():
        try:
            path = path.relative_to(Path.cwd())
        except ValueError:
            return path.as_uri()
    return quote(path.as_posix())


def rule_name(title: str) -> str:
    """A rule's title as an identifier (SARIF `name`): `Liveness probe set` → `LivenessProbeSet`."""
    name = "".join(word[0].upper() + word[1:] for word in re.findall(r"[A-Za-z0-9]+", title))
    return name if name[:1].isalpha() else f"Rule{name}"


def rule_help_uri(rule_id: str) -> str:
    """Where a rule is documented."""
    return f"{RULES_DOC_URL}#{rule_id.lower()}"


def _sarif_rule(rule_index: int) -> dict[str, Any]:
    rule = RULES[rule_index]
    return {
        "id": rule.id,
        "name": rule_name(rule.title),
        "shortDescription": {"text": rule.title},
        "fullDescription": {"text": rule.why},
        "help": {
            "text": f"{rule.why} Fix: {rule.fix}",
            "markdown": f"{rule.why}\n\n**Fix:** {rule.fix}\n\nSeed section: {rule.section}.",
        },
        "helpUri": rule_help_uri(rule.id),
        "defaultConfiguration": {"level": rule.severity.value},
        "properties": {"tags": ["kubernetes", "production-readiness"], "section": rule.section},
    }


def fingerprint(finding: Finding) -> str:
    """A stable identity for a finding across runs, for code scanning's alert tracking."""
    import hashlib  # SARIF only, like uuid and xml below: a JSON or table run needs none

    ref = finding.object
    key = "|".join(
        (finding.rule_id, ref.kind, ref.namespace or "", ref.name, finding.container or "")
    )
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def _region(run: Run, report: ObjectReport, finding: Finding) -> dict[str, int]:
    source = run.source_of(report)
    if run.locator is not None and finding.object == report.object:
        found = run.locator.region(source, finding.path)
        if found is not None:
            return {"startLine": found[0], "startColumn": found[1]}
    return {"startLine": source.line}


def _text_region(text: str, start: int, end: int) -> dict[str, int]:
    """A SARIF region of `text[start:end]`: lines, columns and character offsets."""

    def position(offset: int) -> tuple[int, int]:
        line_start = text.rfind("\n", 0, offset) + 1
        return text.count("\n", 0, offset) + 1, offset - line_start + 1

    start_line, start_column = position(start)
    end_line, end_column = position(end)
    return {
        "startLine": start_line,
        "startColumn": start_column,
        "endLine": end_line,
        "endColumn": end_column,
        "charOffset": start,
        "charLength": end - start,
    }


def _common_prefix(a: str, b: str) -> int:
    """The length of the longest common prefix, by bisection on slices (compared in C)."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        middle = (low + high + 1) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle - 1
    return low


_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _flagged_values(report: ObjectReport, obj: object) -> list[str]:
    """The literal values the secret rules flagged in `obj`, found by their findings' paths."""
    values = []
    for finding in report.findings:
        if finding.rule_id not in _SECRET_RULES or not finding.failed:
            continue
        node = obj
        for key, index in _PATH_PART.findall(finding.path):
            if index:
                node = (
                    node[int(index)] if isinstance(node, list) and int(index) < len(node) else None
                )
            else:
                node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, str) and node:
            values.append(node)
    return values


def _sarif_fix(run: Run, report: ObjectReport, finding: Finding) -> dict[str, Any] | None:
    """The finding's patch as a SARIF fix: one replacement in its file, or None."""
    source = run.source_of(report)
    if (
        run.locator is None
        or not finding.patch
        or not finding.failed
        or finding.object != report.object
        or source.rendered_by is not None
        or source.file == STDIN_NAME
        or source.file.lower().endswith(".json")
    ):
        return None
    data = run.locator.texts.get(source.file)
    if data is None:
        return None
    from prodready.rules.fixes import FixTarget, plan_file  # ruamel.yaml only when needed

    text = data.decode("utf-8-sig")
    target = FixTarget(line=source.line, object=report.object, findings=(finding,))
    crlf = "\r\n" in text  # ruamel.yaml writes \n; the file keeps its own line ends
    plan = plan_file(text.replace("\r\n", "\n") if crlf else text, [target], check_layout=False)
    if not plan.fixed or not plan.changed:
        return None
    new = plan.text.replace("\n", "\r\n") if crlf else plan.text
    start = _common_prefix(text, new)
    tail = _common_prefix(text[start:][::-1], new[start:][::-1])
    end_old, end_new = len(text) - tail, len(new) - tail
    # A replacement re-writes whole lines of the user's file: never one that carries a
    # secret the rules found in this object, which the report must not repeat (issue 17).
    inserted = new[start:end_new]
    if secret_kind(inserted) is not None or any(
        value in inserted for value in _flagged_values(report, source.obj)
    ):
        return None
    return {
        "description": {"text": finding.fix},
        "artifactChanges": [
            {
                "artifactLocation": {"uri": artifact_uri(source.file)},
                "replacements": [
                    {
                        "deletedRegion": _text_region(text, start, end_old),
                        "insertedContent": {"text": new[start:end_new]},
                    }
                ],
            }
        ],
    }


def _sarif_result(
    run: Run,
    report: ObjectReport,
    finding: Finding,
    index: dict[str, int],
    *,
    with_fix: bool = False,
) -> dict[str, Any]:
    source = run.source_of(report)
    ref = finding.object
    qualified = "/".join(p for p in (ref.namespace, ref.kind, ref.name) if p)
    result: dict[str, Any] = {
        "ruleId": finding.rule_id,
        "ruleIndex": index[finding.rule_id],
        "level": "error" if finding.severity is Severity.ERROR else "warning",
        "message": {"text": f"{ref.display()}: {finding.message} (at {finding.path})"},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": artifact_uri(source.file)},
                    "region": _region(run, report, finding),
                },
                "logicalLocations": [
                    {"name": ref.name, "fullyQualifiedName": qualified, "kind": "resource"}
                ],
            }
        ],
        "partialFingerprints": {FINGERPRINT_KEY: fingerprint(finding)},
    }
    fix = _sarif_fix(run, report, finding) if with_fix else None
    if fix is not None:
        result["fixes"] = [fix]
    if finding.result is Result.SKIP:
        in_source = finding.path.endswith(EXEMPT_KEY)
        result["suppressions"] = [
            {"kind": "inSource" if in_source else "external", "justification": finding.message}
        ]
    return result


def _custom_sarif_rule(finding: Finding) -> dict[str, Any]:
    """A descriptor for a policy's own rule (customRules), from what its finding carries."""
    return {
        "id": finding.rule_id,
        "name": rule_name(finding.title),
        "shortDescription": {"text": finding.title},
        "fullDescription": {"text": finding.title},
        "help": {"text": f"Fix: {finding.fix}", "markdown": f"**Fix:** {finding.fix}"},
        "defaultConfiguration": {"level": finding.severity.value},
        "properties": {"tags": ["kubernetes", "production-readiness", "custom"]},
    }


def sarif_dict(run: Run) -> dict[str, Any]:
    """The SARIF 2.1.0 log: every rule as a descriptor; failures and skips as results."""
    index = {rule.id: position for position, rule in enumerate(RULES)}
    custom: list[dict[str, Any]] = []
    for report in run.reports:
        for finding in report.findings:
            if finding.rule_id not in index:
                index[finding.rule_id] = len(RULES) + len(custom)
                custom.append(_custom_sarif_rule(finding))
    results: list[dict[str, Any]] = []
    fixes = 0
    for report in run.reports:
        for finding in report.findings:
            if finding.result is Result.PASS:
                continue
            result = _sarif_result(run, report, finding, index, with_fix=fixes < MAX_SARIF_FIXES)
            fixes += "fixes" in result
            results.append(result)
    notifications = [
        {
            "level": "error",
            "message": {"text": error.message},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": artifact_uri(error.file)},
                        **({"region": {"startLine": error.line}} if error.line else {}),
                    }
                }
            ],
        }
        for error in run.errors
    ]
    return {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": TOOL_NAME,
                        "version": prodready.__version__,
                        "semanticVersion": prodready.__version__,
                        "rules": [*(_sarif_rule(i) for i in range(len(RULES))), *custom],
                    }
                },
                "invocations": [
                    {
                        "executionSuccessful": not run.errors,
                        "toolExecutionNotifications": notifications,
                    }
                ],
                "results": results,
            }
        ],
    }


def render_sarif(run: Run) -> str:
    """`-o sarif`."""
    return _dumps(sarif_dict(run))


# ---------------------------------------------------------------------------- junit


def render_junit(run: Run) -> str:
    """`-o junit`: a testsuite per object, a testcase per rule (its worst finding wins).

    A failing error rule is a `<failure>`; a failing warning rule is one too when
    `--fail-on warning`, otherwise a passing testcase that says so in `<system-out>`; an
    exemption is `<skipped>`.
    """
    import xml.etree.ElementTree as ET

    root = ET.Element("testsuites", name=TOOL_NAME)
    total = failures = skipped = 0
    for report in run.reports:
        by_rule: dict[str, list[Finding]] = {}
        for finding in report.findings:
            by_rule.setdefault(finding.rule_id, []).append(finding)
        suite = ET.SubElement(root, "testsuite", name=report.object.display())
        suite_failures = suite_skipped = 0
        for rule_id, findings in by_rule.items():
            case = ET.SubElement(
                suite,
                "testcase",
                classname=report.object.display().replace(" ", ".").replace("/", "."),
                name=f"{rule_id} {findings[0].title}",
                file=run.source_of(report).file,
                line=str(run.source_of(report).line),
            )
            failed = [f for f in findings if run.failing(f)]
            warnings = [f for f in findings if f.result is Result.WARN and not run.failing(f)]
            if failed:
                suite_failures += 1
                failure = ET.SubElement(
                    case,
                    "failure",
                    type=failed[0].severity.value,
                    message="; ".join(f.message for f in failed),
                )
                failure.text = "\n".join(f"{f.message} (at {f.path})" for f in failed) + (
                    f"\nfix: {failed[0].fix}"
                )
            elif any(f.result is Result.SKIP for f in findings):
                suite_skipped += 1
                ET.SubElement(case, "skipped", message=findings[0].message)
            elif warnings:
                out = ET.SubElement(case, "system-out")
                out.text = "\n".join(f"warning: {f.message} (at {f.path})" for f in warnings)
        suite.set("tests", str(len(by_rule)))
        suite.set("failures", str(suite_failures))
        suite.set("errors", "0")
        suite.set("skipped", str(suite_skipped))
        total += len(by_rule)
        failures += suite_failures
        skipped += suite_skipped
    for error in run.errors:
        suite = ET.SubElement(
            root,
            "testsuite",
            name=f"input {error.file}",
            tests="1",
            failures="0",
            errors="1",
            skipped="0",
        )
        case = ET.SubElement(suite, "testcase", classname="input", name=error.file)
        ET.SubElement(case, "error", message=str(error))
    root.set("tests", str(total + len(run.errors)))
    root.set("failures", str(failures))
    root.set("errors", str(len(run.errors)))
    root.set("skipped", str(skipped))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# ------------------------------------------------------------------------ admission


def admission_uid(report: ObjectReport) -> str:
    """A deterministic request UID for an object (the CLI has no real request)."""
    import uuid

    ref = report.object
    return str(
        uuid.uuid5(
            uuid.UUID(_UID_NAMESPACE),
            f"{ref.kind}/{ref.namespace or ''}/{ref.name}/{report.input_index}",
        )
    )


def render_admission(run: Run, *, enforce: bool) -> str:
    """`-o admission`: a JSON list of AdmissionReviews, one per workload object."""
    reviews = [
        {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": to_admission_response(report, uid=admission_uid(report), enforce=enforce),
        }
        for report in run.reports
    ]
    return _dumps(reviews)
