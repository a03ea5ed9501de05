"""The health server, over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from prodready.observability import health as health_module
from prodready.observability.health import Access, HealthServer
from prodready.observability.metrics import Metrics

ReadinessCheck = Callable[[], bool | Awaitable[bool]]


async def _started(readiness: ReadinessCheck = lambda: True, **options: float) -> HealthServer:
    server = HealthServer("127.0.0.1", 0, Metrics(process_metrics=False), readiness, **options)
    await server.start()
    return server


def _url(server: HealthServer, path: str) -> str:
    return f"http://127.0.0.1:{server.port}{path}"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as http:
        yield http


async def test_it_logs_like_the_rest_of_the_package(caplog: pytest.LogCaptureFixture) -> None:
    # One call style across prodready: a stdlib logger named `prodready.<part>`, fields
    # in `extra`, which the formatter renders as JSON keys.
    caplog.set_level(logging.INFO, logger="prodready.health")
    server = await _started()
    try:
        (record,) = [r for r in caplog.records if r.getMessage() == "health server listening"]
        assert record.name == "prodready.health"
        assert (record.__dict__["host"], record.__dict__["port"]) == ("127.0.0.1", server.port)
    finally:
        await server.stop()


async def test_healthz_readyz_and_metrics(client: httpx.AsyncClient) -> None:
    server = await _started()
    try:
        assert server.port > 0
        health = await client.get(_url(server, "/healthz"))
        assert (health.status_code, health.text) == (200, "ok\n")
        ready = await client.get(_url(server, "/readyz"))
        assert (ready.status_code, ready.text) == (200, "ok\n")
        metrics = await client.get(_url(server, "/metrics"))
        assert metrics.status_code == 200
        assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert "prodready_reconciles_total" in metrics.text
        missing = await client.get(_url(server, "/nope"))
        assert missing.status_code == 404
    finally:
        await server.stop()


async def test_readiness_false_is_503(client: httpx.AsyncClient) -> None:
    server = await _started(lambda: False)
    try:
        response = await client.get(_url(server, "/readyz"))
        assert (response.status_code, response.text) == (503, "not ready\n")
    finally:
        await server.stop()


async def test_async_readiness_runs_on_the_operator_loop(client: httpx.AsyncClient) -> None:
    operator_loop = asyncio.get_running_loop()
    loops: list[asyncio.AbstractEventLoop] = []
    state = {"ready": False}

    async def check() -> bool:
        loops.append(asyncio.get_running_loop())
        return state["ready"]

    server = await _started(check)
    try:
        assert (await client.get(_url(server, "/readyz"))).status_code == 503
        state["ready"] = True
        assert (await client.get(_url(server, "/readyz"))).status_code == 200
        assert loops == [operator_loop, operator_loop]
    finally:
        await server.stop()


async def test_failing_readiness_is_503_with_a_redacted_reason(
    client: httpx.AsyncClient,
) -> None:
    def check() -> bool:
        raise ConnectionError("apiserver refused password=hunter2")

    server = await _started(check)
    try:
        response = await client.get(_url(server, "/readyz"))
        assert response.status_code == 503
        assert response.text.startswith("not ready: ConnectionError: apiserver refused")
        assert "hunter2" not in response.text
    finally:
        await server.stop()


async def test_hung_readiness_times_out_as_503(client: httpx.AsyncClient) -> None:
    cancelled = asyncio.Event()

    async def check() -> bool:
        try:
            await asyncio.sleep(60)
        finally:
            cancelled.set()
        return True

    server = await _started(check, readiness_timeout=0.2)
    try:
        response = await client.get(_url(server, "/readyz"))
        assert response.status_code == 503
        assert "timed out after 0.2s" in response.text
        await asyncio.wait_for(cancelled.wait(), 5)  # the hung check itself was cancelled
    finally:
        await server.stop()


async def test_stale_heartbeat_fails_liveness(client: httpx.AsyncClient) -> None:
    now = [1000.0]
    server = await _started(clock=lambda: now[0], liveness_timeout=10)
    try:
        assert (await client.get(_url(server, "/healthz"))).status_code == 200
        now[0] += 11
        response = await client.get(_url(server, "/healthz"))
        assert response.status_code == 503
        assert response.text == "event loop stalled: last heartbeat 11.0s ago\n"
    finally:
        await server.stop()


async def test_blocked_operator_loop_fails_liveness_and_readiness() -> None:
    """The real thing: a synchronous sleep on the operator's loop, probed from outside."""
    server = await _started(heartbeat_interval=0.05, liveness_timeout=0.3, readiness_timeout=0.2)
    answers: dict[str, httpx.Response] = {}

    def probe() -> None:
        time.sleep(0.5)
        answers["healthz"] = httpx.get(_url(server, "/healthz"), timeout=5)
        answers["readyz"] = httpx.get(_url(server, "/readyz"), timeout=5)
        answers["metrics"] = httpx.get(_url(server, "/metrics"), timeout=5)

    prober = threading.Thread(target=probe)
    prober.start()
    try:
        # Blocks this loop on purpose: exactly what a synchronous call in a handler does.
        time.sleep(1.5)  # noqa: ASYNC251
        prober.join()
        assert answers["healthz"].status_code == 503
        assert "event loop stalled" in answers["healthz"].text
        assert answers["readyz"].status_code == 503
        assert answers["metrics"].status_code == 200
        await asyncio.sleep(0.1)  # the loop runs again, the heartbeat catches up
        async with httpx.AsyncClient(timeout=5) as http:
            assert (await http.get(_url(server, "/healthz"))).status_code == 200
    finally:
        await server.stop()


def _fields(text: str) -> dict[str, float]:
    return {
        name: float(value) for name, value in (line.split(" ") for line in text.splitlines()[1:])
    }


async def test_verbose_healthz_reports_the_longest_stall() -> None:
    """The witness for "the loop never stalled": a block of the loop shows up as the
    longest gap between heartbeats and is counted once it exceeds 100 ms; as "busy" only
    when the process itself computed through it (a sleeping or descheduled process is not
    the operator's own work)."""
    server = await _started(heartbeat_interval=0.01)
    try:
        async with httpx.AsyncClient(timeout=5) as http:
            await asyncio.sleep(0.2)
            calm = await http.get(_url(server, "/healthz?verbose"))
            assert (calm.status_code, calm.text.splitlines()[0]) == (200, "ok")
            before = _fields(calm.text)
            assert before["heartbeat_interval_seconds"] == 0.01
            assert server.longest_gap >= 0.01  # ticks happened, each at least an interval

            time.sleep(0.3)  # noqa: ASYNC251 - blocks the loop on purpose, without CPU
            await asyncio.sleep(0.05)
            slept = _fields((await http.get(_url(server, "/healthz?verbose"))).text)
            assert slept["heartbeat_longest_gap_seconds"] >= 0.3
            assert (
                slept["heartbeat_gaps_over_100ms_total"]
                >= 1 + (before["heartbeat_gaps_over_100ms_total"])
            )

            started = time.process_time()
            while time.process_time() - started < 0.3:  # blocks the loop computing
                pass
            await asyncio.sleep(0.05)
            busy = _fields((await http.get(_url(server, "/healthz?verbose"))).text)
        assert (
            busy["heartbeat_busy_gaps_over_100ms_total"]
            == 1 + (slept["heartbeat_busy_gaps_over_100ms_total"])
        )
        assert server.busy_stalls == busy["heartbeat_busy_gaps_over_100ms_total"]
        assert server.stalls == busy["heartbeat_gaps_over_100ms_total"]
    finally:
        await server.stop()


async def test_dead_heartbeat_fails_liveness(client: httpx.AsyncClient) -> None:
    calls = [0]

    def breaking_clock() -> float:
        calls[0] += 1
        if calls[0] > 3:  # after __init__, start() and the heartbeat's first tick
            raise RuntimeError("clock broke")
        return 0.0

    server = await _started(clock=breaking_clock, heartbeat_interval=0.01)
    try:
        await asyncio.sleep(0.1)  # the second tick raises and ends the heartbeat
        response = await client.get(_url(server, "/healthz"))
        assert (response.status_code, response.text) == (503, "heartbeat stopped\n")
    finally:
        await server.stop()


async def test_stop_is_idempotent_and_frees_the_port() -> None:
    server = HealthServer("127.0.0.1", 0, Metrics(process_metrics=False), lambda: True)
    await server.stop()  # before start: nothing to do
    await server.start()
    port = server.port
    await server.stop()
    await server.stop()
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.port
    with socket.socket() as probe:
        probe.settimeout(1)
        assert probe.connect_ex(("127.0.0.1", port)) != 0


async def test_start_twice_is_refused() -> None:
    server = await _started()
    try:
        with pytest.raises(RuntimeError, match="already running"):
            await server.start()
    finally:
        await server.stop()


async def test_a_taken_port_fails_start_cleanly() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = HealthServer("127.0.0.1", port, Metrics(process_metrics=False), lambda: True)
        with pytest.raises(OSError, match="address already in use"):
            await server.start()
        # Nothing left running: a second attempt elsewhere works.
        server = HealthServer("127.0.0.1", 0, Metrics(process_metrics=False), lambda: True)
        await server.start()
        await server.stop()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"heartbeat_interval": 0}, "heartbeat_interval"),
        ({"heartbeat_interval": 5, "liveness_timeout": 5}, "liveness_timeout"),
        ({"readiness_timeout": 0}, "readiness_timeout"),
    ],
)
def test_invalid_timings_are_refused(options: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        HealthServer("127.0.0.1", 0, Metrics(process_metrics=False), lambda: True, **options)


# -- /metrics behind a bearer token (TokenReview + SubjectAccessReview in the operator) -----


async def test_metrics_need_a_token_the_check_allows(client: httpx.AsyncClient) -> None:
    checked: list[str] = []
    operator_loop = asyncio.get_running_loop()

    async def access(token: str) -> Access:
        assert asyncio.get_running_loop() is operator_loop  # where the API client lives
        checked.append(token)
        return {"good": Access.ALLOWED, "nobody": Access.UNAUTHENTICATED}.get(
            token, Access.FORBIDDEN
        )

    server = HealthServer(
        "127.0.0.1", 0, Metrics(process_metrics=False), lambda: True, metrics_access=access
    )
    await server.start()
    try:
        assert (await client.get(_url(server, "/healthz"))).status_code == 200
        assert (await client.get(_url(server, "/readyz"))).status_code == 200
        missing = await client.get(_url(server, "/metrics"))
        assert missing.status_code == 401
        assert missing.headers["WWW-Authenticate"].startswith("Bearer")
        assert "prodready_" not in missing.text
        basic = await client.get(_url(server, "/metrics"), headers={"Authorization": "Basic eA=="})
        assert basic.status_code == 401
        assert checked == []  # no token, no review

        def scrape(token: str) -> Awaitable[httpx.Response]:
            return client.get(
                _url(server, "/metrics"), headers={"Authorization": f"Bearer {token}"}
            )

        allowed = await scrape("good")
        assert allowed.status_code == 200
        assert "prodready_build_info" in allowed.text
        assert (await scrape("good")).status_code == 200
        assert checked == ["good"]  # the verdict is reused
        unknown = await scrape("nobody")
        assert unknown.status_code == 401
        assert "not valid" in unknown.text
        forbidden = await scrape("reader-of-nothing")
        assert forbidden.status_code == 403
        assert "/metrics" in forbidden.text
        assert "reader-of-nothing" not in forbidden.text
    finally:
        await server.stop()


async def test_a_failing_token_check_is_a_503_without_details(client: httpx.AsyncClient) -> None:
    async def access(_token: str) -> Access:
        raise RuntimeError("apiserver said something secret")

    async def slow(_token: str) -> Access:
        await asyncio.sleep(30)
        return Access.ALLOWED

    for check, expected in ((access, "RuntimeError"), (slow, "timed out")):
        server = HealthServer(
            "127.0.0.1",
            0,
            Metrics(process_metrics=False),
            lambda: True,
            metrics_access=check,
            readiness_timeout=0.2,
        )
        await server.start()
        try:
            answer = await client.get(
                _url(server, "/metrics"), headers={"Authorization": "Bearer t"}
            )
            assert answer.status_code == 503
            assert expected in answer.text
            assert "secret" not in answer.text
        finally:
            await server.stop()


async def test_verdicts_expire_and_the_cache_stays_bounded(client: httpx.AsyncClient) -> None:
    now = [1000.0]
    calls: list[str] = []

    async def access(token: str) -> Access:
        calls.append(token)
        return Access.ALLOWED if token == "ok" else Access.FORBIDDEN

    server = HealthServer(
        "127.0.0.1",
        0,
        Metrics(process_metrics=False),
        lambda: True,
        metrics_access=access,
        clock=lambda: now[0],
    )
    await server.start()
    try:
        headers = {"Authorization": "Bearer ok"}
        assert (await client.get(_url(server, "/metrics"), headers=headers)).status_code == 200
        now[0] += 61  # past the allowed verdict's minute: asked again
        assert (await client.get(_url(server, "/metrics"), headers=headers)).status_code == 200
        assert calls == ["ok", "ok"]
        for index in range(health_module._MAX_CACHED + 5):
            server._remember(bytes([index % 256, index // 256]), Access.FORBIDDEN, now[0])
        assert len(server._verdicts) <= health_module._MAX_CACHED
    finally:
        await server.stop()


async def test_idle_and_half_sent_connections_are_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health_module, "_IDLE_TIMEOUT", 0.5)
    server = await _started()
    try:

        def hold(sent: bytes) -> float:
            with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
                sock.sendall(sent)
                started = time.monotonic()
                while sock.recv(4096):
                    pass
                return time.monotonic() - started

        for sent in (b"", b"GET /metrics HTTP/1.1\r\nHost: x"):
            waited = await asyncio.to_thread(hold, sent)
            assert 0.3 < waited < 5
    finally:
        await server.stop()
