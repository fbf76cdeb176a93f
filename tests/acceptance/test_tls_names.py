"""The self-signed certificate fits the Tenant URL: a client that verifies against
var/tls/cert.pem reaches the host by the name ``ecmahost tenant-url`` prints."""

from __future__ import annotations

import datetime
import ipaddress
import json
import socket
import ssl
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.acceptance.conftest import Server, ecmahost
from tests.conftest import csv_connector_toml

ADMIN = "admin-token-0123456789"
EXTRA_NAME = "scim.example.test"
HOST_TOML = f'admin_token = "{ADMIN}"\ntls_host_names = ["{EXTRA_NAME}"]'


@pytest.fixture
def tls_server(config_dir: Path, server_factory: Callable[..., Server]) -> Server:
    config = config_dir / "ecmahost.toml"
    config.write_text(
        f'[host]\ntls = "self-signed"\nstate_dir = "state"\n{HOST_TOML}\n{csv_connector_toml()}',
        encoding="utf-8",
    )
    return server_factory(config)


def _resolves_locally(name: str) -> bool:
    try:
        return any(info[4][0] in ("127.0.0.1", "::1") for info in socket.getaddrinfo(name, 1))
    except OSError:
        return False


def test_tenant_url_verifies_against_the_generated_certificate(tls_server: Server) -> None:
    printed = ecmahost(tls_server.config, "tenant-url", "CSV")
    assert printed.returncode == 0, printed.stderr
    tenant = urlsplit(printed.stdout.strip())
    assert tenant.scheme == "https" and tenant.path == "/ecma2host_CSV/scim"
    assert tenant.hostname is not None
    assert _resolves_locally(tenant.hostname), f"{tenant.hostname} must resolve to loopback"
    cert = tls_server.config.parent / "state" / "tls" / "cert.pem"
    tls_server.ssl_context = ssl.create_default_context(cafile=cert)  # verification on
    port = urlsplit(tls_server.url()).port
    base = f"https://{tenant.hostname}:{port}/ecma2host_CSV/scim"
    assert tls_server.request("GET", "/ServiceProviderConfig", base=base).status == 200


@pytest.mark.parametrize(
    "name",
    sorted({socket.getfqdn(), socket.gethostname(), "localhost"}),
)
def test_every_machine_name_verifies(tls_server: Server, name: str) -> None:
    # Over loopback whatever the name resolves to here: what is checked is that the
    # certificate covers the name, not this machine's resolver.
    cert = tls_server.config.parent / "state" / "tls" / "cert.pem"
    context = ssl.create_default_context(cafile=cert)  # verification on
    port = urlsplit(tls_server.url()).port
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=name) as verified,
    ):
        assert verified.version() is not None


def test_a_name_the_certificate_lacks_is_refused(tls_server: Server) -> None:
    cert = tls_server.config.parent / "state" / "tls" / "cert.pem"
    context = ssl.create_default_context(cafile=cert)
    port = urlsplit(tls_server.url()).port
    with (
        pytest.raises(ssl.SSLCertVerificationError),
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
    ):
        context.wrap_socket(raw, server_hostname="not-covered.example.test")


def test_start_up_logs_and_health_show_the_certificate(tls_server: Server) -> None:
    shown = ecmahost(tls_server.config, "cert", "show")
    assert shown.returncode == 0, shown.stderr
    facts = json.loads(shown.stdout)
    assert EXTRA_NAME in facts["names"]
    assert {"localhost", "127.0.0.1", "::1", socket.gethostname().lower()} <= set(facts["names"])
    logged = [json.loads(line) for line in tls_server.stderr_lines if line.startswith("{")]
    entry = next(e for e in logged if e.get("action") == "tls.certificate")
    assert facts["sha256"] in entry["msg"] and EXTRA_NAME in entry["msg"]
    _trust_certificate(tls_server)
    health = tls_server.request("GET", "/health?detail=1", base=_root(tls_server), token=ADMIN)
    assert health.status == 200
    assert health.body["tls"]["sha256"] == facts["sha256"]
    assert health.body["tls"]["names"] == facts["names"]
    assert health.body["tls"]["days_left"] >= 729
    assert health.body["tls"]["expiring"] is False


def test_renew_makes_a_new_certificate_that_the_next_start_serves(tls_server: Server) -> None:
    before = json.loads(ecmahost(tls_server.config, "cert", "show").stdout)
    renewed = ecmahost(tls_server.config, "cert", "renew")
    assert renewed.returncode == 0, renewed.stderr
    after = json.loads(ecmahost(tls_server.config, "cert", "show").stdout)
    assert after["sha256"] != before["sha256"]
    tls_server.restart()
    _trust_certificate(tls_server)
    health = tls_server.request("GET", "/health?detail=1", base=_root(tls_server), token=ADMIN)
    assert health.body["tls"]["sha256"] == after["sha256"]


def _root(server: Server) -> str:
    url = urlsplit(server.url())
    return f"{url.scheme}://{url.netloc}"


def _trust_certificate(server: Server) -> None:
    cert = server.config.parent / "state" / "tls" / "cert.pem"
    server.ssl_context = ssl.create_default_context(cafile=cert)


def test_a_certificate_near_expiry_is_warned_about(
    config_dir: Path, server_factory: Callable[..., Server]
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=300))
        .not_valid_after(now + datetime.timedelta(days=10, hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    (config_dir / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (config_dir / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    config = config_dir / "ecmahost.toml"
    host = f'tls = "files"\ntls_cert = "cert.pem"\ntls_key = "key.pem"\nadmin_token = "{ADMIN}"'
    config.write_text(
        f'[host]\nstate_dir = "state"\n{host}\n{csv_connector_toml()}', encoding="utf-8"
    )
    server = server_factory(config)
    logged = [json.loads(line) for line in server.stderr_lines if line.startswith("{")]
    warned = [e for e in logged if e.get("action") == "tls.expiring"]
    assert warned and warned[0]["level"] == "warning" and warned[0]["days_left"] == 10
    server.ssl_context = ssl.create_default_context(cafile=config_dir / "cert.pem")
    health = server.request("GET", "/health?detail=1", base=_root(server), token=ADMIN)
    assert (health.body["tls"]["days_left"], health.body["tls"]["expiring"]) == (10, True)
    assert ecmahost(config, "cert", "show").returncode == 1  # for a monitoring script
