"""What the dashboard reads from the cluster: reports, ProductionServices, exceptions.

Only LISTs, and only of what the chart's ClusterRole already lets the operator list: the
report CRDs, ProductionServices and (once issue 15's CRD is installed) ReadinessExceptions.
A kind that is not served or not readable becomes a note on the page, never an error
page: the rest of the dashboard is still worth showing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import quote

from prodready.api.models import API_VERSION, KIND, PLURAL
from prodready.audit.command import ReportsUnavailableError, fetch_reports, to_run
from prodready.audit.reports import AUTO
from prodready.kube.client import ApiError, KubeClient
from prodready.rules.formats import Run
from prodready.rules.model import Severity
from prodready.rules.pages import Dashboard, dashboard

logger = logging.getLogger("prodready.dashboard")


@dataclass(frozen=True, slots=True)
class Listed:
    """A namespaced custom resource the dashboard lists."""

    kind: str
    plural: str
    api_version: str = API_VERSION

    def path(self, namespace: str | None) -> str:
        """The collection's REST path, in one namespace or in all."""
        where = f"/namespaces/{quote(namespace)}" if namespace else ""
        return f"/apis/{self.api_version}{where}/{self.plural}"

    @property
    def crd_name(self) -> str:
        """`plural.group`, the name of the CRD that serves it."""
        return f"{self.plural}.{self.api_version.partition('/')[0]}"


PRODUCTION_SERVICES: Final = Listed(KIND, PLURAL)
READINESS_EXCEPTIONS: Final = Listed("ReadinessException", "readinessexceptions")


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterState:
    """One read of the cluster: the bodies the dashboard is built from, and notes."""

    run: Run
    services: list[dict[str, Any]]
    exceptions: list[dict[str, Any]]
    notes: list[str]

    def model(self, now: datetime | None = None) -> Dashboard:
        """The page model, as of `now` (default: the current time)."""
        return dashboard(
            self.run,
            services=self.services,
            exceptions=self.exceptions,
            now=now or datetime.now(UTC),
            notes=self.notes,
        )


def _unreadable(what: str, error: ApiError) -> str:
    return f"{what} could not be read: {error.status} {error.reason}"


async def _list(
    client: KubeClient, resource: Listed, namespaces: Sequence[str], notes: list[str]
) -> list[dict[str, Any]]:
    served = await client.served_resources(resource.api_version)
    if served is None or resource.plural not in served:
        notes.append(
            f"{resource.kind} is not served by this cluster "
            f"(the CRD {resource.crd_name} is not installed)"
        )
        return []
    try:
        items: list[dict[str, Any]] = []
        for namespace in namespaces or (None,):
            items.extend(await client.list(resource.path(namespace)))
        return items
    except ApiError as error:
        logger.warning("cannot list", extra={"resource": resource.plural, "status": error.status})
        notes.append(_unreadable(f"{resource.kind}s", error))
        return []


async def read_cluster(
    client: KubeClient, namespaces: Sequence[str] = (), report_api: str = AUTO
) -> ClusterState:
    """Read everything the dashboard shows, in `namespaces` (none given: in all), from the
    report API `report_api` allows (the operator's PRODREADY_REPORT_API)."""
    notes: list[str] = []
    try:
        bodies: list[dict[str, Any]] = []
        for namespace in namespaces or (None,):
            flavor, listed = await fetch_reports(client, namespace, report_api)
            bodies.extend(listed)
        run = to_run(flavor, bodies, Severity.ERROR)
        if not bodies:
            notes.append("no prodready reports yet: is the operator's audit running?")
    except ReportsUnavailableError as error:
        notes.append(str(error))
        run = Run([], [])
    except ApiError as error:
        notes.append(_unreadable("the policy reports", error))
        run = Run([], [])
    services = await _list(client, PRODUCTION_SERVICES, namespaces, notes)
    exceptions = await _list(client, READINESS_EXCEPTIONS, namespaces, notes)
    return ClusterState(run=run, services=services, exceptions=exceptions, notes=notes)
