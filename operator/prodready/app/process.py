"""One operator process: the controller, with the admission webhook and the audit beside it.

The controller (`prodready.controller.operator`) owns kopf's start-up and clean-up; it
seeds the process's one object store (`prodready.kube.store`), starts the webhook and the
audit once the store is warm, through the companion factory given here, and stops them at
clean-up. One watch per kind (`WATCHED`) feeds the store; the controller and the audit
subscribe to its changes, and the webhook reads it.
"""

from __future__ import annotations

import asyncio.sslproto
import logging
from dataclasses import dataclass

import kopf

from prodready import rules
from prodready.api.resource import Resource
from prodready.app.policy import PolicyRuntime, register_handlers as register_policy_handlers
from prodready.config import Settings
from prodready.controller.operator import (
    CONTROLLER_RESOURCES,
    Operator,
    build_registry,
    kopf_settings,
)
from prodready.dashboard.serving import register as register_dashboard
from prodready.kube.client import KubeClient
from prodready.kube.store import AUDITED_RESOURCES, NAMESPACE, POLICY_RESOURCES
from prodready.observability.metrics import Metrics

WATCHED: tuple[Resource, ...] = tuple(
    dict.fromkeys((*CONTROLLER_RESOURCES, *AUDITED_RESOURCES, NAMESPACE, *POLICY_RESOURCES))
)
"""Every kind the store holds: what the controller reconciles from, what the audit and the
webhook judge with, the Namespaces (their labels) and the policy objects, each listed and
watched once."""


@dataclass(frozen=True)
class Assembly:
    """The parts of one process, as kopf runs them."""

    operator: Operator
    registry: kopf.OperatorRegistry

    @property
    def policy(self) -> PolicyRuntime | None:
        """The webhook and the audit, once the operator's start-up created them."""
        companion = self.operator.companion
        return companion if isinstance(companion, PolicyRuntime) else None


def assemble(settings: Settings) -> Assembly:
    """The operator, the factory of its webhook + audit, and the kopf handlers of all three."""
    metrics = Metrics(findings_by_namespace=settings.metrics_findings_by_namespace)
    operator = Operator(settings, watched=WATCHED, metrics=metrics)

    def policy_runtime(client: KubeClient, rules_config: rules.RulesConfig | None) -> PolicyRuntime:
        runtime = PolicyRuntime(
            settings,
            client,
            operator.metrics,
            store=operator.store,
            rules_config=rules_config,
            is_leading=operator.is_leading,
            policies=operator.policies,
        )
        operator.store.subscribe(runtime.on_change)
        return runtime

    operator.companion_factory = policy_runtime
    registry = build_registry(operator)
    assembly = Assembly(operator=operator, registry=registry)
    # The watch on the report CRDs, read through the same operator.
    register_policy_handlers(registry, lambda: assembly.policy)
    # The readiness dashboard on a port of its own, when PRODREADY_DASHBOARD_PORT is set.
    register_dashboard(registry, settings)
    return assembly


TLS_READ_BUFFER_BYTES = 32 * 1024


def small_tls_buffers() -> None:
    """Give every TLS connection of the process a 32 KiB read buffer instead of asyncio's
    256 KiB. The operator holds one connection per watched kind, its clients' and the
    webhook's, each buffer allocated for the connection's life; a TLS record carries at
    most 16 KiB, so a larger buffer only saves loop turns on a long LIST answer. (The
    attribute is asyncio's, read at each connection: benchmarks/RESULTS.md has what it
    saved.)"""
    asyncio.sslproto.SSLProtocol.max_size = TLS_READ_BUFFER_BYTES


def run(settings: Settings) -> int:
    """Run the operator until SIGTERM/SIGINT; the process exit code."""
    # kopf says "Handler ... succeeded" for every watch event: at thousands of objects that
    # buries what matters. Its warnings and errors still come through.
    logging.getLogger("kopf.objects").setLevel(max(logging.WARNING, logging.getLogger().level))
    small_tls_buffers()
    assembly = assemble(settings)
    namespaces = list(settings.namespaces)
    kopf.run(
        registry=assembly.registry,
        settings=kopf_settings(settings),
        clusterwide=not namespaces,
        namespaces=namespaces,
        standalone=True,
    )
    return 0
