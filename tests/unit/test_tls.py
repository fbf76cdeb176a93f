"""Self-signed TLS: the files, the certificate's fields, and a real handshake."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import re
import socket
import ssl
import stat
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from ecmahost.connectors.exceptions import ConfigError
from ecmahost.engine.tls import (
    CertificateInfo,
    certificate_info,
    client_context,
    ensure_self_signed,
    host_names,
    server_context,
)

HOST = "ecma.example.test"
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    # RSA generation is the slow part, so the read-only tests share one pair.
    return ensure_self_signed(tmp_path_factory.mktemp("tls") / "certs", HOST)


@pytest.fixture(scope="module")
def certificate(pair: tuple[Path, Path]) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pair[0].read_bytes())


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@posix_only
def test_files_are_created_private(pair: tuple[Path, Path]) -> None:
    cert, key = pair
    assert (cert.name, key.name) == ("cert.pem", "key.pem")
    assert mode(cert.parent) == 0o700
    assert mode(key) == 0o600
    assert not mode(cert) & 0o022  # the certificate is public, but not writable by others
    assert sorted(p.name for p in cert.parent.iterdir()) == ["cert.pem", "key.pem"]


def test_existing_folder_keeps_its_mode(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    ensure_self_signed(tmp_path, HOST)
    assert mode(tmp_path) == 0o755


def test_second_call_reuses_the_files(pair: tuple[Path, Path]) -> None:
    cert, key = pair
    before = cert.read_bytes(), key.read_bytes()
    assert ensure_self_signed(cert.parent, [HOST.upper(), "127.0.0.1"]) == pair
    assert (cert.read_bytes(), key.read_bytes()) == before


def test_a_name_not_covered_makes_a_new_certificate(tmp_path: Path) -> None:
    cert, _ = ensure_self_signed(tmp_path, HOST)
    before = certificate_info(cert)
    ensure_self_signed(tmp_path, [HOST, "scim.example.test"])
    after = certificate_info(cert)
    assert after.sha256 != before.sha256
    assert {HOST, "scim.example.test"} <= set(after.names)


def test_an_expired_certificate_is_replaced(tmp_path: Path) -> None:
    cert, key = ensure_self_signed(tmp_path, HOST)
    expired = write_certificate(cert, key, list(host_names([HOST])), days=-1)  # covers all
    ensure_self_signed(tmp_path, HOST)
    assert certificate_info(cert).sha256 != expired.sha256
    assert certificate_info(cert).days_left() > 700


def test_an_operators_certificate_is_never_replaced(tmp_path: Path) -> None:
    cert, key = ensure_self_signed(tmp_path, HOST)
    theirs = write_certificate(cert, key, ["other.example.test"], days=-1, issuer="Their CA")
    ensure_self_signed(tmp_path, HOST)
    assert certificate_info(cert).sha256 == theirs.sha256


def test_certificate_info_reports_expiry(tmp_path: Path) -> None:
    cert, key = ensure_self_signed(tmp_path, HOST)
    soon = write_certificate(cert, key, [HOST], days=29)
    assert (soon.days_left(), soon.expiring()) == (29, True)
    later = write_certificate(cert, key, [HOST], days=30)
    assert (later.days_left(), later.expiring()) == (30, False)
    assert later.as_json()["sha256"] == later.sha256
    assert re.fullmatch(r"([0-9A-F]{2}:){31}[0-9A-F]{2}", later.sha256)


def write_certificate(
    cert: Path, key: Path, names: list[str], *, days: int, issuer: str | None = None
) -> CertificateInfo:
    """Replace ``cert`` with one for ``key`` valid until ``days`` from now (plus a few
    minutes, so whole days count down predictably)."""
    private = serialization.load_pem_private_key(key.read_bytes(), password=None)
    assert isinstance(private, rsa.RSAPrivateKey)
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    issued_by = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]) if issuer else subject
    built = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issued_by)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=400))
        .not_valid_after(now + datetime.timedelta(days=days, minutes=5))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
        )
        .sign(private, hashes.SHA256())
    )
    cert.write_bytes(built.public_bytes(serialization.Encoding.PEM))
    return certificate_info(cert)


def test_key_is_rsa_2048_and_matches(
    pair: tuple[Path, Path], certificate: x509.Certificate
) -> None:
    key = serialization.load_pem_private_key(pair[1].read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size == 2048
    assert key.public_key() == certificate.public_key()


def test_certificate_fields(certificate: x509.Certificate) -> None:
    assert certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == HOST
    assert certificate.issuer == certificate.subject
    assert isinstance(certificate.signature_hash_algorithm, hashes.SHA256)
    now = datetime.datetime.now(datetime.UTC)
    assert certificate.not_valid_before_utc < now - datetime.timedelta(hours=23)
    lifetime = certificate.not_valid_after_utc - now
    assert datetime.timedelta(days=729) < lifetime <= datetime.timedelta(days=730)


def test_subject_alternative_names(certificate: x509.Certificate) -> None:
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    dns = san.get_values_for_type(x509.DNSName)
    assert dns[0] == HOST
    machine = {socket.getfqdn().lower(), socket.gethostname().lower(), "localhost"}
    assert set(dns[1:]) == machine
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]


def test_server_certificate_extensions(certificate: x509.Certificate) -> None:
    extensions = certificate.extensions
    basic = extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and basic.value.ca is False
    usage = extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.key_encipherment
    assert not usage.key_cert_sign
    purposes = extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(purposes) == [ExtendedKeyUsageOID.SERVER_AUTH]


@pytest.mark.parametrize(
    ("host", "dns", "ips"),
    [
        ("localhost", ["localhost"], ["127.0.0.1", "::1"]),
        ("192.0.2.7", ["localhost"], ["192.0.2.7", "127.0.0.1", "::1"]),
    ],
)
def test_special_host_names(tmp_path: Path, host: str, dns: list[str], ips: list[str]) -> None:
    cert, _ = ensure_self_signed(tmp_path, host)
    loaded = x509.load_pem_x509_certificate(cert.read_bytes())
    san = loaded.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    machine = {socket.getfqdn().lower(), socket.gethostname().lower()}
    assert set(san.get_values_for_type(x509.DNSName)) == {*dns, *machine}
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address(ip) for ip in ips]


def test_default_host_name_comes_from_the_machine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("socket.getfqdn", lambda: "box.corp.example")
    cert, _ = ensure_self_signed(tmp_path)
    loaded = x509.load_pem_x509_certificate(cert.read_bytes())
    assert loaded.subject.rfc4514_string() == "CN=box.corp.example"


@pytest.mark.parametrize("lone", ["cert.pem", "key.pem"])
def test_half_a_pair_is_not_overwritten(tmp_path: Path, lone: str) -> None:
    (tmp_path / lone).write_bytes(b"operator's own file")
    with pytest.raises(ConfigError, match=re.escape(lone)):
        ensure_self_signed(tmp_path, HOST)
    assert (tmp_path / lone).read_bytes() == b"operator's own file"


# --- contexts -------------------------------------------------------------------


@pytest.fixture
async def server_port(pair: tuple[Path, Path]) -> AsyncIterator[int]:
    async def shout(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write((await reader.readexactly(5)).upper())
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass  # the rejected-client tests hang up mid-handshake
        finally:
            writer.close()

    server = await asyncio.start_server(shout, "127.0.0.1", 0, ssl=server_context(*pair))
    async with server:
        yield server.sockets[0].getsockname()[1]


def test_server_context_requires_tls_1_2(pair: tuple[Path, Path]) -> None:
    context = server_context(*pair)
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2


async def test_handshake_with_the_trusting_client(
    pair: tuple[Path, Path], server_port: int
) -> None:
    context = client_context(pair[0])
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    async with asyncio.timeout(10):
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", server_port, ssl=context, server_hostname="localhost"
        )
        writer.write(b"hello")
        await writer.drain()
        assert await reader.readexactly(5) == b"HELLO"
        writer.close()
        await writer.wait_closed()


@pytest.mark.parametrize(
    ("trusting", "server_hostname"),
    [(False, "localhost"), (True, "not-us.example.test")],
    ids=["default-trust-store", "wrong-host-name"],
)
async def test_handshake_fails_verification(
    pair: tuple[Path, Path], server_port: int, trusting: bool, server_hostname: str
) -> None:
    context = client_context(pair[0]) if trusting else ssl.create_default_context()
    async with asyncio.timeout(10):
        with pytest.raises(ssl.SSLCertVerificationError):
            await asyncio.open_connection(
                "127.0.0.1", server_port, ssl=context, server_hostname=server_hostname
            )


def test_missing_files_are_config_errors(tmp_path: Path, pair: tuple[Path, Path]) -> None:
    missing = tmp_path / "nope.pem"
    with pytest.raises(ConfigError, match=r"nope\.pem"):
        server_context(missing, pair[1])
    with pytest.raises(ConfigError, match=r"nope\.pem"):
        server_context(pair[0], missing)
    with pytest.raises(ConfigError, match=r"nope\.pem"):
        client_context(missing)


@pytest.mark.parametrize("garbled", ["cert", "key"])
def test_garbled_files_are_config_errors(
    tmp_path: Path, pair: tuple[Path, Path], garbled: str
) -> None:
    bad = tmp_path / "garbled.pem"
    bad.write_text("-----BEGIN NONSENSE-----\nAAAA\n-----END NONSENSE-----\n")
    cert, key = (bad, pair[1]) if garbled == "cert" else (pair[0], bad)
    with pytest.raises(ConfigError, match=r"garbled\.pem"):
        server_context(cert, key)


def test_mismatched_pair_is_a_config_error(tmp_path: Path, pair: tuple[Path, Path]) -> None:
    _, other_key = ensure_self_signed(tmp_path, HOST)
    with pytest.raises(ConfigError, match="does not belong") as caught:
        server_context(pair[0], other_key)
    assert str(other_key) in str(caught.value)
