"""The admission webhook and the in-cluster audit inside the operator process.

Both read the process's one object store (`prodready.kube.store`), which the operator's
start-up has seeded before `PolicyRuntime` is created. `PolicyRuntime` starts and stops
them with the operator:

* `start()` serves the webhook and starts the audit loop and the certificate reloader;
* `stop()` stops them (in-flight admission reviews finish) and removes a generated
  certificate.

`on_change` (subscribed to the store) marks the namespace of a changed audited object for
the audit; `register_handlers` adds the watch on the report CRDs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import kopf

from prodready import rules
from prodready.api.policy import EXCEPTION_KIND, POLICY_KIND
from prodready.audit.auditor import AuditConfig, Auditor
from prodready.audit.reports import REPORT_CRD_NAMES
from prodready.audit.vap_sync import VapSync
from prodready.config import Settings
from prodready.controller.operator import own_namespace
from prodready.kube.client import KubeClient
from prodready.kube.events import EventRecorder
from prodready.kube.policies import LivePolicies
from prodready.kube.store import AUDITED_KINDS, NAMESPACE, Change, ObjectStore
from prodready.observability.metrics import Metrics
from prodready.rules.grants import GrantPolicy
from prodready.rules.policy import default_policy
from prodready.webhook.admission import evaluation_budget
from prodready.webhook.authorization import Authorizer
from prodready.webhook.certificates import (
    DEFAULT_HOSTS,
    ReloadingTLS,
    SelfSignedCertificate,
    generate_self_signed,
)
from prodready.webhook.server import WebhookServer
from prodready.webhook.tls_rotation import CertificateSource, WebhookCertificates

__all__ = ["PolicyRuntime", "register_handlers"]

logger = logging.getLogger("prodready.policy")
_ANY_ADDRESS = frozenset({"0.0.0.0", "::", ""})  # noqa: S104 - names, not a bind


def default_environment(settings: Settings) -> str | None:
    """The environment assumed for workloads that declare none (None: the engine's default)."""
    return None if settings.environment_default == "unset" else settings.environment_default


class PolicyRuntime:
    """The audit loop and the webhook server of one operator process."""

    def __init__(
        self,
        settings: Settings,
        client: KubeClient,
        metrics: Metrics,
        *,
        store: ObjectStore,
        is_leading: Callable[[], bool],
        rules_config: rules.RulesConfig | None = None,
        policies: LivePolicies | None = None,
    ) -> None:
        """Wire the parts; nothing runs until `start()`."""
        self.settings = settings
        self.client = client
        self.metrics = metrics
        self.rules_config = rules_config
        self.store = store
        # ReadinessPolicies and exceptions, live; a workload none selects (and whose
        # namespace has no prodready.io/enforce|audit label) is audited with the rules
        # configuration, as before policies existed.
        # (The operator's own, when it has them: one compilation for the whole process.)
        self.policies = policies or LivePolicies(store, default=default_policy(rules_config))
        self.auditor = Auditor(
            store=store,
            client=client,
            metrics=metrics,
            events=EventRecorder(client),
            config=AuditConfig(
                field_manager=settings.field_manager,
                interval_seconds=float(settings.audit_interval_seconds),
                max_results=settings.report_max_results,
                rules_config=rules_config,
                environment=default_environment(settings),
                namespaces=tuple(settings.namespaces),
                report_api=settings.report_api,
            ),
            is_leading=is_leading,
            policies=self.policies,
        )
        # ReadinessPolicies with enforceInApiserver: their generated VAPs, kept applied.
        self.vap_sync = VapSync(
            store=store,
            client=client,
            field_manager=settings.field_manager,
            is_leading=is_leading,
        )
        self.tls: ReloadingTLS | None = None
        self._is_leading = is_leading
        # The operator's own certificate (PRODREADY_WEBHOOK_CERT_SECRET_NAME), when configured.
        self.certificates: WebhookCertificates | None = None
        self.webhook: WebhookServer | None = None
        self.generated: SelfSignedCertificate | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Serve the webhook, start the audit (the store is seeded already)."""
        # The store was just filled from fresh LISTs: the first full pass need not prune.
        self.auditor.store_seeded()
        self.tls = await self._own_tls() or self._tls()
        self.webhook = WebhookServer(
            host=self.settings.webhook_host,
            port=self.settings.webhook_port,
            tls=self.tls,
            store=self.store,
            policies=self.policies,
            metrics=self.metrics,
            rules_config=self.rules_config,
            environment=default_environment(self.settings),
            # Its KubeClient is created on the webhook's own loop, at the first review.
            authorizer=Authorizer(
                policy=GrantPolicy.from_settings(self.settings),
                client_factory=lambda: KubeClient.login(metrics=self.metrics),
                # Denied with a clear message before the apiserver gives up on the webhook.
                deadline_seconds=0.7 * self.settings.webhook_timeout_seconds,
            ),
            evaluation_seconds=evaluation_budget(self.settings.webhook_timeout_seconds),
            # For the Secrets a reviewed workload references (key names only).
            client_factory=lambda: KubeClient.login(metrics=self.metrics),
        )
        try:
            await self.webhook.start()
        except BaseException:
            await self.stop()  # a generated certificate does not outlive a failed start
            raise
        self._tasks.append(asyncio.create_task(self.auditor.run(), name="audit"))
        self._tasks.append(asyncio.create_task(self.vap_sync.run(), name="vap-sync"))
        if self.certificates is not None:
            self._tasks.append(asyncio.create_task(self.certificates.run(), name="webhook-cert"))
        if self.generated is None or self.tls.requires_client_certificate:
            self._tasks.append(asyncio.create_task(self.tls.watch(), name="webhook-tls"))

    async def stop(self) -> None:
        """Stop the audit and the webhook; remove a generated certificate (idempotent)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self.webhook is not None:
            await self.webhook.stop()
            self.webhook = None
        if self.certificates is not None:
            self.certificates.close()
            self.certificates = None
        if self.generated is not None:
            shutil.rmtree(self.generated.directory, ignore_errors=True)
            self.generated = None

    async def _own_tls(self) -> ReloadingTLS | None:
        source = CertificateSource.from_settings(self.settings, own_namespace())
        if source is None:
            return None
        self.certificates = WebhookCertificates(
            client=self.client,
            source=source,
            is_leading=self._is_leading,
            client_ca_file=self.settings.webhook_client_ca_file,
        )
        return await self.certificates.start()

    def _tls(self) -> ReloadingTLS:
        settings = self.settings
        client_ca = settings.webhook_client_ca_file
        if settings.webhook_cert_file is not None and settings.webhook_key_file is not None:
            return ReloadingTLS(
                settings.webhook_cert_file, settings.webhook_key_file, client_ca_file=client_ca
            )
        hosts = list(DEFAULT_HOSTS)
        if settings.webhook_host not in _ANY_ADDRESS and settings.webhook_host not in hosts:
            hosts.append(settings.webhook_host)
        directory = Path(tempfile.mkdtemp(prefix="prodready-webhook-"))
        self.generated = generate_self_signed(directory, hosts)
        logger.info(
            "webhook serving a generated self-signed certificate; use its CA as the "
            "webhook configuration's caBundle",
            extra={"ca_file": str(self.generated.ca_file)},
        )
        return ReloadingTLS(
            self.generated.cert_file, self.generated.key_file, client_ca_file=client_ca
        )

    # -- kopf events -----------------------------------------------------------------------

    def on_change(self, change: Change) -> None:
        """The store changed: audit what the change concerns, soon.

        An audited object or an exception: its namespace. A Namespace (its labels select
        policies and set the environment): that namespace. A ReadinessPolicy: everything
        (it may select any namespace). Status and version changes are no change here.
        The controller's own writes count (their watch events come back unchanged).
        """
        self.vap_sync.on_change(change)
        if not change.content_changed:
            return
        if change.kind in AUDITED_KINDS or change.kind == EXCEPTION_KIND:
            self.auditor.mark(change.namespace)
        elif change.kind == NAMESPACE.kind:
            self.auditor.mark(change.name)
        elif change.kind == POLICY_KIND:
            self.auditor.request_full_pass()

    def on_report_crd_event(self) -> None:
        """A report CRD appeared or went: audit everything (and re-read which one to write)."""
        self.auditor.request_full_pass()


def register_handlers(
    registry: kopf.OperatorRegistry, runtime: Callable[[], PolicyRuntime | None]
) -> None:
    """Add the watch on the report CRDs to a kopf registry (the store's watches feed the
    rest).

    `runtime` is called per event: the runtime is created in the operator's start-up,
    after the registry (kopf starts watching only once start-up is done).
    """

    @kopf.on.event(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        when=lambda name, **_: name in REPORT_CRD_NAMES,
        registry=registry,
    )
    async def _report_crd(event: Mapping[str, Any], **_: Any) -> None:
        current = runtime()
        # Events of kopf's initial listing (no type) describe what the start-up audit sees.
        if current is not None and event.get("type") is not None:
            current.on_report_crd_event()
