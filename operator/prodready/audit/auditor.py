"""The in-cluster audit: every workload of the watched namespaces, against the checklist.

One loop, no timer per object. Changes in the object store (`prodready.kube.store`) mark
namespaces dirty;
the loop evaluates a dirty namespace in one pass (`rules.evaluate` over all of its
workloads and context, so a new ServiceMonitor fixes PR-MO-001 for every workload it
scrapes), debounced by `DirtyNamespaces`. Every `interval_seconds` a full audit looks at
every namespace, re-reads the reports that exist and drops store entries whose
deletion kopf missed; a converged cluster costs it a few LISTs and zero writes.

Only the leader audits (the store is fed on every replica, so a new leader starts
warm). Each pass of a namespace:

* sets the `prodready_findings` gauges of the namespace (`Metrics.set_namespace_findings`);
* posts a `PolicyViolation` Event on a workload that fails an error-severity rule it did
  not fail before — once per new failure, not once per pass; what failed before is
  remembered in memory and, across restarts, read back from the reports;
* writes one report per workload (OpenReports, else PolicyReport: `audit.reports`) with
  server-side apply, only when its content (timestamps aside) differs from what the
  cluster has, and deletes the reports of workloads that are gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from prodready import rules
from prodready.audit.policy_status import PolicyStatusWriter
from prodready.audit.reports import (
    REPORT_MAX_BYTES,
    SELECTOR,
    ReportFlavor,
    build_report,
    content_digest,
    failing_rules,
    flavors_for,
    report_name,
)
from prodready.audit.schedule import MIN_INTERVAL_SECONDS, SETTLE_SECONDS, DirtyNamespaces
from prodready.kube.client import ApiError, KubeClient
from prodready.kube.events import EventRecorder
from prodready.kube.policies import LivePolicies
from prodready.kube.secret_keys import SecretLookup
from prodready.kube.store import AUDITED_RESOURCES, WORKLOAD_KINDS, ObjectStore, list_present
from prodready.observability.metrics import Metrics
from prodready.rules.lookups import referenced_secrets

__all__ = ["AuditConfig", "Auditor"]

logger = logging.getLogger("prodready.audit")

JSON = dict[str, Any]
VIOLATION_REASON: Final = "PolicyViolation"
# The loop looks at leadership and due namespaces at least this often.
_TICK: Final = 1.0
_RETRY_CAP: Final = 300.0
# How long a Secret's key names are reused. The audit does not watch Secrets: a namespace
# failing PR-CF-002 is looked at again once the answer has expired (so a Secret created
# after its workload clears the report within seconds); any other is at its next pass.
SECRET_TTL: Final = 10.0
REFERENCES_RULE: Final = "PR-CF-002"  # every referenced Secret and key exists
_FULL_PASS_RETRY: Final = 10.0


@dataclass(frozen=True)
class AuditConfig:
    """The audit's knobs (from Settings)."""

    field_manager: str = "prodready"
    interval_seconds: float = 600.0
    max_results: int = 1000
    max_bytes: int = REPORT_MAX_BYTES
    rules_config: rules.RulesConfig | None = None
    environment: str | None = None
    namespaces: tuple[str, ...] = ()  # the watched namespaces; empty: the whole cluster
    concurrency: int = 4
    settle_seconds: float = SETTLE_SECONDS
    min_interval_seconds: float = MIN_INTERVAL_SECONDS
    report_api: str = "auto"  # PRODREADY_REPORT_API: auto, openreports or wgpolicyk8s


@dataclass(frozen=True)
class KnownReport:
    """What the cluster holds for one report, as far as the audit needs to know."""

    uid: str
    digest: str
    failing: frozenset[str]
    scope_uid: str


def _known(body: Mapping[str, Any]) -> KnownReport:
    metadata = body.get("metadata") or {}
    return KnownReport(
        uid=str(metadata.get("uid") or ""),
        digest=content_digest(body),
        failing=failing_rules(body),
        scope_uid=str((body.get("scope") or {}).get("uid") or ""),
    )


def _identity(body: Mapping[str, Any]) -> tuple[str, str, str]:
    metadata = body.get("metadata") or {}
    return str(body.get("kind") or ""), str(metadata.get("name") or ""), str(metadata.get("uid"))


@dataclass
class Auditor:
    """Audits dirty namespaces (and all of them periodically) while `is_leading()`."""

    store: ObjectStore
    client: KubeClient
    metrics: Metrics
    events: EventRecorder
    config: AuditConfig
    is_leading: Callable[[], bool]
    clock: Callable[[], float] = time.monotonic
    wall_clock: Callable[[], float] = time.time
    # The ReadinessPolicies and exceptions in force (None: the rules configuration alone,
    # every workload in Audit mode).
    policies: LivePolicies | None = None
    _status: PolicyStatusWriter | None = field(init=False, default=None)
    flavor: ReportFlavor | None = None
    _flavor_detected: bool = False
    _dirty: DirtyNamespaces = field(init=False)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _leading: bool = False
    _full_due: bool = True
    _next_full: float = 0.0
    _last_prune: float | None = None
    _known: dict[str, dict[str, KnownReport]] = field(default_factory=dict)
    _failing: dict[str, dict[str, frozenset[str]]] = field(default_factory=dict)
    _with_findings: set[str] = field(default_factory=set)
    _failures: dict[str, int] = field(default_factory=dict)
    _secret_lookup: SecretLookup = field(init=False)

    def __post_init__(self) -> None:
        self._dirty = DirtyNamespaces(self.config.settle_seconds, self.config.min_interval_seconds)
        self._secret_lookup = SecretLookup(self.client, ttl=SECRET_TTL, clock=self.clock)
        if self.policies is not None:
            self._status = PolicyStatusWriter(
                store=self.store,
                policies=self.policies,
                client=self.client,
                events=self.events,
                metrics=self.metrics,
                mark=self.mark,
            )

    # -- inputs ----------------------------------------------------------------------------

    def mark(self, namespace: str) -> None:
        """Something in `namespace` changed: audit it soon."""
        self._dirty.mark(namespace, self.clock())
        self._wake.set()

    def request_full_pass(self) -> None:
        """Audit everything now (a report CRD appeared or went)."""
        self._full_due = True
        self._wake.set()

    def store_seeded(self) -> None:
        """The store was just filled from fresh LISTs: the next full pass need not prune."""
        self._last_prune = self.clock()

    # -- the loop --------------------------------------------------------------------------

    async def run(self) -> None:
        """Audit until cancelled."""
        while True:
            await self.step()
            await self._sleep()

    async def step(self) -> None:
        """One turn of the loop: follow leadership, then run what is due."""
        if not self.is_leading():
            if self._leading:
                self._stop_leading()
            return
        if not self._leading:
            self._leading = True
            self._full_due = True
        if self._full_due or self.clock() >= self._next_full:
            await self._full_pass_guarded()
        else:
            due = self._dirty.pop_due(self.clock())
            if due:
                await self._audit_all(due)
        await self._write_statuses()

    async def _write_statuses(self) -> None:
        if self._status is None:
            return
        try:
            await self._status.write(datetime.fromtimestamp(self.wall_clock(), UTC))
        except (ApiError, OSError, TimeoutError) as error:
            logger.warning("writing policy statuses failed; retrying", extra={"error": str(error)})

    async def _sleep(self) -> None:
        now = self.clock()
        timeout = _TICK
        upcoming = self._dirty.next_due()
        if self._leading:
            if upcoming is not None:
                timeout = min(timeout, upcoming - now)
            timeout = min(timeout, self._next_full - now)
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation
        # that races with the inner wait finishing, and this loop would never stop.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(timeout, 0.01)):
                await self._wake.wait()
        self._wake.clear()

    def _stop_leading(self) -> None:
        """Another replica audits now: forget what it may change, stop exporting findings."""
        self._leading = False
        self._known.clear()
        self._failing.clear()
        for namespace in sorted(self._with_findings):
            self.metrics.set_namespace_findings(namespace, {})
        self._with_findings.clear()
        if self._status is not None:
            self._status.forget()
        logger.info("audit paused: not the leader")

    # -- full audit ------------------------------------------------------------------------

    async def _full_pass_guarded(self) -> None:
        self._full_due = False
        try:
            await self.full_pass()
        except (ApiError, OSError, TimeoutError) as error:
            logger.warning("full audit failed; retrying", extra={"error": str(error)})
            self._next_full = self.clock() + _FULL_PASS_RETRY

    async def full_pass(self) -> None:
        """Re-read the reports, repair the store, and audit every namespace."""
        started = self.clock()
        flavor = await self._detect_flavor()
        if flavor != self.flavor or not self._flavor_detected:
            self._flavor_detected = True
            if flavor is None:
                logger.warning(
                    "no report CRD (OpenReports or PolicyReport) is installed: findings go to "
                    "metrics and events only"
                )
            else:
                logger.info("writing policy reports", extra={"api": flavor.resource.api_version})
            self.flavor = flavor
        if self._last_prune is None or started - self._last_prune >= self.config.interval_seconds:
            await self._prune_store()
            self._last_prune = started
        self._known = await self._list_reports(flavor)
        namespaces = (
            set(self.store.namespaces(WORKLOAD_KINDS))
            | set(self._known)
            | set(self._failing)
            | self._with_findings
        )
        for namespace in namespaces:
            self._dirty.ran(namespace, started)
        await self._audit_all(sorted(namespaces))
        self._next_full = self.clock() + self.config.interval_seconds
        self.metrics.audit_runs.inc()
        logger.debug(
            "full audit done",
            extra={"namespaces": len(namespaces), "seconds": round(self.clock() - started, 3)},
        )

    async def _detect_flavor(self) -> ReportFlavor | None:
        for flavor in flavors_for(self.config.report_api):
            served = await self.client.served_resources(flavor.resource.api_version)
            if served is not None and flavor.resource.plural in served:
                return flavor
        return None

    def _scopes(self) -> list[str | None]:
        return list(self.config.namespaces) or [None]

    async def _list_reports(self, flavor: ReportFlavor | None) -> dict[str, dict[str, KnownReport]]:
        known: dict[str, dict[str, KnownReport]] = {}
        if flavor is None:
            return known
        for scope in self._scopes():
            path = flavor.resource.path(scope)
            for body in await self.client.list(path, label_selector=SELECTOR):
                metadata = body.get("metadata") or {}
                namespace = str(metadata.get("namespace") or "")
                known.setdefault(namespace, {})[str(metadata.get("name"))] = _known(body)
        return known

    async def _prune_store(self) -> None:
        present = await list_present(self.client, AUDITED_RESOURCES, self.config.namespaces)
        for resource, names, version in present:
            for namespace in self.store.prune(resource.kind, names, version):
                self._dirty.mark(namespace, self.clock())

    # -- one namespace ---------------------------------------------------------------------

    async def _audit_all(self, namespaces: Iterable[str]) -> None:
        limit = asyncio.Semaphore(self.config.concurrency)

        async def one(namespace: str) -> None:
            async with limit:
                await self._audit_guarded(namespace)

        await asyncio.gather(*(one(namespace) for namespace in namespaces))

    async def _audit_guarded(self, namespace: str) -> None:
        started = self.clock()
        try:
            await self.audit_namespace(namespace)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            failures = self._failures.get(namespace, 0) + 1
            self._failures[namespace] = failures
            delay = min(_RETRY_CAP, float(2**failures))
            if isinstance(error, ApiError):
                # The client counted the failed call in prodready_api_errors.
                # A namespace being deleted refuses new reports until its workloads are
                # gone and the pass has nothing left to write: expected, not a warning.
                terminating = error.namespace_terminating
                logger.log(
                    logging.DEBUG if terminating else logging.WARNING,
                    "audit of a namespace failed; retrying",
                    extra={"namespace": namespace, "error": str(error), "retry_in": delay},
                )
            else:
                logger.exception(
                    "audit of a namespace failed; retrying",
                    extra={"namespace": namespace, "retry_in": delay},
                )
            self._dirty.defer(namespace, self.clock() + delay)
        else:
            self._failures.pop(namespace, None)
            self._dirty.took(namespace, self.clock() - started)

    async def audit_namespace(self, namespace: str) -> None:
        """Evaluate one namespace; update its metrics, events and reports."""
        objects = self.store.objects(namespace)
        reports: list[rules.ObjectReport] = []
        if any(body.get("kind") in WORKLOAD_KINDS for body in objects):
            # The Secrets the workloads reference, looked up by name (key names only), go
            # after the objects, as context: report input indexes stay those of `objects`.
            secrets = await self._secret_lookup.context_objects(referenced_secrets(objects))
            if self.policies is None:
                reports = await asyncio.to_thread(
                    rules.evaluate,
                    objects + secrets,
                    config=self.config.rules_config,
                    environment=self.config.environment,
                )
            else:
                # The Namespace goes last, as context: its labels select policies and set the
                # environment floor (report input indexes stay those of `objects`).
                namespace_object = self.policies.namespace(namespace)
                inputs = objects + secrets
                if namespace_object is not None:
                    inputs.append(namespace_object)
                reports = await asyncio.to_thread(
                    rules.evaluate,
                    inputs,
                    policies=self.policies.current(),
                    now=datetime.fromtimestamp(self.wall_clock(), UTC),
                    environment=self.config.environment,
                )
        # An object checked on its own (a Service, an Ingress, a ConfigMap) gets a report only
        # when something about it fails: every ConfigMap of the cluster passing is no news,
        # and would be a report to write for each.
        reports = [
            report
            for report in reports
            if report.object.kind in WORKLOAD_KINDS or report.failures()
        ]
        if any(
            finding.rule_id == REFERENCES_RULE and finding.failed
            for report in reports
            for finding in report.findings
        ):
            # Secrets are not watched: one created or given its key after the workload is
            # seen by looking again once the answer about it has expired.
            self._dirty.recheck(namespace, self.clock() + SECRET_TTL + 1.0)
        if self._status is not None:
            self._status.record(namespace, reports)
        self._record_findings(namespace, reports)
        await self._announce(namespace, objects, reports)
        await self._write_reports(namespace, objects, reports)
        if not objects:
            self._dirty.forget(namespace)

    def _record_findings(self, namespace: str, reports: list[rules.ObjectReport]) -> None:
        counts = Counter(
            (finding.rule_id, finding.severity.value, finding.result.value)
            for report in reports
            for finding in report.findings
        )
        self.metrics.set_namespace_findings(namespace, counts)
        if counts:
            self._with_findings.add(namespace)
        else:
            self._with_findings.discard(namespace)

    async def _announce(
        self, namespace: str, objects: list[JSON], reports: list[rules.ObjectReport]
    ) -> None:
        """A PolicyViolation Event for each workload with a newly failing error rule."""
        before = self._failing.get(namespace, {})
        known = self._known.get(namespace, {})
        now: dict[str, frozenset[str]] = {}
        for report in reports:
            body = objects[report.input_index]
            kind, name, uid = _identity(body)
            failing = frozenset(f.rule_id for f in report.findings if f.result is rules.Result.FAIL)
            now[uid] = failing
            previous = before.get(uid)
            if previous is None:
                entry = known.get(report_name(kind, name))
                previous = entry.failing if entry and entry.scope_uid == uid else frozenset()
            new = sorted(failing - previous)
            if new:
                title_of = {f.rule_id: f.title for f in report.findings}  # custom rules too
                titles = ", ".join(f"{rule_id} ({title_of[rule_id]})" for rule_id in new)
                await self.events.warning(
                    body,
                    VIOLATION_REASON,
                    f"newly failing error-severity rules: {titles}; the full list is in the "
                    f"policy report {report_name(kind, name)} (or `prodready report -n "
                    f"{namespace}`)",
                )
        if now:
            self._failing[namespace] = now
        else:
            self._failing.pop(namespace, None)

    async def _write_reports(
        self, namespace: str, objects: list[JSON], reports: list[rules.ObjectReport]
    ) -> None:
        """Apply changed reports, delete those of workloads that are gone."""
        flavor = self.flavor
        if flavor is None:
            return
        known = self._known.setdefault(namespace, {})
        now = self.wall_clock()
        desired: dict[str, JSON] = {}
        for report in reports:
            body = build_report(
                flavor,
                report,
                objects[report.input_index],
                max_results=self.config.max_results,
                max_bytes=self.config.max_bytes,
                now=now,
            )
            desired[body["metadata"]["name"]] = body
        for name, body in desired.items():
            digest = content_digest(body)
            current = known.get(name)
            if current is not None and current.digest == digest:
                continue
            answer = await self.client.apply(
                flavor.resource, body, field_manager=self.config.field_manager
            )
            entry = _known(body)
            known[name] = KnownReport(
                uid=str((answer.get("metadata") or {}).get("uid") or ""),
                digest=digest,
                failing=entry.failing,
                scope_uid=entry.scope_uid,
            )
        for name in sorted(set(known) - set(desired)):
            stale = known.pop(name)
            if stale.uid:
                await self.client.delete(flavor.resource, namespace, name, stale.uid)
        if not known:
            self._known.pop(namespace, None)
