"""The ``ecmahost`` command line."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import secrets
import ssl
import sys
import traceback
import uuid
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path
from typing import TypeVar

from aiohttp import ClientError, ClientSession, ClientTimeout, TCPConnector
from ecmahost.connectors.base import Connector
from ecmahost.connectors.exceptions import ConfigError, EcmahostError
from ecmahost.engine import tls
from ecmahost.engine.cli import (
    certs,
    check,
    ecma_xml,
    errors,
    exports,
    migrate,
    progress,
    serve,
    status,
)
from ecmahost.engine.config import HostConfig, Listen, config_path, load_config
from ecmahost.engine.host import Host
from ecmahost.engine.logs import configure_logging
from ecmahost.engine.space import backup, cluster
from ecmahost.engine.space.database import database_file
from rich.console import Console

__all__ = ["main"]

_err = Console(stderr=True)

T = TypeVar("T")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; an error the operator can fix is one line on stderr and exit
    code 2 (with ``-v`` or ``log_level = "debug"`` its traceback comes first)."""
    args = _parser().parse_args(argv)
    if argv is None:  # this process's own command, not a call from other code
        # The ~120,000 objects of the imported modules live as long as the process:
        # out of the cyclic collector's sight, its full collections during a long
        # import or a busy host no longer walk them (an import: 6% less time).
        gc.freeze()
    # Everything the host writes (database, journal, TLS key, target files) holds
    # personal data or secrets: no group or other access, whoever the umask came from.
    os.umask(0o077)
    try:
        return int(args.func(args) or 0)
    except EcmahostError as exc:
        return _one_line(exc, args.verbose)
    except BrokenPipeError:  # before OSError, which it is
        return _pipe_closed()
    except OSError as exc:
        known = errors.explain(exc, getattr(args, "state_dir", None))
        if known is None:
            raise
        return _one_line(known, args.verbose)
    except KeyboardInterrupt:
        return 130


def _pipe_closed() -> int:
    """The reader went away (``| head``): stop without a traceback, and point stdout
    at /dev/null so the interpreter's final flush does not raise again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 141  # what a shell reports for a process ended by SIGPIPE


def _one_line(exc: EcmahostError, verbose: bool) -> int:
    if verbose or logging.getLogger().isEnabledFor(logging.DEBUG):
        traceback.print_exc()
    print(f"ecmahost: error: {exc}", file=sys.stderr)
    return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ecmahost", description="Connector host for Microsoft Entra on-premises provisioning"
    )
    parser.add_argument("--version", action="version", version=f"ecmahost {version('ecmahost')}")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show the traceback behind an error"
    )
    parser.add_argument(
        "--config", help="configuration file (default: $ECMAHOST_CONFIG, then config/ecmahost.toml)"
    )
    # Accepted after the command too (ecmahost serve --config FILE), where it wins.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", parents=[common], help="serve the SCIM endpoints")
    serve.add_argument("--listen", help="HOST:PORT (default from the configuration)")
    serve.add_argument("--tls", choices=["off", "self-signed"], help="override the configured TLS")
    serve.set_defaults(func=_cmd_serve)

    imp = sub.add_parser("import", parents=[common], help="run a full import of a connector now")
    imp.add_argument("connector")
    imp.add_argument(
        "--allow-removals",
        action="store_true",
        help="remove what the target lacks even when the import would otherwise be refused",
    )
    imp.add_argument(
        "--delta",
        action="store_true",
        help="read only what changed since the last import (a full import when it cannot)",
    )
    imp.set_defaults(func=_cmd_import)

    exports.add_commands(sub, common, _load)

    cache = sub.add_parser(
        "cache", parents=[common], help="dump a connector's connector space (JSON lines)"
    )
    cache.add_argument("connector")
    cache.set_defaults(func=_cmd_cache)

    test = sub.add_parser(
        "test-connection", parents=[common], help="send Entra's test query to a running host"
    )
    test.add_argument("connector")
    test.add_argument("--url", help="base URL of the host (default from the configuration)")
    test.set_defaults(func=_cmd_test_connection)

    token = sub.add_parser("token", parents=[common], help="print a new random secret token")
    token.set_defaults(func=_cmd_token)

    cert = sub.add_parser("cert", parents=[common], help="the host's TLS certificate")
    cert_sub = cert.add_subparsers(required=True, metavar="ACTION")
    cert_show = cert_sub.add_parser(
        "show", parents=[common], help="names, fingerprint, expiry (exit 1 when expiring)"
    )
    cert_show.set_defaults(func=lambda a: certs.show(_load(a, secrets=False)))
    cert_renew = cert_sub.add_parser(
        "renew", parents=[common], help="make a new self-signed certificate"
    )
    cert_renew.set_defaults(func=lambda a: certs.renew(_load(a, secrets=False)))

    tenant = sub.add_parser(
        "tenant-url", parents=[common], help="a Tenant URL for Entra that the certificate covers"
    )
    tenant.add_argument("connector")
    tenant.set_defaults(
        func=lambda a: print(certs.tenant_url(_load(a, secrets=False), a.connector))
    )

    checking = sub.add_parser(
        "check-config", parents=[common], help="validate the configuration without serving"
    )
    checking.add_argument(
        "--connect", action="store_true", help="also open each connector's target once"
    )
    checking.set_defaults(
        func=lambda a: check.check_config(_load(a, secrets=a.connect), connect=a.connect)
    )

    upgrade = sub.add_parser(
        "migrate", parents=[common], help="bring the database to this version's schema"
    )
    upgrade.add_argument(
        "--check", action="store_true", help="only tell what would run (exit 1 if anything)"
    )
    upgrade.set_defaults(
        func=lambda a: asyncio.run(
            migrate.run_migrations(_load(a, secrets=False), check_only=a.check)
        )
    )

    status_parser = sub.add_parser(
        "status", parents=[common], help="the hosts serving the connector space"
    )
    status_parser.set_defaults(
        func=lambda a: asyncio.run(status.show_status(_load(a, secrets=False)))
    )

    copy = sub.add_parser(
        "backup", parents=[common], help="an online, consistent copy of the database"
    )
    copy.add_argument("path", type=Path, help="file to write (replaced if it exists)")
    copy.set_defaults(func=_cmd_backup)

    connectors = sub.add_parser(
        "connectors", parents=[common], help="create connector configurations"
    )
    co_sub = connectors.add_subparsers(required=True, metavar="ACTION")
    xml = co_sub.add_parser(
        "import-xml", parents=[common], help="convert an ECMA2Host connector export to TOML"
    )
    xml.add_argument("file", type=Path, help="the configuration XML exported by ECMA2Host")
    xml.add_argument("--output", type=Path, help="TOML file to write or add to (default: stdout)")
    xml.add_argument("--scripts-dir", type=Path, help="where scripts go (default: NAME-scripts)")
    xml.add_argument(
        "--use-python-examples",
        action="store_true",
        help="run ecmahost's Python CSV scripts instead of the export's (redacted) PowerShell",
    )
    xml.set_defaults(
        func=lambda a: ecma_xml.cli_import(a.file, a.output, a.scripts_dir, a.use_python_examples)
    )
    return parser


def _load(args: argparse.Namespace, *, secrets: bool = True) -> HostConfig:
    """The configuration; ``secrets=False`` for a command that uses none of them."""
    config = load_config(config_path(args.config), resolve_secrets=secrets)
    configure_logging(config.host.log_level, config.host.log_format)
    args.state_dir = config.state_dir  # for the one-line error of a state folder problem
    return config


# -- serve ------------------------------------------------------------------------


def _cmd_serve(args: argparse.Namespace) -> int:
    config = _load(args)
    listen = Listen.parse(args.listen) if args.listen else config.host.listen_at
    if args.tls:  # the host reads the mode too: /health shows the certificate served
        config = config.model_copy(
            update={"host": config.host.model_copy(update={"tls": args.tls})}
        )
    serve.serve(config, listen, lambda: certs.server_tls(config))
    return 0


def _cmd_backup(args: argparse.Namespace) -> int:
    config = _load(args, secrets=False)
    if config.shared_database:
        raise ConfigError(
            "the connector space is on PostgreSQL (host.database_url): back it up with"
            " PostgreSQL's own tools (pg_dump, or the server's base backups)"
        )
    report = backup.backup(database_file(config.state_dir), args.path)
    print(f"backup {report.target}: {report.size_bytes:,} bytes in {report.elapsed_s:.1f} s")
    return 0


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


async def _delta(host: Host, name: str) -> int:
    deltas = host.runtime(name).importer.deltas
    if deltas is None:
        raise ConfigError(f"connector {name} has no delta imports configured")
    report = await deltas.run()
    counts = ", ".join(f"{k} {v}" for k, v in sorted(report.counts.items()))
    if not report.ok:
        print(f"delta import of {name} failed: {report.error}", file=sys.stderr)
        return 1
    print(f"import of {name} (run {report.run_id}): {counts}")
    return 0


# -- import, cache --------------------------------------------------------------------


def _cmd_import(args: argparse.Namespace) -> int:
    config = _load(args)
    if not config.shared_database:
        return asyncio.run(_import(config, args.connector, args.allow_removals, args.delta))
    return asyncio.run(_shared_import(config, args.connector, args.allow_removals, args.delta))


async def _shared_import(config: HostConfig, name: str, allow_removals: bool, delta: bool) -> int:
    """On a shared space a connector's imports are its leading host's: one runs here
    only while no host leads it; else the leading host is asked to run it."""
    config.connector(name)
    async with cluster.import_lock(config.database_url, name) as held:
        if held:
            return await _import(config, name, allow_removals, delta)
    kind, allow = "delta" if delta else "full", "allow" if allow_removals else "keep"
    await cluster.tell_once(config.database_url, "import", name, kind, allow)
    print(f"asked the host running the imports of {name} to run a {kind} import now")
    return 0


async def _import(
    config: HostConfig, name: str, allow_removals: bool = False, delta: bool = False
) -> int:
    config.connector(name)
    host = Host(config.model_copy(update={"connectors": {name: config.connector(name)}}))
    await host.open()
    try:
        if delta:
            return await _delta(host, name)
        total = await _import_size(host.runtime(name).connector)
        with progress.import_progress(_err, total) as shown:
            task = shown.add_task(f"importing {name}", total=total)
            report = await host.runtime(name).importer.full_import(
                lambda seen: shown.update(task, completed=seen), allow_removals=allow_removals
            )
    finally:
        await host.close()
    counts = ", ".join(f"{k} {v}" for k, v in sorted(report.counts.items()))
    if report.refused is not None:
        print(
            f"import of {name} refused, nothing removed: {report.refused}\n"
            f"if this is intended: ecmahost import {name} --allow-removals",
            file=sys.stderr,
        )
        return 1
    if not report.ok:
        print(
            f"import of {name} failed after {report.seen} records: {report.error}", file=sys.stderr
        )
        return 1
    print(f"import of {name}: {report.seen} records ({counts})")
    return 0


async def _import_size(connector: Connector) -> int | None:
    try:
        return await connector.import_size()
    except EcmahostError:  # the import itself will say what is wrong
        return None


def _cmd_cache(args: argparse.Namespace) -> int:
    return asyncio.run(_cache(_load(args, secrets=False), args.connector))


async def _cache(config: HostConfig, name: str) -> int:
    config.connector(name)
    host = Host(config)
    await host.open(connectors=False)
    assert host.space is not None
    try:
        async for obj in host.space.iter_objects(name):
            line = {"id": obj.id, "anchor": obj.anchor, "attributes": dict(obj.attributes)}
            print(json.dumps(line, ensure_ascii=False))
    finally:
        await host.close()
    return 0


# -- test-connection, token ---------------------------------------------------------------


def _cmd_test_connection(args: argparse.Namespace) -> int:
    config = _load(args)
    return asyncio.run(_test_connection(config, args.connector, args.url))


async def _test_connection(config: HostConfig, name: str, url: str | None) -> int:
    connector = config.connector(name)
    listen = config.host.listen_at
    scheme = "http" if config.host.tls == "off" else "https"
    host = "127.0.0.1" if listen.host in ("0.0.0.0", "::") else _url_host(listen.host)
    base = (url or f"{scheme}://{host}:{listen.port}").rstrip("/")
    target = f"{base}/ecma2host_{name}/scim/Users"
    query = {"filter": f'PLACEHOLDER eq "{uuid.uuid4()}"'}
    headers = {"Authorization": f"Bearer {connector.token.get_secret_value()}"}
    ssl_context = _client_tls(config)
    try:
        async with (
            ClientSession(
                connector=TCPConnector(ssl=ssl_context), timeout=ClientTimeout(total=60)
            ) as session,
            session.get(target, params=query, headers=headers) as response,
        ):
            body = await response.json(content_type=None)
    except (ClientError, TimeoutError, ValueError) as exc:
        print(f"test connection to {target} failed: {exc}", file=sys.stderr)
        return 1
    if response.status == 200 and body.get("totalResults") == 0:
        print(f"test connection to {target} succeeded")
        return 0
    print(f"test connection to {target} failed: {response.status} {body}", file=sys.stderr)
    return 1


def _client_tls(config: HostConfig) -> ssl.SSLContext | bool:
    """Trust our own self-signed certificate; otherwise the system's trust store."""
    cert = config.state_dir / "tls" / tls.CERT_FILE_NAME
    if config.host.tls != "files" and cert.exists():
        return tls.client_context(cert)
    return True


def _cmd_token(args: argparse.Namespace) -> int:
    print(secrets.token_urlsafe(32))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
