"""Offline validation throughput: `prodready validate` against kube-score, kube-linter and
Polaris on one generated corpus, each run as its users run it (a process, JSON output).

Every tool reads the same files in the same run. Slow runs are not repeated (a run of
tens of seconds is not noisy enough to need it); fast ones are, and the median counts. A
peer that runs past `peer_timeout` is stopped: its figure is then a bound ("> N s").
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.corpus import Corpus, generate
from benchmarks.measure import Measurement, median, run_measured
from benchmarks.peers import PEERS, Built, build_all

WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod"}
REPEAT_BELOW_SECONDS = 30.0


@dataclass
class ToolResult:
    """All runs of one tool on one corpus."""

    tool: str
    version: str
    runs: list[Measurement] = field(default_factory=list)
    checked: int | None = None  # workloads the tool's report covers, when it says
    problem: str = ""

    @property
    def seconds(self) -> float:
        return median([run.seconds for run in self.runs])

    @property
    def cpu_seconds(self) -> float:
        return median([run.cpu_seconds for run in self.runs])

    @property
    def peak_rss_mib(self) -> float:
        return max(run.peak_rss_mib for run in self.runs)

    @property
    def timed_out(self) -> bool:
        return any(run.timed_out for run in self.runs)


@dataclass
class SizeResult:
    """Every tool on one corpus."""

    corpus: Corpus
    tools: list[ToolResult]
    phases: dict[str, float] = field(default_factory=dict)

    def tool(self, name: str) -> ToolResult | None:
        return next((t for t in self.tools if t.tool == name), None)

    def objects_per_second(self, name: str) -> float:
        tool = self.tool(name)
        return self.corpus.objects / tool.seconds if tool and tool.runs else float("nan")

    def speedup(self, peer: str) -> float:
        """prodready's throughput divided by the peer's (>1: prodready is faster); for a
        peer stopped at the timeout, a lower bound."""
        ours, theirs = self.tool("prodready"), self.tool(peer)
        if not ours or not theirs or not theirs.runs or not ours.runs:
            return float("nan")
        return theirs.seconds / ours.seconds


@dataclass
class ValidateResults:
    """The whole validate benchmark."""

    sizes: list[SizeResult]
    peers: list[Built]


def _prodready_executable() -> str:
    candidate = Path(sys.executable).with_name("prodready")
    return str(candidate) if candidate.exists() else "prodready"


def _count_prodready(path: Path) -> int | None:
    return int(json.loads(path.read_text())["summary"]["objects"])


def _count_kube_score(path: Path) -> int | None:
    data = json.loads(path.read_text())
    return sum(1 for item in data if (item.get("type_meta") or {}).get("kind") in WORKLOAD_KINDS)


def _count_kube_linter(path: Path) -> int | None:
    json.loads(path.read_text())  # it lists failures only: parseable is all we can check
    return None


def _count_polaris(path: Path) -> int | None:
    data = json.loads(path.read_text())
    return sum(1 for item in data.get("Results") or [] if item.get("Kind") in WORKLOAD_KINDS)


@dataclass(frozen=True)
class _Tool:
    name: str
    version: str
    argv: Callable[[Path], list[str]]
    count: Callable[[Path], int | None]
    timeout: float


def _tools(peers: Sequence[Built], peer_timeout: float) -> list[_Tool]:
    from prodready import __version__

    tools = [
        _Tool(
            "prodready",
            __version__,
            # The largest corpus holds more objects than one run reads by default.
            lambda corpus: [
                _prodready_executable(),
                "validate",
                "-o",
                "json",
                "--max-objects",
                "1000000",
                str(corpus),
            ],
            _count_prodready,
            peer_timeout,
        )
    ]
    argv: dict[str, Callable[[Path, Path], list[str]]] = {
        "kube-score": lambda binary, corpus: [
            str(binary),
            "score",
            "--output-format",
            "json",
            *sorted(str(p) for p in corpus.glob("*.yaml")),
        ],
        "kube-linter": lambda binary, corpus: [
            str(binary),
            "lint",
            "--format",
            "json",
            str(corpus),
        ],
        "polaris": lambda binary, corpus: [
            str(binary),
            "audit",
            "--audit-path",
            str(corpus),
            "--format",
            "json",
        ],
    }
    counts = {
        "kube-score": _count_kube_score,
        "kube-linter": _count_kube_linter,
        "polaris": _count_polaris,
    }
    for built in peers:
        binary = built.binary
        if binary is None:
            continue
        make = argv[built.peer.name]
        tools.append(
            _Tool(
                built.peer.name,
                built.peer.version,
                lambda corpus, make=make, binary=binary: make(binary, corpus),  # type: ignore[misc]
                counts[built.peer.name],
                peer_timeout,
            )
        )
    return tools


_PHASES_SCRIPT = """
import io, json, sys, time
from prodready.rules.engine import evaluate
from prodready.rules.formats import Run, render_json
from prodready.rules.loader import InputLimits, load_inputs
from prodready.rules.model import Severity
started = time.perf_counter()
loaded = load_inputs([sys.argv[1]], io.BytesIO(), limits=InputLimits(max_objects=1_000_000))
read = time.perf_counter()
reports = evaluate([item.obj for item in loaded.objects])
checked = time.perf_counter()
text = render_json(Run(reports, loaded.objects, loaded.errors, Severity.ERROR))
done = time.perf_counter()
print(json.dumps({"load (YAML)": read - started, "evaluate (rules)": checked - read,
                  "render JSON": done - checked, "output MB": len(text) / 1e6}))
"""


def _phases(corpus: Path) -> dict[str, float]:
    """Where prodready's time goes, measured in one process without a profiler's skew."""
    result = subprocess.run(
        [sys.executable, "-c", _PHASES_SCRIPT, str(corpus)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        return {}
    return {key: float(value) for key, value in json.loads(result.stdout).items()}


def measure_size(
    workloads: int,
    tools: Sequence[_Tool],
    work: Path,
    *,
    repeat: int,
    log: Callable[[str], None],
) -> SizeResult:
    """Generate a corpus of `workloads` applications and run every tool on it."""
    corpus = generate(work / f"corpus-{workloads}", workloads)
    log(
        f"corpus: {corpus.workloads} workloads, {corpus.objects} objects in {corpus.files} "
        f"files ({corpus.compliant_apps} fully compliant apps)"
    )
    results = []
    for tool in tools:
        result = ToolResult(tool.name, tool.version)
        output = work / f"{tool.name}-{workloads}.json"
        for attempt in range(repeat):
            run = run_measured(tool.argv(corpus.directory), stdout=output, timeout=tool.timeout)
            result.runs.append(run)
            if attempt == 0:
                if run.timed_out:
                    result.problem = f"stopped after {tool.timeout:.0f} s"
                elif run.exit_code not in (0, 1):
                    result.problem = f"exit {run.exit_code}: {run.stderr_tail.strip()[-300:]}"
                else:
                    try:
                        result.checked = tool.count(output)
                    except (ValueError, KeyError, TypeError) as error:
                        result.problem = f"unreadable output: {error}"
            if run.timed_out or run.seconds >= REPEAT_BELOW_SECONDS:
                break
        output.unlink(missing_ok=True)
        label = f"> {result.seconds:.1f}" if result.timed_out else f"{result.seconds:.2f}"
        log(
            f"  {tool.name:12} {label} s  {corpus.objects / result.seconds:9.0f} objects/s  "
            f"cpu {result.cpu_seconds:.1f} s  rss {result.peak_rss_mib:.0f} MiB"
            + (f"  ({result.problem})" if result.problem else "")
        )
        results.append(result)
    return SizeResult(corpus, results)


def run(
    sizes: Sequence[int],
    *,
    repeat: int,
    peer_timeout: float,
    log: Callable[[str], None],
) -> ValidateResults:
    """The whole validate benchmark, one corpus per size."""
    peers = build_all()
    for built in peers:
        if built.binary is None:
            log(f"peer {built.peer.name} {built.peer.version} not built: {built.how}")
    tools = _tools(peers, peer_timeout)
    results = []
    with tempfile.TemporaryDirectory(prefix="prodready-bench-validate-") as directory:
        work = Path(directory)
        for workloads in sizes:
            size = measure_size(workloads, tools, work, repeat=repeat, log=log)
            size.phases = _phases(size.corpus.directory)
            if size.phases:
                log(
                    "  prodready in one process: "
                    + ", ".join(f"{key} {value:.2f}" for key, value in size.phases.items())
                )
            results.append(size)
    return ValidateResults(results, peers)


def as_dict(results: ValidateResults) -> dict[str, Any]:
    """Plain data for results.json."""
    return {
        "peers": [
            {
                "name": b.peer.name,
                "version": b.peer.version,
                "built": b.binary is not None,
                "how": b.how,
            }
            for b in results.peers
        ],
        "sizes": [
            {
                "workloads": s.corpus.workloads,
                "objects": s.corpus.objects,
                "files": s.corpus.files,
                "phases": s.phases,
                "tools": [
                    {
                        "tool": t.tool,
                        "version": t.version,
                        "seconds": t.seconds,
                        "cpu_seconds": t.cpu_seconds,
                        "peak_rss_mib": t.peak_rss_mib,
                        "runs": len(t.runs),
                        "timed_out": t.timed_out,
                        "checked": t.checked,
                        "objects_per_second": s.objects_per_second(t.tool),
                        "speedup": None if t.tool == "prodready" else s.speedup(t.tool),
                        "problem": t.problem,
                    }
                    for t in s.tools
                ],
            }
            for s in results.sizes
        ],
    }


__all__ = ["PEERS", "SizeResult", "ToolResult", "ValidateResults", "as_dict", "run"]
