"""The webhook server over real HTTPS on loopback: answers, errors, metrics."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import socket
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from prodready.kube.store import ObjectStore
from prodready.observability.metrics import Metrics
from prodready.webhook import server as server_module
from prodready.webhook.certificates import ReloadingTLS, generate_self_signed
from prodready.webhook.server import WebhookServer
from tests.unit.tls_clients import (
    ClientPair,
    client_ca,
    client_context,
    read_until_closed,
    tls_socket,
)

FIXTURE = Path(__file__).parents[1] / "fixtures" / "rules" / "compliant.yaml"


def _objects() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(FIXTURE.read_text()) if d and d["kind"] != "Secret"]


def _review(obj: dict[str, Any] | None, operation: str = "CREATE") -> dict[str, Any]:
    request: dict[str, Any] = {
        "uid": "uid-1",
        "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
        "operation": operation,
        "namespace": "shop",
        "name": "api",
    }
    if obj is not None:
        request["object"] = obj
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


class Running:
    def __init__(self, server: WebhookServer, session: aiohttp.ClientSession, metrics: Metrics):
        self.server = server
        self.session = session
        self.metrics = metrics

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.server.port}{path}"

    async def post(self, path: str, body: bytes) -> tuple[int, str]:
        async with self.session.post(self.url(path), data=body) as response:
            return response.status, await response.text()

    def count(self, **labels: str) -> float:
        value = self.metrics.registry.get_sample_value("prodready_webhook_requests_total", labels)
        return value or 0.0


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    generated = generate_self_signed(tmp_path, ["127.0.0.1"])
    store = ObjectStore()
    for body in _objects()[1:]:
        store.put(body)
    metrics = Metrics(process_metrics=False)
    server = WebhookServer(
        host="127.0.0.1",
        port=0,
        tls=ReloadingTLS(generated.cert_file, generated.key_file),
        store=store,
        metrics=metrics,
    )
    await server.start()
    client = ssl.create_default_context(cafile=str(generated.ca_file))
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client))
    try:
        yield Running(server, session, metrics)
    finally:
        await session.close()
        await server.stop()
        await server.stop()  # idempotent


async def test_enforce_path_denies_and_counts(running: Running) -> None:
    broken = copy.deepcopy(_objects()[0])
    del broken["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]
    status, text = await running.post("/validate/enforce", json.dumps(_review(broken)).encode())
    assert status == 200
    review = json.loads(text)
    assert review["apiVersion"] == "admission.k8s.io/v1"
    assert review["response"]["uid"] == "uid-1"
    assert review["response"]["allowed"] is False
    assert "PR-HC-001" in review["response"]["status"]["message"]
    assert running.count(kind="Deployment", operation="CREATE", allowed="false") == 1


async def test_audit_path_allows_with_warnings_using_the_store(running: Running) -> None:
    compliant = _objects()[0]
    status, text = await running.post("/validate/audit", json.dumps(_review(compliant)).encode())
    assert status == 200
    response = json.loads(text)["response"]
    assert response["allowed"] is True
    assert "warnings" not in response  # its ServiceMonitor, PDB, ... are in the store
    assert running.count(kind="Deployment", operation="CREATE", allowed="true") == 1


async def test_delete_is_allowed_without_evaluating(running: Running) -> None:
    status, text = await running.post(
        "/validate/enforce", json.dumps(_review(None, "DELETE")).encode()
    )
    assert status == 200
    assert json.loads(text)["response"] == {"uid": "uid-1", "allowed": True}


async def test_malformed_review_is_a_400_with_the_reason(running: Running) -> None:
    status, text = await running.post("/validate/enforce", b"{broken")
    assert status == 400
    assert text.startswith("request body is not JSON")
    assert "Traceback" not in text
    assert running.count() == 0


async def test_unknown_paths_and_methods(running: Running) -> None:
    status, _ = await running.post("/validate/other", b"{}")
    assert status == 404
    async with running.session.get(running.url("/validate/enforce")) as response:
        assert response.status == 405


async def test_an_evaluation_bug_is_a_500_without_a_traceback(
    running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*_args: Any, **_kwargs: Any) -> dict[str, Any]:
        raise RuntimeError("boom")

    monkeypatch.setattr(server_module, "decide", explode)
    status, text = await running.post(
        "/validate/enforce", json.dumps(_review(_objects()[0])).encode()
    )
    assert status == 500
    assert "could not evaluate" in text
    assert "boom" not in text
    assert "Traceback" not in text


async def test_port_is_known_only_once_started(tmp_path: Path) -> None:
    generated = generate_self_signed(tmp_path, ["127.0.0.1"])
    server = WebhookServer(
        host="127.0.0.1",
        port=0,
        tls=ReloadingTLS(generated.cert_file, generated.key_file),
        store=ObjectStore(),
        metrics=Metrics(process_metrics=False),
    )
    with pytest.raises(RuntimeError, match="not started"):
        _ = server.port


async def test_a_port_in_use_fails_start(tmp_path: Path) -> None:
    generated = generate_self_signed(tmp_path, ["127.0.0.1"])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = WebhookServer(
            host="127.0.0.1",
            port=taken.getsockname()[1],
            tls=ReloadingTLS(generated.cert_file, generated.key_file),
            store=ObjectStore(),
            metrics=Metrics(process_metrics=False),
        )
        with pytest.raises(OSError, match="in use"):
            await server.start()
        await server.stop()


# -- limits: whoever reaches the port gets bounded work ------------------------------------


@contextlib.asynccontextmanager
async def _serving(tmp_path: Path, **limits: Any) -> AsyncIterator[tuple[WebhookServer, Path]]:
    """A server with the fixture's store and the given limits; yields it and its CA."""
    generated = generate_self_signed(tmp_path / "serving", ["127.0.0.1"])
    store = ObjectStore()
    for body in _objects()[1:]:
        store.put(body)
    server = WebhookServer(
        host="127.0.0.1",
        port=0,
        tls=ReloadingTLS(
            generated.cert_file, generated.key_file, client_ca_file=limits.pop("client_ca", None)
        ),
        store=store,
        metrics=Metrics(process_metrics=False),
        **limits,
    )
    await server.start()
    try:
        yield server, generated.ca_file
    finally:
        await server.stop()


def _head(length: int | None = None, *, chunked: bool = False) -> bytes:
    lines = ["POST /validate/enforce HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


async def test_a_large_content_length_is_refused_before_the_body_is_read(tmp_path: Path) -> None:
    async with _serving(tmp_path) as (server, ca_file):

        def exchange() -> tuple[bytes, float]:
            with tls_socket(server.port, client_context(ca_file)) as sock:
                sock.sendall(_head(16 * 1024 * 1024))  # and not one byte of the body
                return read_until_closed(sock, 10)

        answer, _ = await asyncio.to_thread(exchange)
    assert _status(answer) == 413
    assert b"request body of 16777216 bytes exceeds the limit of 7340032" in answer
    assert server_module.MAX_BODY_BYTES == 7 * 1024 * 1024


async def test_a_chunked_body_is_cut_off_at_the_limit(tmp_path: Path) -> None:
    async with _serving(tmp_path, max_body_bytes=4096) as (server, ca_file):

        def exchange() -> tuple[bytes, float]:
            with tls_socket(server.port, client_context(ca_file)) as sock:
                sock.sendall(_head(chunked=True))
                for _ in range(5):  # 5 KiB in, and the body is still not finished
                    sock.sendall(b"400\r\n" + b"x" * 1024 + b"\r\n")
                return read_until_closed(sock, 10)

        answer, _ = await asyncio.to_thread(exchange)
    assert _status(answer) == 413
    assert answer.rstrip().endswith(b"request body exceeds the limit of 4096 bytes")


async def test_a_body_at_the_limit_is_evaluated(tmp_path: Path) -> None:
    body = json.dumps(_review(_objects()[0])).encode()
    async with _serving(tmp_path, max_body_bytes=len(body)) as (server, ca_file):

        def exchange() -> bytes:
            with tls_socket(server.port, client_context(ca_file)) as sock:
                sock.sendall(_head(len(body)) + body)
                sock.settimeout(10)
                return sock.recv(65536)

        answer = await asyncio.to_thread(exchange)
    assert _status(answer) == 200


@pytest.mark.parametrize(
    ("sent", "expected_status"),
    [
        pytest.param(b"", 0, id="idle after the handshake"),
        pytest.param(b"POST /validate/enforce HTTP/1.1\r\nHost: 127", 0, id="partial headers"),
        pytest.param(_head(100) + b'{"apiVersion":', 408, id="partial body"),
    ],
)
async def test_slow_connections_are_closed_within_the_read_timeout(
    tmp_path: Path, sent: bytes, expected_status: int
) -> None:
    async with _serving(tmp_path, read_timeout=0.5) as (server, ca_file):

        def exchange() -> tuple[bytes, float]:
            with tls_socket(server.port, client_context(ca_file)) as sock:
                sock.sendall(sent)
                return read_until_closed(sock, 10)

        answer, waited = await asyncio.to_thread(exchange)
    assert _status(answer) == expected_status
    assert 0.3 < waited < 5  # closed by the timeout, not at once and not never


async def test_a_connection_that_never_starts_tls_is_closed(tmp_path: Path) -> None:
    async with _serving(tmp_path, read_timeout=0.5) as (server, _ca_file):

        def exchange() -> tuple[bytes, float]:
            with socket.create_connection(("127.0.0.1", server.port)) as sock:
                return read_until_closed(sock, 10)

        answer, waited = await asyncio.to_thread(exchange)
    assert answer == b""
    assert waited < 5


async def test_reviews_over_the_in_flight_limit_are_answered_503_at_once(tmp_path: Path) -> None:
    async with _serving(tmp_path, max_in_flight=1, read_timeout=3) as (server, ca_file):
        context = client_context(ca_file)

        def exchange() -> tuple[bytes, float]:
            with tls_socket(server.port, context) as holder:
                holder.sendall(_head(100) + b"{")  # holds the one slot while its body trickles
                with tls_socket(server.port, context) as second:
                    body = json.dumps(_review(_objects()[0])).encode()
                    second.sendall(_head(len(body)) + body)
                    return read_until_closed(second, 10)

        answer, waited = await asyncio.to_thread(exchange)
    assert _status(answer) == 503
    assert b"more than 1 admission reviews in flight" in answer
    assert waited < 2  # not queued behind the slow one


def _refused(port: int, context: ssl.SSLContext) -> float:
    """How long a connection over the limit took to be refused (it never completes TLS)."""
    started = time.monotonic()
    try:
        with tls_socket(port, context) as sock:
            answer, _ = read_until_closed(sock, 10)
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        answer = b""
    assert answer == b""
    return time.monotonic() - started


async def test_connections_over_the_limit_are_closed_at_once(tmp_path: Path) -> None:
    async with _serving(tmp_path, max_connections=1, read_timeout=5) as (server, ca_file):
        context = client_context(ca_file)

        def exchange() -> tuple[float, int]:
            with tls_socket(server.port, context) as first:
                waited = _refused(server.port, context)
                body = json.dumps(_review(_objects()[0])).encode()
                first.sendall(_head(len(body)) + body)  # the first one is still served
                first.settimeout(10)
                return waited, _status(first.recv(65536))

        waited, first_status = await asyncio.to_thread(exchange)
    assert waited < 2
    assert first_status == 200


async def test_connections_stalled_mid_handshake_count_towards_the_limit(tmp_path: Path) -> None:
    # Each costs a 256 KiB TLS buffer once its handshake starts: they must be bounded too.
    async with _serving(tmp_path, max_connections=3, read_timeout=5) as (server, ca_file):
        context = client_context(ca_file)

        def exchange() -> tuple[float, int]:
            stalled = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(3)]
            try:
                for sock in stalled:
                    sock.sendall(b"\x16\x03\x01")  # a ClientHello that never finishes
                waited = _refused(server.port, context)
            finally:
                for sock in stalled:
                    sock.close()

            def served() -> int:  # once they are gone, connections are served again
                try:
                    body = json.dumps(_review(_objects()[0])).encode()
                    with tls_socket(server.port, context) as sock:
                        sock.sendall(_head(len(body)) + body)
                        sock.settimeout(10)
                        return _status(sock.recv(65536))
                except (ssl.SSLError, ConnectionResetError):
                    return 0

            deadline = time.monotonic() + 10
            status = served()
            while status != 200 and time.monotonic() < deadline:
                status = served()
            return waited, status

        waited, status = await asyncio.to_thread(exchange)
    assert waited < 2
    assert status == 200


@pytest.mark.parametrize(
    ("request_namespace", "object_namespace", "field"),
    [("other", "shop", "object"), ("shop", "other", "object"), ("", "shop", "object")],
)
async def test_an_object_claiming_another_namespace_is_refused(
    running: Running, request_namespace: str, object_namespace: str, field: str
) -> None:
    obj = copy.deepcopy(_objects()[0])
    obj["metadata"]["namespace"] = object_namespace
    review = _review(obj)
    review["request"]["namespace"] = request_namespace
    status, text = await running.post("/validate/audit", json.dumps(review).encode())
    assert status == 400
    assert text.startswith(f"request.{field}.metadata.namespace {object_namespace!r} differs")
    assert running.count() == 0


async def test_an_old_object_claiming_another_namespace_is_refused(running: Running) -> None:
    obj = _objects()[0]
    old = copy.deepcopy(obj)
    old["metadata"]["namespace"] = "other"
    review = _review(obj, "UPDATE")
    review["request"]["oldObject"] = old
    status, text = await running.post("/validate/enforce", json.dumps(review).encode())
    assert status == 400
    assert text.startswith("request.oldObject.metadata.namespace 'other' differs")


async def test_a_review_for_another_namespace_never_names_this_namespaces_services(
    running: Running,
) -> None:
    # The store holds namespace shop's Service, PDB, ...: a review for namespace `other`
    # is judged with other's (empty) context, so nothing of shop's shows in the answer.
    obj = copy.deepcopy(_objects()[0])
    obj["metadata"]["namespace"] = "other"
    review = _review(obj)
    review["request"]["namespace"] = "other"
    status, text = await running.post("/validate/audit", json.dumps(review).encode())
    assert status == 200
    response = json.loads(text)["response"]
    assert response["warnings"]  # judged without shop's context: warnings...
    shop_names = {
        body["metadata"]["name"] for body in _objects()[1:] if body["kind"] != "Deployment"
    }
    services = [b for b in _objects() if b["kind"] == "Service"]
    assert services
    for warning in response["warnings"]:
        assert "shop" not in warning
        for service in services:
            assert f"Service {service['metadata']['name']}" not in warning
    assert shop_names  # the fixture has context objects to leak, had they been used


def test_limits_must_be_positive(tmp_path: Path) -> None:
    generated = generate_self_signed(tmp_path, ["127.0.0.1"])
    with pytest.raises(ValueError, match="limits must be positive"):
        WebhookServer(
            host="127.0.0.1",
            port=0,
            tls=ReloadingTLS(generated.cert_file, generated.key_file),
            store=ObjectStore(),
            metrics=Metrics(process_metrics=False),
            max_in_flight=0,
        )


# -- TLS: AEAD suites only, and apiserver-only access with a client CA ---------------------


async def test_a_cbc_only_client_cannot_handshake(tmp_path: Path) -> None:
    async with _serving(tmp_path) as (server, ca_file):

        def handshake(ciphers: str) -> str:
            context = client_context(ca_file)
            context.maximum_version = ssl.TLSVersion.TLSv1_2
            context.set_ciphers(ciphers)
            with tls_socket(server.port, context) as sock:
                return str(sock.cipher()[0])

        # The server finds no shared suite and drops the handshake (the client sees an EOF).
        with pytest.raises(ssl.SSLError):
            await asyncio.to_thread(handshake, "ECDHE+AES128+SHA:ECDHE+AES256+SHA:AES128-SHA")
        with pytest.raises(ssl.SSLError):
            await asyncio.to_thread(handshake, "AES128-GCM-SHA256")  # static RSA: no ECDHE
        assert await asyncio.to_thread(handshake, "ECDHE+AESGCM") == "ECDHE-ECDSA-AES256-GCM-SHA384"
        assert "CHACHA20" in await asyncio.to_thread(handshake, "ECDHE+CHACHA20")


async def test_with_a_client_ca_only_its_certificates_get_an_answer(tmp_path: Path) -> None:
    trusted_ca, apiserver = client_ca(tmp_path / "trusted", "apiserver-client-ca")
    _, stranger = client_ca(tmp_path / "stranger", "another-ca")
    async with _serving(tmp_path, client_ca=trusted_ca) as (server, ca_file):
        body = json.dumps(_review(_objects()[0])).encode()

        def post(pair: ClientPair | None) -> bytes:
            with tls_socket(server.port, client_context(ca_file, pair)) as sock:
                sock.sendall(_head(len(body)) + body)
                return read_until_closed(sock, 10)[0] if pair is None else sock.recv(65536)

        assert _status(await asyncio.to_thread(post, apiserver)) == 200
        for pair in (None, stranger):
            # TLS 1.3 reports the refusal after the client's half of the handshake: either
            # the handshake or the first read fails, and no HTTP answer ever comes back.
            try:
                answer = await asyncio.to_thread(post, pair)
            except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
                answer = b""
            assert answer == b""


async def test_a_rotated_client_ca_applies_to_new_handshakes(tmp_path: Path) -> None:
    ca_file, old_client = client_ca(tmp_path / "clients", "apiserver-client-ca")
    async with _serving(tmp_path, client_ca=ca_file) as (server, serving_ca):
        body = json.dumps(_review(_objects()[0])).encode()

        def post(pair: ClientPair) -> bytes:
            try:
                with tls_socket(server.port, client_context(serving_ca, pair)) as sock:
                    sock.sendall(_head(len(body)) + body)
                    sock.settimeout(10)
                    return sock.recv(65536)
            except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
                return b""

        assert _status(await asyncio.to_thread(post, old_client)) == 200
        kept = ClientPair(tmp_path / "old.crt", tmp_path / "old.key")
        kept.cert_file.write_bytes(old_client.cert_file.read_bytes())
        kept.key_file.write_bytes(old_client.key_file.read_bytes())
        old_client = kept
        _, new_client = client_ca(tmp_path / "clients", "apiserver-client-ca")  # same files
        assert server._tls.reload_if_changed() is True
        assert _status(await asyncio.to_thread(post, new_client)) == 200
        assert await asyncio.to_thread(post, old_client) == b""  # the old CA is gone


def test_what_arrives_before_the_hand_over_reaches_the_handler_in_order() -> None:
    events: list[Any] = []

    class Handler(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            events.append(("made", transport))

        def data_received(self, data: bytes) -> None:
            events.append(("data", data))

        def eof_received(self) -> bool | None:
            events.append(("eof",))
            return None

        def connection_lost(self, exc: Exception | None) -> None:
            events.append(("lost", exc))

    class Transport(asyncio.Transport):
        def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
            events.append(("protocol", type(protocol).__name__))

    early = server_module._Early()
    early.data_received(b"POST / HTTP/1.1\r\n")
    early.data_received(b"Host: x\r\n\r\n")
    early.eof_received()
    lost = ConnectionResetError("gone")
    early.connection_lost(lost)
    transport = Transport()
    early.hand_over(transport, Handler())
    assert events == [
        ("protocol", "Handler"),
        ("made", transport),
        ("data", b"POST / HTTP/1.1\r\n"),
        ("data", b"Host: x\r\n\r\n"),
        ("eof",),
        ("lost", lost),
    ]


class _SecretsApi:
    """Just `get` of Secrets by name, counting reads, and `close`."""

    def __init__(self, secrets: dict[str, dict[str, Any]], delay: float = 0.0) -> None:
        self.secrets = secrets
        self.delay = delay
        self.reads: list[str] = []
        self.closed = False

    async def get(self, path: str) -> dict[str, Any] | None:
        _, _, _, _, namespace, _, name = path.split("/")
        assert namespace == "shop", path  # the request's namespace, whatever the object says
        self.reads.append(name)
        await asyncio.sleep(self.delay)
        return copy.deepcopy(self.secrets.get(path.rsplit("/", 1)[-1]))

    async def close(self) -> None:
        self.closed = True


async def _secret_server(tmp_path: Path, api: _SecretsApi, seconds: float = 1.0) -> WebhookServer:
    generated = generate_self_signed(tmp_path, ["127.0.0.1"])
    store = ObjectStore()
    for body in _objects()[1:]:
        store.put(body)
    server = WebhookServer(
        host="127.0.0.1",
        port=0,
        tls=ReloadingTLS(generated.cert_file, generated.key_file),
        store=store,
        metrics=Metrics(process_metrics=False),
        client_factory=lambda: api,  # type: ignore[arg-type,return-value]
        secret_lookup_seconds=seconds,
    )
    await server.start()
    return server


async def _enforce(server: WebhookServer, obj: dict[str, Any], ca: Path) -> dict[str, Any]:
    context = ssl.create_default_context(cafile=str(ca))
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session,
        session.post(
            f"https://127.0.0.1:{server.port}/validate/enforce",
            data=json.dumps(_review(obj)).encode(),
        ) as response,
    ):
        return dict(json.loads(await response.text())["response"])


async def test_a_key_missing_from_a_referenced_secret_is_named_a_missing_secret_is_not(
    tmp_path: Path,
) -> None:
    """Admission reads the Secrets a workload references by name (key names only): a key
    the Secret lacks is PR-CF-002, as offline (a warning: it waits on another object);
    a Secret that does not exist yet is not judged (GitOps tools and External Secrets
    may create it after the workload)."""
    api = _SecretsApi({"db-credentials": {"metadata": {}, "data": {"dsn": "c2VjcmV0"}}})
    server = await _secret_server(tmp_path, api)
    ca = tmp_path / "ca.crt"
    try:
        response = await _enforce(server, _objects()[0], ca)
        assert response["allowed"] is True
        (warning,) = [w for w in response["warnings"] if w.startswith("PR-CF-002")]
        assert "Secret db-credentials has no key url" in warning
        assert "c2VjcmV0" not in json.dumps(response)

        api.secrets["db-credentials"]["data"] = {"url": "c2VjcmV0"}
        response = await _enforce(server, _objects()[0], ca)  # the cached answer
        assert any(w.startswith("PR-CF-002") for w in response["warnings"])
        assert api.reads == ["db-credentials"]

        renamed = copy.deepcopy(_objects()[0])
        del renamed["metadata"]["namespace"]  # kubectl -n: the namespace is in the URL only
        for entry in renamed["spec"]["template"]["spec"]["containers"][0]["env"]:
            if "secretKeyRef" in entry.get("valueFrom", {}):
                entry["valueFrom"]["secretKeyRef"]["name"] = "not-created-yet"
        response = await _enforce(server, renamed, ca)
        assert not any(w.startswith("PR-CF-002") for w in response.get("warnings") or ())
        assert api.reads == ["db-credentials", "not-created-yet"]
    finally:
        await server.stop()
    assert api.closed


async def test_slow_secret_lookups_leave_the_reference_unjudged(tmp_path: Path) -> None:
    api = _SecretsApi({"db-credentials": {"metadata": {}, "data": {"dsn": "eA=="}}}, delay=5.0)
    server = await _secret_server(tmp_path, api, seconds=0.2)
    try:
        started = time.monotonic()
        response = await _enforce(server, _objects()[0], tmp_path / "ca.crt")
        assert time.monotonic() - started < 4.0
        assert not any(w.startswith("PR-CF-002") for w in response.get("warnings") or ())
        assert api.reads == ["db-credentials"]
    finally:
        await server.stop()


async def test_an_ordinary_review_is_evaluated_on_the_loop_a_large_one_on_a_thread(
    running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two hand-overs between threads cost more than evaluating a Deployment takes; only
    a review larger than INLINE_BODY_BYTES goes to a pool thread."""
    handed_over: list[int] = []
    real = asyncio.to_thread

    async def counting(function: Any, *args: Any, **kwargs: Any) -> Any:
        handed_over.append(1)
        return await real(function, *args, **kwargs)

    monkeypatch.setattr(server_module.asyncio, "to_thread", counting)
    compliant = _objects()[0]
    status, _ = await running.post("/validate/audit", json.dumps(_review(compliant)).encode())
    assert status == 200
    assert handed_over == []
    large = copy.deepcopy(compliant)
    large["metadata"]["annotations"] = {"padding": "x" * server_module.INLINE_BODY_BYTES}
    status, text = await running.post("/validate/audit", json.dumps(_review(large)).encode())
    assert status == 200
    assert json.loads(text)["response"]["allowed"] is True
    assert handed_over == [1]
