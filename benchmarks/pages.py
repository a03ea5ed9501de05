"""The readiness pages: a 1,000-workload cluster's dashboard page, and `validate -o html`
against `-o json` on the 10,000-workload corpus.

The dashboard row times what the server does for a page from reports already read: parse
the reports (as `prodready report` does), build the page model with ProductionServices and
exceptions, render. The validate rows time the whole command as a process (`run_measured`),
so the HTML's cost is set against everything else `validate` does, as a CI job sees it.
"""

from __future__ import annotations

import io
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.corpus import Corpus, generate
from benchmarks.measure import Measurement, median, run_measured

DASHBOARD_WORKLOADS = 1_000
DASHBOARD_TARGET_SECONDS = 1.0
VALIDATE_WORKLOADS = 10_000
HTML_OVER_JSON_TARGET = 1.5


@dataclass
class Row:
    """One measured case: median seconds, and the size of what it produced."""

    label: str
    seconds: float
    size: int  # bytes of the page
    target_seconds: float | None = None

    @property
    def met(self) -> bool | None:
        return None if self.target_seconds is None else self.seconds < self.target_seconds


@dataclass
class PagesResults:
    """The dashboard row, the two validate runs and their ratio."""

    rows: list[Row] = field(default_factory=list)
    html: list[Measurement] = field(default_factory=list)
    json: list[Measurement] = field(default_factory=list)
    workloads: int = 0

    @property
    def ratio(self) -> float:
        """Median wall time of `-o html` over `-o json`."""
        return median([m.seconds for m in self.html]) / median([m.seconds for m in self.json])

    @property
    def met(self) -> bool:
        return self.ratio <= HTML_OVER_JSON_TARGET


def cluster_state(workloads: int, directory: Path) -> tuple[list[dict[str, Any]], Corpus]:
    """The reports the audit would have written for `workloads` generated applications."""
    from prodready.audit.reports import OPENREPORTS, build_report
    from prodready.rules import evaluate
    from prodready.rules.loader import InputLimits, load_inputs

    corpus = generate(directory, workloads=workloads)
    loaded = load_inputs([str(directory)], io.BytesIO(), limits=InputLimits())
    objects = [item.obj for item in loaded.objects]
    now = time.time()
    bodies = [
        build_report(OPENREPORTS, report, objects[report.input_index], max_results=1000, now=now)
        for report in evaluate(objects)
    ]
    return bodies, corpus


def _services(count: int) -> list[dict[str, Any]]:
    return [
        {
            "metadata": {"namespace": f"team-{i % 50:04d}", "name": f"svc-{i:05d}"},
            "status": {
                "conditions": [
                    {"type": "Ready", "status": "True" if i % 7 else "False", "reason": "Ok"}
                ],
                "compliance": {"compliant": bool(i % 3), "score": 80 + i % 20},
            },
        }
        for i in range(count)
    ]


def _exceptions(count: int) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    return [
        {
            "metadata": {"namespace": f"team-{i % 50:04d}", "name": f"ex-{i}"},
            "spec": {
                "exceptions": [{"rule": "PR-RS-002", "reason": "one replica for now"}],
                "expires": (now + timedelta(days=i % 30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "approvedBy": "OPS-1",
            },
        }
        for i in range(count)
    ]


def dashboard_row(log: Callable[[str], None], *, repeat: int) -> Row:
    """A 1,000-workload cluster's dashboard page, from its reports."""
    from prodready.audit.command import to_run
    from prodready.audit.reports import OPENREPORTS
    from prodready.rules.model import Severity
    from prodready.rules.pages import dashboard, render_dashboard

    with tempfile.TemporaryDirectory(prefix="prodready-pages-") as directory:
        bodies, _ = cluster_state(DASHBOARD_WORKLOADS, Path(directory))
    services, exceptions = _services(200), _exceptions(100)
    runs: list[float] = []
    size = 0
    for _ in range(repeat):
        started = time.perf_counter()
        run = to_run(OPENREPORTS, bodies, Severity.ERROR)
        model = dashboard(run, services=services, exceptions=exceptions, now=datetime.now(UTC))
        size = len(render_dashboard(model).encode())
        runs.append(time.perf_counter() - started)
    row = Row(
        label=f"dashboard page, {DASHBOARD_WORKLOADS:,} workloads ({len(bodies):,} reports): "
        "parse, model, render",
        seconds=median(runs),
        size=size,
        target_seconds=DASHBOARD_TARGET_SECONDS,
    )
    log(f"  {row.label}: {row.seconds * 1000:,.0f} ms, {size / 1024:,.0f} KiB")
    return row


def run(
    log: Callable[[str], None],
    *,
    repeat: int = 3,
    workloads: int = VALIDATE_WORKLOADS,
    timeout: float = 600,
) -> PagesResults:
    """Measure the dashboard row and `validate -o html|json` (`repeat` runs each, median)."""
    import sys

    log("pages: the dashboard and validate -o html")
    results = PagesResults(workloads=workloads)
    results.rows.append(dashboard_row(log, repeat=max(repeat, 3)))
    size = 0
    with tempfile.TemporaryDirectory(prefix="prodready-pages-") as directory:
        tree = Path(directory) / "corpus"
        generate(tree, workloads=workloads)
        for _ in range(repeat):
            for output, runs in (("json", results.json), ("html", results.html)):
                out = Path(directory) / f"out.{output}"
                runs.append(
                    run_measured(
                        [sys.executable, "-m", "prodready", "validate", str(tree), "-o", output],
                        stdout=out,
                        timeout=timeout,
                    )
                )
                if output == "html":
                    size = out.stat().st_size
        html_seconds = median([m.seconds for m in results.html])
        json_seconds = median([m.seconds for m in results.json])
        results.rows.append(
            Row(label=f"validate -o html, {workloads:,} workloads", seconds=html_seconds, size=size)
        )
    log(
        f"  validate {workloads:,} workloads: -o json {json_seconds:.2f} s, -o html "
        f"{html_seconds:.2f} s ({size / 2**20:,.1f} MiB): {results.ratio:.2f}x"
    )
    return results


def as_dict(results: PagesResults) -> dict[str, Any]:
    """Plain data for results.json."""
    return {
        "rows": [
            {
                "label": r.label,
                "seconds": r.seconds,
                "bytes": r.size,
                "target_seconds": r.target_seconds,
            }
            for r in results.rows
        ],
        "validate_json_seconds": [m.seconds for m in results.json],
        "validate_html_seconds": [m.seconds for m in results.html],
        "html_over_json": results.ratio,
    }
