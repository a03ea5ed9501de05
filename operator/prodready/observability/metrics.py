"""The operator's Prometheus metrics, on a registry of their own.

A `Metrics` instance owns its `CollectorRegistry` instead of using prometheus-client's
global one: tests create fresh instances without "duplicated timeseries" errors, and
/metrics shows exactly what this object registered.

Label values are bounded: kinds, results, rules and namespaces — never an object name,
which would create one series per workload.

Conventions, as Prometheus and the Kubernetes exporters keep them:

* the namespace a finding is about is `resource_namespace` (kube-state-metrics' and
  Kyverno's name), never `namespace`: that is the scrape target's own label, which
  Prometheus would rename `exported_namespace` (or let overwrite under `honorLabels`);
* `prodready_findings` counts failing checks only (`fail` and `warn`): a passing check is
  no news, and would be most of the series. No `severity` label: the rule implies it;
* no `_created` series (counters and histograms would each export a twin that no query
  uses): prometheus-client's `disable_created_metrics()`, process-wide.
"""

from __future__ import annotations

import platform
import threading
from collections.abc import Mapping
from typing import Final

from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from prodready import __version__

__all__ = ["DURATION_BUCKETS", "FAILING_RESULTS", "RECONCILE_RESULTS", "Metrics"]

# From 1 ms (a no-op reconcile or an admission review) to 30 s (the webhook timeout ceiling
# and a slow apply against a busy apiserver), roughly ×2.5 per step.
DURATION_BUCKETS: Final = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
RECONCILE_RESULTS: Final = ("success", "error", "skipped")

# The results of a check that fails: `fail` (an error rule) and `warn` (a warning rule).
FAILING_RESULTS: Final = frozenset({"fail", "warn"})

FindingKey = tuple[str, str, str]
"""(rule, severity, result) of a namespace's findings, as the audit counts them."""
SeriesKey = tuple[str, str]
"""(rule, result): what `prodready_findings` keeps of a finding besides its namespace."""


class Metrics:
    """Every metric the operator exports, registered on `self.registry`."""

    def __init__(
        self,
        version: str = __version__,
        registry: CollectorRegistry | None = None,
        *,
        process_metrics: bool = True,
        findings_by_namespace: bool = True,
    ) -> None:
        """Create the metrics on `registry` (default: a new one).

        `process_metrics` adds the process, platform and GC collectors that the global
        registry would have had (memory, CPU, open file descriptors).
        `findings_by_namespace` keeps `prodready_findings` per `resource_namespace`; without
        it, one series per failing rule for the whole cluster.
        """
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.findings_by_namespace = findings_by_namespace
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        if process_metrics:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
            GCCollector(registry=self.registry)

        self.reconciles = Counter(
            "prodready_reconciles",
            "ProductionService reconciliations, by result.",
            ["result"],
            registry=self.registry,
        )
        self.reconcile_duration = Histogram(
            "prodready_reconcile_duration_seconds",
            "Time spent in one reconciliation.",
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.children_applied = Counter(
            "prodready_children_applied",
            "Child objects applied with server-side apply, by kind.",
            ["kind"],
            registry=self.registry,
        )
        self.children_pruned = Counter(
            "prodready_children_pruned",
            "Child objects deleted because the spec no longer asks for them, by kind.",
            ["kind"],
            registry=self.registry,
        )
        self.drift_corrections = Counter(
            "prodready_drift_corrections",
            "Child objects changed by someone else and put back, by kind.",
            ["kind"],
            registry=self.registry,
        )
        self.webhook_requests = Counter(
            "prodready_webhook_requests",
            "Admission reviews answered, by object kind, operation and verdict.",
            ["kind", "operation", "allowed"],
            registry=self.registry,
        )
        self.webhook_duration = Histogram(
            "prodready_webhook_duration_seconds",
            "Time spent answering one admission review.",
            ["kind"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.findings = Gauge(
            "prodready_findings",
            "Failing checklist checks now, by rule and result (fail: error rules, warn: "
            "warning rules)" + (", per resource_namespace." if findings_by_namespace else "."),
            ["resource_namespace", "rule", "result"]
            if findings_by_namespace
            else ["rule", "result"],
            registry=self.registry,
        )
        self.build_info = Info(
            "prodready_build",
            "The running prodready version.",
            registry=self.registry,
        )
        self.audit_runs = Counter(
            "prodready_audit_runs",
            "Completed periodic audits of all workloads.",
            registry=self.registry,
        )
        self.exceptions_expired = Counter(
            "prodready_exceptions_expired",
            "ReadinessExceptions that expired (they stop applying at once).",
            registry=self.registry,
        )
        self.api_errors = Counter(
            "prodready_api_errors",
            "Failed Kubernetes API calls, by Status reason (Conflict, Forbidden, …).",
            ["reason"],
            registry=self.registry,
        )

        self.build_info.info({"version": version, "python": platform.python_version()})
        # Series that exist from the start at 0, so rate() and absent() alerts work before
        # the first error ever happens.
        for result in RECONCILE_RESULTS:
            self.reconciles.labels(result=result)

        self._findings_lock = threading.Lock()
        self._findings_counts: dict[str, dict[SeriesKey, int]] = {}
        self._findings_totals: dict[SeriesKey, int] = {}

    def record_reconcile(self, result: str, duration_seconds: float) -> None:
        """Count one reconciliation and observe its duration."""
        if result not in RECONCILE_RESULTS:
            raise ValueError(f"result must be one of {', '.join(RECONCILE_RESULTS)}: {result!r}")
        self.reconciles.labels(result=result).inc()
        self.reconcile_duration.observe(duration_seconds)

    def record_webhook_request(
        self, kind: str, operation: str, allowed: bool, duration_seconds: float
    ) -> None:
        """Count one admission review and observe how long the answer took."""
        self.webhook_requests.labels(
            kind=kind, operation=operation, allowed="true" if allowed else "false"
        ).inc()
        self.webhook_duration.labels(kind=kind).observe(duration_seconds)

    def set_namespace_findings(self, namespace: str, counts: Mapping[FindingKey, int]) -> None:
        """Replace a namespace's findings with `counts` ((rule, severity, result) → count).

        Only failing results are kept, summed over severities. Series absent from `counts`
        or at zero are removed, so a fixed rule disappears instead of lingering at 0
        forever; `{}` clears a deleted namespace.
        """
        if any(count < 0 for count in counts.values()):
            raise ValueError("finding counts cannot be negative")
        current: dict[SeriesKey, int] = {}
        for (rule, _severity, result), count in counts.items():
            if count > 0 and result in FAILING_RESULTS:
                current[rule, result] = current.get((rule, result), 0) + count
        # Handlers may run in kopf's thread pool; the read-modify-write must not interleave.
        with self._findings_lock:
            previous = self._findings_counts.pop(namespace, {})
            if current:
                self._findings_counts[namespace] = current
            if self.findings_by_namespace:
                for rule, result in previous.keys() - current.keys():
                    self.findings.remove(namespace, rule, result)
                for (rule, result), count in current.items():
                    self.findings.labels(
                        resource_namespace=namespace, rule=rule, result=result
                    ).set(count)
                return
            for key in previous.keys() | current.keys():
                total = self._findings_totals.get(key, 0) - previous.get(key, 0)
                total += current.get(key, 0)
                if total > 0:
                    self._findings_totals[key] = total
                    self.findings.labels(*key).set(total)
                elif self._findings_totals.pop(key, None) is not None:
                    self.findings.remove(*key)

    def render_latest(self) -> tuple[bytes, str]:
        """The registry in Prometheus text format, and its Content-Type."""
        # generate_latest escapes names to underscores, which is the classic 0.0.4 text
        # format: every Prometheus version (and every other scraper) parses it.
        return generate_latest(self.registry), CONTENT_TYPE_PLAIN_0_0_4
