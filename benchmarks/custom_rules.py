"""Custom rules in CEL (issue 16): what ten of them cost `prodready validate` on the
10,000-workload corpus, per rule; what compiling them costs; and, when `cel-python` is
importable, the engine that was not chosen on the same workloads.

    python -m benchmarks --only custom-rules --no-write

`validate DIR --policy FILE -o json` runs as a process twice over the same corpus: with a
ReadinessPolicy holding the ten rules, and with the same policy without them; the
difference divided by the rules is the cost of one custom rule over the corpus (and per
workload). The rules are the kind a platform team writes: labels, registries, resources,
probes, security context, quantities and regular expressions.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from benchmarks.corpus import Corpus, generate
from benchmarks.measure import Measurement, median, run_measured

CONTAINERS = "object.spec.template.spec.containers"
RULES: tuple[tuple[str, str], ...] = (
    ("owner label", "has(object.metadata.labels) && 'team' in object.metadata.labels"),
    ("approved registry", f"{CONTAINERS}.all(c, c.image.startsWith('registry.example.com/'))"),
    ("pinned tag", f"{CONTAINERS}.all(c, !c.image.endsWith(':latest') && c.image.contains(':'))"),
    (
        "memory request",
        f"{CONTAINERS}.all(c, has(c.resources) && has(c.resources.requests) && "
        "'memory' in c.resources.requests && "
        "quantity(string(c.resources.requests.memory)).compareTo(quantity('32Mi')) >= 0)",
    ),
    ("liveness probe", f"{CONTAINERS}.all(c, has(c.livenessProbe))"),
    (
        "not privileged",
        f"{CONTAINERS}.all(c, !has(c.securityContext) || "
        "!has(c.securityContext.privileged) || !c.securityContext.privileged)",
    ),
    ("replicas", "!has(object.spec.replicas) || object.spec.replicas >= 2"),
    ("name", "object.metadata.name.matches('^[a-z][-a-z0-9]{0,40}$')"),
    (
        "env names",
        f"{CONTAINERS}.all(c, !has(c.env) || c.env.all(e, e.name.matches('^[A-Z_][A-Z0-9_]*$')))",
    ),
    (
        "no host path",
        "!has(object.spec.template.spec.volumes) || "
        "object.spec.template.spec.volumes.all(v, !has(v.hostPath))",
    ),
)


@dataclass
class CustomRulesResult:
    """Validate with and without the custom rules, on one corpus."""

    corpus: Corpus
    rules: int
    without: Measurement
    with_rules: Measurement
    compile_ms: float
    peer_note: str = ""
    problem: str = ""

    @property
    def seconds_per_rule(self) -> float:
        return max(self.with_rules.seconds - self.without.seconds, 0.0) / self.rules

    @property
    def cpu_seconds_per_rule(self) -> float:
        return max(self.with_rules.cpu_seconds - self.without.cpu_seconds, 0.0) / self.rules

    @property
    def microseconds_per_rule_and_workload(self) -> float:
        return self.seconds_per_rule / self.corpus.workloads * 1e6


def policy(with_rules: bool) -> dict[str, Any]:
    """An Audit policy for every workload, with the ten rules or none."""
    spec: dict[str, Any] = {"mode": "Audit"}
    if with_rules:
        spec["customRules"] = [
            {
                "id": f"BENCH-R{index:02d}",
                "title": title,
                "severity": "warning",
                "kinds": ["Deployment", "StatefulSet", "DaemonSet"],
                "expression": expression,
            }
            for index, (title, expression) in enumerate(RULES, start=1)
        ]
    return {
        "apiVersion": "prodready.io/v1alpha1",
        "kind": "ReadinessPolicy",
        "metadata": {"name": "bench"},
        "spec": spec,
    }


def _compile_ms(repeat: int = 20) -> float:
    from prodready.rules.policy import compile_policy

    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        compile_policy(policy(True))
        times.append(time.perf_counter() - started)
    return median(times) * 1000


def _validate_argv(directory: Path, policy_file: Path) -> list[str]:
    argv = [sys.executable, "-m", "prodready", "validate", str(directory)]
    argv += ["--policy", str(policy_file), "-o", "json"]
    help_text = subprocess.run(
        [sys.executable, "-m", "prodready", "validate", "--help"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    if "--jobs" in help_text:
        argv += ["--jobs", "1"]  # one process: its rusage is the whole cost
    return argv


def _workloads(directory: Path, limit: int) -> Iterator[dict[str, Any]]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    count = 0
    for path in sorted(directory.glob("*.yaml")):
        for document in yaml.load_all(path.read_text(), Loader=loader):
            if document and document.get("kind") in ("Deployment", "StatefulSet"):
                yield document
                count += 1
                if count >= limit:
                    return


def _peer_note(directory: Path, sample: int = 500) -> str:
    """The two CEL engines on the same workloads and rules, in this process."""
    try:
        import celpy  # type: ignore[import-not-found, import-untyped, unused-ignore]
    except ImportError:
        return "cel-python not importable: the engine comparison was not run"
    import cel

    from prodready.rules.custom import activation

    objects = list(_workloads(directory, sample))
    expressions = [expression for _, expression in RULES if "quantity(" not in expression]

    def timed(body: Callable[[], None]) -> float:
        started = time.perf_counter()
        body()
        return (time.perf_counter() - started) / len(objects) / len(expressions) * 1e6

    programs = [cel.compile(e) for e in expressions]

    def rust() -> None:
        for obj in objects:
            context = activation(obj, None)
            for program in programs:
                with contextlib.suppress(Exception):  # the same errors in both engines
                    program.execute(context)

    environment = celpy.Environment()
    runners = [environment.program(environment.compile(e)) for e in expressions]

    def python() -> None:
        for obj in objects:
            variables = {"object": celpy.json_to_cel(obj), "namespaceObject": None}
            for runner in runners:
                with contextlib.suppress(Exception):
                    runner.evaluate(variables)

    ours, theirs = timed(rust), timed(python)
    return (
        f"{len(expressions)} rules on {len(objects)} workloads: common-expression-language "
        f"{ours:.0f} µs per rule and workload, cel-python {theirs:.0f} µs ({theirs / ours:.1f}x)"
    )


def run(log: Callable[[str], None], workloads: int = 10_000, timeout: float = 900) -> Any:
    """Generate the corpus, run validate with and without the rules, return the figures."""
    with tempfile.TemporaryDirectory(prefix="prodready-bench-custom-") as temporary:
        root = Path(temporary)
        corpus = generate(root / "corpus", workloads)
        files = {}
        for name, with_rules in (("without", False), ("with", True)):
            files[name] = root / f"policy-{name}.yaml"
            files[name].write_text(yaml.safe_dump(policy(with_rules)))
        measured: dict[str, Measurement] = {}
        problem = ""
        for name in ("without", "with"):
            log(f"custom rules: validate {workloads:,} workloads, policy {name} the rules")
            result = run_measured(
                _validate_argv(corpus.directory, files[name]),
                stdout=root / f"{name}.json",
                timeout=timeout,
            )
            if result.exit_code not in (0, 1):
                problem = f"validate ({name}) exited {result.exit_code}: {result.stderr_tail}"
            measured[name] = result
        outcome = CustomRulesResult(
            corpus=corpus,
            rules=len(RULES),
            without=measured["without"],
            with_rules=measured["with"],
            compile_ms=_compile_ms(),
            peer_note=_peer_note(corpus.directory),
            problem=problem,
        )
    log(
        f"  {outcome.seconds_per_rule:.2f} s per custom rule over the corpus "
        f"({outcome.microseconds_per_rule_and_workload:.0f} µs per workload); "
        f"compiling {len(RULES)} rules {outcome.compile_ms:.1f} ms; {outcome.peer_note}"
    )
    return outcome


def rows(result: CustomRulesResult) -> list[tuple[str, str, str, str, str, str]]:
    """The summary table's rows: (measure, prodready, against, ratio, target, met)."""
    workloads = f"{result.corpus.workloads:,} workloads"
    return [
        (
            f"validate {workloads} with {result.rules} custom rules, s per custom rule",
            f"{result.seconds_per_rule:.2f}",
            f"without them {result.without.seconds:.1f} s, with {result.with_rules.seconds:.1f} s",
            f"{result.microseconds_per_rule_and_workload:.0f} µs per workload",
            "",
            "—" if not result.problem else "no",
        ),
        (
            f"compile {result.rules} custom rules (policy load), ms",
            f"{result.compile_ms:.1f}",
            result.peer_note,
            "",
            "",
            "—",
        ),
    ]


def as_dict(result: CustomRulesResult) -> dict[str, Any]:
    """Every figure, as plain data."""
    return {
        "workloads": result.corpus.workloads,
        "objects": result.corpus.objects,
        "rules": result.rules,
        "seconds_without": result.without.seconds,
        "seconds_with": result.with_rules.seconds,
        "cpu_seconds_without": result.without.cpu_seconds,
        "cpu_seconds_with": result.with_rules.cpu_seconds,
        "seconds_per_rule": result.seconds_per_rule,
        "cpu_seconds_per_rule": result.cpu_seconds_per_rule,
        "microseconds_per_rule_and_workload": result.microseconds_per_rule_and_workload,
        "compile_ms": result.compile_ms,
        "peer_note": result.peer_note,
        "problem": result.problem,
    }
