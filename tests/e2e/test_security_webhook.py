"""The webhook and /metrics against whoever can reach their ports (issue 14, part 5).

Two real `prodready run` processes: one as a cluster without apiserver client certificates
runs it (any client reaching the port gets an answer, within limits), one with
PRODREADY_WEBHOOK_CLIENT_CA_FILE set to the CA of the certificate the test control plane's
apiserver presents to webhooks (tests/cluster/controlplane.py), and /metrics authenticated.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import itertools
import json
import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from prodready.webhook.server import MAX_BODY_BYTES, READ_TIMEOUT
from tests.cluster.controlplane import ControlPlane
from tests.e2e.policy_support import (
    E2E_LABEL,
    bare_deployment,
    compliant_deployment,
    e2e_webhook_configuration,
    kubectl_apply,
    label_namespace,
    webhook_endpoint,
)
from tests.e2e.support import (
    CRD_FILE,
    MONITORING_CRDS,
    OperatorProcess,
    install_crds,
    start_operator,
    wait_for,
)
from tests.unit.tls_clients import (
    ClientPair,
    client_ca,
    client_context,
    read_until_closed,
    tls_socket,
)

pytestmark = pytest.mark.cluster

CHART_MEMORY_LIMIT = 512 * 1024 * 1024  # charts/prodready/values.yaml resources.limits
_names = itertools.count()


@pytest.fixture(scope="module")
def open_operator(
    cluster: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """The operator without a client CA: the port answers whoever reaches it."""
    install_crds(cluster, CRD_FILE, *MONITORING_CRDS)
    process = start_operator(cluster, tmp_path_factory.mktemp("open") / "operator.log")
    yield process
    process.stop()


@pytest.fixture(scope="module")
def guarded_operator(
    cluster: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """The operator trusting only the apiserver's webhook client CA, /metrics authenticated."""
    install_crds(cluster, CRD_FILE, *MONITORING_CRDS)
    process = start_operator(
        cluster,
        tmp_path_factory.mktemp("guarded") / "operator.log",
        env={
            "PRODREADY_WEBHOOK_CLIENT_CA_FILE": str(cluster.certs.webhook_client_ca),
            "PRODREADY_METRICS_AUTH": "true",
        },
    )
    yield process
    process.stop()


def _rss(operator: OperatorProcess) -> int:
    for line in Path(f"/proc/{operator.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _head(length: int | None = None, *, path: str = "/validate/audit") -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    lines.append(
        f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    )
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


def _body(answer: bytes) -> str:
    return answer.partition(b"\r\n\r\n")[2].decode(errors="replace")


def _post(port: int, context: ssl.SSLContext, review: dict[str, Any]) -> bytes:
    body = json.dumps(review).encode()
    with tls_socket(port, context) as sock:
        sock.sendall(_head(len(body)) + body)
        sock.settimeout(20)
        answer = b""
        while b"\r\n\r\n" not in answer or len(_body(answer).encode()) < _length(answer):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
        return answer


def _length(answer: bytes) -> int:
    for line in answer.partition(b"\r\n\r\n")[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return 0


def _review(obj: dict[str, Any], namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": f"hostile-{next(_names)}",
            "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "operation": "CREATE",
            "namespace": namespace,
            "name": obj["metadata"]["name"],
            "object": obj,
            "userInfo": {"username": "mallory"},
        },
    }


# -- limits ------------------------------------------------------------------------------


def test_a_16_mib_body_is_refused_and_memory_stays_bounded(open_operator: OperatorProcess) -> None:
    port, ca_file = webhook_endpoint(open_operator)
    context = client_context(ca_file)
    before = _rss(open_operator)

    with tls_socket(port, context) as sock:  # declared: answered before the body is sent
        sock.sendall(_head(16 * 1024 * 1024))
        declared, _ = read_until_closed(sock, 20)

    def chunked() -> bytes:  # undeclared: cut off at the limit while it streams in
        with tls_socket(port, context) as sock:
            sock.sendall(_head())
            piece = b"%x\r\n%s\r\n" % (1024 * 1024, b" " * (1024 * 1024))
            try:
                for _ in range(16):
                    sock.sendall(piece)
            except OSError:
                pass  # the server stopped reading and closed: what is wanted
            try:
                return read_until_closed(sock, 20)[0]
            except OSError:
                return b""

    # Four at once: together 64 MiB offered, far beyond what one request may hold.
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: chunked(), range(4)))
    # And a flood of connections that stall in their TLS handshake: each would hold a
    # 256 KiB buffer, were they not bounded like established ones.
    flood = []
    try:
        for _ in range(500):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            flood.append(sock)
            with contextlib.suppress(OSError):  # refused ones are reset at once
                sock.sendall(b"\x16\x03\x01")
        after = _rss(open_operator)
    finally:
        for sock in flood:
            sock.close()

    assert _status(declared) == 413
    assert f"exceeds the limit of {MAX_BODY_BYTES}" in _body(declared)
    # 413, or a reset when the server closed with the rest of the body still unread; never
    # the 400 that a body read to its end (16 MiB of spaces is no JSON) would have earned.
    assert all(_status(answer) in (0, 413) for answer in answers), answers
    growth = after - before
    print(f"operator RSS {before / 2**20:.0f} MiB -> {after / 2**20:.0f} MiB")
    assert after < CHART_MEMORY_LIMIT // 2
    assert growth < 4 * MAX_BODY_BYTES + 32 * 1024 * 1024
    assert open_operator.status("/healthz") == 200

    def served() -> bool:  # the flood gone, the webhook answers again
        with contextlib.suppress(OSError):
            review = _review(bare_deployment("after", "default"), "default")
            return _status(_post(port, context, review)) == 200
        return False

    wait_for(served, 30, "the webhook to answer after the flood")


def test_slow_and_idle_connections_are_closed(open_operator: OperatorProcess) -> None:
    port, ca_file = webhook_endpoint(open_operator)
    context = client_context(ca_file)

    def over_tls(sent: bytes) -> tuple[bytes, float]:
        with tls_socket(port, context) as sock:
            sock.sendall(sent)
            return read_until_closed(sock, READ_TIMEOUT + 20)

    def without_handshake() -> tuple[bytes, float]:
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"\x16\x03\x01")  # the first bytes of a ClientHello, and no more
            return read_until_closed(sock, READ_TIMEOUT + 20)

    slow = {
        "idle": lambda: over_tls(b""),
        "partial headers": lambda: over_tls(b"POST /validate/enforce HTTP/1.1\r\nHost: 1"),
        "partial body": lambda: over_tls(_head(4096) + b'{"apiVersion": "admission'),
        "partial handshake": without_handshake,
    }
    with concurrent.futures.ThreadPoolExecutor(len(slow)) as pool:
        futures = {name: pool.submit(call) for name, call in slow.items()}
        results = {name: future.result() for name, future in futures.items()}
    for name, (answer, waited) in results.items():
        assert waited < READ_TIMEOUT + 5, f"{name}: open for {waited:.1f}s"
        assert _status(answer) == (408 if name == "partial body" else 0), (name, answer)
    assert open_operator.status("/healthz") == 200


# -- warnings never describe another namespace ---------------------------------------------


def test_a_hostile_client_cannot_read_another_namespaces_services(
    cluster: ControlPlane, open_operator: OperatorProcess, namespace: str
) -> None:
    victim, attacker = namespace, f"{namespace}-a"
    cluster.kubectl("create", "namespace", attacker)
    try:
        deployment = compliant_deployment(victim)
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        secret_service = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "ledger-internal-lb", "namespace": victim},
            "spec": {
                "type": "LoadBalancer",
                "selector": labels,
                "ports": [{"name": "pg", "port": 5432, "targetPort": 5432}],
            },
        }
        cluster.kubectl("apply", "-f", "-", input=json.dumps(secret_service))
        port, ca_file = webhook_endpoint(open_operator)
        context = client_context(ca_file)

        # The leak this test guards against exists: judged in its own namespace, the
        # Deployment's answer names the victim's Service (once the operator has seen it).
        def named_in_own_namespace() -> bool:
            return "ledger-internal-lb" in _body(_post(port, context, _review(deployment, victim)))

        wait_for(named_in_own_namespace, 30, "the victim's Service in the operator's view")

        claims_victim = compliant_deployment(victim)
        claims_attacker = compliant_deployment(attacker)
        unnamed = compliant_deployment(attacker)
        del unnamed["metadata"]["namespace"]
        for review, expected_status in (
            (_review(claims_victim, attacker), 400),  # the object claims the victim's namespace
            (_review(claims_attacker, victim), 400),  # the request names the victim's namespace
            (_review(unnamed, attacker), 200),  # judged in the attacker's own namespace
        ):
            answer = _post(port, context, review)
            assert _status(answer) == expected_status, answer
            assert "ledger-internal-lb" not in _body(answer)
            assert "5432" not in _body(answer)
    finally:
        cluster.kubectl("delete", "namespace", attacker, "--wait=false", check=False)


def _referencing(deployment: dict[str, Any], secret: str, key: str) -> dict[str, Any]:
    changed = json.loads(json.dumps(deployment))
    container = changed["spec"]["template"]["spec"]["containers"][0]
    container["env"] = [
        *(e for e in container["env"] if "valueFrom" not in e),
        {"name": "DB", "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}},
    ]
    return changed


def test_secret_lookups_never_reach_another_namespace(
    cluster: ControlPlane, open_operator: OperatorProcess, namespace: str
) -> None:
    """The webhook reads the Secrets a reviewed workload references, by name, for their
    key names: only in the request's namespace, whatever the object or its references
    say, so no answer tells an attacker which Secrets or keys another namespace holds."""
    victim, attacker = namespace, f"{namespace}-s"
    cluster.kubectl("create", "namespace", attacker)
    try:
        cluster.kubectl(
            "create", "secret", "generic", "ledger-db", "-n", victim,
            "--from-literal=password=hunter2-never-shown",
        )  # fmt: skip
        port, ca_file = webhook_endpoint(open_operator)
        context = client_context(ca_file)
        guess = _referencing(compliant_deployment(victim), "ledger-db", "guessed")
        # The lookup works: in its own namespace, the answer says the key is missing.
        own = _body(_post(port, context, _review(guess, victim)))
        assert "Secret ledger-db has no key guessed" in own
        assert "hunter2" not in own

        claims_attacker = _referencing(compliant_deployment(attacker), "ledger-db", "guessed")
        unnamed = json.loads(json.dumps(claims_attacker))
        del unnamed["metadata"]["namespace"]
        for review in (_review(claims_attacker, attacker), _review(unnamed, attacker)):
            answer = _body(_post(port, context, review))
            assert "ledger-db" not in answer, answer  # not judged: nothing found where it runs
            assert "hunter2" not in answer
    finally:
        cluster.kubectl("delete", "namespace", attacker, "--wait=false", check=False)


# -- apiserver-only access -------------------------------------------------------------------


def test_only_the_apiserver_gets_an_answer(
    cluster: ControlPlane, guarded_operator: OperatorProcess, namespace: str, tmp_path: Path
) -> None:
    port, ca_file = webhook_endpoint(guarded_operator)
    review = _review(bare_deployment("direct", namespace), namespace)
    _, stranger = client_ca(tmp_path, "not-the-apiservers-ca")
    for pair in (None, stranger):
        try:
            answer = _post(port, client_context(ca_file, pair), review)
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
            answer = b""
        assert answer == b"", f"answered a client presenting {pair}"
    apiserver_cert, apiserver_key = cluster.certs.webhook_client
    answer = _post(port, client_context(ca_file, ClientPair(apiserver_cert, apiserver_key)), review)
    assert _status(answer) == 200  # the certificate the apiserver presents does get in

    name = f"prodready-e2e-mtls-{next(_names)}"
    # Ignore: a refused handshake would admit, so only a real answer denies.
    document = e2e_webhook_configuration(guarded_operator, name, "Ignore")
    label_namespace(cluster, namespace, "prodready.io/enforce=true", f"{E2E_LABEL}=true")
    cluster.kubectl("apply", "-f", "-", input=json.dumps(document))
    try:

        def denied() -> str:
            result = kubectl_apply(
                cluster, namespace, bare_deployment("probe", namespace), extra=("--dry-run=server",)
            )
            return result.stderr if result.returncode != 0 else ""

        message = wait_for(denied, 30, "the apiserver, with its client certificate, to be answered")
        assert "prodready denied" in message
        assert "PR-HC-001" in message
        created = kubectl_apply(cluster, namespace, bare_deployment("real", namespace))
        assert created.returncode != 0
        assert "prodready denied" in created.stderr
    finally:
        cluster.kubectl("delete", "validatingwebhookconfiguration", name, check=False)


# -- /metrics behind TokenReview + SubjectAccessReview ---------------------------------------


def _scrape(operator: OperatorProcess, token: str | None) -> tuple[int, str]:
    request = urllib.request.Request(operator.url("/metrics"))  # noqa: S310 - loopback
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read().decode()


def test_metrics_need_a_token_allowed_to_get_them(
    cluster: ControlPlane, guarded_operator: OperatorProcess, namespace: str
) -> None:
    role = f"prodready-e2e-metrics-reader-{next(_names)}"
    for account in ("scraper", "nosy"):
        cluster.kubectl("create", "serviceaccount", account, "-n", namespace)
    cluster.kubectl("create", "clusterrole", role, "--verb=get", "--non-resource-url=/metrics")
    cluster.kubectl(
        "create", "clusterrolebinding", role, f"--clusterrole={role}",
        f"--serviceaccount={namespace}:scraper",
    )  # fmt: skip
    try:
        scraper = cluster.kubectl("create", "token", "scraper", "-n", namespace).stdout.strip()
        nosy = cluster.kubectl("create", "token", "nosy", "-n", namespace).stdout.strip()
        assert guarded_operator.status("/healthz") == 200  # the kubelet needs no token
        assert guarded_operator.status("/readyz") == 200
        status, text = _scrape(guarded_operator, None)
        assert status == 401
        assert "prodready_" not in text
        assert _scrape(guarded_operator, "not-a-token")[0] == 401
        status, text = _scrape(guarded_operator, nosy)
        assert status == 403
        assert "prodready_" not in text
        status, text = _scrape(guarded_operator, scraper)
        assert status == 200
        assert "prodready_build_info" in text
        assert nosy not in guarded_operator.log.read_text()
        assert scraper not in guarded_operator.log.read_text()
    finally:
        cluster.kubectl("delete", "clusterrolebinding", role, check=False)
        cluster.kubectl("delete", "clusterrole", role, check=False)
