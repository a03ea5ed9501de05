"""The pages benchmark: its rows measure what they say, and reach the summary and RESULTS.md."""

from __future__ import annotations

from pathlib import Path

import pytest
from benchmarks import pages, report
from benchmarks.measure import Measurement


def _measurement(seconds: float) -> Measurement:
    return Measurement(seconds, seconds, 100.0, 0, "")


def test_a_small_run_measures_both_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pages, "DASHBOARD_WORKLOADS", 20)
    lines: list[str] = []
    results = pages.run(lines.append, repeat=1, workloads=20)
    dashboard, html = results.rows
    assert dashboard.label.startswith("dashboard page, 20 workloads")
    assert dashboard.size > 10_000
    assert html.label == "validate -o html, 20 workloads"
    assert len(results.html) == len(results.json) == 1
    assert all(m.exit_code in (0, 1) for m in results.html + results.json)
    assert results.ratio > 0
    assert any("-o html" in line for line in lines)


def test_rows_and_detail_in_the_summary(tmp_path: Path) -> None:
    results = pages.PagesResults(
        rows=[
            pages.Row("dashboard page, 1,000 workloads", 0.2, 500_000, 1.0),
            pages.Row("validate -o html, 10,000 workloads", 13.0, 30_000_000),
        ],
        html=[_measurement(13.0)],
        json=[_measurement(10.0)],
        workloads=10_000,
    )
    run = report.Run(None, None, None, seconds=10, pages=results)
    rows = report.summary_rows(run)
    assert rows[0] == ("dashboard page, 1,000 workloads, ms", "200", "", "", "< 1,000 ms", "yes")
    assert rows[1][0] == "validate -o html vs -o json, 10,000 workloads, time ratio"
    assert rows[1][1] == "1.30x"
    assert rows[1][4:] == ("≤ 1.5x", "yes")
    path = tmp_path / "RESULTS.md"
    report.write_results(path, run, "python -m benchmarks --only pages")
    text = path.read_text()
    assert "### Readiness pages" in text
    assert "`-o html` takes 1.30x the time of `-o json`" in text
    assert report.as_json(run)["pages"]["html_over_json"] == pytest.approx(1.3)
