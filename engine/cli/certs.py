"""The host's certificate from the command line: the server's TLS context (logged at
start-up), ``ecmahost cert show|renew`` and ``ecmahost tenant-url``.

The Tenant URL an operator pastes into Entra must name a host the certificate
covers, or Entra refuses the connection; so the URL is printed from the certificate's
own names rather than from ``hostname -f`` guessed by a shell."""

from __future__ import annotations

import json
import logging
import socket
import ssl
from pathlib import Path
from urllib.parse import urlsplit

from ecmahost.connectors.exceptions import ConfigError
from ecmahost.engine import tls
from ecmahost.engine.config import HostConfig

__all__ = ["certificate_path", "renew", "server_tls", "show", "tenant_url", "wanted_names"]

log = logging.getLogger(__name__)


def wanted_names(config: HostConfig) -> tuple[str, ...]:
    """Every name the self-signed certificate of ``config`` must cover."""
    return tls.host_names(config.host.tls_host_names, config.host.public_url)


def certificate_path(config: HostConfig) -> Path:
    """The certificate served in ``config``'s TLS mode (self-signed unless ``files``)."""
    if config.host.tls == "files":
        if config.host.tls_cert is None or config.host.tls_key is None:
            raise ConfigError("tls = 'files' needs tls_cert and tls_key", "host.tls")
        return config.resolve(config.host.tls_cert)
    return _self_signed_folder(config) / tls.CERT_FILE_NAME


def server_tls(config: HostConfig) -> ssl.SSLContext | None:
    """The server context for ``config.host.tls`` (a self-signed pair made or renewed
    as needed), its certificate logged: names, fingerprint and expiry."""
    if config.host.tls == "off":
        return None
    if config.host.tls == "files":
        assert config.host.tls_key is not None  # certificate_path checked it
        cert, key = certificate_path(config), config.resolve(config.host.tls_key)
    else:
        cert, key = tls.ensure_self_signed(_self_signed_folder(config), wanted_names(config))
    context = tls.server_context(cert, key)
    _log_certificate(cert, tls.certificate_info(cert))
    return context


def show(config: HostConfig) -> int:
    """Print the served certificate's facts as JSON; exit 1 when it is expiring."""
    cert = certificate_path(config)
    if not cert.exists():
        raise ConfigError(f"no certificate at {cert} yet: ecmahost serve or cert renew makes one")
    info = tls.certificate_info(cert)
    print(json.dumps({"path": str(cert), **info.as_json()}, indent=2))
    return 1 if info.expiring() else 0


def renew(config: HostConfig) -> int:
    """Replace the self-signed pair with a new one; a serving host uses it once restarted."""
    if config.host.tls != "self-signed":
        raise ConfigError("only a self-signed certificate is renewed here", "host.tls")
    cert, _ = tls.renew_self_signed(_self_signed_folder(config), wanted_names(config))
    info = tls.certificate_info(cert)
    print(f"new certificate {cert}: {', '.join(info.names)}; expires {info.not_after:%Y-%m-%d}")
    print(f"sha256 {info.sha256}")
    print("restart the host to serve it; clients that pinned the old one must trust this one")
    return 0


def tenant_url(config: HostConfig, name: str) -> str:
    """A Tenant URL for connector ``name`` whose host the certificate covers: the
    public URL's host, else ``hostname -f`` (when it is a domain name), else
    ``hostname``, else any name it covers."""
    config.connector(name)
    settings = config.host
    port = urlsplit(settings.public_url).port if settings.public_url else None
    port = port or settings.listen_at.port
    if settings.tls == "off":
        return f"http://{_pick(config, wanted_names(config))}:{port}/ecma2host_{name}/scim"
    cert = certificate_path(config)
    if settings.tls == "self-signed":
        cert, _ = tls.ensure_self_signed(cert.parent, wanted_names(config))
    covered = tls.certificate_info(cert).names
    return f"https://{_pick(config, covered)}:{port}/ecma2host_{name}/scim"


def _pick(config: HostConfig, covered: tuple[str, ...]) -> str:
    public = urlsplit(config.host.public_url).hostname if config.host.public_url else None
    fqdn = socket.getfqdn()
    # Where /etc/hosts lists the host's name after "localhost", getfqdn answers that.
    domain_name = fqdn if "." in fqdn else None
    for candidate in (public, domain_name, socket.gethostname(), *covered):
        if candidate and candidate.lower() in covered:
            return f"[{candidate}]" if ":" in candidate else candidate
    raise ConfigError(f"the certificate covers no usable host name ({', '.join(covered)})")


def _self_signed_folder(config: HostConfig) -> Path:
    return config.state_dir / "tls"


def _log_certificate(cert: Path, info: tls.CertificateInfo) -> None:
    extra = {
        "action": "tls.certificate",
        "path": str(cert),
        "names": list(info.names),
        "sha256": info.sha256,
        "not_after": info.not_after.isoformat(),
        "days_left": info.days_left(),
    }
    log.info(
        "TLS certificate %s for %s, sha256 %s, expires %s (%d days)",
        cert,
        ", ".join(info.names),
        info.sha256,
        info.not_after.strftime("%Y-%m-%d"),
        info.days_left(),
        extra=extra,
    )
    if info.expiring():
        log.warning(
            "TLS certificate %s expires in %d days: renew it (ecmahost cert renew)",
            cert,
            info.days_left(),
            extra={**extra, "action": "tls.expiring"},
        )
