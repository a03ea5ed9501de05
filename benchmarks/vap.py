"""Admission latency through the generated ValidatingAdmissionPolicy vs the webhook (issue 16).

    python -m benchmarks --only vap --no-write      # or: python -m benchmarks.vap

One control plane, the operator running; the same compliant Deployment created with
`dryRun=All` at a fixed rate (open loop, `benchmarks.operator._drive`) in three
namespaces, in interleaved rounds (the machine's load drifts between them):

* none — no admission of prodready's: the apiserver's own cost;
* vap — selected by a ReadinessPolicy compiled by `rules.vap` (Enforce: PR-HC-001 and
  PR-HC-002 plus a custom rule, so the CEL evaluated is what a real policy costs); the
  webhook configuration does not select it;
* webhook — labelled `prodready.io/enforce=true` and selected by the operator's webhook
  configuration (failurePolicy Fail); no VAP binding.

Each figure is p50 and p99 of the client-side latency of admitted requests. Rows for
benchmarks/RESULTS.md come from `rows()`.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RATE = 50
SECONDS = 20
LABEL = "prodready.io/vap-bench"
Log = Callable[[str], None]

NONE = "no prodready admission"
VAP = "generated VAP (apiserver CEL)"
WEBHOOK = "prodready webhook"


@dataclass
class VapResults:
    """Latency figures by path, and what went wrong (the other figures still count)."""

    rate: int = RATE
    seconds: int = SECONDS
    latency: dict[str, dict[str, float]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _policy() -> dict[str, Any]:
    return {
        "apiVersion": "prodready.io/v1alpha1",
        "kind": "ReadinessPolicy",
        "metadata": {"name": "bench"},
        "spec": {
            "mode": "Enforce",
            "namespaceSelector": {"matchLabels": {LABEL: "vap"}},
            "customRules": [
                {
                    "id": "BENCH-OWN-001",
                    "title": "Workloads name an owning team",
                    "expression": "has(object.metadata.labels) && 'team' in object.metadata.labels",
                }
            ],
        },
    }


def _body(namespace: str) -> dict[str, Any]:
    from tests.e2e.policy_support import compliant_deployment

    body = compliant_deployment(namespace)
    body["metadata"].setdefault("labels", {})["team"] = "bench"
    return body


def _dry_run(plane: Any, namespace: str, body: dict[str, Any]) -> Any:
    return plane.kubectl(
        "create", "-n", namespace, "--dry-run=server", "-f", "-", input=json.dumps(body),
        check=False,
    )  # fmt: skip


_PROBE: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "probe"},
    "spec": {
        "selector": {"matchLabels": {"a": "b"}},
        "template": {
            "metadata": {"labels": {"a": "b"}},
            "spec": {"containers": [{"name": "c", "image": "x:1"}]},
        },
    },
}
PATHS = {"none": NONE, "vap": VAP, "webhook": WEBHOOK}
ROUNDS = 4


def _measure_all(plane: Any, work: Path, results: VapResults, log: Log) -> None:
    from tests.e2e.policy_support import E2E_LABEL, e2e_webhook_configuration
    from tests.e2e.support import start_operator, wait_for

    from benchmarks.operator import _context, _drive, _latency_figures, wait_idle
    from prodready.api.crd import PRODUCTION_SERVICE, READINESS_EXCEPTION, READINESS_POLICY, crd
    from prodready.rules.vap import policy_objects

    for definition in (PRODUCTION_SERVICE, READINESS_POLICY, READINESS_EXCEPTION):
        body = crd(definition)
        plane.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(body))
        plane.wait_established(body["metadata"]["name"])
    for namespace in PATHS:
        plane.kubectl("create", "namespace", namespace)
    plane.kubectl("label", "namespace", "vap", f"{LABEL}=vap")
    plane.kubectl("label", "namespace", "webhook", "prodready.io/enforce=true", f"{E2E_LABEL}=1")
    objects, _ = policy_objects(_policy())
    items = {"apiVersion": "v1", "kind": "List", "items": objects}
    plane.kubectl("apply", "-f", "-", input=json.dumps(items))
    operator = start_operator(plane, work / "operator.log")
    try:
        # Narrowed to the webhook namespace: the other two paths never wait on it.
        document = e2e_webhook_configuration(operator, "prodready-bench")
        plane.kubectl("apply", "-f", "-", input=json.dumps(document))
        for namespace, needle in (("vap", "PR-HC-001"), ("webhook", "PR-HC-001")):
            wait_for(
                lambda n=namespace, w=needle: w in _dry_run(plane, n, _PROBE).stderr,
                60,
                f"{namespace}: the probe to be denied",
            )
        for namespace, label in PATHS.items():
            once = _dry_run(plane, namespace, _body(namespace))
            if once.returncode != 0:  # a denial is not an admitted request's latency
                raise RuntimeError(f"{label}: the compliant Deployment is refused: {once.stderr}")
        wait_idle(operator.process.pid)  # its start-up audit pass is not what is measured
        log(
            f"vap: dry-run creates at {RATE}/s, {SECONDS} s per path in {ROUNDS} interleaved "
            "rounds (the machine's load drifts)"
        )
        context = _context(plane)
        gathered: dict[str, tuple[list[float], int, int]] = {n: ([], 0, 0) for n in PATHS}
        for namespace in PATHS:
            url = f"{plane.api_url}/apis/apps/v1/namespaces/{namespace}/deployments?dryRun=All"
            asyncio.run(_drive(url, _body(namespace), context, RATE, 2))  # warm the paths
        for _ in range(ROUNDS):
            for namespace in PATHS:
                url = f"{plane.api_url}/apis/apps/v1/namespaces/{namespace}/deployments?dryRun=All"
                latencies, errors, warned = asyncio.run(
                    _drive(url, _body(namespace), context, RATE, SECONDS / ROUNDS)
                )
                before = gathered[namespace]
                gathered[namespace] = (
                    before[0] + latencies,
                    before[1] + errors,
                    before[2] + warned,
                )
        for namespace, label in PATHS.items():
            figures = _latency_figures(gathered[namespace])
            results.latency[label] = figures
            log(
                f"  {label}: p50 {figures['p50'] * 1000:.1f} ms, p99 "
                f"{figures['p99'] * 1000:.1f} ms, max {figures['max'] * 1000:.0f} ms, "
                f"{int(figures['errors'])} errors of {int(figures['requests'])}"
            )
    finally:
        operator.stop()


def run(log: Log) -> VapResults:
    """The whole benchmark, on a control plane of its own."""
    from benchmarks.operator import control_plane

    results = VapResults()
    with tempfile.TemporaryDirectory(prefix="prodready-bench-vap-") as directory:
        try:
            with control_plane(log, "vap") as plane:
                _measure_all(plane, Path(directory), results, log)
        except Exception as error:  # report: the figures measured so far still count
            results.problems.append(f"{type(error).__name__}: {str(error).splitlines()[0]}")
            log(f"  FAILED: {results.problems[-1]}")
    return results


def rows(results: VapResults) -> list[tuple[str, str, str, str, str, str]]:
    """The summary table's rows: (measure, prodready, against, ratio, target, met)."""
    found = []
    baseline = results.latency.get(NONE)
    for label in (VAP, WEBHOOK):
        figures = results.latency.get(label)
        if figures is None:
            continue
        for quantile in ("p50", "p99"):
            without = f"without {baseline[quantile] * 1000:.1f} ms" if baseline else ""
            found.append(
                (
                    f"admission through the {label} at {results.rate}/s, {quantile}",
                    f"{figures[quantile] * 1000:.1f} ms",
                    without,
                    f"{int(figures['errors'])} errors of {int(figures['requests'])}",
                    "",
                    "—",
                )
            )
    found.extend(
        (f"vap benchmark: {problem}", "", "", "", "", "no") for problem in results.problems
    )
    return found


def as_dict(results: VapResults) -> dict[str, Any]:
    """Plain data for results.json."""
    return {
        "rate": results.rate,
        "seconds": results.seconds,
        "latency": results.latency,
        "problems": results.problems,
    }


if __name__ == "__main__":  # pragma: no cover
    started = time.monotonic()
    measured = run(lambda line: print(line, flush=True))
    print("\n".join("| " + " | ".join(row) + " |" for row in rows(measured)))
    print(f"({time.monotonic() - started:.0f} s)")
    sys.exit(1 if measured.problems else 0)
