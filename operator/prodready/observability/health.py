"""The HTTP server for probes and scraping: /healthz, /readyz and /metrics.

The server runs in its own thread with its own event loop, and the operator's loop only
runs a heartbeat task that ticks every 50 ms. So when the operator's loop is blocked
(a synchronous call in a handler, a runaway computation), /healthz still answers, and
answers 503 "event loop stalled" once the last tick is older than `liveness_timeout`;
the kubelet then restarts a pod that can no longer react to anything. /metrics stays
scrapeable during such a stall, which is when it is needed most.

The heartbeat also records the longest gap between two of its ticks: any stall of the
loop falls between two ticks, so no stall was longer than that gap, and with ticks every
50 ms every stall over 100 ms makes a gap over 100 ms (the 50 ms between leave room for
a late timer). `/healthz?verbose` shows the longest gap and how many exceeded 100 ms, for
the people (and tests) who need to know the loop never stalled rather than only that it
is alive now. A gap can also mean the
machine did not run the process (a busy node); the "busy" count keeps only the gaps in
which the process itself used at least 100 ms of CPU, which is what a blocking
computation in the operator looks like.

Readiness is decided by the operator (connected to the API, peering settled, …): the
callback runs on the operator's loop, bounded by a timeout, so a blocked loop also makes
the pod unready instead of hanging the probe.

/metrics can be guarded as controller-runtime guards it (`metrics_access`): a scrape must
carry a bearer token that the apiserver authenticates and authorises for `get` on the
non-resource URL /metrics; /healthz and /readyz stay open for the kubelet. The check runs on
the operator's loop (where its API client lives), at most `_MAX_CHECKS` at once and bounded
by `readiness_timeout`; verdicts are cached by the token's SHA-256 (allowed for a minute,
denied for ten seconds), so a scraper keeps scraping through a stall of the operator's loop
and a flood of made-up tokens costs the apiserver a bounded number of reviews.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Final

from aiohttp import web

from prodready.observability.logging import redact
from prodready.observability.metrics import Metrics
from prodready.observability.serving import ThreadedSite

__all__ = ["Access", "HealthServer", "MetricsAccess", "Readiness"]

Readiness = Callable[[], bool | Awaitable[bool]]
"""A readiness check: returns (or resolves to) True when the operator can serve."""


class Access(StrEnum):
    """Whether a bearer token may read /metrics: answered 200, 401 or 403."""

    ALLOWED = "allowed"
    UNAUTHENTICATED = "unauthenticated"
    FORBIDDEN = "forbidden"


MetricsAccess = Callable[[str], Awaitable[Access]]
"""Decides a bearer token's access to /metrics (on the operator's loop)."""

# How long a verdict on a token is reused, how many are kept, how many checks run at once.
_ALLOWED_TTL: Final = 60.0
_DENIED_TTL: Final = 10.0
_MAX_CACHED: Final = 1024
_MAX_CHECKS: Final = 4
_BEARER: Final = "bearer "

_TEXT: Final = "text/plain"
# In-flight requests get this long to finish when the server stops.
_SHUTDOWN_TIMEOUT: Final = 5.0
# Seconds a connection may sit idle or half-sent; bytes a request body may have (none is read).
_IDLE_TIMEOUT: Final = 10.0
_MAX_BODY_BYTES: Final = 4096
# A gap between heartbeats above this is counted as a stall in /healthz?verbose.
STALL_THRESHOLD: Final = 0.1

logger = logging.getLogger("prodready.health")


def _text(body: str, status: int = 200) -> web.Response:
    return web.Response(status=status, text=body + "\n", content_type=_TEXT)


class HealthServer:
    """Serves /healthz, /readyz and /metrics on `host`:`port` (port 0 picks a free one)."""

    def __init__(
        self,
        host: str,
        port: int,
        metrics: Metrics,
        readiness: Readiness,
        *,
        heartbeat_interval: float = 0.05,
        liveness_timeout: float = 10.0,
        readiness_timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        cpu_clock: Callable[[], float] = time.process_time,
        metrics_access: MetricsAccess | None = None,
    ) -> None:
        """Prepare the server; nothing listens until `start()`.

        `liveness_timeout`: how old the last heartbeat may be before /healthz fails.
        `readiness_timeout`: how long /readyz waits for the check before answering 503
        (keep it below the probe's timeoutSeconds). `clock` and `cpu_clock` are for tests.
        `metrics_access`: when given, /metrics answers only tokens it allows.
        """
        if heartbeat_interval <= 0 or liveness_timeout <= heartbeat_interval:
            raise ValueError("liveness_timeout must exceed a positive heartbeat_interval")
        if readiness_timeout <= 0:
            raise ValueError("readiness_timeout must be positive")
        self._host = host
        self._requested_port = port
        self._metrics = metrics
        self._readiness = readiness
        self._heartbeat_interval = heartbeat_interval
        self._liveness_timeout = liveness_timeout
        self._readiness_timeout = readiness_timeout
        self._clock = clock
        self._cpu_clock = cpu_clock
        # Written by the heartbeat on the operator's loop, read by the server thread: a
        # float assignment is atomic, so no lock is needed.
        self._last_heartbeat = clock()
        # Written by the heartbeat only; read (racily, harmlessly) by the server thread.
        self._longest_gap = 0.0
        self._stalls = 0
        self._busy_stalls = 0
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._operator_loop: asyncio.AbstractEventLoop | None = None
        self._metrics_access = metrics_access
        # Touched only on the server's own loop.
        self._verdicts: dict[bytes, tuple[Access, float]] = {}
        self._checks = 0
        self._site = ThreadedSite("prodready-health", self._listen)
        self._bound_port: int | None = None

    @property
    def port(self) -> int:
        """The port actually bound (useful after asking for port 0)."""
        if self._bound_port is None:
            raise RuntimeError("the health server is not running")
        return self._bound_port

    async def start(self) -> None:
        """Start the heartbeat and the server thread; returns once the socket is bound."""
        if self._site.running:
            raise RuntimeError("the health server is already running")
        self._operator_loop = asyncio.get_running_loop()
        self._last_heartbeat = self._clock()
        self._heartbeat_task = asyncio.create_task(self._beat(), name="prodready-heartbeat")
        try:
            self._bound_port = await self._site.start()
        except BaseException:
            await self.stop()
            raise
        logger.info("health server listening", extra={"host": self._host, "port": self._bound_port})

    async def stop(self) -> None:
        """Stop the server (letting in-flight requests finish) and the heartbeat.

        Safe to call more than once, and before `start()`.
        """
        heartbeat, self._heartbeat_task = self._heartbeat_task, None
        if heartbeat is not None:
            heartbeat.cancel()
            try:
                await heartbeat
            except asyncio.CancelledError:
                pass
            except Exception:
                # Already reported by /healthz as "heartbeat stopped"; stopping goes on.
                logger.exception("the heartbeat had failed")
        await self._site.stop()
        self._bound_port = None

    @property
    def longest_gap(self) -> float:
        """The longest time between two heartbeats since start: no stall was longer."""
        return self._longest_gap

    @property
    def stalls(self) -> int:
        """How many gaps between heartbeats exceeded STALL_THRESHOLD."""
        return self._stalls

    @property
    def busy_stalls(self) -> int:
        """How many of those gaps the process spent at least STALL_THRESHOLD of CPU in."""
        return self._busy_stalls

    async def _beat(self) -> None:
        last_cpu = self._cpu_clock()
        while True:
            now, cpu = self._clock(), self._cpu_clock()
            gap, used = now - self._last_heartbeat, cpu - last_cpu
            self._last_heartbeat, last_cpu = now, cpu
            self._longest_gap = max(self._longest_gap, gap)
            if gap > STALL_THRESHOLD:
                self._stalls += 1
                if used >= STALL_THRESHOLD:
                    self._busy_stalls += 1
            await asyncio.sleep(self._heartbeat_interval)

    async def _listen(self) -> web.AppRunner:
        app = web.Application(client_max_size=_MAX_BODY_BYTES)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics_handler)
        # access_log=None: one line per probe and scrape would drown the operator's logs.
        runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=_SHUTDOWN_TIMEOUT,
            # The kubelet and Prometheus send a request and read the answer at once: a
            # connection idle (or half-sent) this long is closed, so slow peers cannot pile
            # up (aiohttp's default keeps one for an hour). Requests carry no body to drain.
            keepalive_timeout=_IDLE_TIMEOUT,
            lingering_time=0,
        )
        await runner.setup()
        try:
            await web.TCPSite(runner, self._host, self._requested_port).start()
        except BaseException:
            await runner.cleanup()
            raise
        return runner

    async def _healthz(self, request: web.Request) -> web.Response:
        task = self._heartbeat_task
        if task is None or task.done():
            return _text("heartbeat stopped", 503)
        age = self._clock() - self._last_heartbeat
        if age > self._liveness_timeout:
            return _text(f"event loop stalled: last heartbeat {age:.1f}s ago", 503)
        if "verbose" not in request.query:
            return _text("ok")
        return _text(
            "ok\n"
            f"heartbeat_interval_seconds {self._heartbeat_interval:.3f}\n"
            f"heartbeat_longest_gap_seconds {self._longest_gap:.3f}\n"
            f"heartbeat_gaps_over_{STALL_THRESHOLD * 1000:.0f}ms_total {self._stalls}\n"
            f"heartbeat_busy_gaps_over_{STALL_THRESHOLD * 1000:.0f}ms_total {self._busy_stalls}"
        )

    async def _check_readiness(self) -> bool:
        """Runs on the operator's loop, where the state the callback reads lives."""
        result = self._readiness()
        if inspect.isawaitable(result):
            result = await result
        return bool(result)

    async def _readyz(self, _request: web.Request) -> web.Response:
        operator_loop = self._operator_loop
        assert operator_loop is not None  # set by start() before the server exists
        try:
            future = asyncio.run_coroutine_threadsafe(self._check_readiness(), operator_loop)
            # On timeout, wait_for cancels the wrapper, which cancels the check itself.
            ready = await asyncio.wait_for(asyncio.wrap_future(future), self._readiness_timeout)
        except TimeoutError:
            return _text(f"not ready: check timed out after {self._readiness_timeout:g}s", 503)
        except Exception as error:
            # A failing check means "not ready", never a 500; the traceback goes to the log.
            logger.warning("readiness check failed", exc_info=True)
            return _text(f"not ready: {redact(f'{type(error).__name__}: {error}')}", 503)
        if not ready:
            return _text("not ready", 503)
        return _text("ok")

    async def _metrics_handler(self, request: web.Request) -> web.Response:
        if self._metrics_access is not None:
            refusal = await self._authorize(request.headers.get("Authorization", ""))
            if refusal is not None:
                return refusal
        # Rendered on the server thread: a large findings gauge never delays reconciles.
        payload, content_type = self._metrics.render_latest()
        return web.Response(body=payload, headers={"Content-Type": content_type})

    async def _authorize(self, header: str) -> web.Response | None:
        """None when the request's bearer token may read /metrics, else the refusal."""
        if not header.lower().startswith(_BEARER) or not header[len(_BEARER) :].strip():
            return _unauthorized("a bearer token is required")
        token = header[len(_BEARER) :].strip()
        key = hashlib.sha256(token.encode()).digest()
        now = self._clock()
        cached = self._verdicts.get(key)
        if cached is not None and cached[1] > now:
            verdict = cached[0]
        else:
            if self._checks >= _MAX_CHECKS:
                return _text("too many token checks in flight", 503)
            self._checks += 1
            try:
                verdict = await self._check_token(token)
            except TimeoutError:
                return _text("cannot check the token now: timed out", 503)
            except Exception as error:
                logger.warning("metrics token check failed", extra={"error": type(error).__name__})
                return _text(f"cannot check the token now: {type(error).__name__}", 503)
            finally:
                self._checks -= 1
            self._remember(key, verdict, now)
        if verdict is Access.UNAUTHENTICATED:
            return _unauthorized("the token is not valid")
        if verdict is Access.FORBIDDEN:
            return _text(
                "forbidden: the token's user may not get the non-resource URL /metrics", 403
            )
        return None

    async def _check_token(self, token: str) -> Access:
        access, operator_loop = self._metrics_access, self._operator_loop
        assert access is not None  # checked by the caller
        assert operator_loop is not None  # set by start(), before serving

        async def check() -> Access:
            return await access(token)

        future = asyncio.run_coroutine_threadsafe(check(), operator_loop)
        return await asyncio.wait_for(asyncio.wrap_future(future), self._readiness_timeout)

    def _remember(self, key: bytes, verdict: Access, now: float) -> None:
        if len(self._verdicts) >= _MAX_CACHED:
            self._verdicts = {k: v for k, v in self._verdicts.items() if v[1] > now}
            if len(self._verdicts) >= _MAX_CACHED:
                self._verdicts.clear()
        ttl = _ALLOWED_TTL if verdict is Access.ALLOWED else _DENIED_TTL
        self._verdicts[key] = (verdict, now + ttl)


def _unauthorized(reason: str) -> web.Response:
    response = _text(f"unauthorized: {reason}", 401)
    response.headers["WWW-Authenticate"] = 'Bearer realm="prodready metrics"'
    return response
