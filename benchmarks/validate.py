"""Offline validation throughput: `prodready validate` against kube-score, kube-linter and
Polaris on one generated corpus, each run as its users run it (a process, JSON output).

Every tool reads the same files in the same run. Slow runs are not repeated (a run of
tens of seconds is not noisy enough to need it); fast ones are, and the median counts. A
peer that runs past `peer_timeout` is stopped: its figure is then a bound ("> N s").

prodready runs twice per corpus: as users run it (all the CPUs it may use: the peers use
every core too) and with `--jobs 1` (one core). Its start-up is measured on one small
file (median of `STARTUP_RUNS` runs), with `python -X importtime` saying where it goes.
Peak RSS is a process's own high-water mark (`os.wait4`), for the parallel run the largest
of its processes'; the one-core run's is that of the only process.
"""

from __future__ import annotations

import json
import math
import os
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
OURS = "prodready"
ONE_CORE = "prodready --jobs 1"
STARTUP_RUNS = 20
# issue 21's targets: start-up, throughput against the peers at 1,000 (the fastest peer)
# and 10,000 workloads (every peer), and peak memory at 10,000 below the lowest peer's.
STARTUP_TARGET_MS = 150.0
SPEEDUP_TARGETS = {1_000: 1.5, 10_000: 10.0}
RSS_TARGET_SIZE = 10_000
_TINY = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels: {app: web, prodready.io/environment: prod}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: registry.example.com/shop/web:1.4.2
          ports: [{name: http, containerPort: 8080}]
"""


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

    def speedup(self, peer: str, ours_name: str = OURS) -> float:
        """prodready's throughput divided by the peer's (>1: prodready is faster); for a
        peer stopped at the timeout, a lower bound."""
        ours, theirs = self.tool(ours_name), self.tool(peer)
        if not ours or not theirs or not theirs.runs or not ours.runs:
            return float("nan")
        return theirs.seconds / ours.seconds


@dataclass
class Startup:
    """`prodready validate` on one small file: wall times, and where importing goes."""

    runs: list[float]
    # (module, cumulative ms) of the slowest top-level imports, from `python -X importtime`
    imports: list[tuple[str, float]] = field(default_factory=list)

    @property
    def median_ms(self) -> float:
        return median(self.runs) * 1000 if self.runs else float("nan")


@dataclass
class ValidateResults:
    """The whole validate benchmark."""

    sizes: list[SizeResult]
    peers: list[Built]
    startup: Startup | None = None


def _prodready_executable() -> str:
    candidate = Path(sys.executable).with_name("prodready")
    return str(candidate) if candidate.exists() else "prodready"


def installed_environment(work: Path) -> dict[str, str]:
    """The environment prodready's runs get: Python's bytecode cache on (in `work`), as in
    any pip-installed copy (pip compiles at install). A shell with PYTHONDONTWRITEBYTECODE
    set would otherwise have every run compile the package's modules from source again."""
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    environment["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    return environment


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


def count_apart(count: Callable[[Path], int | None], output: Path) -> int | None:
    """`count(output)`, in a child process; raises ValueError when it cannot count.

    Parsing a large output here would grow this process, and Linux keeps the image a child
    was forked from in the child's peak RSS (`ru_maxrss` survives exec): every tool run
    after it would be measured at least this process's size.
    """
    script = (
        "import json, sys\n"
        "from pathlib import Path\n"
        f"from benchmarks.validate import {count.__name__} as count\n"
        "try:\n"
        "    print(json.dumps(count(Path(sys.argv[1]))))\n"
        "except (ValueError, KeyError, TypeError) as error:\n"
        "    sys.exit(f'{type(error).__name__}: {error}')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(output)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=Path(__file__).resolve().parents[1],
    )
    if result.returncode != 0:
        raise ValueError(result.stderr.strip()[-300:])
    counted: int | None = json.loads(result.stdout)
    return counted


@dataclass(frozen=True)
class _Tool:
    name: str
    version: str
    argv: Callable[[Path], list[str]]
    count: Callable[[Path], int | None]
    timeout: float
    env: dict[str, str] | None = None


def _tools(
    peers: Sequence[Built], peer_timeout: float, environment: dict[str, str] | None = None
) -> list[_Tool]:
    from prodready import __version__

    def ours(*flags: str) -> Callable[[Path], list[str]]:
        # The largest corpus holds more objects than one run reads by default.
        return lambda corpus: [
            _prodready_executable(),
            "validate",
            "-o",
            "json",
            "--max-objects",
            "1000000",
            *flags,
            str(corpus),
        ]

    tools = [
        _Tool(OURS, __version__, ours(), _count_prodready, peer_timeout, environment),
        _Tool(
            ONE_CORE, __version__, ours("--jobs", "1"), _count_prodready, peer_timeout, environment
        ),
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
            run = run_measured(
                tool.argv(corpus.directory), stdout=output, timeout=tool.timeout, env=tool.env
            )
            result.runs.append(run)
            if attempt == 0:
                if run.timed_out:
                    result.problem = f"stopped after {tool.timeout:.0f} s"
                elif run.exit_code not in (0, 1):
                    result.problem = f"exit {run.exit_code}: {run.stderr_tail.strip()[-300:]}"
                else:
                    try:
                        result.checked = count_apart(tool.count, output)
                    except ValueError as error:
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


def _top_imports(stderr: str, count: int = 6) -> list[tuple[str, float]]:
    """The slowest top-level imports of a `python -X importtime` run (cumulative ms)."""
    found: list[tuple[str, float]] = []
    for line in stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) != 3 or parts[2].startswith("  ") or not parts[1].strip().isdigit():
            continue
        found.append((parts[2].strip(), int(parts[1]) / 1000))
    return sorted(found, key=lambda item: -item[1])[:count]


def measure_startup(work: Path, *, runs: int = STARTUP_RUNS) -> Startup:
    """`prodready validate` on one small file, `runs` times (as hyperfine would: the
    median counts, after one warm-up run that fills the bytecode cache), then once under
    `python -X importtime`."""
    tiny = work / "tiny.yaml"
    tiny.write_text(_TINY)
    argv = [_prodready_executable(), "validate", "-o", "json", str(tiny)]
    output = work / "startup.json"
    environment = installed_environment(work)
    run_measured(argv, stdout=output, timeout=60, env=environment)
    times = [
        run_measured(argv, stdout=output, timeout=60, env=environment).seconds for _ in range(runs)
    ]
    traced = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "prodready", *argv[1:]],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=environment,
    )
    return Startup(times, _top_imports(traced.stderr))


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
    results = []
    with tempfile.TemporaryDirectory(prefix="prodready-bench-validate-") as directory:
        work = Path(directory)
        tools = _tools(peers, peer_timeout, installed_environment(work))
        startup = measure_startup(work)
        log(
            f"start-up, one small file: median {startup.median_ms:.0f} ms of {len(startup.runs)}; "
            "slowest imports: " + ", ".join(f"{name} {ms:.0f} ms" for name, ms in startup.imports)
        )
        for workloads in sizes:
            size = measure_size(workloads, tools, work, repeat=repeat, log=log)
            size.phases = _phases(size.corpus.directory)
            if size.phases:
                log(
                    "  prodready in one process: "
                    + ", ".join(f"{key} {value:.2f}" for key, value in size.phases.items())
                )
            results.append(size)
    return ValidateResults(results, peers, startup)


def _num(value: float, unit: str = "", digits: int = 1) -> str:
    if math.isnan(value):
        return "—"
    return f"{value:,.{digits}f}{unit}"


def _verdict(ok: bool | None) -> str:
    return "—" if ok is None else ("yes" if ok else "**no**")


Row = tuple[str, str, str, str, str, str]


def summary_rows(results: ValidateResults) -> list[Row]:
    """(measure, prodready, against, ratio, target, met) rows: start-up, throughput against
    each peer (all cores, then one core) and peak memory against the lowest peer's."""
    rows: list[Row] = []
    startup = results.startup
    if startup is not None:
        rows.append(
            (
                f"validate start-up, one small file (median of {len(startup.runs)}), ms",
                _num(startup.median_ms, digits=0),
                "",
                "",
                f"< {STARTUP_TARGET_MS:.0f} ms",
                _verdict(
                    None if math.isnan(startup.median_ms) else startup.median_ms < STARTUP_TARGET_MS
                ),
            )
        )
    for size in results.sizes:
        target = SPEEDUP_TARGETS.get(size.corpus.workloads, 1.0)
        for name, label in ((OURS, ""), (ONE_CORE, ", one core")):
            if size.tool(name) is None:
                continue
            for tool in size.tools:
                if tool.tool in (OURS, ONE_CORE):
                    continue
                bound = "> " if tool.timed_out else ""
                speedup = size.speedup(tool.tool, name)
                met = None if math.isnan(speedup) else speedup >= target
                rows.append(
                    (
                        f"validate {size.corpus.workloads:,} workloads "
                        f"({size.corpus.objects:,} objects), objects/s{label}",
                        _num(size.objects_per_second(name), digits=0),
                        f"{tool.tool} {'< ' if tool.timed_out else ''}"
                        f"{_num(size.objects_per_second(tool.tool), digits=0)}",
                        f"{bound}{_num(speedup, 'x')}",
                        "faster (> 1x)" if target == 1.0 else f"≥ {target:g}x",
                        _verdict(speedup > 1 if target == 1.0 else met),
                    )
                )
        rows.extend(_memory_rows(size))
    return rows


def _memory_rows(size: SizeResult) -> list[Row]:
    peers = [t for t in size.tools if t.tool not in (OURS, ONE_CORE) and t.runs]
    if size.corpus.workloads != RSS_TARGET_SIZE or not peers:
        return []
    lowest = min(peers, key=lambda t: t.peak_rss_mib)
    rows: list[Row] = []
    for name, label in ((ONE_CORE, "one core"), (OURS, "all cores, largest process")):
        ours = size.tool(name)
        if ours is None or not ours.runs:
            continue
        rows.append(
            (
                f"validate {size.corpus.workloads:,} workloads, peak RSS ({label}), MiB",
                _num(ours.peak_rss_mib, digits=0),
                # A peer stopped at the timeout had reached at least this much.
                f"{lowest.tool} {'≥ ' if lowest.timed_out else ''}"
                f"{_num(lowest.peak_rss_mib, digits=0)}",
                _num(ours.peak_rss_mib / lowest.peak_rss_mib, "x", 2),
                "below the lowest peer",
                _verdict(ours.peak_rss_mib < lowest.peak_rss_mib),
            )
        )
    return rows


def as_dict(results: ValidateResults) -> dict[str, Any]:
    """Plain data for results.json."""
    return {
        "startup": None
        if results.startup is None
        else {
            "median_ms": results.startup.median_ms,
            "runs": results.startup.runs,
            "imports": results.startup.imports,
        },
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
                        "speedup": None if t.tool in (OURS, ONE_CORE) else s.speedup(t.tool),
                        "problem": t.problem,
                    }
                    for t in s.tools
                ],
            }
            for s in results.sizes
        ],
    }


__all__ = [
    "PEERS",
    "SizeResult",
    "Startup",
    "ToolResult",
    "ValidateResults",
    "as_dict",
    "run",
    "summary_rows",
]
