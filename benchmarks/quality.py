"""Rule quality on real public manifests, and the cost of secret detection (issue 17).

    python -m benchmarks.quality                    # corpus, per-rule counts, sample, peers
    python -m benchmarks.quality --sample-out sample.json --json quality.json
    python -m benchmarks --only quality             # the same, inside `make bench`

The corpus is *not* committed and nothing here downloads: it is read from local mirrors of
public repositories (`$PRODREADY_MIRROR`, default /work/.mirror, one bare git directory per
repository as `owner+name/repo`, e.g. made by `git clone --mirror`). A repository that is
not mirrored is skipped, and the run says so. From them:

* GoogleCloudPlatform/microservices-demo: release/kubernetes-manifests.yaml;
* kubernetes/examples: every YAML file, one input per directory (an app's Service and
  Deployment usually sit side by side);
* prometheus-community/helm-charts and grafana/helm-charts: every chart without chart
  dependencies, rendered by `helm template` with its default values (a chart that does
  not render with defaults is listed as skipped);
* `helm create`'s starter chart, rendered the same way.

Each input is loaded by validate's loader and evaluated under the default profile (an
undeclared environment is prod). The report counts, per rule, the failures and warnings
and the objects they land on, any crash (an exception out of `evaluate`, which must be
0), and draws a seeded sample of findings to review by hand: the reviewed sample lives in
benchmarks/QUALITY.md. With kube-score and Polaris built (`benchmarks.peers`), the
overlapping checks are counted on the same files, per object.

Secret detection: the literal env values and ConfigMap data of the 10,000-workload corpus
(`benchmarks.corpus`) and of the real-world corpus are scanned by prodready's patterns
(`prodready.rules.secrets`) and, when importable, by detect-secrets with its default
plugins, and both are timed. detect-secrets is not a dependency: put it on PYTHONPATH
(`pip install --target DIR detect-secrets`) to include it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from benchmarks import corpus as synthetic
from benchmarks.peers import PEERS, cache_dir

REPO = Path(__file__).resolve().parents[1]
HELM_TIMEOUT = 60.0
PEER_TIMEOUT = 600.0
SAMPLE_SEED = 17
MAX_SOURCE_BYTES = 8 << 20

Log = Callable[[str], None]


def mirror_root() -> Path:
    """Where mirrored repositories are read from."""
    return Path(os.environ.get("PRODREADY_MIRROR", "/work/.mirror"))


def _git_dir(repository: str) -> Path | None:
    base = mirror_root() / repository.replace("/", "+")
    for candidate in (base / "repo", base):
        if (candidate / "HEAD").is_file():
            return candidate
    return None


def _helm() -> str | None:
    local = REPO / ".local" / "bin" / "helm"
    return str(local) if local.is_file() else shutil.which("helm")


@dataclass
class Source:
    """One input as `prodready validate` would get it: a name and its files' YAML."""

    name: str
    origin: str
    files: list[tuple[str, bytes]]

    def load(self) -> Any:
        """The files through validate's loader, into one LoadResult (a bad document is an
        input error of its file, as in a directory given to validate)."""
        from prodready.rules.loader import LoadResult, load_bytes

        loaded = LoadResult()
        for file, data in self.files:
            load_bytes(data, f"{self.name}/{file}", loaded)
        return loaded


@dataclass
class Corpus:
    """The sources read, and what could not be read (with why)."""

    sources: list[Source] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    commits: dict[str, str] = field(default_factory=dict)


def _export(git_dir: Path, into: Path, paths: list[str]) -> None:
    """Extract `paths` of HEAD from a bare repository into `into`."""
    with tempfile.TemporaryFile() as archive:
        subprocess.run(
            ["git", "--git-dir", str(git_dir), "archive", "--format=tar", "HEAD", *paths],
            stdout=archive,
            check=True,
        )
        archive.seek(0)
        with tarfile.open(fileobj=archive) as tar:
            tar.extractall(into, filter="data")


def _render_chart(helm: str, chart: Path, release: str) -> tuple[bytes | None, str]:
    try:
        done = subprocess.run(
            [helm, "template", release, str(chart), "--namespace", "bench"],
            capture_output=True,
            timeout=HELM_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None, f"helm template ran past {HELM_TIMEOUT:.0f} s"
    if done.returncode != 0:
        last = done.stderr.decode(errors="replace").strip().splitlines()
        return None, (last[-1] if last else f"helm exited {done.returncode}")[:200]
    return done.stdout, ""


def _has_dependencies(chart: Path) -> bool:
    meta = yaml.safe_load((chart / "Chart.yaml").read_text()) or {}
    return bool(meta.get("dependencies"))


def _charts(repository: str, git_dir: Path, helm: str | None, work: Path, out: Corpus) -> None:
    if helm is None:
        out.skipped.append((repository, "no helm binary"))
        return
    root = work / repository.replace("/", "+")
    _export(git_dir, root, ["charts"])
    for chart in sorted(p.parent for p in (root / "charts").glob("*/Chart.yaml")):
        name = f"{repository}:charts/{chart.name}"
        if _has_dependencies(chart):
            out.skipped.append((name, "has chart dependencies (not fetched)"))
            continue
        text, problem = _render_chart(helm, chart, chart.name[:30])
        if text is None:
            out.skipped.append((name, problem))
        elif not text.strip():
            out.skipped.append((name, "renders nothing with default values"))
        else:
            out.sources.append(Source(name, repository, [("rendered.yaml", text)]))


def _directories(repository: str, git_dir: Path, work: Path, out: Corpus) -> None:
    root = work / repository.replace("/", "+")
    _export(git_dir, root, [])
    by_directory: dict[Path, list[Path]] = defaultdict(list)
    for path in sorted([*root.rglob("*.yaml"), *root.rglob("*.yml")]):
        relative = path.relative_to(root)
        if any(part.startswith(".") for part in relative.parts):
            continue  # CI configuration, not manifests
        by_directory[relative.parent].append(path)
    for directory, paths in sorted(by_directory.items()):
        files = [(p.name, p.read_bytes()) for p in paths]
        files = [(n, t) for n, t in files if len(t) <= MAX_SOURCE_BYTES and b"apiVersion" in t]
        if files:
            out.sources.append(Source(f"{repository}:{directory}", repository, files))


def collect(work: Path, log: Log) -> Corpus:
    """Read the real-world corpus from the local mirrors into `work`."""
    out = Corpus()
    helm = _helm()
    for repository, how in (
        ("GoogleCloudPlatform/microservices-demo", "release"),
        ("kubernetes/examples", "directories"),
        ("prometheus-community/helm-charts", "charts"),
        ("grafana/helm-charts", "charts"),
    ):
        git_dir = _git_dir(repository)
        if git_dir is None:
            out.skipped.append((repository, f"not mirrored under {mirror_root()}"))
            log(f"quality: {repository} is not mirrored under {mirror_root()}: skipped")
            continue
        out.commits[repository] = subprocess.run(
            ["git", "--git-dir", str(git_dir), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        if how == "release":
            text = subprocess.run(
                [
                    "git",
                    "--git-dir",
                    str(git_dir),
                    "show",
                    "HEAD:release/kubernetes-manifests.yaml",
                ],
                capture_output=True,
                check=True,
            ).stdout
            out.sources.append(
                Source(f"{repository}:release", repository, [("kubernetes-manifests.yaml", text)])
            )
        elif how == "directories":
            _directories(repository, git_dir, work, out)
        else:
            _charts(repository, git_dir, helm, work, out)
    if helm is not None:
        starter = work / "helm-create"
        starter.mkdir()
        subprocess.run([helm, "create", str(starter / "demo")], capture_output=True, check=True)
        text, problem = _render_chart(helm, starter / "demo", "demo")
        if text is not None:
            out.sources.append(Source("helm create demo", "helm create", [("rendered.yaml", text)]))
        else:
            out.skipped.append(("helm create demo", problem))
    return out


@dataclass
class RuleCount:
    """How often one rule fired on the corpus."""

    failed: int = 0
    warned: int = 0
    passed: int = 0
    objects: set[tuple[str, str]] = field(default_factory=set)


@dataclass
class Evaluation:
    """prodready on the corpus: counts per rule, reports per kind, crashes, the findings."""

    sources: int = 0
    objects: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    rules: dict[str, RuleCount] = field(default_factory=lambda: defaultdict(RuleCount))
    crashes: list[tuple[str, str]] = field(default_factory=list)
    load_errors: int = 0
    helm_tests: int = 0
    findings: list[dict[str, Any]] = field(default_factory=list)
    flagged: dict[str, set[tuple[str, str, str]]] = field(default_factory=lambda: defaultdict(set))
    seconds: float = 0.0


# Upstream software (charts of exporters, example apps) is deployed by a platform team, not
# written by it: the policy it would write marks those images third-party. The demo's own
# services and the `helm create` starter (what a team begins its own chart from) are not.
THIRD_PARTY_ORIGINS = frozenset(
    {"kubernetes/examples", "prometheus-community/helm-charts", "grafana/helm-charts"}
)


def policy_for(source: Source) -> Any:
    """The rules configuration a team running `source` would write (see above)."""
    from prodready.rules.config import parse_config

    if source.origin in THIRD_PARTY_ORIGINS:
        return parse_config({"third_party_images": ["*"]})
    return None


def evaluate_corpus(corpus: Corpus, *, with_policy: bool = True) -> Evaluation:
    """Load and evaluate every source as validate does, counting what fires."""
    from prodready.rules import Result, evaluate
    from prodready.rules.command import without_helm_tests

    result = Evaluation()
    started = time.perf_counter()
    for source in corpus.sources:
        result.sources += 1
        try:
            loaded = source.load()
            config = policy_for(source) if with_policy else None
            # As validate does: a Helm test hook is no workload (skipped with a note).
            kept, tests = without_helm_tests(loaded)
            result.helm_tests += tests
            reports = evaluate((item.obj for item in kept), config=config)
        except Exception as error:  # a crash is what this benchmark counts
            result.crashes.append((source.name, f"{type(error).__name__}: {error}"[:300]))
            continue
        result.load_errors += len(loaded.errors)
        for report in reports:
            result.objects += 1
            ref = report.object
            result.kinds[ref.kind] += 1
            where = f"{ref.kind} {ref.namespace or 'default'}/{ref.name}"
            for finding in report.findings:
                count = result.rules[finding.rule_id]
                if finding.result is Result.PASS:
                    count.passed += 1
                    continue
                if finding.result not in (Result.FAIL, Result.WARN):
                    continue
                if finding.result is Result.FAIL:
                    count.failed += 1
                else:
                    count.warned += 1
                count.objects.add((source.name, where))
                result.flagged[finding.rule_id].add((ref.kind, ref.namespace or "bench", ref.name))
                result.findings.append(
                    {
                        "source": source.name,
                        "rule": finding.rule_id,
                        "result": finding.result.value,
                        "object": where,
                        "container": finding.container,
                        "message": finding.message,
                    }
                )
    result.seconds = time.perf_counter() - started
    return result


def sample(findings: list[dict[str, Any]], size: int) -> list[dict[str, Any]]:
    """A seeded sample, spread over the rules: each rule's share, at least one per rule."""
    rng = random.Random(SAMPLE_SEED)
    by_rule: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for finding in findings:
        by_rule[finding["rule"]].append(finding)
    total = len(findings)
    picked: list[dict[str, Any]] = []
    for _, items in sorted(by_rule.items()):
        share = max(1, round(size * len(items) / total)) if total else 0
        picked.extend(rng.sample(items, min(share, len(items))))
    rng.shuffle(picked)
    picked = picked[:size]
    return sorted(picked, key=lambda f: (f["rule"], f["source"], f["object"]))


# Checks that prodready, kube-score and Polaris share, by their IDs in each tool.
OVERLAP: dict[str, dict[str, tuple[str, ...]]] = {
    "liveness probe": {
        "prodready": ("PR-HC-001",),
        "kube-score": ("pod-probes",),
        "polaris": ("livenessProbeMissing",),
    },
    "readiness probe": {
        "prodready": ("PR-HC-002",),
        "kube-score": ("pod-probes",),
        "polaris": ("readinessProbeMissing",),
    },
    "image pinned": {
        "prodready": ("PR-SC-005",),
        "kube-score": ("container-image-tag",),
        "polaris": ("tagNotSpecified",),
    },
    "requests and memory limit": {
        "prodready": ("PR-RS-001",),
        "kube-score": ("container-resources",),
        "polaris": ("cpuRequestsMissing", "memoryRequestsMissing", "memoryLimitsMissing"),
    },
    "hardened security context": {
        "prodready": ("PR-SC-004",),
        "kube-score": (
            "container-security-context-user-group-id",
            "container-security-context-readonlyrootfilesystem",
            "container-security-context-privileged",
        ),
        "polaris": (
            "runAsRootAllowed",
            "notReadOnlyRootFilesystem",
            "privilegeEscalationAllowed",
            "insecureCapabilities",
        ),
    },
    "replicas and PDB": {
        "prodready": ("PR-RS-002",),
        "kube-score": (
            "deployment-has-poddisruptionbudget",
            "statefulset-has-poddisruptionbudget",
            "deployment-replicas",
        ),
        "polaris": ("missingPodDisruptionBudget", "deploymentMissingReplicas"),
    },
    "secret in a container variable": {
        "prodready": ("PR-LG-003",),
        "polaris": ("sensitiveContainerEnvVar",),
    },
    "secret in a ConfigMap": {
        "prodready": ("PR-CF-004",),
        "polaris": ("sensitiveConfigmapContent",),
    },
    "Ingress TLS": {
        "prodready": ("PR-SC-006",),
        "polaris": ("tlsSettingsMissing",),
    },
}


def _peer_binary(name: str) -> Path | None:
    for peer in PEERS:
        if peer.name == name and peer.binary.is_file():
            return peer.binary
    return None


def _kube_score(binary: Path, groups: list[list[Path]]) -> dict[str, set[tuple[str, str, str]]]:
    """kube-score once per input, with all of its files (so it sees Services with Pods)."""
    flagged: dict[str, set[tuple[str, str, str]]] = defaultdict(set)
    for group in groups:
        done = subprocess.run(
            [str(binary), "score", "--output-format", "json", *map(str, group)],
            capture_output=True,
            timeout=PEER_TIMEOUT,
            check=False,
        )
        with contextlib.suppress(ValueError):
            for item in json.loads(done.stdout or b"[]") or []:
                meta = item.get("object_meta") or {}
                ref = (
                    (item.get("type_meta") or {}).get("kind", ""),
                    meta.get("namespace") or "bench",
                    meta.get("name", ""),
                )
                for check in item.get("checks") or []:
                    if not check.get("skipped") and check.get("grade", 10) < 10:
                        flagged[check["check"]["id"]].add(ref)
    return flagged


def _polaris_results(results: dict[str, Any]) -> Iterator[tuple[str, bool]]:
    for check, outcome in (results or {}).items():
        yield check, bool(outcome.get("Success", True))


def _polaris(binary: Path, groups: list[list[Path]]) -> dict[str, set[tuple[str, str, str]]]:
    """Polaris once per input directory (one file it cannot parse fails only its input)."""
    flagged: dict[str, set[tuple[str, str, str]]] = defaultdict(set)
    for group in groups:
        done = subprocess.run(
            [str(binary), "audit", "--audit-path", str(group[0].parent), "--format", "json"],
            capture_output=True,
            timeout=PEER_TIMEOUT,
            check=False,
        )
        with contextlib.suppress(ValueError):
            data = json.loads(done.stdout or b"{}") or {}
            for item in data.get("Results") or []:
                ref = (item.get("Kind", ""), item.get("Namespace") or "bench", item.get("Name", ""))
                outcomes = list(_polaris_results(item.get("Results")))
                pod = item.get("PodResult") or {}
                outcomes.extend(_polaris_results(pod.get("Results")))
                for container in pod.get("ContainerResults") or []:
                    outcomes.extend(_polaris_results(container.get("Results")))
                for check, success in outcomes:
                    if not success:
                        flagged[check].add(ref)
    return flagged


def peers_on(corpus: Corpus, work: Path, log: Log) -> dict[str, dict[str, set[Any]] | str]:
    """Each peer's flagged objects per check, on the same files (or why it did not run)."""
    directory = work / "peer-input"
    groups: list[list[Path]] = []
    for index, source in enumerate(corpus.sources):
        group = directory / f"{index:04d}"
        group.mkdir(parents=True)
        for position, (_, data) in enumerate(source.files):
            (group / f"{position:03d}.yaml").write_bytes(data)
        groups.append(sorted(group.iterdir()))
    files = [path for group in groups for path in group]
    out: dict[str, dict[str, set[Any]] | str] = {}
    for name, run in (
        ("kube-score", lambda b: _kube_score(b, groups)),
        ("polaris", lambda b: _polaris(b, groups)),
    ):
        binary = _peer_binary(name)
        if binary is None:
            out[name] = f"not built (python -m benchmarks.peers; cache {cache_dir()})"
            continue
        log(f"quality: {name} on {len(files)} files")
        try:
            out[name] = run(binary)
        except (subprocess.TimeoutExpired, ValueError) as error:
            out[name] = f"failed: {error}"
    return out


def _normal(ref: tuple[str, str, str]) -> tuple[str, str, str]:
    kind, namespace, name = ref
    return kind, namespace if namespace not in ("", "default") else "bench", name


def overlap(evaluation: Evaluation, peers: dict[str, dict[str, set[Any]] | str]) -> list[Any]:
    """Per shared check: objects flagged by each tool, and by prodready only / peer only."""
    rows = []
    ours_all = {rule: {_normal(r) for r in refs} for rule, refs in evaluation.flagged.items()}
    for check, ids in OVERLAP.items():
        ours = set().union(*(ours_all.get(i, set()) for i in ids["prodready"]))
        row: dict[str, Any] = {"check": check, "prodready": len(ours)}
        for peer in ("kube-score", "polaris"):
            data = peers.get(peer)
            if not isinstance(data, dict) or peer not in ids:
                row[peer] = None
                continue
            theirs = {_normal(r) for i in ids[peer] for r in data.get(i, set())}
            row[peer] = len(theirs)
            row[f"only prodready vs {peer}"] = len(ours - theirs)
            row[f"only {peer}"] = len(theirs - ours)
        rows.append(row)
    return rows


def _literals(objects: Iterator[Any]) -> Iterator[tuple[str, str]]:
    """(name, value) of every literal env value and ConfigMap data entry."""
    from prodready.rules.context import pod_spec_of

    for obj in objects:
        if not isinstance(obj, dict):
            continue
        if obj.get("kind") == "ConfigMap":
            for key, value in (obj.get("data") or {}).items():
                if isinstance(value, str):
                    yield str(key), value
            continue
        pod, _ = pod_spec_of(obj)
        for field_name in ("initContainers", "containers"):
            for container in pod.get(field_name) or []:
                for entry in (container or {}).get("env") or []:
                    value = (entry or {}).get("value")
                    if isinstance(value, str):
                        yield str(entry.get("name")), value


def _synthetic_literals(work: Path, workloads: int) -> list[tuple[str, str]]:
    directory = work / "synthetic"
    synthetic.generate(directory, workloads=workloads)
    pairs: list[tuple[str, str]] = []
    for path in sorted(directory.glob("*.yaml")):
        pairs.extend(_literals(iter(yaml.safe_load_all(path.read_text()))))
    return pairs


@contextlib.contextmanager
def _detect_secrets() -> Iterator[Callable[[str, str], bool] | None]:
    """detect-secrets' `scan_line` with its default plugins, or None when not importable."""
    try:
        from detect_secrets.core.scan import scan_line
        from detect_secrets.settings import default_settings
    except ImportError:
        yield None
        return

    def scan(name: str, value: str) -> bool:
        lines = value.splitlines() if "\n" in value else [f'{name}: "{value}"']
        return any(True for line in lines for _ in scan_line(line))

    with default_settings():
        yield scan


def secret_costs(work: Path, corpus: Corpus, workloads: int, log: Log) -> dict[str, Any]:
    """Time prodready's patterns and detect-secrets on the same literal values."""
    from prodready.rules.secrets import secret_kind
    from prodready.rules.subject import RuleSettings

    log(f"quality: secret detection on the {workloads:,}-workload corpus")
    sets = {"synthetic": _synthetic_literals(work, workloads)}
    real: list[tuple[str, str]] = []
    for source in corpus.sources:
        loaded = source.load()
        real.extend(_literals(iter(item.obj for item in loaded.objects)))
    sets["real-world"] = real
    settings = RuleSettings()
    out: dict[str, Any] = {}
    with _detect_secrets() as detector:
        out["detect-secrets"] = "importable" if detector else "not importable"
        for label, pairs in sets.items():
            started = time.perf_counter()
            shaped = sum(1 for _, value in pairs if secret_kind(value) is not None)
            shaped_seconds = time.perf_counter() - started
            started = time.perf_counter()
            named = sum(1 for name, value in pairs if settings.secret_reason(name, value))
            named_seconds = time.perf_counter() - started
            row: dict[str, Any] = {
                "values": len(pairs),
                "prodready hits": shaped,
                "prodready seconds": round(shaped_seconds, 3),
                "prodready with names hits": named,
                "prodready with names seconds": round(named_seconds, 3),
            }
            if detector is not None:
                started = time.perf_counter()
                theirs = sum(1 for name, value in pairs if detector(name, value))
                row["detect-secrets hits"] = theirs
                row["detect-secrets seconds"] = round(time.perf_counter() - started, 3)
            out[label] = row
    return out


def run(log: Log, *, sample_size: int = 100, workloads: int = 10_000) -> dict[str, Any]:
    """The whole benchmark; a JSON-able summary."""
    with tempfile.TemporaryDirectory(prefix="prodready-quality-") as tmp:
        work = Path(tmp)
        corpus = collect(work, log)
        log(f"quality: {len(corpus.sources)} inputs, {len(corpus.skipped)} skipped")
        evaluation = evaluate_corpus(corpus)
        unconfigured = evaluate_corpus(corpus, with_policy=False)
        peers = peers_on(corpus, work, log)
        secrets = secret_costs(work, corpus, workloads, log)
    total_findings = len(evaluation.findings)
    return {
        "commits": corpus.commits,
        "inputs": [s.name for s in corpus.sources],
        "skipped": corpus.skipped,
        "objects": evaluation.objects,
        "kinds": dict(evaluation.kinds.most_common()),
        "crashes": evaluation.crashes,
        "load errors": evaluation.load_errors,
        "helm test hooks skipped": evaluation.helm_tests,
        "seconds": round(evaluation.seconds, 2),
        "findings": total_findings,
        "rules": {
            rule: {
                "failed": count.failed,
                "warned": count.warned,
                "passed": count.passed,
                "objects": len(count.objects),
                "objects without a policy": len(unconfigured.rules[rule].objects),
            }
            for rule, count in sorted(evaluation.rules.items())
        },
        "sample": sample(evaluation.findings, sample_size),
        "peers": {k: v if isinstance(v, str) else "ran" for k, v in peers.items()},
        "overlap": overlap(evaluation, peers),
        "secret detection": secrets,
    }


def render(summary: dict[str, Any]) -> str:
    """The summary as Markdown tables (per-rule counts, overlap, secret detection)."""
    lines = [
        f"{len(summary['inputs'])} inputs, {summary['objects']} objects checked "
        f"({', '.join(f'{k} {v}' for k, v in summary['kinds'].items())}) in "
        f"{summary['seconds']} s; crashes: {len(summary['crashes'])}; Helm test hooks "
        f"skipped: {summary['helm test hooks skipped']}; "
        f"{len(summary['skipped'])} inputs skipped.",
        "",
        "| rule | failed | warned | passed | objects flagged | without third_party_images |",
        "|---|---|---|---|---|---|",
    ]
    for rule, row in summary["rules"].items():
        lines.append(
            f"| {rule} | {row['failed']} | {row['warned']} | {row['passed']} | {row['objects']} "
            f"| {row['objects without a policy']} |"
        )
    lines += [
        "",
        "| shared check | prodready | kube-score | Polaris | only prodready / only peer |",
    ]
    lines.append("|---|---|---|---|---|")
    for row in summary["overlap"]:
        pairs = "; ".join(
            f"{peer}: {row.get(f'only prodready vs {peer}')}/{row.get(f'only {peer}')}"
            for peer in ("kube-score", "polaris")
            if row.get(peer) is not None
        )
        shown = {
            peer: "—" if row[peer] is None else str(row[peer]) for peer in ("kube-score", "polaris")
        }
        lines.append(
            f"| {row['check']} | {row['prodready']} | {shown['kube-score']} "
            f"| {shown['polaris']} | {pairs} |"
        )
    secrets = summary["secret detection"]
    lines += [
        "",
        "| literal values | count | patterns: hits | s | patterns + names: hits | s "
        "| detect-secrets: hits | s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label in ("synthetic", "real-world"):
        row = secrets[label]
        lines.append(
            f"| {label} | {row['values']:,} | {row['prodready hits']} | "
            f"{row['prodready seconds']} | {row['prodready with names hits']} | "
            f"{row['prodready with names seconds']} | {row.get('detect-secrets hits', '—')} | "
            f"{row.get('detect-secrets seconds', '—')} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.quality")
    parser.add_argument("--sample", type=int, default=100, help="findings to sample")
    parser.add_argument("--workloads", type=int, default=10_000, help="synthetic corpus size")
    parser.add_argument("--json", type=Path, help="write the whole summary here")
    args = parser.parse_args(argv)
    summary = run(
        lambda line: print(line, file=sys.stderr, flush=True),
        sample_size=args.sample,
        workloads=args.workloads,
    )
    if args.json is not None:
        args.json.write_text(json.dumps(summary, indent=2, default=sorted) + "\n")
    sys.stdout.write(render(summary))
    return 1 if summary["crashes"] else 0


if __name__ == "__main__":
    sys.exit(main())
