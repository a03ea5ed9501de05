"""The operator at 10,000 ProductionServices on this machine (issue 21, goal 2).

* convergence — N ProductionServices (the operator phase's shape: dev, one replica) in 20
  namespaces, applied one namespace at a time to a fresh control plane with the operator
  running: the time until every one is Ready, within a time budget (past it, how many
  were Ready).
* converged resync — write requests by the operator (the audit log) over a few resync
  periods once every service is Ready, and the operator's CPU meanwhile.
* memory — the operator's VmRSS before the first service and at N.

Time and memory per service are set beside the operator phase's (1,000 services) in the
summary (benchmarks/report.py): they must grow about linearly.
"""

from __future__ import annotations

import contextlib
import json
import math
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.cluster.controlplane import NODE_NAME, ControlPlane

from benchmarks.operator import (
    BenchControlPlane,
    Log,
    _operator_writes,
    apply_file,
    control_plane,
    cpu_seconds,
    install_crds,
    is_ready,
    report_failure,
    rss_mib,
    wait_idle,
    wait_until,
    watch,
    write_services,
)

NAMESPACES = 20
# A resync every 60 s (the default is 300 s): a converged resync at N services is what the
# idle window must contain, several times, in minutes rather than a quarter of an hour.
RESYNC_SECONDS = 60
IDLE_PERIODS = 3
# 40 minutes for 10,000 services; past the budget the phase reports how many were Ready.
BUDGET_SECONDS_PER_SERVICE = 0.24
MIN_BUDGET_SECONDS = 600.0
# "About linear": per-service time and memory at N within this factor of those at 1,000.
LINEAR_WITHIN = 1.5
ETCD_QUOTA_BYTES = 8 * 1024**3


class ScaleControlPlane(BenchControlPlane):
    """The benchmarks' control plane with room for ~100,000 objects: etcd's default backend
    quota (2 GiB) would turn the cluster read-only ("mvcc: database space exceeded") before
    a compaction frees the revisions of the bulk create. (The kwok node allows 10,000 pods,
    one per service; the service range is the benchmarks' /16.)"""

    def _start(self, name: str, args: list[str]) -> None:
        if name == "etcd":
            args = [*args, f"--quota-backend-bytes={ETCD_QUOTA_BYTES}"]
        super()._start(name, args)


@dataclass(kw_only=True)
class ScaleResults:
    """Every figure of the scale phase (seconds, MiB)."""

    services: int
    namespaces: int
    budget_seconds: float
    resync_seconds: int = RESYNC_SECONDS
    apply_seconds: float = float("nan")
    applied: int = 0
    ready: int = 0
    ready_seconds: float = float("nan")  # until the last one was Ready; nan unless all were
    converge_cpu_seconds: float = float("nan")
    rss_empty: float = float("nan")
    rss: float = float("nan")
    rss_peak: float = float("nan")
    idle_window_seconds: float = 0.0
    idle_writes: int = -1
    idle_detail: dict[str, int] = field(default_factory=dict)
    idle_cpu_percent: float = float("nan")
    problems: list[str] = field(default_factory=list)

    @property
    def all_ready(self) -> bool:
        return self.ready >= self.services

    @property
    def ms_per_service(self) -> float:
        return self.ready_seconds * 1000 / self.services

    @property
    def kib_per_service(self) -> float:
        return (self.rss - self.rss_empty) * 1024 / self.services


def budget(services: int) -> float:
    return max(MIN_BUDGET_SECONDS, services * BUDGET_SECONDS_PER_SERVICE)


def _room_for(plane: ControlPlane, services: int) -> None:
    """The kwok node's allocatable grown to hold every service's pod: the test harness's
    node (256 CPUs, 1 TiB) fits 2,560 pods requesting 100m each, and the scheduler would
    leave the rest Pending."""
    room = {"cpu": str(max(256, services)), "memory": f"{max(1, services // 4)}Ti"}
    room["pods"] = str(max(10_000, services + 1_000))
    plane.kubectl(
        "patch",
        "node",
        NODE_NAME,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": {"allocatable": room, "capacity": room}}),
    )


def _measure(results: ScaleResults, work: Path, log: Log) -> None:
    from tests.e2e.support import start_operator

    namespaces = [f"scale-{n:02d}" for n in range(results.namespaces)]
    log(
        f"scale: {results.services:,} ProductionServices in {len(namespaces)} namespaces "
        f"(budget {results.budget_seconds / 60:.0f} min)"
    )
    with control_plane(log, "scale", ScaleControlPlane) as plane:
        install_crds(plane)
        _room_for(plane, results.services)
        files = []
        for index, namespace in enumerate(namespaces):
            plane.kubectl("create", "namespace", namespace)
            names = [f"s{n:05d}" for n in range(index, results.services, len(namespaces))]
            files.append((work / f"{namespace}.json", len(names)))
            write_services(files[-1][0], names, namespace)
        operator = start_operator(
            plane,
            work / "operator.log",
            env={
                "PRODREADY_LOG_LEVEL": "INFO",
                "PRODREADY_RESYNC_INTERVAL_SECONDS": str(results.resync_seconds),
            },
        )
        pid = operator.process.pid
        try:
            wait_idle(pid, timeout=60)
            results.rss_empty = rss_mib(pid)[0]
            # Names are unique across the namespaces: the watcher keys on the name.
            ready = watch(plane, "/apis/prodready.io/v1alpha1/productionservices", is_ready)
            started, cpu_before = time.monotonic(), cpu_seconds(pid)
            deadline = started + results.budget_seconds
            for path, count in files:
                remaining = deadline - time.monotonic()
                try:
                    apply_file(plane, path, timeout=max(remaining, 1.0))
                except subprocess.TimeoutExpired:
                    log(f"  the time budget ran out while applying {path.stem}")
                    break
                results.applied += count
            results.apply_seconds = time.monotonic() - started
            log(
                f"  {results.applied:,} applied in {results.apply_seconds:.1f} s "
                f"({len(namespaces)} `kubectl apply --server-side`, one per namespace)"
            )
            with contextlib.suppress(TimeoutError):
                wait_until(
                    lambda: len(ready.reached) >= results.services,
                    max(deadline - time.monotonic(), 0.0),
                    "every service Ready",
                    interval=2.0,
                )
            results.ready = len(ready.reached)
            results.converge_cpu_seconds = cpu_seconds(pid) - cpu_before
            results.rss = rss_mib(pid)[0]
            if ready.error:
                log(f"  the readiness watch ended: {ready.error}")
            if not results.all_ready:
                log(
                    f"  {results.ready:,} of {results.services:,} Ready when the budget of "
                    f"{results.budget_seconds:.0f} s ran out; no converged resync to measure"
                )
                return
            results.ready_seconds = max(ready.reached.values()) - started
            log(
                f"  all Ready in {results.ready_seconds:.1f} s "
                f"({results.ms_per_service:.1f} ms per service; the operator used "
                f"{results.converge_cpu_seconds:.0f} CPU s); VmRSS {results.rss:.0f} MiB "
                f"(empty: {results.rss_empty:.0f} MiB)"
            )

            # Converged: over a few resync periods, once the last status write has landed.
            wait_idle(pid, timeout=120)
            offset = plane.audit_log.stat().st_size
            since, cpu_before = time.time(), cpu_seconds(pid)
            time.sleep(results.resync_seconds * IDLE_PERIODS)
            until, cpu_after = time.time(), cpu_seconds(pid)
            results.idle_window_seconds = until - since
            results.idle_cpu_percent = 100 * (cpu_after - cpu_before) / (until - since)
            writes = _operator_writes(plane, since, until, offset)
            results.idle_writes = len(writes)
            for event in writes:
                ref = event.get("objectRef") or {}
                key = f"{event.get('verb')} {ref.get('resource')}/{ref.get('subresource', '')}"
                results.idle_detail[key] = results.idle_detail.get(key, 0) + 1
            results.rss_peak = rss_mib(pid)[1]
            log(
                f"  converged: {results.idle_writes} writes in {results.idle_window_seconds:.0f} s "
                f"({IDLE_PERIODS} resyncs of {results.resync_seconds} s) "
                f"{results.idle_detail or ''}; operator CPU {results.idle_cpu_percent:.1f}% of "
                f"one core; peak VmRSS {results.rss_peak:.0f} MiB"
            )
        finally:
            operator.stop()


def run(services: int, log: Log) -> ScaleResults:
    """The whole scale phase; a failure is reported, not raised."""
    results = ScaleResults(
        services=services, namespaces=min(NAMESPACES, services), budget_seconds=budget(services)
    )
    with tempfile.TemporaryDirectory(prefix="prodready-bench-scale-") as directory:
        work = Path(directory)
        try:
            _measure(results, work, log)
        except Exception as error:  # report and go on: the other phases still count
            report_failure(results.problems, "scale", error, work, log)
    return results


def per_service_ratio(at_1000: float, at_n: float) -> float:
    """How much more per service at N than at 1,000 (1.0: exactly linear)."""
    if math.isnan(at_1000) or math.isnan(at_n) or at_1000 <= 0:
        return float("nan")
    return at_n / at_1000


def as_dict(results: ScaleResults) -> dict[str, Any]:
    """Plain data for results.json."""
    return {
        **{key: value for key, value in results.__dict__.items()},
        "all_ready": results.all_ready,
        "ms_per_service": results.ms_per_service,
        "kib_per_service": results.kib_per_service,
    }
