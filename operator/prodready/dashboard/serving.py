"""The dashboard inside the operator's process, when `PRODREADY_DASHBOARD_PORT` is set.

It runs on a thread and event loop of its own (`ThreadedSite`, like the health server and
the webhook), so rendering a large cluster's page never delays a reconcile, and it reads
with its own client (the pod's ServiceAccount: the chart's RBAC, nothing more).
"""

from __future__ import annotations

import logging
from typing import Any

import kopf
from aiohttp import web

from prodready.config import Settings
from prodready.kube.client import KubeClient
from prodready.observability.serving import ThreadedSite

logger = logging.getLogger("prodready.dashboard")


def site(settings: Settings) -> ThreadedSite:
    """The dashboard's server on `settings.health_host`:`settings.dashboard_port`."""
    # Imported here, not at the top: the pages' templates (jinja2) cost the operator's
    # memory only where the dashboard is served (it is off by default).
    from prodready.dashboard.server import DashboardServer

    async def listen() -> web.AppRunner:
        server = DashboardServer(
            KubeClient.login, namespaces=settings.namespaces, report_api=settings.report_api
        )
        runner = web.AppRunner(server.app(), access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, settings.health_host, settings.dashboard_port).start()
        except BaseException:
            await runner.cleanup()
            raise
        return runner

    return ThreadedSite("dashboard", listen)


def register(registry: kopf.OperatorRegistry, settings: Settings) -> None:
    """Serve the dashboard from start-up to clean-up, if a port is configured."""
    if settings.dashboard_port is None:
        return
    dashboard = site(settings)

    @kopf.on.startup(registry=registry, id="start-dashboard")
    async def start_dashboard(**_: Any) -> None:
        port = await dashboard.start()
        logger.info("dashboard serving", extra={"host": settings.health_host, "port": port})

    @kopf.on.cleanup(registry=registry, id="stop-dashboard")
    async def stop_dashboard(**_: Any) -> None:
        await dashboard.stop()
