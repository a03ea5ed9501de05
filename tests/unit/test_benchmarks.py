"""The benchmark harness itself: the corpus, the measurements, the peers' cache and the
report. (The benchmarks run in `make bench`; these check their parts are right.)"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
from benchmarks import corpus, measure, peers, report, scale, validate
from benchmarks.__main__ import DETAIL_PREFIXES, SLOW_TESTS
from benchmarks.operator import WITH_DEFAULT, WITHOUT, OperatorResults, rolled_out
from benchmarks.scale import ScaleResults

from prodready.rules import evaluate
from prodready.rules.loader import load_inputs


def test_the_corpus_is_deterministic_and_mixed(tmp_path: Path) -> None:
    first = corpus.generate(tmp_path / "a", workloads=60, seed=7)
    second = corpus.generate(tmp_path / "b", workloads=60, seed=7)
    assert first.files == 3
    for path in sorted(first.directory.iterdir()):
        assert path.read_bytes() == (second.directory / path.name).read_bytes()
    other = corpus.generate(tmp_path / "c", workloads=60, seed=8)
    assert (other.directory / "team-0000.yaml").read_bytes() != (
        first.directory / "team-0000.yaml"
    ).read_bytes()

    loaded = load_inputs([str(first.directory)], io.BytesIO())
    assert not loaded.errors
    assert len(loaded.objects) == first.objects
    # Ingresses, LoadBalancer Services and ConfigMaps get reports of their own (issue 17).
    reports = [
        r
        for r in evaluate([item.obj for item in loaded.objects])
        if r.object.kind in ("Deployment", "StatefulSet")
    ]
    assert len(reports) == first.workloads == 60
    compliant = sum(report.compliant for report in reports)
    # A mix: some applications pass every error-severity rule, most break something.
    assert 0 < compliant < len(reports)
    assert compliant >= first.compliant_apps * 0.5


def test_percentile_is_nearest_rank() -> None:
    values = [float(n) for n in range(1, 101)]
    assert measure.percentile(values, 0.50) == 50.0
    assert measure.percentile(values, 0.99) == 99.0
    assert measure.percentile([3.0], 0.99) == 3.0
    assert measure.median([3.0, 1.0, 2.0]) == 2.0


def test_a_measured_run_reports_its_own_time_memory_and_exit(tmp_path: Path) -> None:
    script = "import sys; x = bytearray(64 * 1024 * 1024); print('done'); sys.exit(3)"
    run = measure.run_measured(
        [sys.executable, "-c", script], stdout=tmp_path / "out.txt", timeout=60
    )
    assert run.exit_code == 3
    assert run.peak_rss_mib >= 64
    assert run.seconds > 0
    assert (tmp_path / "out.txt").read_text() == "done\n"

    slow = measure.run_measured(
        [sys.executable, "-c", "import time; time.sleep(30)"],
        stdout=tmp_path / "slow.txt",
        timeout=0.5,
    )
    assert slow.timed_out
    assert slow.seconds < 10


def test_peers_are_pinned_once_and_cached_by_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRODREADY_CACHE", str(tmp_path))
    names = [peer.name for peer in peers.PEERS]
    assert names == ["kube-score", "kube-linter", "polaris"]
    for peer in peers.PEERS:
        assert peer.version.startswith("v")
        assert peer.binary == tmp_path / "peers" / f"{peer.name}-{peer.version}" / "bin" / peer.name
    cached = peers.PEERS[0]
    cached.binary.parent.mkdir(parents=True)
    cached.binary.write_text("#!/bin/sh\n")
    assert peers.build(cached, log=False).how == "cached"

    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    missing = peers.build(peers.PEERS[1], log=False)
    assert missing.binary is None
    assert "Go" in missing.how


def test_source_clones_are_found_under_the_configured_roots(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    peer = peers.PEERS[2]
    clone = tmp_path / "FairwindsOps+polaris" / "repo"
    clone.mkdir(parents=True)
    (clone / "HEAD").write_text("ref: refs/heads/master\n")
    monkeypatch.setenv("PRODREADY_PEER_SOURCES", str(tmp_path))
    assert peers._source_clone(peer) == clone
    monkeypatch.delenv("PRODREADY_PEER_SOURCES")
    assert peers._source_clone(peer) is None


def test_peer_outputs_are_counted(tmp_path: Path) -> None:
    score = tmp_path / "score.json"
    score.write_text(
        json.dumps(
            [
                {"type_meta": {"kind": "Deployment"}},
                {"type_meta": {"kind": "Service"}},
                {"type_meta": {"kind": "StatefulSet"}},
            ]
        )
    )
    assert validate._count_kube_score(score) == 2
    polaris = tmp_path / "polaris.json"
    polaris.write_text(json.dumps({"Results": [{"Kind": "Deployment"}, {"Kind": "Ingress"}]}))
    assert validate._count_polaris(polaris) == 1
    ours = tmp_path / "ours.json"
    ours.write_text(json.dumps({"summary": {"objects": 5}}))
    assert validate._count_prodready(ours) == 5


def _results(tmp_path: Path) -> report.Run:
    small = corpus.Corpus(tmp_path, files=1, workloads=10, objects=40, compliant_apps=3)
    ours = validate.ToolResult("prodready", "0.1.0", [_run(2.0)], checked=10)
    peer = validate.ToolResult("kube-score", "v1.20.0", [_run(8.0)], checked=10)
    stopped = validate.ToolResult("polaris", "v10.2.2", [_run(30.0, timed_out=True)])
    validate_results = validate.ValidateResults(
        [validate.SizeResult(small, [ours, peer, stopped])], peers=[]
    )
    operator = OperatorResults(
        services=1000,
        floor_seconds=20.0,
        converge_seconds=30.0,
        latency_p50=0.2,
        latency_p99=0.9,
        steady_writes=0,
        steady_window_seconds=50.0,
        rss={"0 services": 80.0, "1100 services": 120.0},
        webhook={
            WITHOUT: {
                "p50": 0.004,
                "p99": 0.010,
                "max": 0.02,
                "errors": 0,
                "answered by the webhook": 0,
                "requests": 1000,
            },
            "with, default resync (300 s)": {
                "p50": 0.007,
                "p99": 0.020,
                "max": 0.03,
                "errors": 0,
                "answered by the webhook": 1000,
                "requests": 1000,
            },
        },
    )
    return report.Run(validate_results, operator, None, seconds=600)


def _run(seconds: float, timed_out: bool = False) -> measure.Measurement:
    return measure.Measurement(seconds, seconds, 100.0, None if timed_out else 0, "")


def test_the_summary_states_ratios_and_targets(tmp_path: Path) -> None:
    run = _results(tmp_path)
    size = run.validate.sizes[0] if run.validate else None
    assert size is not None
    assert size.speedup("kube-score") == pytest.approx(4.0)
    assert size.objects_per_second("prodready") == pytest.approx(20.0)
    rows = {f"{row[0]} {(row[2].split() or [''])[0]}": row for row in report.summary_rows(run)}
    score = rows["validate 10 workloads (40 objects), objects/s kube-score"]
    assert score[3] == "4.0x"
    assert score[5] == "yes"
    # A peer stopped at the timeout is a bound, and says so.
    polaris = rows["validate 10 workloads (40 objects), objects/s polaris"]
    assert polaris[3].startswith("> ")
    ready = next(row for row in report.summary_rows(run) if "all Ready, s" in row[0])
    assert ready[1] == "30.0"
    assert ready[5] == "—"
    # Issue 21's targets: no slower than the floor, RSS < 100 MiB, p99 < 1 s.
    ratio = next(row for row in report.summary_rows(run) if "ratio to the floor" in row[0])
    assert ratio[1] == "1.50x"
    assert ratio[4] == "≤ 1.0x"
    assert ratio[5] == "**no**"
    memory = next(row for row in report.summary_rows(run) if "1100 services" in row[0])
    assert memory[4] == "< 100 MiB"
    assert memory[5] == "**no**"
    latency = next(row for row in report.summary_rows(run) if "CR → Deployment" in row[0])
    assert latency[1] == "200 ms / 900 ms"
    assert latency[5] == "yes"
    webhook = next(
        row for row in report.summary_rows(run) if "webhook" in row[0] and "p99" in row[0]
    )
    assert webhook[1] == "10.0 ms"
    assert webhook[5] == "yes"
    table = report.table(run)
    assert table.count("\n") == len(report.summary_rows(run)) + 1


def test_results_md_keeps_what_is_written_around_the_generated_block(tmp_path: Path) -> None:
    path = tmp_path / "RESULTS.md"
    run = _results(tmp_path)
    report.write_results(path, run, "python -m benchmarks")
    text = path.read_text()
    assert text.count(report.BEGIN) == 1
    assert "kube-score" in text
    path.write_text("# Notes by hand\n\n" + text + "\n## Analysis by hand\n")
    report.write_results(path, run, "python -m benchmarks --services 1000")
    rewritten = path.read_text()
    assert rewritten.startswith("# Notes by hand")
    assert rewritten.rstrip().endswith("## Analysis by hand")
    assert rewritten.count(report.BEGIN) == rewritten.count(report.END) == 1
    assert "--services 1000" in rewritten


def test_rollout_is_judged_as_kubectl_rollout_status_judges_it() -> None:
    deployment = {
        "metadata": {"generation": 2},
        "spec": {"replicas": 2},
        "status": {
            "observedGeneration": 2,
            "updatedReplicas": 2,
            "availableReplicas": 2,
            "replicas": 2,
        },
    }
    assert rolled_out(deployment)
    deployment["status"]["observedGeneration"] = 1
    assert not rolled_out(deployment)
    deployment["status"]["observedGeneration"] = 2
    deployment["status"]["replicas"] = 3  # an old pod still terminating
    assert not rolled_out(deployment)


def _row(rows: list[tuple[str, ...]], *words: str) -> tuple[str, ...]:
    return next(row for row in rows if all(word in row[0] for word in words))


def test_writes_per_new_service_are_judged_against_the_children_measured(
    tmp_path: Path,
) -> None:
    run = _results(tmp_path)
    assert run.operator is not None
    run.operator.converge_writes = {
        "create services": 1000,
        "create deployments": 1000,
        "create servicemonitors": 1000,
        "create prometheusrules": 1000,
        "patch productionservices/status": 1000,
        "create events": 500,
    }
    row = _row(report.summary_rows(run), "writes per new service")
    assert row[1:] == ("5.50", "4.0 children each", "", "≤ 5.0 (children + 1)", "**no**")
    run.operator.converge_writes["create events"] = 0
    assert _row(report.summary_rows(run), "writes per new service")[5] == "yes"


def test_the_webhook_at_200_per_second_is_added_latency_against_its_own_baseline(
    tmp_path: Path,
) -> None:
    run = _results(tmp_path)
    assert run.operator is not None
    base = run.operator.webhook[WITHOUT]
    run.operator.webhook_fast = {
        WITHOUT: {**base, "p50": 0.005, "p99": 0.012},
        WITH_DEFAULT: {**base, "p50": 0.006, "p99": 0.016},
    }
    rows = report.summary_rows(run)
    fast = _row(rows, "at 200/s", "p99")
    assert fast[1] == "4.0 ms"
    assert fast[2] == "without 12.0 ms"
    assert (fast[4], fast[5]) == ("< 5 ms", "yes")
    # The 50/s rows stay as they were.
    assert _row(rows, "at 50/s", "p99")[1] == "10.0 ms"
    run.operator.webhook_fast[WITH_DEFAULT]["p99"] = 0.018
    assert _row(report.summary_rows(run), "at 200/s", "p99")[5] == "**no**"
    # The details say who was busy: the driver, the operator, the machine.
    run.operator.webhook_fast[WITH_DEFAULT].update(
        {"driver CPU %": 9.0, "operator CPU %": 97.0, "load average": 5.7}
    )
    block = report.generated_block(run, "python -m benchmarks")
    assert "at 200/s for 20 s" in block
    assert "the driver used 9% of a core, the operator 97%; load average 5.7" in block


def _scale(**figures: float) -> ScaleResults:
    defaults: dict[str, float] = {
        "ready": 10000,
        "ready_seconds": 900.0,
        "apply_seconds": 300.0,
        "rss_empty": 80.0,
        "rss": 330.0,
        "idle_writes": 0,
        "idle_cpu_percent": 2.0,
    }
    defaults.update(figures)
    return ScaleResults(
        services=10000,
        namespaces=20,
        budget_seconds=2400,
        ready=int(defaults["ready"]),
        ready_seconds=defaults["ready_seconds"],
        apply_seconds=defaults["apply_seconds"],
        rss_empty=defaults["rss_empty"],
        rss=defaults["rss"],
        idle_writes=int(defaults["idle_writes"]),
        idle_cpu_percent=defaults["idle_cpu_percent"],
    )


def test_the_scale_phase_is_a_row_per_goal_beside_the_operator_phase(tmp_path: Path) -> None:
    run = _results(tmp_path)
    run.scale = _scale()
    rows = report.summary_rows(run)
    assert _row(rows, "10,000 ProductionServices in 20 namespaces")[1::4] == ("900.0", "yes")
    assert _row(rows, "converged resync")[1::4] == ("0", "yes")
    assert _row(rows, "idle CPU")[1::4] == ("2.0 %", "yes")
    assert _row(rows, "VmRSS, 10,000")[1::4] == ("330 MiB", "yes")
    # 30 s for 1,000 is 30 ms per service; 900 s for 10,000 is 90 ms: 3x, not linear.
    time_row = _row(rows, "time per service")
    assert time_row[0].endswith("1,000 → 10,000 services")
    assert time_row[1] == "30.0 ms → 90.0 ms"
    assert (time_row[3], time_row[5]) == ("3.00x", "**no**")
    # (120 - 80) MiB over 1,100 services: 37.2 KiB; (330 - 80) MiB over 10,000: 25.6 KiB.
    memory = _row(rows, "memory per service")
    assert memory[1] == "37.2 KiB → 25.6 KiB"
    assert memory[5] == "yes"
    assert "### Operator at scale" in report.generated_block(run, "python -m benchmarks")


def test_a_scale_phase_out_of_time_says_how_many_were_ready(tmp_path: Path) -> None:
    run = _results(tmp_path)
    run.scale = _scale(ready=7321, ready_seconds=float("nan"), idle_writes=-1)
    run.scale.idle_cpu_percent = float("nan")
    rows = report.summary_rows(run)
    ready = _row(rows, "10,000 ProductionServices")
    assert ready[1] == "7,321 Ready"
    assert ready[4] == "all Ready (within 40 min)"
    assert ready[5] == "**no**"
    assert _row(rows, "converged resync")[1::4] == ("—", "—")
    assert _row(rows, "time per service")[5] == "—"
    assert "7,321 Ready when the budget ran out" in report.generated_block(run, "bench")
    assert scale.budget(10000) == 2400
    assert scale.budget(600) == scale.MIN_BUDGET_SECONDS


SHARDING = (
    "sharding, 3 replicas, 310 services in 30 namespaces, 8 shards: writers per namespace "
    "at most 1 at a time, at most 2 in all; shards taken over 15.4 s after the SIGKILL "
    "(bound 26 s); the killed holder's services Ready 48.2 s after it"
)


def test_the_slow_sharding_test_becomes_summary_rows() -> None:
    slow = report.SlowTests(True, 900.0, "6 passed", ["killed while: {}", SHARDING])
    run = report.Run(None, None, slow, seconds=900)
    rows = report.summary_rows(run)
    writers = _row(rows, "writers per namespace")
    assert writers[0].startswith("sharding, 3 replicas, 310 services in 30 namespaces")
    assert (writers[1], writers[4], writers[5]) == ("1", "1", "yes")
    kill = _row(rows, "SIGKILL")
    assert kill[1] == "15.4 / 48.2"
    assert kill[5] == "yes"
    late = SHARDING.replace("taken over 15.4 s", "taken over 27.0 s")
    rows = report.summary_rows(report.Run(None, None, report.SlowTests(True, 1, "x", [late]), 1))
    assert _row(rows, "SIGKILL")[5] == "**no**"
    failed = report.SlowTests(False, 1, "1 failed", ["FAILED tests/e2e/test_sharding.py::x"])
    rows = report.summary_rows(report.Run(None, None, failed, 1))
    assert _row(rows, "sharding e2e")[5] == "**no**"
    # The runner keeps the line: its prefix is one of the details it collects.
    assert SHARDING.startswith(DETAIL_PREFIXES)
    assert "tests/e2e/test_sharding.py" in SLOW_TESTS
