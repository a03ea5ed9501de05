"""The dashboard's HTTP server: GET-only pages over one cached read of the cluster.

Each page is rendered from a `ClusterState` at most `refresh_seconds` old: however many
people reload it, the apiserver sees one set of LISTs per period (concurrent requests wait
for the same read). Rendering runs on a worker thread so a large cluster's page never holds
up the event loop. Only GET and HEAD are routed; every answer carries the pages' CSP (plus
`frame-ancestors 'none'`, which a `<meta>` CSP cannot say), `nosniff`, no referrer and no
caching.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Final

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Handler

from prodready.audit.reports import AUTO
from prodready.dashboard.source import ClusterState, read_cluster
from prodready.kube.client import KubeClient
from prodready.rules.pages import content_security_policy, render_dashboard, render_workload

logger = logging.getLogger("prodready.dashboard")

DEFAULT_REFRESH_SECONDS: Final = 10.0
CLIENT_MAX_SIZE: Final = 4096  # a GET has no body worth reading
HTML: Final = "text/html"


class DashboardServer:
    """Serves the dashboard from a client; `app()` is the aiohttp application."""

    def __init__(
        self,
        client_factory: Callable[[], KubeClient],
        *,
        namespaces: Sequence[str] = (),
        refresh_seconds: float = DEFAULT_REFRESH_SECONDS,
        report_api: str = AUTO,
    ) -> None:
        """`client_factory` is called once, on the serving loop (a client is loop-bound)."""
        self._client_factory = client_factory
        self._client: KubeClient | None = None
        self._namespaces = tuple(namespaces)
        self._refresh = refresh_seconds
        self._report_api = report_api
        self._state: ClusterState | None = None
        self._read_at = 0.0
        self._lock: asyncio.Lock | None = None

    def app(self) -> web.Application:
        """The application: `/`, `/workloads/{namespace}/{kind}/{name}`, `/healthz`."""
        app = web.Application(client_max_size=CLIENT_MAX_SIZE, middlewares=[_headers])
        app.router.add_get("/", self._index)
        app.router.add_get("/workloads/{namespace}/{kind}/{name}", self._workload)
        app.router.add_get("/healthz", _healthz)
        app.on_cleanup.append(self._close)
        return app

    async def _close(self, _app: web.Application) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def state(self) -> ClusterState:
        """The cluster as last read, read again when older than `refresh_seconds`."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._state is None or time.monotonic() - self._read_at >= self._refresh:
                if self._client is None:
                    self._client = self._client_factory()
                self._state = await read_cluster(self._client, self._namespaces, self._report_api)
                self._read_at = time.monotonic()
            return self._state

    async def _index(self, _request: web.Request) -> web.Response:
        state = await self.state()
        page = await asyncio.to_thread(lambda: render_dashboard(state.model(), base="/"))
        return web.Response(text=page, content_type=HTML)

    async def _workload(self, request: web.Request) -> web.Response:
        info = request.match_info
        state = await self.state()
        model = state.model()
        row = model.workload(info["namespace"], info["kind"], info["name"])
        if row is None:
            raise web.HTTPNotFound(
                text=f"no report for {info['kind']} {info['namespace']}/{info['name']}"
            )
        page = await asyncio.to_thread(render_workload, model, row, base="/")
        return web.Response(text=page, content_type=HTML)


async def _healthz(_request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


def _secure(response: web.StreamResponse) -> None:
    response.headers["Content-Security-Policy"] = (
        content_security_policy() + "; frame-ancestors 'none'"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"


@web.middleware
async def _headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as error:
        _secure(error)
        raise
    except (aiohttp.ClientError, OSError, TimeoutError) as error:
        logger.warning("cannot reach the cluster", extra={"error": str(error)})
        unavailable = web.HTTPServiceUnavailable(
            text=f"the cluster cannot be reached: {str(error) or type(error).__name__}\n"
        )
        _secure(unavailable)
        raise unavailable from error
    _secure(response)
    return response
