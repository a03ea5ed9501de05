"""`prodready validate --jobs N`: a large input of files read and checked by N processes
writes byte for byte what one process writes — output, notes, errors and exit code — and
the JSON and table outputs are written piece by piece with the same bytes as whole."""

from __future__ import annotations

import dataclasses
import io
import json
import pickle
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from benchmarks.corpus import generate

from prodready.cli import main
from prodready.rules import command, parallel
from prodready.rules.engine import evaluate
from prodready.rules.formats import Run, json_piece, render_json, render_table
from prodready.rules.loader import (
    InputLimits,
    PlannedFile,
    load_inputs,
    merge_planned,
    plan_inputs,
    read_planned,
    without_helm_tests,
)
from prodready.rules.model import Severity

# A Deployment in one file whose Service, PDB and ConfigMap are in another: its verdict
# depends on a share it does not read.
_SPLIT_WORKLOAD = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "split", "namespace": "spread", "labels": {"app": "split"}},
    "spec": {
        "replicas": 3,
        "selector": {"matchLabels": {"app": "split"}},
        "template": {
            "metadata": {"labels": {"app": "split"}},
            "spec": {
                "containers": [
                    {
                        "name": "app",
                        "image": "registry.example.com/split:1.0.0",
                        "ports": [{"name": "http", "containerPort": 8080}],
                        "envFrom": [{"configMapRef": {"name": "split-settings"}}],
                    }
                ]
            },
        },
    },
}
_SPLIT_CONTEXT = [
    {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "split", "namespace": "spread"},
        "spec": {"selector": {"app": "split"}, "ports": [{"port": 80, "targetPort": "http"}]},
    },
    {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "split", "namespace": "spread"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "split"}}},
    },
    {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "split-settings", "namespace": "spread"},
        "data": {"LOG_FORMAT": "json", "DEBUG": "true"},
    },
]
# Bears on every share: the environment of the namespace is a floor (rules.policy).
_NAMESPACE = {
    "apiVersion": "v1",
    "kind": "Namespace",
    "metadata": {"name": "spread", "labels": {"prodready.io/environment": "prod"}},
}
_HELM_TEST = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "smoke", "annotations": {"helm.sh/hook": "test"}},
    "spec": {"containers": [{"name": "t", "image": "busybox:1.36"}]},
}
_IGNORED = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "r"}}


def _dump(path: Path, documents: list[dict[str, Any]]) -> None:
    path.write_text(yaml.safe_dump_all(documents, sort_keys=False))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 0.5 MiB of generated applications, and around them what the shares must
    put back in order: a workload whose context is in a later file, input errors, notes,
    a Helm test hook, a kind that is not checked, an empty file and a nested directory."""
    root = tmp_path_factory.mktemp("parallel")
    directory = generate(root / "corpus", 160).directory
    _dump(directory / "team-0000a-split.yaml", [_SPLIT_WORKLOAD, _IGNORED])
    _dump(directory / "team-0005-context.yaml", [*_SPLIT_CONTEXT, _HELM_TEST])
    _dump(directory / "zz-namespace.yaml", [_NAMESPACE])
    (directory / "team-0003-broken.yaml").write_text("kind: [unclosed\n")
    (directory / "team-0004-empty.yaml").write_text("# nothing here\n")
    # Errors of the walk itself, between files.
    (directory / "team-0002b-dangling.yaml").symlink_to(root / "nowhere.yaml")
    nested = directory / "zz-nested"
    nested.mkdir()
    (nested / "notes.json").write_text("[1, 2]")
    shutil.copy(directory / "team-0001.yaml", nested / "team-0001-copy.yaml")
    return directory


def _validate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["validate", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def shared_runs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many workers each run that went parallel started."""
    started: list[int] = []
    original = parallel.SharedRun.__init__

    def spy(self: parallel.SharedRun, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        started.append(len(self.processes))

    monkeypatch.setattr(parallel.SharedRun, "__init__", spy)
    return started


@pytest.mark.parametrize("output", ["json", "table"])
def test_several_processes_write_what_one_writes(
    capsys: pytest.CaptureFixture[str],
    corpus: Path,
    shared_runs: list[int],
    output: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(parallel, "CHUNK_CHARACTERS", 4096)  # many chunks per share
    one = _validate(capsys, str(corpus), "-o", output, "--jobs", "1")
    assert shared_runs == []
    for jobs in (2, 3):
        assert _validate(capsys, str(corpus), "-o", output, "--jobs", str(jobs)) == one
    assert shared_runs == [2, 3]
    code, out, err = one
    assert code == 2  # the broken file
    assert "team-0003-broken.yaml:2: invalid YAML" in err
    assert "Helm test hook" in err
    assert "Role (1)" in err
    assert "team-0004-empty.yaml: no Kubernetes objects" in err
    assert "team-0002b-dangling.yaml: cannot read: a symbolic link to nothing" in err
    assert "split" in out


def test_a_workload_is_checked_against_context_in_another_share(
    capsys: pytest.CaptureFixture[str], corpus: Path, shared_runs: list[int]
) -> None:
    _, out, _ = _validate(capsys, str(corpus), "-o", "json", "--jobs", "2")
    assert shared_runs == [2]
    report = next(o for o in json.loads(out)["objects"] if o["object"]["name"] == "split")
    results = {f["rule"]: f["result"] for f in report["findings"]}
    # The PDB and the Service (in the other share) are seen; DEBUG from its ConfigMap too;
    # the Namespace (in the last file) gives the environment.
    assert results["PR-RS-002"] == "pass"
    assert results["PR-ER-001"] == "fail"
    assert report["environmentSource"] == "namespace"


def test_other_flags_and_outputs_agree(
    capsys: pytest.CaptureFixture[str], corpus: Path, shared_runs: list[int]
) -> None:
    flags = ["-o", "table", "--show-passed", "--color", "always", "--env", "dev", "-q"]
    one = _validate(capsys, str(corpus), *flags, "--jobs", "1")
    assert _validate(capsys, str(corpus), *flags, "--jobs", "2") == one
    # Other formats are one process's work whatever --jobs says.
    sarif = _validate(capsys, str(corpus), "-o", "sarif", "--jobs", "2")
    assert sarif[0] == 2
    assert sarif[1].startswith("{")
    assert shared_runs == [2]


def test_small_inputs_stdin_and_limits_stay_in_one_process(
    capsys: pytest.CaptureFixture[str], corpus: Path, shared_runs: list[int], tmp_path: Path
) -> None:
    small = tmp_path / "small.yaml"
    _dump(small, [_SPLIT_WORKLOAD, *_SPLIT_CONTEXT])
    _validate(capsys, str(small), str(small), "-o", "json", "--jobs", "2")
    assert shared_runs == []
    # Past --max-objects the workers are stopped and one process says where reading stopped.
    code, out, err = _validate(capsys, str(corpus), "-o", "json", "--max-objects", "50")
    assert shared_runs == [2]
    assert code == 2
    assert "--max-objects" in err
    assert _validate(capsys, str(corpus), "-o", "json", "--max-objects", "50", "--jobs", "1") == (
        code,
        out,
        err,
    )


def test_a_policy_file_that_cannot_be_used_is_reported_after_the_input(
    capsys: pytest.CaptureFixture[str], corpus: Path, shared_runs: list[int], tmp_path: Path
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("kind: [unclosed\n")
    one = _validate(capsys, str(corpus), "-o", "json", "--policy", str(policy), "--jobs", "1")
    assert _validate(capsys, str(corpus), "-o", "json", "--policy", str(policy)) == one
    assert one[0] == 2
    assert shared_runs == []


def test_shares_are_contiguous_balanced_and_never_empty() -> None:
    def files(*sizes: int) -> list[PlannedFile]:
        return [
            PlannedFile(
                path=str(n),
                name=str(n),
                follow_symlinks=False,
                size=size,
                errors_before=0,
                notes_before=0,
            )
            for n, size in enumerate(sizes)
        ]

    def sizes(split: list[list[PlannedFile]]) -> list[list[int]]:
        return [[file.size for file in share] for share in split]

    assert sizes(parallel.shares(files(1, 1, 1, 1), 2)) == [[1, 1], [1, 1]]
    assert sizes(parallel.shares(files(10, 1, 1, 1, 1), 2)) == [[10], [1, 1, 1, 1]]
    assert sizes(parallel.shares(files(0, 0, 0), 2)) == [[0, 0], [0]]
    assert sizes(parallel.shares(files(5, 5), 4)) == [[5], [5]]
    assert sizes(parallel.shares(files(1, 2, 3), 1)) == [[1, 2, 3]]
    assert parallel.available_cpus() >= 1


class _Pipe:
    """The parent's end of a worker's pipe, played in the test's own process."""

    def __init__(self, replies: list[tuple[str, Any]]) -> None:
        self.replies = replies
        self.sent: list[Any] = []

    def send(self, message: Any) -> None:
        self.sent.append(message)

    def send_bytes(self, data: bytes) -> None:
        self.sent.append(data)

    def recv(self) -> tuple[str, Any]:
        if not self.replies:
            raise EOFError
        return self.replies.pop(0)

    def close(self) -> None:
        pass


def _job(output: str = "json") -> parallel.Job:
    return parallel.Job(
        limits=InputLimits(),
        config=None,
        policies=None,
        environment=None,
        now=datetime.now(UTC),
        fail_on=Severity.ERROR,
        output=output,
    )


def test_a_worker_checks_its_share_against_every_shares_context(corpus: Path) -> None:
    plan = plan_inputs([str(corpus)])
    assert plan is not None
    first, second = parallel.shares(plan.files, 2)
    # The namespaces the first share's objects are in, then the context the second share
    # sends it, as their workers would.
    probe = _Pipe([("stop", None)])
    parallel._work(first, _job(), probe)  # type: ignore[arg-type]
    needs = probe.sent[0][1][-1]
    assert "spread" in needs
    other = _Pipe([("wanted", [needs, None]), ("stop", None)])
    parallel._work(second, _job(), other)  # type: ignore[arg-type]
    assert other.sent[0][0] == "read"
    context = other.sent[1]
    sent = pickle.loads(context)  # noqa: S301 - the context travelled as plain data
    assert {o["kind"] for o in sent} >= {"Namespace", "Service", "PodDisruptionBudget"}
    assert all(o["kind"] not in ("Deployment", "StatefulSet") for o in sent)
    pipe = _Pipe([("wanted", [None, frozenset()]), ("check", [None, context])])
    parallel._work(first, _job(), pipe)  # type: ignore[arg-type]
    (message, totals), chunks = pipe.sent[2], pipe.sent[3:]
    assert chunks[-1] == b""
    text = b"".join(chunks)
    assert message == "checked"
    # What one process says about the first share's objects, with the whole input around.
    objects, _ = without_helm_tests(load_inputs([str(corpus)], io.BytesIO()).objects)
    first_names = {file.name for file in first}
    reports = evaluate([item.obj for item in objects])
    mine = [r for r in reports if objects[r.input_index].file in first_names]
    run = Run(reports, objects, [], Severity.ERROR)
    assert text.decode() == ",".join(json_piece(run, report) for report in mine)
    assert totals.objects == len(mine)


def test_a_worker_reports_a_bug_and_stops_quietly(
    corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = plan_inputs([str(corpus)])
    assert plan is not None

    def broken(*_: object, **__: object) -> list[Any]:
        raise RuntimeError("boom")

    monkeypatch.setattr(parallel, "evaluate", broken)
    pipe = _Pipe([("wanted", [None]), ("check", [None])])
    parallel._work(plan.files[:2], _job("table"), pipe)  # type: ignore[arg-type]
    assert pipe.sent[-1] == ("bug", "RuntimeError: boom")
    # A parent that went away: the worker ends without a traceback.
    gone = _Pipe([])
    parallel._work(plan.files[:1], _job(), gone)  # type: ignore[arg-type]
    over = _Pipe([])
    tight = dataclasses.replace(_job(), limits=InputLimits(max_objects=1))
    parallel._work(plan.files[:1], tight, over)  # type: ignore[arg-type]
    assert over.sent == [("over", None)]


def test_a_bug_in_a_worker_is_an_internal_error(
    capsys: pytest.CaptureFixture[str], corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object, **__: object) -> list[Any]:
        raise RuntimeError("boom")

    monkeypatch.setattr(parallel, "evaluate", broken)  # the workers are forked with it
    code, out, err = _validate(capsys, str(corpus), "-o", "table", "--jobs", "2")
    assert code == 2
    assert out == ""
    assert "error: internal error while checking: RuntimeError: boom" in err


def test_workers_count_what_the_run_read_together() -> None:
    import multiprocessing

    counter = parallel._Counter(InputLimits(max_objects=10), multiprocessing.get_context("fork"))
    first, second = counter.within([0, 0, 0]), counter.within([0, 0, 0])
    assert first(100, 4, 40)
    assert second(100, 6, 60)  # 10 objects together: at the limit, not past it
    assert first(150, 4, 40)  # only the bytes it added since
    assert not second(100, 7, 70)
    assert counter.totals[:] == [250, 11, 110]


def test_a_worker_renders_the_table(corpus: Path) -> None:
    plan = plan_inputs([str(corpus)])
    assert plan is not None
    files = plan.files[:2]
    pipe = _Pipe([("wanted", [None]), ("check", [None])])
    parallel._work(files, dataclasses.replace(_job("table"), show_passed=True), pipe)  # type: ignore[arg-type]
    text = b"".join(part for part in pipe.sent if isinstance(part, bytes)).decode()
    objects, _ = without_helm_tests(load_inputs([f.path for f in files], io.BytesIO()).objects)
    run = Run(evaluate([item.obj for item in objects]), objects, [], Severity.ERROR)
    assert text == render_table(run, colour=False, show_passed=True)


def test_a_crashed_worker_is_an_internal_error(
    capsys: pytest.CaptureFixture[str], corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    def crash(*_: object) -> None:
        os._exit(3)

    monkeypatch.setattr(parallel, "_work", crash)
    code, out, err = _validate(capsys, str(corpus), "-o", "json", "--jobs", "2")
    assert code == 2
    assert out == ""
    assert "internal error while checking: a worker process ended unexpectedly" in err


def test_planned_reading_puts_errors_and_notes_back_in_order(corpus: Path) -> None:
    serial = load_inputs([str(corpus)], io.BytesIO())
    plan = plan_inputs([str(corpus)])
    assert plan is not None
    loads = [
        (files, read_planned(files, InputLimits(), texts=False))
        for files in parallel.shares(plan.files, 3)
    ]
    assert merge_planned(plan, loads) == (serial.errors, serial.notes)
    assert all(not share.result.texts for _, share in loads)
    assert sum(len(share.result.objects) for _, share in loads) == len(serial.objects)


def test_context_reaches_its_own_namespace_or_every_one() -> None:
    from prodready.rules.context import reach

    assert reach(_SPLIT_CONTEXT[0]) == "spread"
    assert reach({"kind": "ConfigMap", "metadata": {"name": "c"}}) == "default"
    assert reach(_NAMESPACE) is None
    assert reach({"kind": "Gateway", "metadata": {"namespace": "edge"}}) is None
    assert reach({"kind": "ProductionService", "metadata": {"namespace": "a"}}) is None
    monitor = {"kind": "ServiceMonitor", "metadata": {"namespace": "monitoring"}, "spec": {}}
    assert reach(monitor) == "monitoring"
    monitor["spec"] = {"namespaceSelector": {"matchNames": ["shop"]}}
    assert reach(monitor) is None


def test_inputs_that_are_not_only_files_are_not_planned(tmp_path: Path) -> None:
    from prodready.rules.toolchain import Toolchain

    chart = tmp_path / "chart"
    chart.mkdir()
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: c\nversion: 0.1.0\n")
    assert plan_inputs([str(tmp_path)], toolchain=Toolchain()) is None
    assert plan_inputs(["-"]) is None
    assert plan_inputs([str(tmp_path)]) is not None  # no toolchain: read as files


def test_streamed_json_and_table_are_the_whole_documents(corpus: Path) -> None:
    loaded = load_inputs([str(corpus)], io.BytesIO())
    reports = evaluate([item.obj for item in loaded.objects])
    run = Run(reports, loaded.objects, loaded.errors, Severity.WARNING)
    from prodready.rules.formats import run_dict

    whole = json.dumps(run_dict(run), ensure_ascii=False, separators=(",", ":")) + "\n"
    assert render_json(run) == whole
    empty = Run([], [], loaded.errors, Severity.ERROR)
    assert json.loads(render_json(empty))["objects"] == []
    table = render_table(run, colour=True, show_passed=True)
    assert table.count("\x1b[1m") == len(reports)
    assert command.PARALLEL_OUTPUTS == ("json", "table")
