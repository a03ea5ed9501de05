"""The validating admission webhook: a small aiohttp HTTPS server inside the operator process.

Why not kopf's admission support: it would tie the webhook to kopf's handler machinery
(one kopf handler per resource, its own server and configuration management) and its
self-signed certificates need kopf's `[dev]` extra, which pulls in oscrypto — broken on
OpenSSL 3. A plain aiohttp server is a few dozen lines, shares the operator's object store
(`prodready.kube.store`: the namespace's context) and its metrics, and decides with the same
rules engine as `prodready validate`.

It serves from a thread and event loop of its own (`ThreadedSite`). The apiserver waits
for the answer while a user's `kubectl apply` waits for the apiserver, so the answer must
not queue behind the operator's work: on the operator's loop, a resync of a thousand
services or a watch re-listing thousands of objects runs a long stretch between two
awaits, and every review that arrives meanwhile waits for all of it (the webhook's latency
under that load is in benchmarks/RESULTS.md). Python still runs one thread at a time, but
the interpreter switches threads every few milliseconds, so a busy operator delays a
review by that much, not by its whole burst. What the thread shares with the loop is
read-only from here: the store hands out copies (`ObjectStore.objects`), the metrics are
thread-safe, and a reloaded certificate is a new `SSLContext`, swapped in one assignment.

Routes: `POST /validate/enforce` and `POST /validate/audit` (see
`prodready.webhook.admission` for why the mode is in the path), and `POST /authorize`
when given an `Authorizer` (`prodready.webhook.authorization`: may a ProductionService's
author have what it asks for; its SubjectAccessReviews are sent from this thread's loop,
through a client created and closed on it). A body that is not an
AdmissionReview gets HTTP 400 with the reason; an unexpected failure while evaluating gets
HTTP 500 with a one-line message (never a traceback), and the apiserver then applies the
configuration's failurePolicy.

Whoever can reach the port is not trusted further than the apiserver would trust them:

* A body is at most `MAX_BODY_BYTES` (7 MiB: the apiserver caps an object at 3 MiB and an
  UPDATE review carries two). A larger Content-Length is answered 413 before one byte of
  the body is read; a chunked body is cut off as soon as it passes the limit. Nothing is
  buffered beyond that, so one request cannot grow the process past its memory limit.
* Slow clients are cut off (slowloris): the TLS handshake, the request line and headers
  (also the idle time between two requests on a kept-alive connection) and the body each
  get `read_timeout` seconds — a review is worthless to the apiserver after its own
  timeoutSeconds anyway. An idle or half-sent connection is closed, not kept.
* At most `max_connections` connections are open, those still in their TLS handshake
  included (each holds a 256 KiB TLS buffer from the moment it is accepted); a connection
  beyond that is closed as soon as it is accepted. At most `max_in_flight` reviews are
  read and evaluated at once; a review beyond that is answered 503 at once (the apiserver
  then applies the failure policy). Memory is thus bounded by `max_in_flight` bodies.
* With a client CA (`PRODREADY_WEBHOOK_CLIENT_CA_FILE`) only a peer holding a certificate
  it signed completes the TLS handshake: the apiserver, configured to present one.
* A review is judged in the namespace of `request.namespace` only, with that namespace's
  context; an object (or old object) that claims another namespace is refused with 400,
  so no answer describes objects of a namespace other than the request's.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

from aiohttp import web

from prodready import rules
from prodready.kube.client import KubeClient
from prodready.kube.policies import LivePolicies
from prodready.kube.secret_keys import SecretLookup
from prodready.kube.store import ObjectStore
from prodready.observability.metrics import Metrics
from prodready.observability.serving import ThreadedSite
from prodready.rules.lookups import referenced_secrets
from prodready.webhook.admission import (
    EVALUATED_OPERATIONS,
    AdmissionRequest,
    Mode,
    ReviewError,
    decide,
    evaluation_budget,
    parse_review,
    review_response,
)
from prodready.webhook.authorization import Authorizer
from prodready.webhook.certificates import ReloadingTLS

__all__ = ["MAX_BODY_BYTES", "WebhookServer"]

logger = logging.getLogger("prodready.webhook")

# The apiserver accepts objects up to 3 MiB; a review of an UPDATE carries two of them,
# plus the envelope.
MAX_BODY_BYTES: Final = 7 * 1024 * 1024
# Seconds for the handshake, for the headers (and between requests) and for the body.
READ_TIMEOUT: Final = 10.0
# Open connections (the apiserver keeps a few alive per webhook and replica) and reviews
# read or evaluated at once (each holds at most MAX_BODY_BYTES).
MAX_CONNECTIONS: Final = 64
MAX_IN_FLIGHT: Final = 8
# Refused connections are logged at most once per this many seconds, with their count.
_REFUSAL_LOG_INTERVAL: Final = 10.0
# In-flight reviews get this long to finish when the server stops.
_SHUTDOWN_TIMEOUT: Final = 5.0
_TEXT: Final = "text/plain"
# A review body up to this size is evaluated on the server's loop, a larger one on a thread.
INLINE_BODY_BYTES: Final = 64 * 1024
# Secret lookups for one review: how long at most, how many names, how long an answer is
# reused (a burst of creates referencing the same Secret reads it once).
SECRET_LOOKUP_SECONDS: Final = 1.0
SECRET_LOOKUP_BUDGET: Final = 64
SECRET_TTL: Final = 10.0


class WebhookServer:
    """Serves admission reviews over HTTPS on `host`:`port` (port 0 picks a free one)."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        tls: ReloadingTLS,
        store: ObjectStore,
        metrics: Metrics,
        rules_config: rules.RulesConfig | None = None,
        policies: LivePolicies | None = None,
        environment: str | None = None,
        clock: Callable[[], float] = time.perf_counter,
        wall_clock: Callable[[], float] = time.time,
        max_body_bytes: int = MAX_BODY_BYTES,
        read_timeout: float = READ_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
        max_in_flight: int = MAX_IN_FLIGHT,
        authorizer: Authorizer | None = None,
        evaluation_seconds: float = evaluation_budget(5),
        client_factory: Callable[[], KubeClient] | None = None,
        secret_lookup_seconds: float = SECRET_LOOKUP_SECONDS,
    ) -> None:
        """Prepare the server; nothing listens until `start()` (limits: module docstring)."""
        if min(max_body_bytes, max_connections, max_in_flight) < 1 or read_timeout <= 0:
            raise ValueError("the webhook server's limits must be positive")
        self._host = host
        self._requested_port = port
        self._tls = tls
        self._store = store
        self._metrics = metrics
        self._rules_config = rules_config
        self._policies = policies
        self._environment = environment
        self._clock = clock
        self._wall_clock = wall_clock
        self._max_body_bytes = max_body_bytes
        self._read_timeout = read_timeout
        self._max_connections = max_connections
        self._max_in_flight = max_in_flight
        self._in_flight = 0  # touched only on the server's own loop
        self._authorizer = authorizer
        # From a review's arrival to its answer (`admission.evaluation_budget`).
        self._evaluation_seconds = evaluation_seconds
        self._site = ThreadedSite("admission-webhook", self._listen)
        self._port: int | None = None
        # Secrets the reviewed object references, read by name (key names only) from a
        # client made on the server's own loop at the first review that needs one.
        self._client_factory = client_factory
        self._secret_lookup: SecretLookup | None = None
        self._secret_lookup_seconds = secret_lookup_seconds

    @property
    def port(self) -> int:
        """The port actually bound (useful after asking for port 0)."""
        if self._port is None:
            raise RuntimeError("the webhook server is not started")
        return self._port

    def application(self) -> web.Application:
        """The aiohttp application (routes only; `start` serves it over TLS)."""
        app = web.Application(client_max_size=self._max_body_bytes)
        app.router.add_post("/validate/{mode:enforce|audit|policy}", self._validate)
        if self._authorizer is not None:
            app.router.add_post("/authorize", self._authorize)
            app.on_cleanup.append(self._close_authorizer)
        app.on_cleanup.append(self._close_secret_lookup)
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
            # aiohttp closes a connection that has not sent a complete request line and
            # headers this long after it opened or after its last answer.
            keepalive_timeout=self._read_timeout,
            # A refused body is not drained: the connection is closed instead.
            lingering_time=0,
        )
        await runner.setup()
        try:
            await _GuardedSite(
                runner,
                self._host,
                self._requested_port,
                ssl_context=self._tls.context,
                handshake_timeout=self._read_timeout,
                max_connections=self._max_connections,
            ).start()
        except BaseException:
            await runner.cleanup()
            raise
        return runner

    async def _read_body(self, request: web.Request) -> bytes | web.Response:
        """The body, or the answer refusing it: too large (413) or too slow (408)."""
        limit = self._max_body_bytes
        length = request.content_length
        if length is not None and length > limit:
            return _closing(413, f"request body of {length} bytes exceeds the limit of {limit}")
        body = bytearray()
        try:
            async with asyncio.timeout(self._read_timeout):
                while chunk := await request.content.readany():
                    body += chunk
                    if len(body) > limit:
                        return _closing(413, f"request body exceeds the limit of {limit} bytes")
        except TimeoutError:
            return _closing(408, f"request body not received within {self._read_timeout:g}s")
        return bytes(body)

    def _take_slot(self) -> web.Response | None:
        """Count one more review in flight, or the 503 refusing it when `max_in_flight` are
        already read or evaluated (the caller gives the slot back with `_in_flight -= 1`)."""
        if self._in_flight >= self._max_in_flight:
            logger.warning(
                "admission review refused: too many in flight",
                extra={"limit": self._max_in_flight},
            )
            return _closing(503, f"more than {self._max_in_flight} admission reviews in flight")
        self._in_flight += 1
        return None

    async def _receive(self, request: web.Request) -> AdmissionRequest | web.Response:
        """The review a request carries, or the answer refusing it: too large (413), too
        slow (408), not an AdmissionReview or its objects in another namespace (400)."""
        body = await self._read_body(request)
        if isinstance(body, web.Response):
            logger.info("admission review refused", extra={"reason": body.text})
            return body
        try:
            admission = parse_review(body)
            _check_namespaces(admission)
        except ReviewError as error:
            logger.info("malformed admission review", extra={"reason": str(error)})
            return web.Response(status=400, text=f"{error}\n", content_type=_TEXT)
        return admission

    def _answer(
        self,
        admission: AdmissionRequest,
        response: dict[str, Any],
        *,
        started: float,
        what: str,
        **fields: object,
    ) -> web.Response:
        """Count and log a decision (`what` allowed/denied), and send it."""
        allowed = bool(response["allowed"])
        self._metrics.record_webhook_request(
            admission.metric_kind, admission.operation, allowed, self._clock() - started
        )
        logger.log(
            logging.DEBUG if allowed else logging.INFO,
            f"{what} {'allowed' if allowed else 'denied'}",
            extra={
                "kind": admission.kind,
                "namespace": admission.namespace,
                "object_name": admission.name,
                "operation": admission.operation,
                "dry_run": admission.dry_run,
                **fields,
            },
        )
        return web.json_response(review_response(response))

    async def _validate(self, request: web.Request) -> web.Response:
        """`POST /validate/{enforce,audit}`: the checklist's verdict. The slot is held until
        the answer is sent: the body stays in memory while it is evaluated."""
        started = self._clock()
        deadline = rules.Deadline.after(self._evaluation_seconds)
        mode = Mode(request.match_info["mode"])
        refused = self._take_slot()
        if refused is not None:
            return refused
        try:
            admission = await self._receive(request)
            if isinstance(admission, web.Response):
                return admission
            if admission.operation not in EVALUATED_OPERATIONS:
                response = decide(admission, mode)
            else:
                judging = self._judging(admission.namespace)
                judging["context"].extend(await self._referenced_secrets(admission))
                evaluate = functools.partial(decide, admission, mode, deadline=deadline, **judging)
                try:
                    if (request.content_length or self._max_body_bytes) <= INLINE_BODY_BYTES:
                        # An ordinary review takes well under a millisecond: evaluated
                        # here, it skips two hand-overs between threads, each of which
                        # can wait a whole switch interval for the interpreter while the
                        # operator's loop is busy.
                        response = evaluate()
                    else:
                        # On a pool thread: the interpreter still runs one thread at a
                        # time, but it switches every few milliseconds, so an ordinary
                        # review is answered while the largest object the caps admit is
                        # still being evaluated, instead of waiting for it to finish.
                        response = await asyncio.to_thread(evaluate)
                except Exception:
                    return _failed(admission, "admission review failed", "evaluate the object")
            return self._answer(
                admission,
                response,
                started=started,
                what="admission",
                mode=mode.value,
                warnings=len(response.get("warnings") or ()),
            )
        finally:
            self._in_flight -= 1

    def _judging(self, namespace: str) -> dict[str, Any]:
        """`decide`'s arguments: the namespace's context from the store, and the policies in
        force now (or, without policies, the rules configuration)."""
        context = self._store.context(namespace)
        if self._policies is None:
            return {
                "context": context,
                "config": self._rules_config,
                "environment": self._environment,
            }
        namespace_object = self._policies.namespace(namespace)
        if namespace_object is not None:
            context.append(namespace_object)
        return {
            "context": context,
            "policies": self._policies.current(),
            "now": datetime.fromtimestamp(self._wall_clock(), UTC),
            "environment": self._environment,
        }

    async def _authorize(self, request: web.Request) -> web.Response:
        """`POST /authorize`: may the author have what a ProductionService asks for
        (`prodready.webhook.authorization`). Reading and parsing hold a slot; the
        SubjectAccessReviews, which wait on the apiserver, are bounded by the authorizer."""
        assert self._authorizer is not None  # the route exists only with one
        started = self._clock()
        refused = self._take_slot()
        if refused is not None:
            return refused
        try:
            admission = await self._receive(request)
        finally:
            self._in_flight -= 1
        if isinstance(admission, web.Response):
            return admission
        try:
            response = await self._authorizer.review(admission)
        except Exception:
            return _failed(
                admission, "authorization review failed", "check the author's permissions"
            )
        return self._answer(
            admission,
            response,
            started=started,
            what="authorization",
            user=admission.user.username,
        )

    async def _referenced_secrets(self, admission: AdmissionRequest) -> list[dict[str, Any]]:
        """The Secrets the reviewed object references that exist, with their key names
        (`SecretLookup.context_objects`): a key missing from one is judged as the audit
        judges it. One that does not exist yet is not: GitOps tools, Helm and External
        Secrets may create it after the workload, and denying the workload would break
        that order; the audit reports it if it stays missing. None when the server has no
        client, or when the reads take longer than `secret_lookup_seconds`."""
        if self._client_factory is None or admission.object is None or not admission.namespace:
            return []
        # In the request's namespace (on CREATE the object may not name it), and never in
        # another: the object is judged there, and only that namespace's Secrets bear on it.
        metadata = {**(admission.object.get("metadata") or {}), "namespace": admission.namespace}
        references = referenced_secrets([{**admission.object, "metadata": metadata}])
        if not references:
            return []
        if self._secret_lookup is None:
            self._secret_lookup = SecretLookup(self._client_factory(), ttl=SECRET_TTL)
        try:
            async with asyncio.timeout(self._secret_lookup_seconds):
                return await self._secret_lookup.context_objects(
                    references, budget=SECRET_LOOKUP_BUDGET, judge_absent=False
                )
        except TimeoutError:
            logger.info(
                "Secret lookups took too long; their references are not judged",
                extra={"namespace": admission.namespace, "references": len(references)},
            )
            return []

    async def _close_secret_lookup(self, _app: web.Application) -> None:
        lookup, self._secret_lookup = self._secret_lookup, None
        if lookup is not None:
            await lookup.client.close()

    async def _close_authorizer(self, _app: web.Application) -> None:
        if self._authorizer is not None:
            await self._authorizer.close()


def _failed(admission: AdmissionRequest, log_message: str, could_not: str) -> web.Response:
    """A review that raised (an operator bug): logged with its traceback, answered 500 (the
    apiserver applies the entry's failurePolicy)."""
    logger.exception(log_message, extra={"kind": admission.kind, "namespace": admission.namespace})
    return web.Response(
        status=500,
        text=f"prodready could not {could_not}; see the operator's log\n",
        content_type=_TEXT,
    )


def _closing(status: int, message: str) -> web.Response:
    """A one-line plain-text answer after which the connection is closed (nothing drained)."""
    response = web.Response(status=status, text=f"{message}\n", content_type=_TEXT)
    response.force_close()
    return response


def _check_namespaces(admission: AdmissionRequest) -> None:
    """Refuse an object that claims a namespace other than the request's.

    The apiserver never sends one (it rejects such a request before admission); a client
    that does is not the apiserver, and must not be judged with another namespace's context.
    """
    for field, body in (("object", admission.object), ("oldObject", admission.old_object)):
        claimed = ((body or {}).get("metadata") or {}).get("namespace")
        if claimed and claimed != admission.namespace:
            raise ReviewError(
                f"request.{field}.metadata.namespace {str(claimed)[:63]!r} differs from "
                f"request.namespace {admission.namespace[:63]!r}"
            )


class _Gate(asyncio.Protocol):
    """A connection accepted over plain TCP, before its TLS handshake (see `_GuardedSite`)."""

    def __init__(self, site: _GuardedSite) -> None:
        self._site = site

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)  # a TCP server's transport
        self._site.admit(transport)


class _Early(asyncio.Protocol):
    """Holds what arrives between the end of a handshake and aiohttp's handler taking over.

    `start_tls` makes no `connection_made` call (it upgrades a connection assumed to be
    made already): `hand_over` makes it, then replays anything received meanwhile.
    """

    def __init__(self) -> None:
        self._received: list[bytes] = []
        self._eof = False
        self._lost: tuple[Exception | None] | None = None

    def data_received(self, data: bytes) -> None:
        self._received.append(data)

    def eof_received(self) -> bool | None:
        self._eof = True
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = (exc,)

    def hand_over(self, transport: asyncio.Transport, handler: asyncio.Protocol) -> None:
        """Make `handler` the connection's protocol, as if it had been from the start."""
        transport.set_protocol(handler)
        handler.connection_made(transport)
        for data in self._received:
            handler.data_received(data)
        if self._eof:
            handler.eof_received()
        if self._lost is not None:
            handler.connection_lost(self._lost[0])


class _GuardedSite(web.TCPSite):
    """A TCPSite that bounds open connections, handshakes included, and times handshakes out.

    Python's TLS server allocates a 256 KiB buffer per connection as soon as it is accepted,
    long before aiohttp sees it: a thousand peers stalling mid-handshake hold a thousand
    buffers. So the socket is served as plain TCP, each accepted connection is counted
    (handshaking or established) and refused over `max_connections`, and the handshake is
    started by hand (`loop.start_tls`, with the timeout) before aiohttp's handler gets the
    TLS transport.
    """

    def __init__(
        self,
        runner: web.AppRunner,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext,
        handshake_timeout: float,
        max_connections: int,
    ) -> None:
        super().__init__(runner, host, port, ssl_context=ssl_context)
        self._tls = ssl_context
        self._handshake_timeout = handshake_timeout
        self._max_connections = max_connections
        self._handshakes: set[asyncio.Task[None]] = set()
        self._refused = 0
        self._warned_at = -_REFUSAL_LOG_INTERVAL

    def admit(self, transport: asyncio.Transport) -> None:
        """Start the handshake of a new connection, or close it when over the bound."""
        server = self._runner.server
        assert server is not None  # set by runner.setup(), before any site starts
        if len(self._handshakes) + len(server.connections) >= self._max_connections:
            transport.abort()
            self._refused += 1
            now = asyncio.get_running_loop().time()
            if now - self._warned_at >= _REFUSAL_LOG_INTERVAL:  # one line, not one per peer
                logger.warning(
                    "webhook connections refused: too many open",
                    extra={"limit": self._max_connections, "refused": self._refused},
                )
                self._warned_at, self._refused = now, 0
            return
        transport.pause_reading()  # the ClientHello waits in the socket for start_tls
        task = asyncio.get_running_loop().create_task(self._handshake(transport, server()))
        self._handshakes.add(task)
        task.add_done_callback(self._handshakes.discard)

    async def _handshake(self, transport: asyncio.Transport, handler: asyncio.Protocol) -> None:
        loop = asyncio.get_running_loop()
        early = _Early()
        try:
            secure = await loop.start_tls(
                transport,
                early,
                self._tls,
                server_side=True,
                ssl_handshake_timeout=self._handshake_timeout,
            )
        except asyncio.CancelledError:
            transport.abort()
            raise
        except Exception as error:  # a failed, refused or timed-out handshake: closed
            logger.debug("webhook TLS handshake failed", extra={"reason": repr(error)})
            transport.abort()
            return
        assert secure is not None  # start_tls returns the transport or raises
        early.hand_over(secure, handler)

    async def start(self) -> None:
        """Listen (what TCPSite.start does, over plain TCP: TLS starts per connection)."""
        await web.BaseSite.start(self)
        self._server = await asyncio.get_running_loop().create_server(
            lambda: _Gate(self), self._host, self._port, backlog=self._backlog
        )

    async def stop(self) -> None:
        """Stop listening; handshakes still under way are dropped."""
        for task in list(self._handshakes):
            task.cancel()
        await asyncio.gather(*self._handshakes, return_exceptions=True)
        await super().stop()
