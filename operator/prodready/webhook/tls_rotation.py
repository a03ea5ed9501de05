"""The operator's own webhook certificate: provisioned, rotated, served and trusted.

As Kyverno and controller-runtime's cert-controller do, so that the chart renders no
certificate (`helm template` is stable, Argo CD stays in sync) and nothing but the operator
is needed:

* one Secret (`PRODREADY_WEBHOOK_CERT_SECRET_NAME`, type kubernetes.io/tls, in the operator's
  namespace) holds the serving pair (`tls.crt`, `tls.key`) and the CAs to trust
  (`ca.crt`). Whichever replica finds it absent creates it (a self-signed CA and a serving
  certificate for the Service's DNS names); a replica that loses the race reads the
  winner's. It is owned by the webhook configuration, so it goes when the release goes.
* Every replica reads the Secret every few seconds and serves what it holds: the PEM files
  are written to a private directory and `ReloadingTLS` swaps the context new handshakes
  get. No mount, so no kubelet sync delay, and a pod starts before the Secret exists.
* The leader renews it when a third of the certificate's validity is left (or it no
  longer names every host), with a new CA each time. Nothing is refused meanwhile: the
  leader first makes the webhook configuration trust the new CA *and* the previous one,
  then writes the Secret (`ca.crt` keeps the previous CA until the next renewal), so the
  apiserver trusts whichever pair a replica serves while the replicas pick it up. The
  write carries the resourceVersion read: two writers never both win.
* The leader keeps `caBundle` of every entry of the one webhook configuration named by
  `PRODREADY_WEBHOOK_CONFIGURATION` equal to the Secret's `ca.crt` (a `helm upgrade`
  that reset it is repaired at the next tick); no other configuration is ever touched.

Nothing is written on a converged cluster: two GETs per tick, a write only on a change.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from prodready.api.resource import SECRET, Resource
from prodready.config import Settings
from prodready.kube.client import ApiError, KubeClient
from prodready.webhook.certificates import (
    DEFAULT_HOSTS,
    CertificateError,
    IssuedCertificate,
    ReloadingTLS,
    issue_certificate,
    write_private,
)

__all__ = [
    "SECRETS",
    "WEBHOOK_CONFIGURATIONS",
    "CertificateSource",
    "WebhookCertificates",
    "renewal_due",
    "trusted_bundle",
]

logger = logging.getLogger("prodready.webhook.tls")

SECRETS: Final = SECRET
WEBHOOK_CONFIGURATIONS: Final = Resource(
    "admissionregistration.k8s.io/v1",
    "ValidatingWebhookConfiguration",
    "validatingwebhookconfigurations",
    namespaced=False,
)
STRATEGIC_MERGE_PATCH: Final = "application/strategic-merge-patch+json"
CA_KEY: Final = "ca.crt"
CERT_KEY: Final = "tls.crt"
KEY_KEY: Final = "tls.key"
_KEYS: Final = (CA_KEY, CERT_KEY, KEY_KEY)
# Renewed when this fraction of the validity is left (cert-manager's default).
RENEW_WHEN_LEFT: Final = 1 / 3
# How often the Secret (and, leading, the webhook configuration) is read; shorter for a
# short validity, so that a renewal is picked up well before the old pair expires.
MAX_INTERVAL_SECONDS: Final = 10.0

Clock = Callable[[], datetime.datetime]


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclass(frozen=True, kw_only=True)
class CertificateSource:
    """Where the certificate lives and what it must be."""

    namespace: str
    secret_name: str
    hosts: tuple[str, ...]
    validity: datetime.timedelta
    webhook_configuration: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings, namespace: str) -> CertificateSource | None:
        """The source PRODREADY_WEBHOOK_CERT_SECRET_NAME and friends describe (None: unset)."""
        if settings.webhook_cert_secret_name is None:
            return None
        return cls(
            namespace=namespace,
            secret_name=settings.webhook_cert_secret_name,
            hosts=tuple(settings.webhook_cert_hosts or DEFAULT_HOSTS),
            validity=datetime.timedelta(seconds=settings.webhook_cert_validity_seconds),
            webhook_configuration=settings.webhook_configuration,
        )

    @property
    def interval_seconds(self) -> float:
        """Seconds between two reads of the Secret."""
        return max(1.0, min(MAX_INTERVAL_SECONDS, self.validity.total_seconds() / 10))


@dataclass(frozen=True, kw_only=True)
class _Held:
    """The PEM contents of the Secret."""

    ca: bytes
    cert: bytes
    key: bytes


def _decode(data: Mapping[str, Any] | None) -> _Held | None:
    """The Secret's three PEM entries, or None when one is missing or not base64."""
    if not data:
        return None
    try:
        values = [base64.b64decode(str(data[key]), validate=True) for key in _KEYS]
    except (KeyError, binascii.Error, ValueError):
        return None
    ca, cert, key = values
    if not (ca and cert and key):
        return None
    return _Held(ca=ca, cert=cert, key=key)


def _encode(held: _Held) -> dict[str, str]:
    values = (held.ca, held.cert, held.key)
    return {key: base64.b64encode(value).decode() for key, value in zip(_KEYS, values, strict=True)}


def _hosts_of(certificate: x509.Certificate) -> set[str]:
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    ips = {str(address) for address in names.get_values_for_type(x509.IPAddress)}
    return set(names.get_values_for_type(x509.DNSName)) | ips


def renewal_due(
    data: Mapping[str, Any] | None,
    *,
    hosts: Sequence[str],
    validity: datetime.timedelta,
    now: datetime.datetime,
) -> str | None:
    """Why the Secret's certificate must be replaced now, or None while it is good."""
    held = _decode(data)
    if held is None:
        return "the Secret lacks ca.crt, tls.crt or tls.key"
    try:
        certificate = x509.load_pem_x509_certificate(held.cert)
    except ValueError:
        return "tls.crt is not a PEM certificate"
    missing = sorted(set(hosts) - _hosts_of(certificate))
    if missing:
        return f"the certificate does not name {', '.join(missing)}"
    left = certificate.not_valid_after_utc - now
    if left <= validity * RENEW_WHEN_LEFT:
        return f"the certificate expires at {certificate.not_valid_after_utc.isoformat()}"
    return None


def _certificates(bundle: bytes) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(bundle)
    except ValueError:
        return []


def trusted_bundle(new_ca: bytes, previous: bytes | None, *, now: datetime.datetime) -> bytes:
    """What the apiserver trusts after a renewal: the new CA, and the CA that signed the
    certificate replicas still serve (the first of the previous bundle) while it is valid.
    Older CAs go: what they signed was replaced one renewal ago."""
    bundle = new_ca
    current = _certificates(previous or b"")[:1]
    for certificate in current:
        if certificate.not_valid_after_utc > now:
            bundle += certificate.public_bytes(Encoding.PEM)
    return bundle


class WebhookCertificates:
    """The certificate of one replica: `start` provisions and loads it, `run` keeps it."""

    def __init__(
        self,
        *,
        client: KubeClient,
        source: CertificateSource,
        is_leading: Callable[[], bool],
        client_ca_file: Path | None = None,
        clock: Clock = _utcnow,
    ) -> None:
        """Nothing happens before `start()`."""
        self._client = client
        self._source = source
        self._is_leading = is_leading
        self._client_ca_file = client_ca_file
        self._clock = clock
        self._directory: Path | None = None
        self._served: _Held | None = None
        self._missing_configuration_logged = False
        self._synced_leading = False
        self.tls: ReloadingTLS | None = None

    @property
    def _secret_path(self) -> str:
        return SECRETS.path(self._source.namespace, self._source.secret_name)

    async def start(self) -> ReloadingTLS:
        """Read (or create) the Secret and load its pair; the TLS to serve with.

        Raises ApiError when the Secret can be neither read nor created (RBAC), and
        CertificateError when what it holds cannot be served.
        """
        directory = self._directory = Path(tempfile.mkdtemp(prefix="prodready-webhook-"))
        try:
            self._write(await self._current())
            self.tls = ReloadingTLS(
                directory / CERT_KEY, directory / KEY_KEY, client_ca_file=self._client_ca_file
            )
        except BaseException:
            self.close()
            raise
        return self.tls

    def close(self) -> None:
        """Remove the private copy of the pair (idempotent)."""
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None

    async def run(self) -> None:
        """Keep the certificate served, renewed and trusted until cancelled: every interval,
        and at once when this replica becomes the leader (the apiserver cannot call the
        webhook until its caBundle is set, so that is not left to the next interval)."""
        last = time.monotonic()
        while True:
            await asyncio.sleep(min(1.0, self._source.interval_seconds))
            elected = self._is_leading() and not self._synced_leading
            if not elected and time.monotonic() - last < self._source.interval_seconds:
                continue
            last = time.monotonic()
            try:
                await self.sync()
            except (ApiError, aiohttp.ClientError, TimeoutError, CertificateError) as error:
                # The certificate served so far keeps serving; the next tick tries again.
                logger.warning("webhook certificate not synchronised: %s", error)

    async def sync(self) -> None:
        """One tick: serve the Secret's pair; leading, renew it when due and trust its CA."""
        secret = await self._current()
        leading = self._is_leading()
        self._synced_leading = leading
        if leading:
            reason = renewal_due(
                secret.get("data"),
                hosts=self._source.hosts,
                validity=self._source.validity,
                now=self._clock(),
            )
            if reason is not None:
                secret = await self._renew(secret, reason)
        self._write(secret)
        if leading:
            held = _decode(secret.get("data"))
            if held is not None:
                await self._trust(held.ca)

    async def _current(self) -> dict[str, Any]:
        """The Secret, created when absent, replaced when it holds nothing servable."""
        secret = await self._client.get(self._secret_path)
        if secret is None:
            return await self._create()
        if _decode(secret.get("data")) is None:
            # Nothing any replica could serve: whoever sees it replaces it (the
            # resourceVersion makes sure only one does).
            return await self._renew(secret, "the Secret lacks ca.crt, tls.crt or tls.key")
        return secret

    def _issue(self, previous_bundle: bytes | None) -> _Held:
        now = self._clock()
        issued: IssuedCertificate = issue_certificate(
            self._source.hosts, validity=self._source.validity, now=now
        )
        bundle = trusted_bundle(issued.ca, previous_bundle, now=now)
        return _Held(ca=bundle, cert=issued.cert, key=issued.key)

    async def _create(self) -> dict[str, Any]:
        held = self._issue(None)
        metadata: dict[str, Any] = {
            "name": self._source.secret_name,
            "namespace": self._source.namespace,
            "labels": {
                "app.kubernetes.io/managed-by": "prodready",
                "app.kubernetes.io/component": "webhook-certificate",
            },
        }
        owner = await self._configuration()
        if owner is not None:
            # Goes with the webhook configuration (helm uninstall): nothing left behind.
            metadata["ownerReferences"] = [
                {
                    "apiVersion": WEBHOOK_CONFIGURATIONS.api_version,
                    "kind": WEBHOOK_CONFIGURATIONS.kind,
                    "name": owner["metadata"]["name"],
                    "uid": owner["metadata"]["uid"],
                }
            ]
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": metadata,
            "type": "kubernetes.io/tls",
            "data": _encode(held),
        }
        try:
            created = await self._client.create(SECRETS, self._source.namespace, body)
        except ApiError as error:
            # Another replica created it first: serve theirs.
            return await self._theirs(error)
        logger.info(
            "webhook certificate created",
            extra={"secret": self._source.secret_name, "hosts": list(self._source.hosts)},
        )
        return created

    async def _theirs(self, error: ApiError) -> dict[str, Any]:
        """The Secret another replica wrote first (`error` a conflict), to serve; `error`
        itself when it is anything else, or the Secret is gone meanwhile."""
        if not error.conflict:
            raise error
        theirs = await self._client.get(self._secret_path)
        if theirs is None:
            raise error
        return theirs

    async def _renew(self, secret: dict[str, Any], reason: str) -> dict[str, Any]:
        previous = _decode(secret.get("data"))
        held = self._issue(previous.ca if previous is not None else None)
        # Trusted before it is served: a replica that reloads first is never refused.
        await self._trust(held.ca)
        replacement = dict(secret)
        replacement["type"] = secret.get("type", "kubernetes.io/tls")
        replacement["data"] = {**(secret.get("data") or {}), **_encode(held)}
        try:
            renewed = await self._client.request(
                "PUT", self._secret_path, body=replacement, expected=(409,)
            )
        except ApiError as error:
            return await self._theirs(error)
        logger.info(
            "webhook certificate renewed",
            extra={"secret": self._source.secret_name, "reason": reason},
        )
        return renewed

    def _write(self, secret: Mapping[str, Any]) -> None:
        """Serve the Secret's pair from the private directory (when it changed)."""
        held = _decode(secret.get("data"))
        if held is None:
            raise CertificateError(
                f"the Secret {self._source.namespace}/{self._source.secret_name} holds no "
                "serving pair (ca.crt, tls.crt, tls.key)"
            )
        if held == self._served or self._directory is None:
            return
        directory = self._directory
        # Each file replaced whole (rename): a reader sees the old file or the new one.
        for name, value in ((KEY_KEY, held.key), (CERT_KEY, held.cert), (CA_KEY, held.ca)):
            staged = directory / f".{name}.new"
            write_private(staged, value)
            os.replace(staged, directory / name)
        self._served = held
        if self.tls is not None:
            self.tls.reload_if_changed()

    async def _configuration(self) -> dict[str, Any] | None:
        name = self._source.webhook_configuration
        if name is None:
            return None
        found = await self._client.get(WEBHOOK_CONFIGURATIONS.path(None, name))
        if found is None and not self._missing_configuration_logged:
            self._missing_configuration_logged = True
            logger.warning(
                "webhook configuration not found; its caBundle is set once it exists",
                extra={"webhook_configuration": name},
            )
        return found

    async def _trust(self, bundle: bytes) -> None:
        """Make every entry of the webhook configuration trust `bundle` (if it does not)."""
        configuration = await self._configuration()
        if configuration is None:
            return
        encoded = base64.b64encode(bundle).decode()
        entries = [
            webhook
            for webhook in configuration.get("webhooks") or []
            if (webhook.get("clientConfig") or {}).get("caBundle") != encoded
        ]
        if not entries:
            return
        # A strategic merge by entry name: only caBundle changes, whatever else the
        # configuration holds (and whoever else manages it).
        patch = {
            "webhooks": [
                {"name": webhook["name"], "clientConfig": {"caBundle": encoded}}
                for webhook in entries
            ]
        }
        await self._client.request(
            "PATCH",
            WEBHOOK_CONFIGURATIONS.path(None, configuration["metadata"]["name"]),
            body=patch,
            content_type=STRATEGIC_MERGE_PATCH,
        )
        logger.info(
            "webhook configuration trusts the certificate's CA",
            extra={"webhook_configuration": configuration["metadata"]["name"]},
        )
