"""TLS for the host: a self-signed pair like the ECMA2Host wizard makes, and SSL contexts."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import socket
import ssl
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from ecmahost.connectors.exceptions import ConfigError

__all__ = [
    "CERT_FILE_NAME",
    "EXPIRY_WARNING_DAYS",
    "KEY_FILE_NAME",
    "CertificateInfo",
    "certificate_info",
    "client_context",
    "ensure_self_signed",
    "host_names",
    "renew_self_signed",
    "server_context",
]

CERT_FILE_NAME = "cert.pem"
KEY_FILE_NAME = "key.pem"

_KEY_SIZE_BITS = 2048
_BACKDATE = datetime.timedelta(days=1)  # tolerate clocks that lag ours
_LIFETIME = datetime.timedelta(days=730)
_MAX_COMMON_NAME = 64  # RFC 5280 upper bound; SAN carries the full name anyway
_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")

EXPIRY_WARNING_DAYS = 30
"""From this many days before its expiry a certificate is reported as expiring."""


@dataclass(frozen=True, slots=True)
class CertificateInfo:
    """What an operator checks of the served certificate: the names it covers
    (subject alternative names), its SHA-256 fingerprint and its expiry (UTC)."""

    names: tuple[str, ...]
    sha256: str
    not_after: datetime.datetime
    self_signed: bool

    def days_left(self, now: datetime.datetime | None = None) -> int:
        remaining = self.not_after - (now or datetime.datetime.now(datetime.UTC))
        return remaining.days  # floors: one hour left is day 0, expired is negative

    def expiring(self, now: datetime.datetime | None = None) -> bool:
        return self.days_left(now) < EXPIRY_WARNING_DAYS

    def covers(self, names: Iterable[str]) -> bool:
        return {_canonical(name) for name in names} <= set(self.names)

    def as_json(self) -> dict[str, object]:
        return {
            "names": list(self.names),
            "sha256": self.sha256,
            "not_after": self.not_after.isoformat().replace("+00:00", "Z"),
            "days_left": self.days_left(),
            "expiring": self.expiring(),
        }


def host_names(configured: Sequence[str] = (), public_url: str | None = None) -> tuple[str, ...]:
    """The names a self-signed certificate must cover for every Tenant URL an operator
    may type: the configured names, the host of ``public_url``, ``hostname -f``,
    ``hostname`` and the loopback names, each once and in that order (the first is
    the certificate's subject)."""
    public_host = urlsplit(public_url).hostname if public_url else None
    candidates = (*configured, public_host, socket.getfqdn(), socket.gethostname())
    names: list[str] = []
    for name in (*candidates, *_LOOPBACK_NAMES):
        if name and _canonical(name) not in names:
            names.append(_canonical(name))
    return tuple(names)


def certificate_info(cert: Path) -> CertificateInfo:
    """Read ``cert``'s names, fingerprint and expiry; an unreadable file is a ConfigError."""
    certificate = _load_certificate(cert)
    try:
        alt = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names = [str(value) for value in alt.value.get_values_for_type(x509.DNSName)]
        names += [str(value) for value in alt.value.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        names = []
    return CertificateInfo(
        names=tuple(_canonical(name) for name in names),
        sha256=certificate.fingerprint(hashes.SHA256()).hex(":").upper(),
        not_after=certificate.not_valid_after_utc,
        self_signed=certificate.issuer == certificate.subject,
    )


def ensure_self_signed(folder: Path, names: Sequence[str] | str | None = None) -> tuple[Path, Path]:
    """Return ``(cert, key)`` in ``folder``, creating a self-signed pair when there is none,
    or when ours no longer covers ``names`` (added to ``host_names()``) or has expired.

    A pair not self-signed is the operator's and is reused untouched. A new ``folder``
    is made 0700, the key is written 0600 and atomically. If only one of the two files
    exists, raise ``ConfigError`` rather than overwrite what may be an operator's key.
    """
    wanted = host_names([names] if isinstance(names, str) else (names or ()))
    cert_path, key_path = folder / CERT_FILE_NAME, folder / KEY_FILE_NAME
    if cert_path.exists() and key_path.exists():
        if not _outdated(certificate_info(cert_path), wanted):
            return cert_path, key_path
        return renew_self_signed(folder, wanted)
    for present, missing in ((cert_path, key_path), (key_path, cert_path)):
        if present.exists():
            raise ConfigError(f"{present} exists but {missing} does not: supply both or neither")
    return renew_self_signed(folder, wanted)


def renew_self_signed(folder: Path, names: Sequence[str]) -> tuple[Path, Path]:
    """Write a new self-signed pair for ``names`` (the first is the subject) into
    ``folder``, replacing what is there."""
    cert_path, key_path = folder / CERT_FILE_NAME, folder / KEY_FILE_NAME
    _make_private_folder(folder)
    key = rsa.generate_private_key(public_exponent=65537, key_size=_KEY_SIZE_BITS)
    certificate = _self_signed_certificate(key, list(names) or list(_LOOPBACK_NAMES))
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Key first: a crash in between leaves a lone key, which the check above reports.
    _write_atomically(key_path, key_pem, mode=0o600)
    _write_atomically(cert_path, certificate.public_bytes(serialization.Encoding.PEM), mode=0o644)
    return cert_path, key_path


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A TLS 1.2+ server context; a missing, unreadable or mismatched pair is a ConfigError."""
    certificate = _load_certificate(cert)
    private_key = _load_private_key(key)
    if certificate.public_key() != private_key.public_key():
        raise ConfigError(f"TLS key {key} does not belong to certificate {cert}")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"TLS pair {cert} / {key} cannot be loaded: {exc}") from exc
    return context


def client_context(cert: Path) -> ssl.SSLContext:
    """A TLS 1.2+ client context that trusts ``cert`` and nothing else, hostname checked."""
    _load_certificate(cert)  # name the file in the error if it is missing or garbled
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cert)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"TLS certificate {cert} cannot be trusted: {exc}") from exc
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # Python 3.13 turns strict checking on by default; do the same everywhere so
    # a certificate that passes here passes on every supported version.
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    return context


def _outdated(info: CertificateInfo, wanted: Sequence[str]) -> bool:
    # Only our own (self-signed) certificate is replaced: any other is the operator's.
    return info.self_signed and (not info.covers(wanted) or info.days_left() < 0)


def _canonical(name: str) -> str:
    # DNS names compare without case; addresses in their compressed form ("::1").
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name.lower().rstrip(".")


def _self_signed_certificate(key: rsa.RSAPrivateKey, names: list[str]) -> x509.Certificate:
    subject = names[0][:_MAX_COMMON_NAME]
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.datetime.now(datetime.UTC)
    public_key = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + _LIFETIME)
        .add_extension(x509.SubjectAlternativeName(_alt_names(names)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_server_key_usage(), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key), critical=False
        )
    )
    return builder.sign(key, hashes.SHA256())


def _alt_names(hosts: list[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for candidate in hosts:
        name = _general_name(candidate)
        if name not in names:
            names.append(name)
    return names


def _general_name(host: str) -> x509.GeneralName:
    # A host given as an address must be an IP SAN: clients never match it as DNS.
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _server_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        key_encipherment=True,
        content_commitment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def _make_private_folder(folder: Path) -> None:
    # Only a folder we create is tightened: an existing one belongs to the operator.
    if folder.exists():
        return
    folder.mkdir(mode=0o700, parents=True)
    folder.chmod(0o700)  # mkdir's mode is filtered by the umask


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    # mkstemp creates the file 0600, so the key is never readable by others,
    # and os.replace means readers see either no file or the whole file.
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temp_name, mode)
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{what} {path} cannot be read: {exc.strerror}") from exc


def _load_certificate(path: Path) -> x509.Certificate:
    data = _read(path, "TLS certificate")
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError as exc:
        raise ConfigError(f"TLS certificate {path} is not a PEM certificate") from exc


def _load_private_key(path: Path) -> PrivateKeyTypes:
    data = _read(path, "TLS key")
    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError as exc:  # cryptography's signal for "needs a password"
        raise ConfigError(f"TLS key {path} is encrypted; supply an unencrypted key") from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ConfigError(f"TLS key {path} is not a PEM private key") from exc
