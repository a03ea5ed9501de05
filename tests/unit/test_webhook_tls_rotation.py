"""The operator's own webhook certificate (webhook/tls_rotation.py): created once whoever
races, served by every replica, renewed by the leader with the new CA trusted before it is
served, caBundle kept on the one named webhook configuration, nothing written when
converged. The apiserver is an in-memory fake with resourceVersion conflicts; the same
story against the real control plane is tests/e2e/test_chart.py."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import datetime
import logging
import time
from pathlib import Path
from typing import Any, cast

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from prodready.config import load_settings
from prodready.kube.client import ApiError, KubeClient
from prodready.webhook.certificates import issue_certificate
from prodready.webhook.tls_rotation import (
    SECRETS,
    WEBHOOK_CONFIGURATIONS,
    CertificateSource,
    WebhookCertificates,
    renewal_due,
    trusted_bundle,
)

NAMESPACE = "prodready"
SECRET = "prodready-webhook-tls"
CONFIGURATION = "prodready"
HOSTS = ("prodready.prodready.svc", "prodready")
DAY = datetime.timedelta(days=1)
T0 = datetime.datetime(2031, 1, 1, tzinfo=datetime.UTC)
SECRET_PATH = SECRETS.path(NAMESPACE, SECRET)
CONFIGURATION_PATH = WEBHOOK_CONFIGURATIONS.path(None, CONFIGURATION)


class FakeApi:
    """One Secret and webhook configurations, with resourceVersions and conflicts."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.writes: list[tuple[str, str]] = []
        self.version = 0
        self.before_create: Any = None  # a rival's write, run just before our POST
        self.before_put: Any = None

    def _stored(self, path: str, obj: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(self.version)
        obj["metadata"].setdefault("uid", f"uid-{self.version}")
        self.objects[path] = obj
        return copy.deepcopy(obj)

    def add_configuration(self, name: str = CONFIGURATION) -> None:
        webhooks = [{"name": n, "clientConfig": {"service": {"name": "x"}}} for n in ("a", "b")]
        self._stored(
            WEBHOOK_CONFIGURATIONS.path(None, name),
            {"metadata": {"name": name}, "webhooks": webhooks},
        )

    async def get(self, path: str) -> dict[str, Any] | None:
        found = self.objects.get(path)
        return copy.deepcopy(found) if found is not None else None

    async def create(self, resource: Any, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        if self.before_create is not None:
            rival, self.before_create = self.before_create, None
            await rival()
        path = resource.path(namespace, body["metadata"]["name"])
        if path in self.objects:
            raise ApiError(409, "AlreadyExists", "exists", "POST", path)
        self.writes.append(("create", path))
        return self._stored(path, body)

    async def request(
        self, method: str, path: str, *, body: Any = None, content_type: str = "", **_: Any
    ) -> dict[str, Any]:
        if method == "PUT":
            if self.before_put is not None:
                rival, self.before_put = self.before_put, None
                await rival()
            current = self.objects[path]
            if body["metadata"]["resourceVersion"] != current["metadata"]["resourceVersion"]:
                raise ApiError(409, "Conflict", "modified", method, path)
            self.writes.append(("update", path))
            return self._stored(path, body)
        assert method == "PATCH"
        assert content_type == "application/strategic-merge-patch+json"
        current = copy.deepcopy(self.objects[path])
        by_name = {w["name"]: w for w in current["webhooks"]}
        for entry in body["webhooks"]:
            by_name[entry["name"]]["clientConfig"].update(entry["clientConfig"])
        self.writes.append(("patch", path))
        return self._stored(path, current)

    def bundles(self, path: str = CONFIGURATION_PATH) -> set[str | None]:
        return {w["clientConfig"].get("caBundle") for w in self.objects[path]["webhooks"]}

    def secret_data(self) -> dict[str, str]:
        return dict(self.objects[SECRET_PATH]["data"])


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime.datetime:
        return self.now


def source(validity: datetime.timedelta = 30 * DAY, **overrides: Any) -> CertificateSource:
    fields: dict[str, Any] = {
        "namespace": NAMESPACE,
        "secret_name": SECRET,
        "hosts": HOSTS,
        "validity": validity,
        "webhook_configuration": CONFIGURATION,
    }
    return CertificateSource(**(fields | overrides))


def replica(api: FakeApi, clock: Clock, *, leading: bool, **overrides: Any) -> WebhookCertificates:
    return WebhookCertificates(
        client=cast(KubeClient, api),
        source=source(**overrides),
        is_leading=lambda: leading,
        clock=clock,
    )


def decoded(value: str) -> bytes:
    return base64.b64decode(value)


def served(replica: WebhookCertificates) -> bytes:
    assert replica.tls is not None
    return replica.tls.cert_file.read_bytes()


def cas(bundle: bytes) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(bundle)


# -- pure ---------------------------------------------------------------------------------


def _data(validity: datetime.timedelta, hosts: tuple[str, ...] = HOSTS) -> dict[str, str]:
    issued = issue_certificate(hosts, validity=validity, now=T0)
    values = {"ca.crt": issued.ca, "tls.crt": issued.cert, "tls.key": issued.key}
    return {key: base64.b64encode(value).decode() for key, value in values.items()}


def test_renewal_is_due_when_a_third_of_the_validity_is_left() -> None:
    data = _data(30 * DAY)
    assert renewal_due(data, hosts=HOSTS, validity=30 * DAY, now=T0) is None
    assert renewal_due(data, hosts=HOSTS, validity=30 * DAY, now=T0 + 19 * DAY) is None
    reason = renewal_due(data, hosts=HOSTS, validity=30 * DAY, now=T0 + 21 * DAY)
    assert reason == "the certificate expires at 2031-01-31T00:00:00+00:00"


def test_renewal_is_due_for_a_host_the_certificate_does_not_name() -> None:
    data = _data(30 * DAY, hosts=("old.prodready.svc",))
    reason = renewal_due(data, hosts=HOSTS, validity=30 * DAY, now=T0)
    assert reason == "the certificate does not name prodready, prodready.prodready.svc"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (None, "the Secret lacks ca.crt, tls.crt or tls.key"),
        ({"tls.crt": "eA==", "tls.key": "eA=="}, "the Secret lacks ca.crt, tls.crt or tls.key"),
        ({"ca.crt": "!", "tls.crt": "eA==", "tls.key": "eA=="}, "the Secret lacks"),
        ({"ca.crt": "eA==", "tls.crt": "eA==", "tls.key": "eA=="}, "tls.crt is not a PEM"),
    ],
)
def test_an_unusable_secret_is_due(data: dict[str, str] | None, reason: str) -> None:
    found = renewal_due(data, hosts=HOSTS, validity=DAY, now=T0)
    assert found is not None
    assert found.startswith(reason)


def test_the_bundle_keeps_the_previous_ca_while_it_is_valid_and_no_older() -> None:
    first = issue_certificate(HOSTS, validity=DAY, now=T0)
    second = issue_certificate(HOSTS, validity=DAY, now=T0)
    third = issue_certificate(HOSTS, validity=DAY, now=T0)
    bundle = trusted_bundle(second.ca, first.ca, now=T0)
    assert bundle == second.ca + first.ca
    # The next renewal trusts the CA that signed what replicas serve now, not the one before.
    assert trusted_bundle(third.ca, bundle, now=T0) == third.ca + second.ca
    assert trusted_bundle(third.ca, bundle, now=T0 + 2 * DAY) == third.ca
    assert trusted_bundle(third.ca, None, now=T0) == third.ca


def test_settings_describe_the_source() -> None:
    assert CertificateSource.from_settings(load_settings({}), NAMESPACE) is None
    settings = load_settings(
        {
            "PRODREADY_WEBHOOK_CERT_SECRET_NAME": SECRET,
            "PRODREADY_WEBHOOK_CERT_VALIDITY_SECONDS": "60",
            "PRODREADY_WEBHOOK_CONFIGURATION": CONFIGURATION,
        }
    )
    found = CertificateSource.from_settings(settings, NAMESPACE)
    assert found == CertificateSource(
        namespace=NAMESPACE,
        secret_name=SECRET,
        hosts=("localhost", "127.0.0.1", "::1"),
        validity=datetime.timedelta(seconds=60),
        webhook_configuration=CONFIGURATION,
    )
    assert found.interval_seconds == 6
    assert source(validity=365 * DAY).interval_seconds == 10


# -- against the fake apiserver -----------------------------------------------------------


async def test_the_first_replica_creates_the_secret_owned_by_the_configuration() -> None:
    api, clock = FakeApi(), Clock()
    api.add_configuration()
    first = replica(api, clock, leading=False)
    await first.start()
    try:
        secret = api.objects[SECRET_PATH]
        assert secret["type"] == "kubernetes.io/tls"
        assert secret["metadata"]["ownerReferences"] == [
            {
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "ValidatingWebhookConfiguration",
                "name": CONFIGURATION,
                "uid": api.objects[CONFIGURATION_PATH]["metadata"]["uid"],
            }
        ]
        cert = x509.load_pem_x509_certificate(served(first))
        assert served(first) == decoded(secret["data"]["tls.crt"])
        cert.verify_directly_issued_by(cas(decoded(secret["data"]["ca.crt"]))[0])
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert names.get_values_for_type(x509.DNSName) == list(HOSTS)
        assert cert.not_valid_after_utc == T0 + 30 * DAY
        # Not leading: the configuration is left to the leader.
        assert api.bundles() == {None}
    finally:
        first.close()
    assert first.tls is not None
    assert not first.tls.cert_file.exists()


async def test_a_replica_that_loses_the_race_serves_the_winners_secret() -> None:
    api, clock = FakeApi(), Clock()
    winner, loser = replica(api, clock, leading=False), replica(api, clock, leading=False)
    await winner.start()
    del api.objects[SECRET_PATH]

    async def rival() -> None:
        await winner.start()

    api.before_create = rival
    await loser.start()
    try:
        assert served(loser) == served(winner) == decoded(api.secret_data()["tls.crt"])
        assert [w for w in api.writes if w[0] == "create"] == [("create", SECRET_PATH)] * 2
    finally:
        winner.close()
        loser.close()


async def test_the_leader_makes_every_entry_trust_the_ca_and_then_writes_nothing() -> None:
    api, clock = FakeApi(), Clock()
    api.add_configuration()
    api.add_configuration("someone-elses")
    leader = replica(api, clock, leading=True)
    await leader.start()
    try:
        await leader.sync()
        assert api.bundles() == {api.secret_data()["ca.crt"]}
        assert api.bundles(WEBHOOK_CONFIGURATIONS.path(None, "someone-elses")) == {None}
        writes = len(api.writes)
        for _ in range(3):
            await leader.sync()
        assert len(api.writes) == writes
        # Reset (a helm upgrade from a chart that rendered one): repaired at the next tick.
        api.objects[CONFIGURATION_PATH]["webhooks"][1]["clientConfig"].pop("caBundle")
        await leader.sync()
        assert api.bundles() == {api.secret_data()["ca.crt"]}
    finally:
        leader.close()


async def test_renewal_trusts_the_new_ca_before_any_replica_serves_it() -> None:
    api, clock = FakeApi(), Clock()
    api.add_configuration()
    leader = replica(api, clock, leading=True)
    follower = replica(api, clock, leading=False)
    await leader.start()
    await follower.start()
    try:
        await leader.sync()
        old = api.secret_data()
        old_context = follower.tls.current if follower.tls else None
        clock.now = T0 + 21 * DAY
        await follower.sync()  # a follower never renews
        assert api.secret_data() == old
        api.writes.clear()
        await leader.sync()
        new = api.secret_data()
        assert api.writes == [("patch", CONFIGURATION_PATH), ("update", SECRET_PATH)]
        assert new["tls.crt"] != old["tls.crt"]
        # The new CA first, then the one that signed what the follower still serves.
        bundle = cas(decoded(new["ca.crt"]))
        assert bundle[1] == cas(decoded(old["ca.crt"]))[0]
        assert api.bundles() == {new["ca.crt"]}
        x509.load_pem_x509_certificate(decoded(old["tls.crt"])).verify_directly_issued_by(bundle[1])
        x509.load_pem_x509_certificate(decoded(new["tls.crt"])).verify_directly_issued_by(bundle[0])
        assert served(leader) == decoded(new["tls.crt"])
        assert served(follower) == decoded(old["tls.crt"])
        await follower.sync()
        assert served(follower) == decoded(new["tls.crt"])
        assert follower.tls is not None
        assert follower.tls.current is not old_context
    finally:
        leader.close()
        follower.close()


async def test_a_renewal_that_loses_a_conflict_serves_the_other_write() -> None:
    api, clock = FakeApi(), Clock()
    api.add_configuration()
    leader = replica(api, clock, leading=True)
    other = replica(api, clock, leading=True)
    await leader.start()
    await other.start()
    try:
        clock.now = T0 + 25 * DAY

        async def rival() -> None:
            await other.sync()

        api.before_put = rival
        await leader.sync()
        assert served(leader) == served(other) == decoded(api.secret_data()["tls.crt"])
        # The configuration ends up trusting what is served.
        await leader.sync()
        assert api.bundles() == {api.secret_data()["ca.crt"]}
    finally:
        leader.close()
        other.close()


async def test_a_secret_holding_nothing_servable_is_replaced_by_any_replica() -> None:
    api, clock = FakeApi(), Clock()
    api._stored(SECRET_PATH, {"metadata": {"name": SECRET}, "data": {"tls.crt": "eA=="}})
    follower = replica(api, clock, leading=False)
    await follower.start()
    try:
        assert served(follower) == decoded(api.secret_data()["tls.crt"])
        assert ("update", SECRET_PATH) in api.writes
    finally:
        follower.close()


async def test_without_a_configuration_name_nothing_is_patched(
    caplog: pytest.LogCaptureFixture,
) -> None:
    api, clock = FakeApi(), Clock()
    api.add_configuration()
    alone = replica(api, clock, leading=True, webhook_configuration=None)
    await alone.start()
    try:
        await alone.sync()
        assert "ownerReferences" not in api.objects[SECRET_PATH]["metadata"]
        assert api.bundles() == {None}
    finally:
        alone.close()
    missing = replica(FakeApi(), clock, leading=True)
    with caplog.at_level(logging.WARNING, logger="prodready.webhook.tls"):
        await missing.start()
        await missing.sync()
        await missing.sync()
    missing.close()
    assert [r.getMessage() for r in caplog.records].count(
        "webhook configuration not found; its caBundle is set once it exists"
    ) == 1


async def test_run_keeps_serving_through_api_errors(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    api, clock = FakeApi(), Clock()
    certificates = replica(api, clock, leading=True, validity=datetime.timedelta(seconds=10))
    await certificates.start()
    calls = 0
    twice = asyncio.Event()

    async def failing() -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            twice.set()
        raise ApiError(403, "Forbidden", "secrets is forbidden", "GET", SECRET_PATH)

    monkeypatch.setattr(certificates, "sync", failing)
    with caplog.at_level(logging.WARNING, logger="prodready.webhook.tls"):
        task = asyncio.create_task(certificates.run())
        await asyncio.wait_for(twice.wait(), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    certificates.close()
    assert "webhook certificate not synchronised: " in caplog.text
    assert "secrets is forbidden" in caplog.text


async def test_a_new_leader_trusts_the_ca_at_once_not_at_the_next_interval() -> None:
    """The apiserver cannot call the webhook until the caBundle is set: a replica that
    becomes the leader sets it within a second, however long its interval."""
    api, clock = FakeApi(), Clock()
    api.add_configuration()
    leading = False
    certificates = WebhookCertificates(
        client=cast(KubeClient, api), source=source(), is_leading=lambda: leading, clock=clock
    )
    assert certificates._source.interval_seconds == 10
    await certificates.start()
    task = asyncio.create_task(certificates.run())
    try:
        leading = True
        started = time.monotonic()
        while api.bundles() == {None}:
            assert time.monotonic() - started < 3, "not trusted within 3 s"
            await asyncio.sleep(0.05)
        assert api.bundles() == {api.secret_data()["ca.crt"]}
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        certificates.close()


async def test_a_start_that_fails_leaves_no_directory(tmp_path: Path) -> None:
    class Forbidden(FakeApi):
        async def get(self, path: str) -> dict[str, Any] | None:
            raise ApiError(403, "Forbidden", "secrets is forbidden", "GET", path)

    certificates = replica(Forbidden(), Clock(), leading=False)
    with pytest.raises(ApiError):
        await certificates.start()
    assert certificates._directory is None


async def test_the_operator_serves_its_own_certificate_when_a_secret_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PolicyRuntime (app/policy.py) with PRODREADY_WEBHOOK_CERT_SECRET_NAME: the webhook serves
    the Secret's pair over a real handshake, and the keeper runs beside the audit."""
    import ssl

    from prodready.app.policy import PolicyRuntime
    from prodready.kube.store import ObjectStore
    from prodready.observability.metrics import Metrics
    from tests.cluster.controlplane import free_port

    monkeypatch.setenv("POD_NAMESPACE", NAMESPACE)
    api = FakeApi()
    settings = load_settings(
        {
            "PRODREADY_WEBHOOK_HOST": "127.0.0.1",
            "PRODREADY_WEBHOOK_PORT": str(free_port()),
            "PRODREADY_WEBHOOK_CERT_SECRET_NAME": SECRET,
            "PRODREADY_WEBHOOK_CERT_HOSTS": "127.0.0.1",
        }
    )
    runtime = PolicyRuntime(
        settings,
        cast(KubeClient, api),
        Metrics(process_metrics=False),
        store=ObjectStore(),
        is_leading=lambda: False,
    )
    await runtime.start()
    try:
        assert {"webhook-cert", "webhook-tls"} <= {task.get_name() for task in runtime._tasks}
        assert runtime.generated is None
        client = ssl.create_default_context(cadata=decoded(api.secret_data()["ca.crt"]).decode())
        _, writer = await asyncio.open_connection(
            "127.0.0.1", settings.webhook_port, ssl=client, server_hostname="127.0.0.1"
        )
        peer = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        assert peer == x509.load_pem_x509_certificate(
            decoded(api.secret_data()["tls.crt"])
        ).public_bytes(Encoding.DER)
        writer.close()
    finally:
        await runtime.stop()
    assert runtime.certificates is None


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        (
            {"PRODREADY_WEBHOOK_CERT_SECRET_NAME": "Not_A_Name"},
            "PRODREADY_WEBHOOK_CERT_SECRET_NAME: must be a Kubernetes object name",
        ),
        (
            {"PRODREADY_WEBHOOK_CONFIGURATION": "UPPER"},
            "PRODREADY_WEBHOOK_CONFIGURATION: must be a Kubernetes object name",
        ),
        (
            {"PRODREADY_WEBHOOK_CERT_HOSTS": "a, ,b c"},
            "PRODREADY_WEBHOOK_CERT_HOSTS: 'b c' is not a host name or IP address",
        ),
        (
            {"PRODREADY_WEBHOOK_CERT_VALIDITY_SECONDS": "10"},
            "PRODREADY_WEBHOOK_CERT_VALIDITY_SECONDS: must be a whole number of at least 30",
        ),
    ],
)
def test_bad_certificate_settings_name_the_variable(
    environment: dict[str, str], message: str
) -> None:
    from prodready.config import SettingsError

    with pytest.raises(SettingsError) as raised:
        load_settings(environment)
    assert message in str(raised.value)


def test_a_secret_and_certificate_files_together_are_refused(tmp_path: Path) -> None:
    from prodready.config import SettingsError

    pem = tmp_path / "tls.crt"
    pem.write_text("x")
    with pytest.raises(SettingsError) as raised:
        load_settings(
            {
                "PRODREADY_WEBHOOK_CERT_SECRET_NAME": SECRET,
                "PRODREADY_WEBHOOK_CERT_FILE": str(pem),
                "PRODREADY_WEBHOOK_KEY_FILE": str(pem),
            }
        )
    assert (
        "PRODREADY_WEBHOOK_CERT_SECRET_NAME: set either it or PRODREADY_WEBHOOK_CERT_FILE, not both"
    ) in str(raised.value)
