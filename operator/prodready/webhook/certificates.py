"""TLS for the admission webhook: a certificate from files with hot reload, or a self-signed one.

In a cluster, the operator provisions and rotates its own certificate through a Secret
(`prodready.webhook.tls_rotation`, writing the pair into a private directory), or
cert-manager writes it into a Secret that is mounted into the pod and renews it before it
expires; the kubelet swaps the mounted files
atomically (a symlink flip). `ReloadingTLS` polls the files' modification times every few
seconds and, when they change, loads a new `SSLContext`. New TLS handshakes pick it up
through the SNI callback (OpenSSL lets a server switch a connection's context there, and
calls it whether or not the client sent a server name — the apiserver sends none for an IP
address); connections already open keep the certificate they started with, and nothing
restarts. A pair that fails to load (a renewal caught half-written) is logged and tried
again at the next poll while the previous certificate keeps serving.

`issue_certificate` makes a CA and a serving pair in memory. For local runs without files,
`generate_self_signed` writes a throwaway CA and a serving
certificate (localhost, 127.0.0.1, ::1 and any Service DNS names given) into a directory;
the CA's PEM is what the ValidatingWebhookConfiguration's `caBundle` needs.

What a handshake may negotiate: TLS 1.3, or TLS 1.2 with an ECDHE key exchange and an AEAD
cipher (AES-GCM, ChaCha20-Poly1305) — no CBC suites (Lucky13-style padding oracles), no
static RSA key exchange (no forward secrecy), no compression, no renegotiation. Every TLS
client the apiserver has shipped with (Go's crypto/tls) offers these suites first.

With a client CA (`client_ca_file`), the server requires a client certificate signed by
it: the apiserver presents one when its admission configuration gives it a kubeconfig for
webhooks (Kubernetes "Authenticate apiservers"), so only the apiserver can post a review. A
peer without such a certificate fails the handshake and never reaches HTTP. The CA file is
reloaded with the serving pair.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import logging
import os
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "CertificateError",
    "IssuedCertificate",
    "ReloadingTLS",
    "SelfSignedCertificate",
    "generate_self_signed",
    "issue_certificate",
    "load_server_context",
    "service_dns_names",
    "write_private",
]

logger = logging.getLogger("prodready.webhook.tls")

DEFAULT_HOSTS = ("localhost", "127.0.0.1", "::1")
RELOAD_INTERVAL_SECONDS = 5.0
# TLS 1.2 suites allowed (OpenSSL cipher-string syntax): forward-secret and authenticated
# encryption only. TLS 1.3 suites are all AEAD and are not affected by this string.
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"
# Backdated so that a host whose clock is slightly behind still accepts the certificate.
_CLOCK_SKEW = datetime.timedelta(minutes=5)


class CertificateError(Exception):
    """The webhook's certificate or key cannot be used; the message says which and why."""


@dataclass(frozen=True)
class SelfSignedCertificate:
    """A generated CA and serving certificate, as PEM files in `directory`."""

    directory: Path
    cert_file: Path
    key_file: Path
    ca_file: Path


def service_dns_names(service: str, namespace: str) -> list[str]:
    """The names a Service is reached by in-cluster (the apiserver uses `svc.ns.svc`)."""
    return [
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
    ]


def _new_key() -> ec.EllipticCurvePrivateKey:
    # P-256: generated in milliseconds (an RSA key takes far longer), accepted by the
    # apiserver's Go TLS client and by every OpenSSL.
    return ec.generate_private_key(ec.SECP256R1())


def _alt_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


@dataclass(frozen=True, kw_only=True)
class IssuedCertificate:
    """A CA and a serving pair it signed, as PEM bytes (nothing written anywhere)."""

    ca: bytes
    cert: bytes
    key: bytes


def issue_certificate(
    hosts: Sequence[str],
    *,
    validity: datetime.timedelta,
    now: datetime.datetime | None = None,
) -> IssuedCertificate:
    """A new CA and a serving certificate for `hosts` it signed, valid for `validity` from
    `now` (backdated for clock skew by at most a tenth of the validity)."""
    if not hosts:
        raise ValueError("a serving certificate needs at least one host name")
    if validity <= datetime.timedelta(0):
        raise ValueError("a certificate's validity must be positive")
    issued_at = now or datetime.datetime.now(datetime.UTC)
    start = issued_at - min(_CLOCK_SKEW, validity / 10)
    end = issued_at + validity

    ca_key = _new_key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "prodready-webhook-ca")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )

    key = _new_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([_alt_name(host) for host in hosts]), critical=False
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return IssuedCertificate(
        ca=ca_cert.public_bytes(serialization.Encoding.PEM),
        cert=cert.public_bytes(serialization.Encoding.PEM),
        key=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


def write_private(path: Path, data: bytes) -> None:
    """Write `path` owner-only (0600) from its creation: never readable by others, not even
    for a moment."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)


def generate_self_signed(
    directory: Path,
    hosts: Sequence[str] = DEFAULT_HOSTS,
    *,
    valid_days: int = 365,
    now: datetime.datetime | None = None,
) -> SelfSignedCertificate:
    """Write a new CA (`ca.crt`) and a serving pair (`tls.crt`, `tls.key`) for `hosts`."""
    issued = issue_certificate(hosts, validity=datetime.timedelta(days=valid_days), now=now)
    directory.mkdir(parents=True, exist_ok=True)
    generated = SelfSignedCertificate(
        directory=directory,
        cert_file=directory / "tls.crt",
        key_file=directory / "tls.key",
        ca_file=directory / "ca.crt",
    )
    generated.ca_file.write_bytes(issued.ca)
    generated.cert_file.write_bytes(issued.cert)
    write_private(generated.key_file, issued.key)
    return generated


def load_server_context(
    cert_file: Path, key_file: Path, client_ca_file: Path | None = None
) -> ssl.SSLContext:
    """A TLS server context (TLS 1.3, or 1.2 with AEAD suites; HTTP/1.1) serving the pair.

    With `client_ca_file`, a client must present a certificate signed by that CA.
    CertificateError if a file is unusable.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    # aiohttp speaks HTTP/1.1 only; say so, or a client offering h2 may try it first.
    context.set_alpn_protocols(["http/1.1"])
    try:
        context.load_cert_chain(str(cert_file), str(key_file))
    except (OSError, ssl.SSLError) as error:
        raise CertificateError(
            f"cannot load the webhook certificate {cert_file} with key {key_file}: {_reason(error)}"
        ) from None
    if client_ca_file is not None:
        try:
            context.load_verify_locations(cafile=str(client_ca_file))
        except (OSError, ssl.SSLError) as error:
            raise CertificateError(
                f"cannot load the webhook client CA {client_ca_file}: {_reason(error)}"
            ) from None
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def _reason(error: OSError | ssl.SSLError) -> object:
    return getattr(error, "strerror", None) or getattr(error, "reason", None) or error


def _stamp(path: Path) -> tuple[int, int, int]:
    """What changes when a file is replaced: inode, size and modification time."""
    try:
        info = path.stat()  # follows the kubelet's ..data symlinks to the current file
    except OSError:
        return (0, 0, 0)
    return (info.st_ino, info.st_size, info.st_mtime_ns)


class ReloadingTLS:
    """Serves a certificate pair from files and switches to a new pair when the files change.

    Give `context` to the server; `reload_if_changed` (or the `watch` task) swaps what new
    handshakes get.
    """

    def __init__(
        self, cert_file: Path, key_file: Path, *, client_ca_file: Path | None = None
    ) -> None:
        """Load the pair now: a server must not start with a certificate it cannot serve.

        `client_ca_file`: require client certificates signed by this CA (reloaded too).
        """
        self.cert_file = cert_file
        self.key_file = key_file
        self.client_ca_file = client_ca_file
        self._stamps = self._read_stamps()
        self.context = self._load()
        self._current = self.context
        self.context.sni_callback = self._choose_context

    def _choose_context(
        self, connection: ssl.SSLObject, _server_name: str | None, _context: ssl.SSLContext
    ) -> None:
        if self._current is not self.context:
            connection.context = self._current

    def _read_stamps(self) -> tuple[tuple[int, int, int], ...]:
        files = (self.cert_file, self.key_file, self.client_ca_file)
        return tuple(_stamp(path) for path in files if path is not None)

    def _load(self) -> ssl.SSLContext:
        return load_server_context(self.cert_file, self.key_file, self.client_ca_file)

    @property
    def requires_client_certificate(self) -> bool:
        """Whether handshakes require a client certificate (a client CA is configured)."""
        return self.client_ca_file is not None

    @property
    def current(self) -> ssl.SSLContext:
        """The context new connections are served with."""
        return self._current

    def reload_if_changed(self) -> bool:
        """Load the files again if they changed since the last load; True if swapped."""
        stamps = self._read_stamps()
        if stamps == self._stamps:
            return False
        try:
            fresh = self._load()
        except CertificateError as error:
            # Probably caught between writing the certificate and the key: the old pair
            # keeps serving and the next poll tries again (the stamps are not recorded).
            logger.warning("webhook certificate not reloaded: %s", error)
            return False
        self._stamps = stamps
        self._current = fresh
        logger.info("webhook certificate reloaded", extra={"cert_file": str(self.cert_file)})
        return True

    async def watch(self, interval: float = RELOAD_INTERVAL_SECONDS) -> None:
        """Poll the files every `interval` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            self.reload_if_changed()
