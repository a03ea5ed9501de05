"""benchmarks/validate.py states issue 21's validate goals as summary rows: start-up, the
ratio to each peer at 1,000 and 10,000 workloads on all cores and on one, and peak memory
at 10,000 against the lowest peer's — each with its target and whether it was met."""

from __future__ import annotations

from pathlib import Path

import pytest
from benchmarks import corpus, measure, report, validate


def _run(seconds: float, rss: float = 100.0, timed_out: bool = False) -> measure.Measurement:
    return measure.Measurement(seconds, seconds, rss, None if timed_out else 0, "")


def _size(tmp_path: Path, workloads: int, ours: float, one: float) -> validate.SizeResult:
    generated = corpus.Corpus(
        tmp_path, files=5, workloads=workloads, objects=5 * workloads, compliant_apps=1
    )
    return validate.SizeResult(
        generated,
        [
            validate.ToolResult(validate.OURS, "0.1.0", [_run(ours, 300.0)]),
            validate.ToolResult(validate.ONE_CORE, "0.1.0", [_run(one, 420.0)]),
            validate.ToolResult("kube-score", "v1.20.0", [_run(ours * 12, 1500.0)]),
            validate.ToolResult("kube-linter", "v0.8.3", [_run(one * 1.2, 400.0)]),
            validate.ToolResult("polaris", "v10.2.2", [_run(240.0, 1600.0, timed_out=True)]),
        ],
    )


def _rows(results: validate.ValidateResults) -> dict[str, tuple[str, ...]]:
    return {f"{row[0]} | {row[2].split(' ')[0]}": row for row in validate.summary_rows(results)}


def test_each_goal_is_a_row_with_its_target(tmp_path: Path) -> None:
    results = validate.ValidateResults(
        [_size(tmp_path, 1_000, 0.5, 0.9), _size(tmp_path, 10_000, 5.0, 9.0)],
        peers=[],
        startup=validate.Startup([0.12] * 10 + [0.2] * 9, [("prodready.rules.config", 80.0)]),
    )
    rows = _rows(results)
    startup = rows["validate start-up, one small file (median of 19), ms | "]
    assert startup[1:] == ("120", "", "", "< 150 ms", "yes")
    fast = rows["validate 1,000 workloads (5,000 objects), objects/s | kube-linter"]
    assert fast[3:] == ("2.2x", "≥ 1.5x", "yes")
    one = rows["validate 1,000 workloads (5,000 objects), objects/s, one core | kube-linter"]
    assert one[3:] == ("1.2x", "≥ 1.5x", "**no**")
    big = rows["validate 10,000 workloads (50,000 objects), objects/s | kube-score"]
    assert big[3:] == ("12.0x", "≥ 10x", "yes")
    bound = rows["validate 10,000 workloads (50,000 objects), objects/s | polaris"]
    assert bound[3].startswith("> ")
    memory = rows["validate 10,000 workloads, peak RSS (one core), MiB | kube-linter"]
    assert memory[1:] == ("420", "kube-linter 400", "1.05x", "below the lowest peer", "**no**")
    parallel = rows[
        "validate 10,000 workloads, peak RSS (all cores, largest process), MiB | kube-linter"
    ]
    assert parallel[5] == "yes"
    # The same rows reach the summary table and RESULTS.md, with the start-up detail.
    run = report.Run(results, None, None, seconds=60)
    assert len(report.summary_rows(run)) == len(validate.summary_rows(results))
    detail = "\n".join(report._validate_detail(results))
    assert "median 120 ms of 19 runs" in detail
    assert "prodready.rules.config 80 ms" in detail
    assert validate.as_dict(results)["startup"]["median_ms"] == 120.0


def test_other_sizes_are_judged_faster_and_have_no_memory_row(tmp_path: Path) -> None:
    results = validate.ValidateResults([_size(tmp_path, 200, 0.5, 0.9)], peers=[])
    rows = validate.summary_rows(results)
    assert {row[4] for row in rows} == {"faster (> 1x)"}
    assert not any("RSS" in row[0] for row in rows)


def test_importtime_keeps_the_slowest_top_level_imports() -> None:
    stderr = "\n".join(
        [
            "import time: self [us] | cumulative | imported package",
            "import time:       120 |        120 |   yaml.error",
            "import time:      3000 |      40000 | yaml",
            "import time:      1000 |      90000 | prodready.rules.config",
            "import time:       500 |        500 | prodready.cli",
            "a note that is not an import line",
        ]
    )
    assert validate._top_imports(stderr, 2) == [("prodready.rules.config", 90.0), ("yaml", 40.0)]


def test_startup_is_measured_on_a_small_file(tmp_path: Path) -> None:
    startup = validate.measure_startup(tmp_path, runs=2)
    assert len(startup.runs) == 2
    assert all(0 < seconds < 60 for seconds in startup.runs)
    assert any(name.startswith("prodready") for name, _ in startup.imports)
    assert (tmp_path / "startup.json").read_text().startswith('{"schemaVersion"')


def test_outputs_are_counted_in_another_process(tmp_path: Path) -> None:
    ours = tmp_path / "ours.json"
    ours.write_text('{"summary": {"objects": 7}}')
    assert validate.count_apart(validate._count_prodready, ours) == 7
    assert validate.count_apart(validate._count_kube_linter, ours) is None
    ours.write_text("not json")
    with pytest.raises(ValueError, match="JSONDecodeError"):
        validate.count_apart(validate._count_prodready, ours)
