"""Reconcile one ProductionService: render, compare, apply, prune, and report status.

Level-triggered, as controller-runtime reconcilers are: every pass starts from the
ProductionService and its children in the object store and converges them, whatever event caused it.
Nothing is written when nothing changed: children are applied only when the live object
no longer contains the rendered one, and status only when it differs.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from prodready import api, render, rules
from prodready.api import conditions as cond
from prodready.api.errors import SpecError
from prodready.api.resource import Resource
from prodready.controller.drift import contains
from prodready.controller.queue import DONE, ReconcileResult
from prodready.kube.client import ApiError, KubeClient
from prodready.kube.events import EventRecorder
from prodready.kube.policies import LivePolicies
from prodready.kube.secret_keys import SecretKeys, SecretLookup
from prodready.kube.store import PRODUCTION_SERVICE, ObjectStore
from prodready.observability.logging import reconcile_context
from prodready.observability.metrics import Metrics
from prodready.render.secrets import USAGE_TLS
from prodready.rules.grants import GrantPolicy, check as check_grants

logger = logging.getLogger("prodready.reconciler")

JSON = dict[str, Any]
MONITORING_API = "monitoring.coreos.com/v1"
MONITORING_CRD_MISSING = "MonitoringCRDMissing"
# How long a discovery answer about the monitoring CRDs is trusted; a CRD watch event
# invalidates it sooner.
DISCOVERY_TTL = 30.0
# How long the answer about a referenced Secret's keys is reused (`SecretLookup`).
SECRET_TTL = 5.0
# While a rollout only progresses (Ready stays False for the same reason, only replica
# counts move), status is written at most this often; the transition that ends it (Ready,
# a stall) is written at once. A rollout of N replicas is then not N status writes.
PROGRESS_WRITE_INTERVAL = 5.0
# A pass that waits for something outside its control (a Secret, a name held by another
# object) looks again after 5, 10, 20 ... seconds, at most every two minutes.
RETRY_BASE = 5.0
RETRY_CAP = 120.0
NAME_CONFLICT = "NameConflict"
ROLLING_OUT = "RollingOut"
SECRET_MISSING = "SecretMissing"  # noqa: S105 - a condition reason
# An apiserver's Status reason is a CamelCase word (NotFound, Invalid, ...); anything else
# (an admission webhook may send free text) is not copied into status.
_STATUS_REASON = re.compile(r"[A-Za-z]{1,64}")

ServiceKey = tuple[str, str]  # (namespace, name)
APPLIED_HASH = "prodready.io/applied-hash"
# A spec asks for what the platform's allow-lists do not allow (rules.grants).
NOT_PERMITTED = "NotPermitted"


def child_resources() -> dict[str, Resource]:
    """Every kind the renderer may produce, by kind."""
    return {resource.kind: resource for resource in render.CHILD_KINDS}


@dataclass
class ReconcilerConfig:
    """The knobs the reconciler reads (from Settings)."""

    field_manager: str = "prodready"
    status_max_findings: int = 20
    rules_config: rules.RulesConfig | None = None
    grants: GrantPolicy | None = None  # None: no allow-lists (unit tests)


@dataclass(frozen=True)
class Conflict:
    """A child's name taken by an object this ProductionService does not control."""

    kind: str
    name: str
    controller: str  # "Kind/name" of its controller, "no controller", or "unknown"

    def describe(self) -> str:
        return f"{self.kind}/{self.name} ({self.controller})"


class StepError(Exception):
    """An API call of a pass failed; says which step on which of our own objects.

    Status and Events carry only this (`safe_message`); the apiserver's own message, which
    can describe other objects, goes to the operator's log with the cause.
    """

    def __init__(self, step: str, target: str, cause: ApiError) -> None:
        super().__init__(f"{step} {target}: {cause}")
        self.step = step
        self.target = target
        self.cause = cause

    @property
    def safe_message(self) -> str:
        reason = self.cause.reason if _STATUS_REASON.fullmatch(self.cause.reason) else ""
        return f"{self.step} {self.target} failed: HTTP {self.cause.status} {reason}".rstrip()


@asynccontextmanager
async def _step(step: str, target: str) -> AsyncIterator[None]:
    """Name the step and our own object an ApiError inside happened at."""
    try:
        yield
    except ApiError as error:
        raise StepError(step, target, error) from error


def _api_error(error: BaseException) -> ApiError | None:
    if isinstance(error, StepError):
        return error.cause
    return error if isinstance(error, ApiError) else None


def controller_uid(body: Mapping[str, Any]) -> str | None:
    """The uid of an object's controller (the ownerReference with controller: true)."""
    for reference in (body.get("metadata") or {}).get("ownerReferences") or ():
        if reference.get("controller"):
            return str(reference.get("uid") or "")
    return None


def _controller_text(body: Mapping[str, Any]) -> str:
    for reference in (body.get("metadata") or {}).get("ownerReferences") or ():
        if reference.get("controller"):
            return f"controlled by {reference.get('kind')}/{reference.get('name')}"
    return "no controller"


@dataclass(frozen=True)
class _Write:
    """One child's write in a reconcile pass: an apply if it exists, else a create."""

    resource: Resource
    name: str
    label: str
    target: JSON
    exists: bool  # on the server (an apply); else a create under a free name
    existed: bool  # in the store before this pass (a write to it corrects drift)

    @property
    def kind(self) -> str:
        return self.resource.kind


@dataclass(frozen=True)
class Summary:
    """What status needs from one rendering of a service and its evaluation."""

    deployment: str
    monitored: bool  # a ServiceMonitor or PrometheusRule is among the children
    children: tuple[JSON, ...]
    compliance: JSON | None
    compliance_condition: cond.Condition | None
    failing: tuple[str, ...]  # error-severity rule IDs that fail


@dataclass(frozen=True)
class Verified:
    """What the last complete pass of a service rendered from and left behind.

    When a pass finds the same inputs and the same children, it can reuse the summary
    instead of rendering, comparing and evaluating again. Kept small on purpose (no
    rendered objects): one per service, at thousands of services.
    """

    spec_key: tuple[str, int, str]
    references: tuple[render.SecretReference, ...]
    inputs: tuple[Any, ...]
    children: frozenset[tuple[str, str, str]]
    summary: Summary


@dataclass
class Reconciler:
    """Reconciles ProductionServices from the object store kopf's watches keep current."""

    client: KubeClient
    store: ObjectStore
    events: EventRecorder
    metrics: Metrics
    config: ReconcilerConfig = field(default_factory=ReconcilerConfig)
    # The ReadinessPolicies and exceptions in force: a service's PolicyCompliant condition
    # says what the webhook and the audit say of its Deployment (None: the rules config).
    policies: LivePolicies | None = None
    _resources: dict[str, Resource] = field(default_factory=child_resources)
    _monitoring: tuple[float, bool] | None = None
    _secret_lookup: SecretLookup = field(init=False)
    _retries: dict[ServiceKey, int] = field(default_factory=dict)
    _locks: dict[ServiceKey, asyncio.Lock] = field(default_factory=dict)
    _verified: dict[ServiceKey, Verified] = field(default_factory=dict)
    _status_written: dict[ServiceKey, float] = field(default_factory=dict)
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self._secret_lookup = SecretLookup(self.client, ttl=SECRET_TTL)

    def forget_discovery(self) -> None:
        """Drop the cached answer about monitoring CRDs (one was added or removed)."""
        self._monitoring = None

    async def monitoring_available(self) -> bool:
        """Whether ServiceMonitor and PrometheusRule are served by the apiserver."""
        now = time.monotonic()
        if self._monitoring is not None and now - self._monitoring[0] < DISCOVERY_TTL:
            return self._monitoring[1]
        async with _step("discover", MONITORING_API):
            served = await self.client.served_resources(MONITORING_API)
        available = served is not None and {"servicemonitors", "prometheusrules"} <= served
        self._monitoring = (now, available)
        return available

    async def reconcile(self, key: ServiceKey) -> ReconcileResult:
        """One pass for one ProductionService; the queue retries on exceptions."""
        namespace, name = key
        body = self.store.get(api.KIND, namespace, name)
        if body is None or body["metadata"].get("deletionTimestamp"):
            # Deleted: owner references let the garbage collector remove the children.
            self._retries.pop(key, None)
            self._verified.pop(key, None)
            self._status_written.pop(key, None)
            return DONE
        metadata = body["metadata"]
        started = time.perf_counter()
        with reconcile_context(namespace, name, metadata.get("uid")):
            try:
                outcome = await self._reconcile(body)
            except Exception as error:
                api_error = _api_error(error)
                if api_error is not None and api_error.namespace_terminating:
                    # The namespace is going away with everything in it, this service too.
                    self.metrics.record_reconcile("skipped", time.perf_counter() - started)
                    return DONE
                self.metrics.record_reconcile("error", time.perf_counter() - started)
                await self._report_error(body, error)
                raise
        self.metrics.record_reconcile("success", time.perf_counter() - started)
        return outcome

    async def _reconcile(self, body: JSON) -> ReconcileResult:
        metadata = body["metadata"]
        namespace, name = metadata["namespace"], metadata["name"]
        key = (namespace, name)
        generation = int(metadata.get("generation") or 0)
        status = body.get("status") or {}

        spec_key = _spec_key(body)
        verified = self._verified.get(key)
        model: api.ProductionService | None = None
        if verified is not None and verified.spec_key == spec_key:
            references = verified.references
        else:
            try:
                model = render.parse(body)
                references = tuple(render.referenced_secrets(model))
            except SpecError:
                references = ()  # rendering below reports it, naming the field
            if model is not None and self.config.grants is not None:
                # The admission webhook refuses such a spec; this holds when it was
                # bypassed (not installed, or the spec predates the allow-list).
                violations = check_grants(model, self.config.grants)
                if violations:
                    self._verified.pop(key, None)
                    message = "; ".join(v.message for v in violations)
                    return await self._invalid(body, NOT_PERMITTED, message)
        missing, versions = await self._secrets(namespace, references)
        monitoring = await self.monitoring_available()
        inputs = (
            spec_key,
            monitoring,
            tuple(sorted(versions.items())),
            tuple(missing),
            *self._policy_inputs(namespace),
        )

        applied: list[str] = []
        drifted: list[str] = []
        pruned: list[str] = []
        conflicts: list[Conflict] = []
        children = self._child_signatures(namespace, name)
        if verified is not None and verified.inputs == inputs and verified.children == children:
            # Nothing the last complete pass rendered from has changed, and every child is
            # as that pass left it (a Deployment's status aside): rendering, comparing and
            # evaluating again would find what it found. This is every resync of a
            # converged service, and every rollout step of its Deployment.
            summary = verified.summary
        else:
            try:
                desired = render.render_production_service(
                    model or render.parse(body), secret_versions=versions
                )
            except SpecError as error:
                self._verified.pop(key, None)
                return await self._invalid(body, "InvalidSpec", str(error))
            applied, drifted, pruned, conflicts, children = await self._converge(
                body, desired, missing, monitoring
            )
            summary = self._summarise(desired, monitoring, conflicts, namespace)

        waiting = _waiting_message(references) if missing else ""
        wanted, deployment = self._conditions(body, summary, waiting, conflicts, monitoring)
        hold = self._progress_hold(key, status, wanted, generation, summary)
        if hold:
            # Only replica counts moved since the last write: the next pass writes the
            # latest (or the transition that ends the rollout, which is never held).
            return ReconcileResult(requeue_after=hold)
        changed = await self._write_status(
            body,
            wanted,
            children=list(summary.children),
            compliance=summary.compliance,
            deployment=deployment,
        )
        await self._announce(
            body,
            before=status,
            applied=applied,
            drifted=drifted,
            pruned=pruned,
            missing=missing,
            waiting=waiting,
            conflicts=conflicts,
            summary=summary,
            generation=generation,
        )
        if changed:
            logger.info(
                "reconciled",
                extra={"applied": applied, "drift_corrected": drifted, "pruned": pruned},
            )
        if conflicts:
            # Not a converged pass: the object holding the name is not watched (it is not
            # ours), so its deletion sends no event. Every later pass (the retry below, a
            # resync, any event of this service) looks it up again, and creates ours once
            # the name is free.
            self._verified.pop(key, None)
        else:
            self._verified[key] = Verified(
                spec_key=spec_key,
                references=references,
                inputs=inputs,
                children=children,
                summary=summary,
            )

        if missing or conflicts:
            failures = self._retries.get(key, 0)
            self._retries[key] = failures + 1
            return ReconcileResult(
                requeue_after=min(RETRY_CAP, RETRY_BASE * 2 ** min(failures, 10))
            )
        self._retries.pop(key, None)
        return DONE

    async def _invalid(self, body: JSON, reason: str, message: str) -> ReconcileResult:
        # The CRD's schema and CEL rules catch most mistakes at admission, and the webhook
        # what the platform does not allow; what only the operator sees lands here, named
        # by field. Nothing is applied: children already running stay as they are.
        status = body.get("status") or {}
        wanted = [
            cond.Condition(cond.READY, False, reason, message),
            cond.Condition(cond.STALLED, True, reason, message),
        ]
        await self._write_status(body, wanted, children=None, compliance=None)
        if cond.find(status.get("conditions"), cond.STALLED).get("reason") != reason:
            await self.events.warning(body, reason, message)
        return DONE

    def _progress_hold(
        self,
        key: ServiceKey,
        status: Mapping[str, Any],
        wanted: Sequence[cond.Condition],
        generation: int,
        summary: Summary,
    ) -> float:
        """Seconds to hold a status write that would only report rollout progress (same
        generation, children and compliance, Ready False for the same reason, RollingOut,
        every other condition as it is) made within `PROGRESS_WRITE_INTERVAL` of the last
        write; 0 to write now."""
        written = self._status_written.get(key)
        if (
            written is None
            or status.get("observedGeneration") != generation
            or status.get("children") != list(summary.children)
            or status.get("compliance") != summary.compliance
        ):
            return 0.0
        for condition in wanted:
            if condition.type in (cond.READY, cond.RECONCILING):
                continue
            current_condition = cond.find(status.get("conditions"), condition.type)
            if (
                current_condition.get("status") != condition.status_text
                or current_condition.get("reason") != condition.reason
                or current_condition.get("message") != condition.message
            ):
                return 0.0
        ready = next((c for c in wanted if c.type == cond.READY), None)
        current = cond.find(status.get("conditions"), cond.READY)
        if (
            ready is None
            or ready.status
            or ready.reason != ROLLING_OUT
            or current.get("status") != "False"
            or current.get("reason") != ROLLING_OUT
        ):
            return 0.0
        remaining = written + PROGRESS_WRITE_INTERVAL - self.clock()
        return max(remaining, 0.0)

    def _child_signatures(self, namespace: str, owner: str) -> frozenset[tuple[str, str, str]]:
        return frozenset(
            (child["kind"], child["metadata"]["name"], _signature(child))
            for child in self.store.children(namespace, owner)
        )

    # -- inputs ----------------------------------------------------------------------------

    async def _secrets(
        self, namespace: str, references: Sequence[render.SecretReference]
    ) -> tuple[list[str], dict[str, str]]:
        """Missing Secrets or keys ("name" or "name/key"), and each found Secret's
        resourceVersion (the renderer folds them into the pod template's checksum, so a
        rotated Secret rolls the pods).

        Which one is missing is for the operator's log only: status and Events name every
        reference instead (`_waiting_message`), so they never say whether a Secret or a
        guessed key exists.
        """
        missing: list[str] = []
        versions: dict[str, str] = {}
        for reference in references:
            if set(reference.usages) <= {USAGE_TLS}:
                # An Ingress TLS Secret does not keep pods from starting, and cert-manager
                # usually issues it only after the Ingress exists: never wait for it.
                continue
            found = await self._secret_keys(namespace, reference.name)
            if found is None:
                if not reference.optional:
                    missing.append(reference.name)
                continue
            versions[reference.name] = found.version
            if not reference.optional:
                missing.extend(
                    f"{reference.name}/{k}" for k in sorted(reference.keys) if k not in found.keys
                )
        return missing, versions

    async def _secret_keys(self, namespace: str, name: str) -> SecretKeys | None:
        async with _step("read", f"Secret/{name}"):
            return await self._secret_lookup.get(namespace, name)

    # -- writes ----------------------------------------------------------------------------

    async def _converge(
        self, body: JSON, desired: Sequence[JSON], missing: Sequence[str], monitoring: bool
    ) -> tuple[list[str], list[str], list[str], list[Conflict], frozenset[tuple[str, str, str]]]:
        """Apply what differs, prune what is no longer wanted; return what changed, the
        names held by objects we do not control, and the signature of every child as this
        pass verified or wrote it (`Verified`).

        Never adopts: only an object whose controller reference carries this service's uid
        is written (server-side apply, forced) or deleted. A name nobody holds is taken with
        a create, which fails if someone else got there first; a name held by anything else
        is left alone and reported (`Conflict`), so deleting the ProductionService can only
        ever collect what it created.
        """
        metadata = body["metadata"]
        namespace, name, uid = metadata["namespace"], metadata["name"], metadata["uid"]
        owner = {
            "apiVersion": body["apiVersion"],
            "kind": body["kind"],
            "name": name,
            "uid": uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
        spec_settled = (body.get("status") or {}).get("observedGeneration") == metadata.get(
            "generation"
        )
        applied: list[str] = []
        drifted: list[str] = []
        conflicts: list[Conflict] = []
        seen: set[tuple[str, str, str]] = set()
        wanted_keys = set()
        writes: list[_Write] = []
        for obj in desired:
            kind, child = obj["kind"], obj["metadata"]["name"]
            if obj["apiVersion"] == MONITORING_API and not monitoring:
                continue
            wanted_keys.add((kind, child))
            resource = self._resources[kind]
            label = f"{kind}/{child}"
            live = self.store.get(kind, namespace, child)
            exists = live is not None
            if live is not None and controller_uid(live) != uid:
                conflicts.append(self._conflict(kind, child, _controller_text(live)))
                continue
            if live is None and not self.store.covers(kind):
                # A kind the store does not hold in full (the operator may not list it
                # everywhere): one read by name tells a free name from one another team's
                # object holds. Where the store is complete, an absent name is free, and
                # should the watch lag behind a new object, the create below fails on it.
                async with _step("read", label):
                    found = await self.client.get_metadata(resource.path(namespace, child))
                if found is not None and controller_uid(found) != uid:
                    conflicts.append(self._conflict(kind, child, _controller_text(found)))
                    continue
                # Ours but unlabelled (someone removed the label): the apply restores it.
                exists = found is not None
            if kind == "Deployment" and missing:
                # Hold the Deployment back while a Secret it needs is missing: the running
                # version keeps serving instead of rolling into pods that cannot start.
                if live is not None:
                    seen.add((kind, child, _signature(live)))
                continue
            target = with_applied_hash(
                {**obj, "metadata": {**obj["metadata"], "ownerReferences": [owner]}}
            )
            if live is not None and contains(live, target):
                seen.add((kind, child, _signature(live)))
                continue
            writes.append(_Write(resource, child, label, target, exists, live is not None))
        # The children's writes go out together: none refers to another by anything the
        # apiserver checks, and a new service's Deployment exists one round trip after its
        # ProductionService instead of four. Each answer is recorded; then the first error,
        # if any, fails the pass (the queue retries it).
        answers = await asyncio.gather(
            *(self._write(namespace, write) for write in writes), return_exceptions=True
        )
        failure: BaseException | None = None
        for write, answer in zip(writes, answers, strict=True):
            if isinstance(answer, BaseException):
                failure = failure or answer
                continue
            if answer is None:
                conflicts.append(self._conflict(write.kind, write.name, "unknown"))
                continue
            self.store.put(answer, written=True)
            seen.add((write.kind, write.name, _signature(answer)))
            if write.existed and spec_settled:
                drifted.append(write.label)
                self.metrics.drift_corrections.labels(kind=write.kind).inc()
            else:
                applied.append(write.label)
            self.metrics.children_applied.labels(kind=write.kind).inc()
        if failure is not None:
            raise failure
        pruned = []
        for live in list(self.store.children(namespace, name)):
            kind, child = live["kind"], live["metadata"]["name"]
            if (kind, child) in wanted_keys:
                continue
            if (
                kind not in self._resources
                or (kind == "Deployment" and missing)
                or controller_uid(live) != uid
            ):
                seen.add((kind, child, _signature(live)))
                continue
            async with _step("delete", f"{kind}/{child}"):
                deleted = await self.client.delete(
                    self._resources[kind], namespace, child, live["metadata"]["uid"]
                )
            if deleted:
                pruned.append(f"{kind}/{child}")
                self.metrics.children_pruned.labels(kind=kind).inc()
            self.store.remove(kind, namespace, child, written=True)
        return applied, drifted, pruned, conflicts, frozenset(seen)

    async def _write(self, namespace: str, write: _Write) -> JSON | None:
        """Apply to a child this service controls, or create it under a free name (None
        when someone took the name first)."""
        if write.exists:
            return await self._apply(write.resource, write.target, write.label)
        return await self._create(write.resource, namespace, write.target, write.label)

    async def _apply(self, resource: Resource, target: JSON, label: str) -> JSON:
        """Server-side apply (forced) to a child this service controls.

        A child created but not yet claimed for apply (the operator stopped between the two
        requests) still has our fields under a create's "Update" entry, which keeps a field
        the rendering dropped: claim them now and apply again, so the removal happens.
        """
        manager = self.config.field_manager
        async with _step("apply", label):
            answer = await self.client.apply(resource, target, field_manager=manager)
            if _created_unclaimed(answer, manager) and await self.client.claim_fields_for_apply(
                resource, answer, field_manager=manager
            ):
                answer = await self.client.apply(resource, target, field_manager=manager)
        return answer

    @staticmethod
    def _conflict(kind: str, name: str, controller: str) -> Conflict:
        logger.debug(
            "child name held by another object", extra={"child": f"{kind}/{name}", "by": controller}
        )
        return Conflict(kind, name, controller)

    async def _create(
        self, resource: Resource, namespace: str, target: JSON, label: str
    ) -> JSON | None:
        """Create a child under a free name; None when someone took the name first."""
        manager = self.config.field_manager
        try:
            async with _step("create", label):
                created = await self.client.create(
                    resource, namespace, target, field_manager=manager
                )
        except StepError as error:
            if error.cause.conflict:
                return None
            raise
        # The create's fields sit under an "Update" entry until the first apply that
        # changes this child claims them for apply (`_apply`): one write less per child
        # for the many children never changed after their creation.
        return created

    def _policy_inputs(self, namespace: str) -> tuple[Any, ...]:
        """What the evaluation depends on besides the spec: the policies' version and the
        Namespace's (its labels select policies and set the environment floor)."""
        if self.policies is None:
            return ()
        namespace_object = self.policies.namespace(namespace) or {}
        version = (namespace_object.get("metadata") or {}).get("resourceVersion")
        # An exception stops applying when it expires, with no event: count the expired.
        now = datetime.now(UTC)
        expired = sum(
            1
            for exception in self.policies.current().exceptions_in(namespace)
            if exception.expires <= now
        )
        return (self.policies.version, version, expired)

    def _evaluate(self, desired: Sequence[JSON], namespace: str) -> list[rules.ObjectReport]:
        """The Deployment's report (status reads no other): the other children are its
        context, not checked on their own."""
        checked = [obj for obj in desired if obj["kind"] == "Deployment"] or list(desired)
        if self.policies is None:
            return rules.evaluate(checked, related=desired, config=self.config.rules_config)
        namespace_object = self.policies.namespace(namespace)
        inputs = [*desired, *([namespace_object] if namespace_object is not None else [])]
        return rules.evaluate(
            checked, related=inputs, policies=self.policies.current(), now=datetime.now(UTC)
        )

    def _summarise(
        self,
        desired: Sequence[JSON],
        monitoring: bool,
        conflicts: Sequence[Conflict] = (),
        namespace: str = "",
    ) -> Summary:
        """What status needs from the rendered objects and their evaluation (the children
        listed are ours: a name another object holds is not among them)."""
        taken = {(c.kind, c.name) for c in conflicts}
        reports = self._evaluate(desired, namespace)
        report = next(
            (r for r in reports if r.object.kind == "Deployment"), reports[0] if reports else None
        )
        return Summary(
            deployment=next(o["metadata"]["name"] for o in desired if o["kind"] == "Deployment"),
            monitored=any(o["apiVersion"] == MONITORING_API for o in desired),
            children=tuple(
                {
                    "apiVersion": obj["apiVersion"],
                    "kind": obj["kind"],
                    "name": obj["metadata"]["name"],
                }
                for obj in desired
                if (monitoring or obj["apiVersion"] != MONITORING_API)
                and (obj["kind"], obj["metadata"]["name"]) not in taken
            ),
            compliance=self._compliance(report),
            compliance_condition=None if report is None else _compliance_condition(report),
            failing=()
            if report is None or report.compliant
            else tuple(sorted({f.rule_id for f in report.findings if f.result == "fail"})),
        )

    def _conditions(
        self,
        body: JSON,
        summary: Summary,
        waiting: str,
        conflicts: Sequence[Conflict],
        monitoring: bool,
    ) -> tuple[list[cond.Condition], JSON]:
        namespace = body["metadata"]["namespace"]
        wanted: list[cond.Condition] = []
        live = self.store.get("Deployment", namespace, summary.deployment) or {}
        if any(c.kind == "Deployment" for c in conflicts):
            live = {}  # another object's rollout is not ours to report
        rollout = _rollout(live)
        if conflicts:
            message = _conflict_message(conflicts)
            wanted.append(cond.Condition(cond.READY, False, NAME_CONFLICT, message))
            wanted.append(cond.Condition(cond.STALLED, True, NAME_CONFLICT, message))
        elif waiting:
            wanted.append(cond.Condition(cond.READY, False, SECRET_MISSING, waiting))
            wanted.append(cond.Condition(cond.STALLED, True, SECRET_MISSING, waiting))
        elif rollout.stalled:
            wanted.append(
                cond.Condition(cond.READY, False, "ProgressDeadlineExceeded", rollout.message)
            )
            wanted.append(
                cond.Condition(cond.STALLED, True, "ProgressDeadlineExceeded", rollout.message)
            )
        elif rollout.ready:
            wanted.append(cond.Condition(cond.READY, True, "Available", rollout.message))
        else:
            wanted.append(cond.Condition(cond.READY, False, ROLLING_OUT, rollout.message))
            wanted.append(cond.Condition(cond.RECONCILING, True, ROLLING_OUT, rollout.message))
        if summary.monitored and not monitoring:
            wanted.append(
                cond.Condition(
                    cond.MONITORING,
                    False,
                    MONITORING_CRD_MISSING,
                    "the ServiceMonitor/PrometheusRule CRDs (monitoring.coreos.com/v1) are not "
                    "installed; they will be applied when the CRDs appear",
                )
            )
        elif summary.monitored:
            wanted.append(cond.Condition(cond.MONITORING, True, "Applied", "monitoring applied"))
        if summary.compliance_condition is not None:
            wanted.append(summary.compliance_condition)
        return wanted, {
            "replicas": rollout.desired,
            "readyReplicas": rollout.available,
        }

    def _compliance(self, report: rules.ObjectReport | None) -> JSON | None:
        if report is None:
            return None
        failing = [f for f in report.findings if f.result != "pass"]
        findings = [
            {
                "ruleId": f.rule_id,
                "severity": f.severity.value,
                "result": f.result.value,
                "path": f.path,
                "message": f.message[:256],
            }
            for f in failing[: self.config.status_max_findings]
        ]
        counts = report.counts
        # Exactly the CRD's status schema: a field the apiserver prunes would make every
        # comparison differ and every pass write.
        return {
            "compliant": report.compliant,
            "errors": counts.failed,
            "warnings": counts.warned,
            "skipped": counts.skipped,
            "score": round(report.score),
            "findings": findings,
            "omittedFindings": max(0, len(failing) - len(findings)),
        }

    async def _write_status(
        self,
        body: JSON,
        wanted: list[cond.Condition],
        *,
        children: list[JSON] | None,
        compliance: JSON | None,
        deployment: JSON | None = None,
    ) -> bool:
        """Patch status when it differs from what the object has; True if written."""
        metadata = body["metadata"]
        current = body.get("status") or {}
        generation = int(metadata.get("generation") or 0)
        status: JSON = {
            "observedGeneration": generation,
            "conditions": cond.merge_conditions(
                current.get("conditions"), wanted, generation=generation, now=cond.now_rfc3339()
            ),
        }
        if children is not None:
            status["children"] = children
        if compliance is not None:
            status["compliance"] = compliance
        if deployment is not None:
            status.update(deployment)
        if all(current.get(k) == v for k, v in status.items()):
            return False
        # Merge patch: keys we no longer set are nulled so stale data does not linger.
        patch = {k: None for k in current if k not in status}
        patch.update(status)
        try:
            async with _step("write status of", f"{api.KIND}/{metadata['name']}"):
                answer = await self.client.patch_status(
                    PRODUCTION_SERVICE, metadata["namespace"], metadata["name"], patch
                )
        except StepError as error:
            if error.cause.not_found:
                return False  # deleted while we worked
            raise
        self.store.put(answer, written=True)
        self._status_written[(metadata["namespace"], metadata["name"])] = self.clock()
        return True

    async def _announce(
        self,
        body: JSON,
        *,
        before: Mapping[str, Any],
        applied: Sequence[str],
        drifted: Sequence[str],
        pruned: Sequence[str],
        missing: Sequence[str],
        waiting: str,
        conflicts: Sequence[Conflict],
        summary: Summary,
        generation: int,
    ) -> None:
        """Events for what changed; each one once per transition, never per resync. A new
        service's first children are no news (its status lists them): "Applied" is for a
        change of spec or a child recreated."""
        if applied and before.get("observedGeneration") is not None:
            await self.events.normal(body, "Applied", "applied " + ", ".join(applied))
        if drifted:
            await self.events.normal(
                body, "DriftCorrected", "restored " + ", ".join(drifted) + " to the rendered spec"
            )
        if pruned:
            await self.events.normal(body, "Pruned", "deleted " + ", ".join(pruned))
        previous = cond.find(before.get("conditions"), cond.STALLED)
        if conflicts:
            message = _conflict_message(conflicts)
            if previous.get("reason") != NAME_CONFLICT or previous.get("message") != message:
                await self.events.warning(body, NAME_CONFLICT, message)
        if missing and previous.get("reason") != SECRET_MISSING:
            # The precise verdict is for the operator's log (not tenant-visible); status
            # and the Event name the references only.
            logger.info("referenced Secrets or keys not found", extra={"missing": list(missing)})
            await self.events.warning(
                body, SECRET_MISSING, waiting + "; the Deployment is held back until they exist"
            )
        was_compliant = cond.find(before.get("conditions"), cond.POLICY_COMPLIANT).get("status")
        if summary.failing and (
            was_compliant != "False" or before.get("observedGeneration") != generation
        ):
            await self.events.warning(
                body,
                "PolicyViolation",
                "failing error-severity rules: " + ", ".join(summary.failing),
            )

    async def _report_error(self, body: JSON, error: Exception) -> None:
        """An unexpected failure: logged in full, with context; status and the Event get a
        fixed message naming the step, the HTTP status and our own object only (the
        apiserver's text can describe other objects)."""
        reason = type(error.cause if isinstance(error, StepError) else error).__name__
        if isinstance(error, StepError):
            message = error.safe_message
        else:
            message = "internal error; the operator's log has the details"
        logger.error("reconcile failed", exc_info=error)
        try:
            await self._write_status(
                body,
                [
                    cond.Condition(cond.READY, False, "ReconcileError", message),
                    cond.Condition(
                        cond.RECONCILING, True, "RetryingAfterError", f"{reason}: {message}"
                    ),
                ],
                children=None,
                compliance=None,
            )
            await self.events.warning(body, "ReconcileError", f"{reason}: {message}; retrying")
        except Exception:  # the API may be what failed; the retry will report again
            logger.warning("could not report the reconcile error", exc_info=True)


def _created_unclaimed(answer: Mapping[str, Any], manager: str) -> bool:
    """Whether `manager` still holds fields of the object as an "Update" (a create)."""
    return any(
        entry.get("manager") == manager and entry.get("operation") == "Update"
        for entry in (answer.get("metadata") or {}).get("managedFields") or ()
    )


def _waiting_message(references: Sequence[render.SecretReference]) -> str:
    """Every Secret reference a pass waits for, the same whichever one is missing."""
    named = [
        f"{r.name} ({', '.join(r.keys)})" if r.keys else r.name
        for r in references
        if not r.optional and not set(r.usages) <= {USAGE_TLS}
    ]
    return "waiting for the referenced Secrets and keys to exist: " + ", ".join(named)


def _conflict_message(conflicts: Sequence[Conflict]) -> str:
    return (
        "names already taken by objects this ProductionService does not control: "
        + ", ".join(c.describe() for c in conflicts)
        + "; they are left untouched (rename the ProductionService or remove them)"
    )


def _digest(value: Any) -> str:
    return hashlib.blake2b(
        json.dumps(value, sort_keys=True, separators=(",", ":")).encode(), digest_size=16
    ).hexdigest()


def _spec_key(body: Mapping[str, Any]) -> tuple[str, int, str]:
    """Everything of a ProductionService the renderer reads, in a few bytes: the spec
    through its generation (the apiserver raises it on every spec change, and only then),
    labels and annotations through a digest. Our own status writes leave it unchanged."""
    metadata = body.get("metadata") or {}
    return (
        str(metadata.get("uid") or ""),
        int(metadata.get("generation") or 0),
        _digest([metadata.get("labels"), metadata.get("annotations")]),
    )


def _signature(child: Mapping[str, Any]) -> str:
    """A child's identity for `Verified`: its resourceVersion, except for a Deployment,
    whose status changes on every rollout step. Its spec is covered by the generation
    (the apiserver raises it on every spec change), its metadata by a digest."""
    metadata = child.get("metadata") or {}
    if child.get("kind") != "Deployment" or not metadata.get("generation"):
        return str(metadata.get("resourceVersion") or "")
    return _digest(
        [
            metadata.get("uid"),
            metadata.get("generation"),
            metadata.get("labels"),
            metadata.get("annotations"),
            metadata.get("ownerReferences"),
            metadata.get("deletionTimestamp"),
        ]
    )


def with_applied_hash(obj: JSON) -> JSON:
    """`obj` with an annotation hashing its whole content.

    Comparing "does live contain desired" sees changed and added fields but not removed
    ones (a nodeSelector dropped from the spec is simply absent from desired). The hash
    changes whenever anything in the rendered object changes, removals included, and it is
    itself part of what live must contain — so any change is applied, and SSA removes the
    fields we no longer set.
    """
    digest = hashlib.sha256(
        json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()[:20]
    metadata = dict(obj["metadata"])
    metadata["annotations"] = {**(metadata.get("annotations") or {}), APPLIED_HASH: digest}
    return {**obj, "metadata": metadata}


@dataclass(frozen=True)
class Rollout:
    """What the Deployment's status says about the rollout."""

    ready: bool
    stalled: bool
    desired: int
    available: int
    message: str


def _rollout(deployment: Mapping[str, Any]) -> Rollout:
    """Ready when the controller has seen the newest spec and every replica is updated and
    available with no old ones left (kubectl rollout status' rule)."""
    if not deployment:
        return Rollout(False, False, 0, 0, "the Deployment does not exist yet")
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    desired = int(spec.get("replicas", 1))
    updated = int(status.get("updatedReplicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    total = int(status.get("replicas") or 0)
    generation = int((deployment.get("metadata") or {}).get("generation") or 0)
    observed = int(status.get("observedGeneration") or 0)
    for condition in status.get("conditions") or ():
        if (
            condition.get("type") == "Progressing"
            and condition.get("reason") == "ProgressDeadlineExceeded"
        ):
            return Rollout(False, True, desired, available, str(condition.get("message", "")))
    if observed < generation:
        return Rollout(False, False, desired, available, "waiting for the Deployment controller")
    if updated < desired:
        return Rollout(False, False, desired, available, f"{updated} of {desired} replicas updated")
    if total > updated:
        return Rollout(
            False, False, desired, available, f"{total - updated} old replicas pending termination"
        )
    if available < desired:
        return Rollout(
            False, False, desired, available, f"{available} of {desired} replicas available"
        )
    return Rollout(True, False, desired, available, f"{available} of {desired} replicas available")


def _compliance_condition(report: rules.ObjectReport) -> cond.Condition:
    counts = report.counts
    if report.compliant:
        message = f"no error-severity findings ({counts.warned} warnings)"
        return cond.Condition(cond.POLICY_COMPLIANT, True, "Compliant", message)
    failing = sorted({f.rule_id for f in report.findings if f.result == "fail"})
    message = f"{len(failing)} error-severity rules fail: " + ", ".join(failing)
    return cond.Condition(cond.POLICY_COMPLIANT, False, "ErrorFindings", message)
