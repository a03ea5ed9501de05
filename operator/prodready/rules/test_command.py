"""`prodready test DIR`: a policy's expected results, checked in CI (the shape of `kyverno test`).

    prodready test examples/custom-rules
    prodready test policies/ --file prodready-test.yaml

A test directory holds `prodready-test.yaml` (the name `--file` gives):

```yaml
name: acme custom rules          # optional; shown in the output
policies: [policy.yaml]          # ReadinessPolicy / ReadinessException files (optional)
resources: [workloads.yaml]      # manifests: files or directories, as `validate` reads them
environment: prod                # optional: the default for workloads that declare none
now: "2026-06-01T00:00:00Z"      # optional: the time exceptions are judged at
results:
  - rule: ACME-OWN-001           # a checklist rule or a custom rule of the policies
    kind: Deployment             # optional: only workloads of this kind
    resources: [checkout, shop/legacy-cart]   # name or namespace/name
    result: pass                 # pass | fail | warn | skip
```

Paths are relative to the test file. Each workload and rule is one case: its result is
`fail` if any finding of the rule on it fails, else `warn`, else `pass` if any passes, else
`skip` (exempted, excepted, or the rule does not apply to it — as `kyverno test` reports a
rule that did not match). The same engine as `validate` decides, with the same policies.

Exit codes as `validate`: 0 every case as expected, 1 a case is not, 2 a usage or input
error (a missing file, a field that is not valid, a resource or rule the input does not
hold), with a message naming the file and the field.
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal, TextIO

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from prodready.rules.config import MAX_CONFIG_BYTES
from prodready.rules.context import ObjectRole, classify
from prodready.rules.engine import evaluate
from prodready.rules.loader import load_inputs
from prodready.rules.model import Environment, Finding, ObjectReport, Result
from prodready.rules.policy import PolicyError, PolicySet, policy_set_from_objects
from prodready.rules.registry import RULES_BY_ID

EXIT_OK = 0
EXIT_MISMATCH = 1
EXIT_ERROR = 2
TEST_FILE = "prodready-test.yaml"

ExpectedResult = Literal["pass", "fail", "warn", "skip"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExpectedResults(_Model):
    """One rule's expected result on the named workloads."""

    rule: str = Field(min_length=1, max_length=24)
    kind: str | None = Field(None, min_length=1, max_length=63)
    resources: list[Annotated[str, Field(min_length=1, max_length=317)]] = Field(min_length=1)
    result: ExpectedResult


class TestFile(_Model):
    """`prodready-test.yaml`."""

    name: str | None = Field(None, max_length=256)
    policies: list[Annotated[str, Field(min_length=1)]] = []
    resources: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1)
    environment: Environment | None = None
    now: datetime | None = None
    results: list[ExpectedResults] = Field(min_length=1)


class TestError(ValueError):
    """The test cannot run; the message names the file and the field."""


@dataclass(frozen=True, slots=True)
class Case:
    """One workload and rule: what the test expects and what the engine found."""

    rule: str
    workload: str
    expected: str
    actual: str
    detail: str

    @property
    def ok(self) -> bool:
        """True when the result is the expected one."""
        return self.expected == self.actual


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`prodready test` arguments."""
    parser.add_argument(
        "paths",
        nargs="+",
        metavar="DIR",
        help=f"a directory holding {TEST_FILE} (or the test file itself); repeatable",
    )
    parser.add_argument(
        "--file",
        default=TEST_FILE,
        metavar="NAME",
        help=f"the test file's name in each directory (default: {TEST_FILE})",
    )
    parser.add_argument(
        "--show-passed",
        action="store_true",
        help="print every case, not only the ones whose result is not the expected one",
    )


def _read_test_file(path: Path) -> TestFile:
    import yaml

    from prodready.api.parse import format_path

    try:
        raw = path.read_bytes()[: MAX_CONFIG_BYTES + 1]
    except OSError as error:
        raise TestError(f"{path}: cannot read the test file: {error.strerror}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise TestError(f"{path}: the test file is larger than {MAX_CONFIG_BYTES} bytes")
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as error:
        raise TestError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise TestError(f"{path}: the test file must be a mapping with resources and results")
    try:
        return TestFile.model_validate(data)
    except ValidationError as error:
        lines = [f"{path}: invalid test file:"]
        for item in error.errors(include_url=False, include_input=False):
            lines.append(f"  {format_path(item['loc'])}: {item['msg']}")
        raise TestError("\n".join(lines)) from None


def _load(paths: Iterable[str], base: Path, field: str) -> list[dict[str, Any]]:
    resolved = []
    for index, relative in enumerate(paths):
        target = base / relative
        if not target.exists():
            raise TestError(f"{field}[{index}]: {target} does not exist")
        resolved.append(str(target))
    loaded = load_inputs(resolved, io.BytesIO())
    if loaded.errors:
        raise TestError("\n".join(f"{field}: {error}" for error in loaded.errors))
    return [item.obj for item in loaded.objects]


def _policies(spec: TestFile, base: Path) -> PolicySet | None:
    if not spec.policies:
        return None
    objects = _load(spec.policies, base, "policies")
    try:
        return policy_set_from_objects(objects, source="policies")
    except PolicyError as error:
        raise TestError(str(error)) from None


def _aggregate(findings: list[Finding], report: ObjectReport) -> tuple[str, str]:
    """(result, the message that decided it) of one rule's findings on one workload."""
    for result in (Result.FAIL, Result.WARN, Result.PASS, Result.SKIP):
        found = next((f for f in findings if f.result is result), None)
        if found is not None:
            return result.value, found.message
    return (
        Result.SKIP.value,
        f"the rule does not apply to this workload, for which {report.policy_source} "
        f"decides ({report.mode.value})",
    )


def _is_workload(report: ObjectReport) -> bool:
    return classify({"kind": report.object.kind}) is not ObjectRole.CONTEXT


def _matches(report: ObjectReport, name: str, kind: str | None) -> bool:
    ref = report.object
    if kind is not None and ref.kind != kind:
        return False
    if "/" in name:
        namespace, _, bare = name.partition("/")
        return ref.name == bare and (ref.namespace or "default") == namespace
    return ref.name == name


def run_test(path: Path) -> tuple[str, list[Case]]:
    """Run one test file; (its title, its cases). Raises `TestError`."""
    spec = _read_test_file(path)
    base = path.parent
    policies = _policies(spec, base)
    objects = _load(spec.resources, base, "resources")
    known = set(RULES_BY_ID) | (policies.custom_rule_ids if policies is not None else set())
    reports = evaluate(
        objects,
        policies=policies,
        now=spec.now,
        environment=spec.environment.value if spec.environment else None,
    )
    cases: list[Case] = []
    for index, expected in enumerate(spec.results):
        field = f"results[{index}]"
        if expected.rule not in known:
            raise TestError(
                f"{path}: {field}.rule: unknown rule ID {expected.rule} (neither a checklist "
                "rule nor a customRules ID of the test's policies)"
            )
        for position, name in enumerate(expected.resources):
            matched = [r for r in reports if _matches(r, name, expected.kind)]
            if len(matched) > 1:
                # A Deployment and its Service share a name: the workload is meant.
                matched = [r for r in matched if _is_workload(r)] or matched
            where = f"{path}: {field}.resources[{position}]"
            if not matched:
                kind = f"{expected.kind} " if expected.kind else ""
                raise TestError(f"{where}: no workload {kind}{name} in the resources")
            if len(matched) > 1:
                raise TestError(
                    f"{where}: {name} names {len(matched)} workloads; give namespace/name or a kind"
                )
            report = matched[0]
            findings = [f for f in report.findings if f.rule_id == expected.rule]
            actual, detail = _aggregate(findings, report)
            cases.append(
                Case(expected.rule, report.object.display(), expected.result, actual, detail)
            )
    return spec.name or str(path), cases


def _test_file(raw: str, name: str) -> Path:
    path = Path(raw)
    if path.is_dir():
        path = path / name
    if not path.is_file():
        raise TestError(f"{raw}: no test file {name} (give a directory holding one, or the file)")
    return path


def run(args: argparse.Namespace) -> int:
    """Run `prodready test`; returns the exit code."""
    out: TextIO = sys.stdout
    err: TextIO = sys.stderr
    total = mismatched = 0
    for raw in args.paths:
        try:
            title, cases = run_test(_test_file(raw, args.file))
        except TestError as error:
            print(f"error: {error}", file=err)
            return EXIT_ERROR
        print(title, file=out)
        for case in cases:
            total += 1
            mismatched += not case.ok
            if case.ok and not args.show_passed:
                continue
            verdict = "ok  " if case.ok else "FAIL"
            line = f"  {verdict}  {case.rule}  {case.workload}: "
            if case.ok:
                line += case.actual
            else:
                line += f"expected {case.expected}, got {case.actual} ({case.detail})"
            print(line, file=out)
    print(
        f"{total} case(s): {total - mismatched} as expected, {mismatched} not",
        file=out,
    )
    return EXIT_MISMATCH if mismatched else EXIT_OK
