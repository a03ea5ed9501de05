"""benchmarks.quality: the real-world corpus is read only from local mirrors, and the
sample and the peer comparison are computed the way benchmarks/QUALITY.md says."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from benchmarks import quality


def test_nothing_mirrored_is_skipped_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRODREADY_MIRROR", str(tmp_path / "none"))
    monkeypatch.setattr(quality, "_helm", lambda: None)
    corpus = quality.collect(tmp_path / "work", lambda line: None)
    assert corpus.sources == []
    assert {name for name, _ in corpus.skipped} == {
        "GoogleCloudPlatform/microservices-demo",
        "kubernetes/examples",
        "prometheus-community/helm-charts",
        "grafana/helm-charts",
    }
    assert all("not mirrored" in why for _, why in corpus.skipped)


def _mirror(root: Path, files: dict[str, str]) -> None:
    work = root / "work"
    work.mkdir(parents=True)
    for name, text in files.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text(text)
    for argv in (
        ["git", "init", "-q"],
        ["git", "add", "."],
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c"],
    ):
        subprocess.run(argv, cwd=work, check=True, capture_output=True)
    subprocess.run(
        ["git", "clone", "-q", "--mirror", str(work), str(root / "repo")],
        check=True,
        capture_output=True,
    )


def test_a_mirrored_repository_is_read_and_evaluated_without_crashing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mirror = tmp_path / "mirror"
    _mirror(
        mirror / "kubernetes+examples",
        {
            "web/deployment.yaml": (
                "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n"
                "  template:\n    spec:\n      containers: [{name: web, image: nginx}]\n"
            ),
            "web/ingress.yaml": (
                "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: web}\n"
                "spec: {rules: [{host: a.example.com}]}\n"
            ),
            ".github/workflow.yaml": "on: push\n",
        },
    )
    monkeypatch.setenv("PRODREADY_MIRROR", str(mirror))
    monkeypatch.setattr(quality, "_helm", lambda: None)
    corpus = quality.collect(tmp_path / "work", lambda line: None)
    assert [s.name for s in corpus.sources] == ["kubernetes/examples:web"]
    evaluation = quality.evaluate_corpus(corpus)
    assert evaluation.crashes == []
    assert evaluation.kinds == {"Deployment": 1, "Ingress": 1}
    # Upstream examples run with the images marked third-party: no LOG_FORMAT finding.
    assert "PR-LG-001" not in evaluation.flagged
    assert ("Ingress", "bench", "web") in evaluation.flagged["PR-SC-006"]
    unconfigured = quality.evaluate_corpus(corpus, with_policy=False)
    assert unconfigured.flagged["PR-LG-001"] == {("Deployment", "bench", "web")}


def test_the_sample_is_seeded_and_covers_every_rule() -> None:
    findings = [{"rule": f"R{i % 3}", "source": "s", "object": f"o{i}"} for i in range(300)]
    findings.append({"rule": "RARE", "source": "s", "object": "x"})
    first = quality.sample(findings, 100)
    assert first == quality.sample(findings, 100)
    assert len(first) == 100
    assert {f["rule"] for f in first} == {"R0", "R1", "R2", "RARE"}


def test_overlap_counts_objects_each_tool_flags() -> None:
    evaluation = quality.Evaluation()
    evaluation.flagged["PR-HC-001"] = {("Deployment", "default", "a"), ("Pod", "bench", "b")}
    peers: dict[str, object] = {
        "kube-score": {"pod-probes": {("Deployment", "bench", "a")}},
        "polaris": "not built",
    }
    (row, *_) = quality.overlap(evaluation, peers)  # type: ignore[arg-type]
    assert row["check"] == "liveness probe"
    assert (row["prodready"], row["kube-score"], row["polaris"]) == (2, 1, None)
    assert (row["only prodready vs kube-score"], row["only kube-score"]) == (1, 0)
