"""The benchmark harness itself: the corpus, the measurements, the peers' cache and the
report. (The benchmarks run in `make bench`; these check their parts are right.)"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
from benchmarks import corpus, measure, peers, report, validate
from benchmarks.operator import WITHOUT, OperatorResults, rolled_out

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
    assert ready[5] == "yes"
    ratio = next(row for row in report.summary_rows(run) if "ratio to the floor" in row[0])
    assert ratio[1] == "1.50x"
    assert ratio[5] == "yes"
    memory = next(row for row in report.summary_rows(run) if "1100 services" in row[0])
    assert memory[4] == "< 150 MB"
    assert memory[5] == "yes"
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
