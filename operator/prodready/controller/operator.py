"""The controller: kopf watches, a work queue reconciles, Leases say who reconciles what.

kopf owns the event loop, the watches, the signals and the start-up/clean-up order. Its
watch events only update the process's object store (`prodready.kube.store`), whose
changes enqueue keys here; the reconciling happens in our workers, which run on the
leader only (one Lease), or, with `PRODREADY_SHARDS` above 1, on every replica for the
namespaces of the shards it holds (`prodready.kube.shards`). Graceful shutdown is kopf's:
on SIGTERM it stops
watching and runs the clean-up handler below, which stops taking work, lets in-flight
reconciles finish within the configured timeout, hands the Lease over and closes clients.
The admission webhook and the audit run beside the controller in the same process, as its
`Companion`; `prodready.app` assembles the three (this package imports neither).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import kopf

from prodready import api, render, rules
from prodready.api.policy import EXCEPTION_KIND, POLICY_KIND
from prodready.api.resource import Resource
from prodready.config import Settings
from prodready.controller.queue import DONE, ReconcileResult, WorkQueue
from prodready.controller.reconciler import (
    MONITORING_API,
    Reconciler,
    ReconcilerConfig,
    ServiceKey,
)
from prodready.kube.access import metrics_access
from prodready.kube.client import KubeClient
from prodready.kube.events import EventRecorder
from prodready.kube.leader import LeaderElector, default_identity
from prodready.kube.login import login as login_to_cluster
from prodready.kube.policies import LivePolicies
from prodready.kube.shards import ShardCoordinator
from prodready.kube.store import (
    PRODUCTION_SERVICE,
    Change,
    ObjectStore,
    owner_name,
    register_watches,
    seed,
)
from prodready.observability.health import HealthServer
from prodready.observability.metrics import Metrics
from prodready.rules.grants import GrantPolicy
from prodready.rules.policy import default_policy

logger = logging.getLogger("prodready.operator")
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
WORKERS = 8
CANCEL_GRACE_SECONDS = 2.0
"""How long a lost shard's cancelled reconciles get to unwind before the shard is let go."""
CONTROLLER_RESOURCES: tuple[Resource, ...] = (PRODUCTION_SERVICE, *render.CHILD_KINDS)
"""What the controller reads from the store: ProductionServices and the kinds they own."""


class Companion(Protocol):
    """What runs beside the controller in its process (the admission webhook and the audit,
    wired by `prodready.app`): started once the caches are warm, stopped at clean-up."""

    async def start(self) -> None:
        """Start serving; /readyz says ready only after this returned."""

    async def stop(self) -> None:
        """Stop (idempotent)."""


CompanionFactory = Callable[[KubeClient, rules.RulesConfig | None], Companion]
"""Builds the companion from the operator's client and its rules configuration."""


def own_namespace() -> str:
    """The namespace the operator runs in (for its Lease)."""
    if os.environ.get("POD_NAMESPACE"):
        return os.environ["POD_NAMESPACE"]
    with contextlib.suppress(OSError):
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip()
    return "default"


@dataclass
class Operator:
    """Everything the operator holds between kopf's start-up and clean-up."""

    settings: Settings
    metrics: Metrics = field(default_factory=Metrics)
    store: ObjectStore = field(default_factory=ObjectStore)
    # What the store is seeded with: at least CONTROLLER_RESOURCES; `prodready.app` adds
    # what the webhook and the audit read, so that one LIST per kind serves all three.
    watched: tuple[Resource, ...] = CONTROLLER_RESOURCES
    queue: WorkQueue[ServiceKey] = field(default_factory=WorkQueue)
    client: KubeClient | None = None
    reconciler: Reconciler | None = None
    # The ReadinessPolicies and exceptions in force, compiled once for the reconciler, the
    # webhook and the audit (created at start-up, with the rules configuration's default).
    policies: LivePolicies | None = None
    elector: LeaderElector | None = None
    shards: ShardCoordinator | None = None  # PRODREADY_SHARDS > 1: who reconciles what
    # Names this replica in its Leases and in the User-Agent of its requests (the
    # apiserver's audit log tells the replicas' writes apart by it).
    identity: str = field(default_factory=default_identity)
    # Reconciles running per shard, cancelled when the shard is lost.
    _in_flight: dict[int, set[asyncio.Task[ReconcileResult]]] = field(default_factory=dict)
    health: HealthServer | None = None
    companion_factory: CompanionFactory | None = None
    companion: Companion | None = None  # admission webhook + audit (prodready.app)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    workers: asyncio.Task[None] | None = None
    api_reachable: bool = False
    watching: bool = False

    def __post_init__(self) -> None:
        self.store.subscribe(self.on_change)

    # -- kopf activities -------------------------------------------------------------------

    async def startup(self, settings: kopf.OperatorSettings) -> None:
        """Log in, start the health server and (when leading) the workers."""
        self.client = KubeClient.login(settings, metrics=self.metrics)
        self.client.user_agent = f"prodready ({self.identity})"
        rules_config = (
            rules.load_config(self.settings.rules_config_file)
            if self.settings.rules_config_file
            else None
        )
        self.policies = LivePolicies(self.store, default=default_policy(rules_config))
        self.reconciler = Reconciler(
            client=self.client,
            store=self.store,
            events=EventRecorder(self.client),
            metrics=self.metrics,
            policies=self.policies,
            config=ReconcilerConfig(
                field_manager=self.settings.field_manager,
                status_max_findings=self.settings.status_max_findings,
                rules_config=rules_config,
                grants=GrantPolicy.from_settings(self.settings),
            ),
        )
        await seed(self.client, self.store, self.watched, self.settings.namespaces)
        self.watching = True
        logger.info(
            "store warm",
            extra={
                "services": self.store.count([api.KIND]),
                "objects": len(self.store),
                "namespaces": len(self.store.namespaces()),
            },
        )
        # The admission webhook and the in-cluster audit: serving before /readyz says ready.
        if self.companion_factory is not None:
            self.companion = self.companion_factory(self.client, rules_config)
            await self.companion.start()
        client = self.client
        self.health = HealthServer(
            self.settings.health_host,
            self.settings.health_port,
            self.metrics,
            self.ready,
            metrics_access=(
                (lambda token: metrics_access(client, token))
                if self.settings.metrics_auth
                else None
            ),
        )
        await self.health.start()
        self.tasks.append(asyncio.create_task(self._probe_api(), name="api-probe"))
        self.tasks.append(asyncio.create_task(self._resync(), name="resync"))
        self.tasks.append(asyncio.create_task(self._freeze_when_warm(), name="gc-freeze"))
        self.store.freeze()  # what start-up loaded (modules, clients, the seeded store) stays
        if self.settings.standalone:
            await self.start_leading()
        elif self.settings.shards > 1:
            self.shards = ShardCoordinator(
                client=self.client,
                namespace=own_namespace(),
                lease_name=self.settings.lease_name,
                shards=self.settings.shards,
                identity=self.identity,
            )
            self._start_workers(())  # keys come with the shards
            self.tasks.append(
                asyncio.create_task(
                    self.shards.run(self.shards_acquired, self.shards_lost), name="shards"
                )
            )
        else:
            self.elector = LeaderElector(
                self.client, own_namespace(), self.settings.lease_name, identity=self.identity
            )
            self.tasks.append(
                asyncio.create_task(
                    self.elector.run(self.start_leading, self.stop_leading), name="leader"
                )
            )

    async def cleanup(self) -> None:
        """Graceful stop: no new work, in-flight reconciles finish, clients closed."""
        logger.info("shutting down", extra={"timeout": self.settings.shutdown_timeout_seconds})
        await self._stop_workers(self.settings.shutdown_timeout_seconds)
        if self.companion is not None:
            await self.companion.stop()
        if self.elector is not None:
            await self.elector.stop()
        if self.shards is not None:
            # Stop its loop first, so that nothing is taken after everything is handed back.
            for task in self.tasks:
                if task.get_name() == "shards":
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            await self.shards.stop()
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.health is not None:
            await self.health.stop()
        if self.client is not None:
            await self.client.close()
        logger.info("stopped")

    async def start_leading(self) -> None:
        """Begin reconciling: every known ProductionService is looked at once."""
        self._start_workers(self.store.keys(api.KIND))

    def _start_workers(self, keys: Iterable[ServiceKey]) -> None:
        assert self.reconciler is not None
        self.queue = WorkQueue()
        for key in keys:
            self.queue.add(key)
        reconcile = self.reconciler.reconcile if self.shards is None else self._reconcile_owned
        self.workers = asyncio.create_task(
            self.queue.run(reconcile, workers=WORKERS), name="workers"
        )

    def is_leading(self) -> bool:
        """Whether this replica audits now (the audit writes only while it does): the
        leader, or with shards the holder of shard 0 (the audit is not sharded)."""
        if self.shards is not None:
            return self.shards.holds(0)
        return self.workers is not None

    def owns(self, namespace: str) -> bool:
        """Whether this replica reconciles the services of `namespace` now."""
        return self.shards is None or self.shards.owns(namespace)

    async def shards_acquired(self, shards: frozenset[int]) -> None:
        """Shards became ours: look at every service of their namespaces once."""
        assert self.shards is not None
        keys = [key for key in self.store.keys(api.KIND) if self.shards.shard_for(key[0]) in shards]
        for key in keys:
            self.queue.add(key)
        logger.info(
            "reconciling shards",
            extra={"shards": sorted(shards), "held": sorted(self.shards.held), "keys": len(keys)},
        )

    async def shards_lost(self, shards: frozenset[int]) -> None:
        """Shards are no longer ours: cancel their reconciles in flight (the new holder
        starts over; server-side apply makes a repeated write harmless) before the Lease
        can be anyone else's. Their queued keys are skipped when they come up."""
        cancelled = [task for shard in shards for task in self._in_flight.pop(shard, ())]
        for task in cancelled:
            task.cancel()
        if cancelled:
            # Well inside the 5 s between a holder's renew deadline and the Lease's expiry.
            await asyncio.wait(cancelled, timeout=CANCEL_GRACE_SECONDS)
        logger.info("stopped reconciling shards", extra={"shards": sorted(shards)})

    async def _reconcile_owned(self, key: ServiceKey) -> ReconcileResult:
        """Reconcile `key` if its namespace is in a shard this replica holds, as a task
        that `shards_lost` can cancel."""
        assert self.shards is not None
        assert self.reconciler is not None
        shard = self.shards.shard_for(key[0])
        if not self.shards.holds(shard):
            return DONE
        task = asyncio.create_task(self.reconciler.reconcile(key))
        in_flight = self._in_flight.setdefault(shard, set())
        in_flight.add(task)
        try:
            return await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # we are being stopped ourselves
            return DONE  # the shard was lost mid-reconcile
        finally:
            in_flight.discard(task)

    async def stop_leading(self) -> None:
        """Another replica leads now: stop at once (in-flight reconciles finish)."""
        await self._stop_workers(self.settings.shutdown_timeout_seconds)

    async def _stop_workers(self, grace: float) -> None:
        self.queue.close()
        if self.workers is None:
            return
        try:
            async with asyncio.timeout(grace):
                await asyncio.shield(self.workers)
        except TimeoutError:
            logger.warning("in-flight reconciles did not finish in time; cancelling them")
            self.workers.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.workers
        self.workers = None

    async def ready(self) -> bool:
        """Readiness: the API answers and the initial listing of our kinds was received."""
        return self.api_reachable and self.watching

    async def _probe_api(self) -> None:
        assert self.client is not None
        previous: bool | None = None
        while True:
            reachable = await self.client.ping()
            # Say why /readyz flips: an apiserver that hangs (rather than refusing
            # connections) fails no request until the client's timeout, so this is the
            # only trace of the outage in the log.
            if previous and not reachable:
                logger.warning("the apiserver does not answer /readyz; reporting not ready")
            elif previous is False and reachable:
                logger.info("the apiserver answers again")
            previous = self.api_reachable = reachable
            await asyncio.sleep(2.0)

    async def _freeze_when_warm(self) -> None:
        """Once the first pass over every service is done, move what the process holds
        into the collector's permanent generation (`ObjectStore.freeze` says why), so
        the cost is at most the cyclic garbage alive at this one moment.
        """
        while True:  # polled: the queue has no "drained" event, and once a second is plenty
            await asyncio.sleep(1.0)
            started = self.shards.held if self.shards is not None else self.workers is not None
            if started and self.queue.idle:
                break
        logger.debug("heap frozen", extra={"objects": self.store.freeze()})

    async def _resync(self) -> None:
        # One loop for all objects, not a timer per object: at thousands of services a
        # per-object timer is thousands of tasks waking up on their own schedules.
        while True:
            await asyncio.sleep(self.settings.resync_interval_seconds)
            for key in self.store.keys(api.KIND):
                if self.owns(key[0]):
                    self.queue.add(key)

    # -- kopf watch events -----------------------------------------------------------------

    def on_change(self, change: Change) -> None:
        """The store changed: reconcile the ProductionService it concerns, if any.

        A ProductionService itself, unless only its status changed (our own status write
        coming back); the owner of a child, on any change (rollout progress, drift, deletion).
        What the reconciler wrote itself is no news to it (the watch event follows).
        """
        if change.written:
            return
        if change.kind == api.KIND:
            previous, current = change.previous, change.current
            if current is None:
                return  # deleted: owner references let the garbage collector remove children
            if previous is not None and _only_status_changed(previous, current):
                return
            if self.owns(change.namespace):
                self.queue.add((change.namespace, change.name))
            return
        if change.kind in POLICY_KINDS and change.content_changed:
            # What a service's PolicyCompliant says may have changed: a policy (any
            # service), an exception (its namespace's), a Namespace's labels (its own).
            scope = None if change.kind == POLICY_KIND else change.namespace or change.name
            if change.kind == "Namespace" and not _labels_changed(change):
                return
            for key in self.store.keys(api.KIND):
                if (scope is None or key[0] == scope) and self.owns(key[0]):
                    self.queue.add(key)
            return
        body = change.current if change.current is not None else change.previous
        owner = owner_name(body) if body is not None else None
        if owner is not None and self.owns(change.namespace):
            self.queue.add((change.namespace, owner))

    def on_monitoring_crd_event(self) -> None:
        """The monitoring CRDs appeared or went: look at every service again."""
        if self.reconciler is not None:
            self.reconciler.forget_discovery()
        for key in self.store.keys(api.KIND):
            if self.owns(key[0]):
                self.queue.add(key)


POLICY_KINDS = frozenset({POLICY_KIND, EXCEPTION_KIND, "Namespace"})


def _labels_changed(change: Change) -> bool:
    def labels(body: Mapping[str, Any] | None) -> Any:
        return ((body or {}).get("metadata") or {}).get("labels")

    return bool(labels(change.previous) != labels(change.current))


def _only_status_changed(before: Mapping[str, Any], after: Mapping[str, Any]) -> bool:
    old, new = before.get("metadata") or {}, after.get("metadata") or {}
    return (
        old.get("generation") == new.get("generation")
        and old.get("labels") == new.get("labels")
        and old.get("annotations") == new.get("annotations")
        and old.get("deletionTimestamp") == new.get("deletionTimestamp")
    )


def build_registry(operator: Operator) -> kopf.OperatorRegistry:
    """The controller's kopf handlers bound to one Operator, and the watches of every kind
    it stores (`Operator.watched`). No global registry: tests build their own;
    `prodready.app` adds the audit's watch on the report CRDs to it."""
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def _login(**_: Any) -> kopf.ConnectionInfo | None:
        # The login our client uses: one notion of "the cluster" in the process. kopf runs
        # a sync handler in a thread (an exec plugin is a subprocess), and again when the
        # credential's expiration passes or the apiserver answers 401.
        return login_to_cluster()

    @kopf.on.startup(registry=registry)
    async def _startup(settings: kopf.OperatorSettings, **_: Any) -> None:
        await operator.startup(settings)

    @kopf.on.cleanup(registry=registry)
    async def _cleanup(**_: Any) -> None:
        await operator.cleanup()

    # One watch per stored kind feeds the store; the operator hears of changes as its
    # subscriber (and so does whatever `prodready.app` subscribes).
    register_watches(registry, operator.watched, operator.store)

    monitoring_group = MONITORING_API.split("/")[0]

    @kopf.on.event(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        when=lambda name, **_: str(name).endswith("." + monitoring_group),
        registry=registry,
    )
    async def _crd(**_: Any) -> None:
        operator.on_monitoring_crd_event()

    return registry


class NoDiffBase(kopf.DiffBaseStorage):
    """kopf keeps a "diff base" to tell on.create/on.update handlers what changed, and
    deep-copies every watch event's body to build it, whether any such handler exists or
    not. This operator has only on.event handlers, so there is nothing to compare, and the
    copy was a visible share of its CPU while services were being created
    (benchmarks/RESULTS.md)."""

    def build(
        self,
        *,
        body: kopf.Body,
        extra_fields: Iterable[kopf.FieldSpec] | None = None,
    ) -> kopf.BodyEssence:
        """Nothing: no handler compares essences."""
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        """Nothing stored."""
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        """Nothing to store."""


def kopf_settings(settings: Settings) -> kopf.OperatorSettings:
    """kopf tuned for an operator that only watches: no persistence, no handler events."""
    config = kopf.OperatorSettings()
    config.persistence.diffbase_storage = NoDiffBase()
    config.peering.standalone = True  # leadership is our Lease, not kopf's peering
    config.posting.enabled = False  # our Events say what happened; kopf's would be noise
    config.watching.server_timeout = 300
    config.watching.client_timeout = 330
    config.networking.request_timeout = 30
    config.process.ultimate_exiting_timeout = settings.shutdown_timeout_seconds + 5
    return config
