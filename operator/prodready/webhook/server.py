"""The validating admission webhook: a small aiohttp HTTPS server inside the operator process.

Why not kopf's admission support: it would tie the webhook to kopf's handler machinery
(one kopf handler per resource, its own server and configuration management) and its
self-signed certificates need kopf's `[dev]` extra, which pulls in oscrypto — broken on
OpenSSL 3. A plain aiohttp server is a few dozen lines, shares the operator's inventory of
namespace context (`prodready.audit.inventory`) and its metrics, and decides with the same
rules engine as `prodready validate`.

It serves from a thread and event loop of its own (`ThreadedSite`). The apiserver waits
for the answer while a user's `kubectl apply` waits for the apiserver, so the answer must
not queue behind the operator's work: on the operator's loop, a resync of a thousand
services or a watch re-listing thousands of objects ran for a second between two awaits,
and every review that arrived meanwhile waited that second (measured at 1,100 services and
50 reviews/s: p99 ~1 s added on the shared loop, 2-9 ms now; benchmarks/RESULTS.md). Python
still runs one thread at a time, but the interpreter switches threads every few
milliseconds, so a busy operator delays a review by that much, not by its whole burst.
What the thread shares with the loop is read-only from here: the inventory hands out
copies (`Inventory.objects`), the metrics are thread-safe, and a reloaded certificate is a
new `SSLContext`, swapped in one assignment.

Routes: `POST /validate/enforce` and `POST /validate/audit` (see
`prodready.webhook.admission` for why the mode is in the path). A body that is not an
AdmissionReview gets HTTP 400 with the reason; an unexpected failure while evaluating gets
HTTP 500 with a one-line message (never a traceback), and the apiserver then applies the
configuration's failurePolicy.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Final

from aiohttp import web

from prodready import rules
from prodready.audit.inventory import Inventory
from prodready.observability.metrics import Metrics
from prodready.observability.serving import ThreadedSite
from prodready.webhook.admission import (
    EVALUATED_OPERATIONS,
    Mode,
    ReviewError,
    decide,
    parse_review,
    review_response,
)
from prodready.webhook.certificates import ReloadingTLS

__all__ = ["MAX_BODY_BYTES", "WebhookServer"]

logger = logging.getLogger("prodready.webhook")

# The apiserver accepts objects up to 3 MiB; a review of an UPDATE carries two of them.
MAX_BODY_BYTES: Final = 16 * 1024 * 1024
# In-flight reviews get this long to finish when the server stops.
_SHUTDOWN_TIMEOUT: Final = 5.0
_TEXT: Final = "text/plain"


class WebhookServer:
    """Serves admission reviews over HTTPS on `host`:`port` (port 0 picks a free one)."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        tls: ReloadingTLS,
        inventory: Inventory,
        metrics: Metrics,
        rules_config: rules.RulesConfig | None = None,
        environment: str | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        """Prepare the server; nothing listens until `start()`."""
        self._host = host
        self._requested_port = port
        self._tls = tls
        self._inventory = inventory
        self._metrics = metrics
        self._rules_config = rules_config
        self._environment = environment
        self._clock = clock
        self._site = ThreadedSite("admission-webhook", self._listen)
        self._port: int | None = None

    @property
    def port(self) -> int:
        """The port actually bound (useful after asking for port 0)."""
        if self._port is None:
            raise RuntimeError("the webhook server is not started")
        return self._port

    def application(self) -> web.Application:
        """The aiohttp application (routes only; `start` serves it over TLS)."""
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_post("/validate/{mode:enforce|audit}", self._validate)
        return app

    async def start(self) -> None:
        """Listen on a thread of its own; raises OSError when the port cannot be bound."""
        self._port = await self._site.start()
        logger.info("admission webhook listening", extra={"port": self._port})

    async def stop(self) -> None:
        """Stop listening; in-flight reviews finish first (idempotent)."""
        await self._site.stop()
        self._port = None

    async def _listen(self) -> web.AppRunner:
        runner = web.AppRunner(
            self.application(),
            access_log=None,
            handle_signals=False,
            shutdown_timeout=_SHUTDOWN_TIMEOUT,
        )
        await runner.setup()
        try:
            await web.TCPSite(
                runner, self._host, self._requested_port, ssl_context=self._tls.context
            ).start()
        except BaseException:
            await runner.cleanup()
            raise
        return runner

    async def _validate(self, request: web.Request) -> web.Response:
        started = self._clock()
        mode = Mode(request.match_info["mode"])
        try:
            admission = parse_review(await request.read())
        except ReviewError as error:
            logger.info("malformed admission review", extra={"reason": str(error)})
            return web.Response(status=400, text=f"{error}\n", content_type=_TEXT)
        if admission.operation in EVALUATED_OPERATIONS:
            context = self._inventory.context(admission.namespace)
            try:
                # On this thread's loop: a review is evaluated while others wait for the
                # interpreter anyway, and a hop to a pool thread would cost a switch more.
                response = decide(
                    admission,
                    mode,
                    context,
                    config=self._rules_config,
                    environment=self._environment,
                )
            except Exception:
                logger.exception(
                    "admission review failed",
                    extra={"kind": admission.kind, "namespace": admission.namespace},
                )
                return web.Response(
                    status=500,
                    text="prodready could not evaluate the object; see the operator's log\n",
                    content_type=_TEXT,
                )
        else:
            response = decide(admission, mode)
        allowed = bool(response["allowed"])
        self._metrics.record_webhook_request(
            admission.metric_kind, admission.operation, allowed, self._clock() - started
        )
        level = logging.INFO if not allowed else logging.DEBUG
        logger.log(
            level,
            "admission denied" if not allowed else "admission allowed",
            extra={
                "kind": admission.kind,
                "namespace": admission.namespace,
                "object_name": admission.name,
                "operation": admission.operation,
                "mode": mode.value,
                "dry_run": admission.dry_run,
                "warnings": len(response.get("warnings") or ()),
            },
        )
        return web.json_response(review_response(response))
