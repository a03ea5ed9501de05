"""Webhook TLS: self-signed generation, loading, and hot reload over real handshakes."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from prodready.webhook.certificates import (
    CertificateError,
    ReloadingTLS,
    generate_self_signed,
    load_server_context,
    service_dns_names,
)
from tests.unit.tls_clients import client_ca


def _certificate(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_generated_certificate_is_signed_by_its_ca_for_every_host(tmp_path: Path) -> None:
    hosts = ["localhost", "127.0.0.1", "::1", *service_dns_names("hook", "prodready")]
    generated = generate_self_signed(tmp_path / "tls", hosts)

    ca = _certificate(generated.ca_file)
    cert = _certificate(generated.cert_file)
    cert.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in usages
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == [
        "localhost",
        "hook",
        "hook.prodready",
        "hook.prodready.svc",
        "hook.prodready.svc.cluster.local",
    ]
    assert names.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    assert generated.ca_file.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    assert stat.S_IMODE(generated.key_file.stat().st_mode) == 0o600


def test_validity_is_backdated_for_clock_skew(tmp_path: Path) -> None:
    now = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)
    generated = generate_self_signed(tmp_path, ["localhost"], valid_days=10, now=now)
    cert = _certificate(generated.cert_file)
    assert cert.not_valid_before_utc < now
    assert cert.not_valid_after_utc == now + datetime.timedelta(days=10)


def test_a_certificate_needs_a_host(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one host"):
        generate_self_signed(tmp_path, [])


def test_unusable_files_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(CertificateError, match=r"cannot load the webhook certificate .*missing"):
        load_server_context(tmp_path / "missing.crt", tmp_path / "missing.key")
    first = generate_self_signed(tmp_path / "a", ["localhost"])
    second = generate_self_signed(tmp_path / "b", ["localhost"])
    with pytest.raises(CertificateError, match="cannot load"):
        load_server_context(first.cert_file, second.key_file)  # a key of another certificate


def test_server_context_speaks_tls12_and_http11(tmp_path: Path) -> None:
    generated = generate_self_signed(tmp_path, ["localhost"])
    context = load_server_context(generated.cert_file, generated.key_file)
    assert context.minimum_version is ssl.TLSVersion.TLSv1_2


async def _served_serial(tls: ReloadingTLS, ca_files: list[Path]) -> int:
    """Open a TLS connection to a server using `tls.context`; the certificate serial served."""

    async def handle(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=tls.context)
    port = server.sockets[0].getsockname()[1]
    client = ssl.create_default_context()
    for ca_file in ca_files:
        client.load_verify_locations(str(ca_file))
    try:
        # The apiserver sends no SNI for an IP address: neither does this client.
        _reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client)
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
    return x509.load_der_x509_certificate(der).serial_number


async def test_changed_files_are_served_to_new_connections(tmp_path: Path) -> None:
    first = generate_self_signed(tmp_path / "live", ["127.0.0.1"])
    first_ca = tmp_path / "first-ca.crt"
    first_ca.write_bytes(first.ca_file.read_bytes())
    tls = ReloadingTLS(first.cert_file, first.key_file)
    assert tls.reload_if_changed() is False
    assert await _served_serial(tls, [first_ca]) == _certificate(first.cert_file).serial_number

    renewed = generate_self_signed(tmp_path / "live", ["127.0.0.1"])  # same paths, new pair
    assert tls.reload_if_changed() is True
    assert tls.current is not tls.context
    assert (
        await _served_serial(tls, [first_ca, renewed.ca_file])
        == _certificate(renewed.cert_file).serial_number
    )


async def test_a_half_written_renewal_keeps_the_old_certificate(tmp_path: Path) -> None:
    generated = generate_self_signed(tmp_path, ["127.0.0.1"])
    tls = ReloadingTLS(generated.cert_file, generated.key_file)
    key = generated.key_file.read_bytes()
    generated.key_file.write_bytes(b"not a key")
    assert tls.reload_if_changed() is False
    assert tls.current is tls.context
    generated.key_file.write_bytes(key)  # the rest of the renewal lands: tried again
    assert tls.reload_if_changed() is True
    generated.cert_file.unlink()  # a Secret volume mid-update: nothing to load, old pair stays
    assert tls.reload_if_changed() is False


async def test_watch_polls_until_cancelled(tmp_path: Path) -> None:
    generated = generate_self_signed(tmp_path, ["127.0.0.1"])
    tls = ReloadingTLS(generated.cert_file, generated.key_file)
    task = asyncio.create_task(tls.watch(interval=0.01))
    generate_self_signed(tmp_path, ["127.0.0.1"])
    for _ in range(200):
        if tls.current is not tls.context:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert tls.current is not tls.context


def test_tls12_offers_only_forward_secret_aead_suites(tmp_path: Path) -> None:
    generated = generate_self_signed(tmp_path, ["localhost"])
    context = load_server_context(generated.cert_file, generated.key_file)
    tls12 = [c["name"] for c in context.get_ciphers() if c["protocol"] == "TLSv1.2"]
    assert tls12
    for name in tls12:
        assert name.startswith("ECDHE-"), name
        assert "GCM" in name or "CHACHA20" in name, name
    assert context.options & ssl.OP_NO_COMPRESSION
    assert context.verify_mode is ssl.CERT_NONE  # no client CA: no client certificate asked


def test_a_client_ca_makes_client_certificates_required(tmp_path: Path) -> None:
    generated = generate_self_signed(tmp_path / "serving", ["localhost"])
    ca_file, _pair = client_ca(tmp_path / "clients")
    tls = ReloadingTLS(generated.cert_file, generated.key_file, client_ca_file=ca_file)
    assert tls.requires_client_certificate
    assert tls.context.verify_mode is ssl.CERT_REQUIRED
    assert not ReloadingTLS(generated.cert_file, generated.key_file).requires_client_certificate
    with pytest.raises(CertificateError, match=r"cannot load the webhook client CA .*missing"):
        load_server_context(generated.cert_file, generated.key_file, tmp_path / "missing.crt")
    bad = tmp_path / "bad.crt"
    bad.write_text("not a certificate")
    with pytest.raises(CertificateError, match="client CA"):
        load_server_context(generated.cert_file, generated.key_file, bad)


async def test_a_renewed_client_ca_is_reloaded(tmp_path: Path) -> None:
    generated = generate_self_signed(tmp_path / "serving", ["127.0.0.1"])
    ca_file, _ = client_ca(tmp_path / "clients")
    tls = ReloadingTLS(generated.cert_file, generated.key_file, client_ca_file=ca_file)
    assert tls.reload_if_changed() is False
    client_ca(tmp_path / "clients")  # same path, a new CA
    assert tls.reload_if_changed() is True
    assert tls.current.verify_mode is ssl.CERT_REQUIRED
