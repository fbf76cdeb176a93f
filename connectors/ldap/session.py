"""One synchronous ldap3 connection, shared by worker threads one call at a time.

The connector never calls ldap3 on the event loop: each call goes through
``asyncio.to_thread`` to ``LdapSession.run``, which holds a lock (ldap3's synchronous
strategy is not thread-safe), opens and binds the connection on first use, and
drops it when it broke, so that the next call, after a server restart, opens a
fresh one instead of failing forever.
"""

from __future__ import annotations

import logging
import math
import ssl
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from ecmahost.connectors.ldap.driver import LDAPException, SchemaInfo, ldap3
from ecmahost.connectors.ldap.errors import boundary, is_connection_error
from ecmahost.connectors.ldap.settings import LdapSettings

__all__ = ["LdapSession"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class LdapSession:
    """Opened lazily; ``read_schema`` also reads the server's subschema at bind time."""

    def __init__(
        self, settings: LdapSettings, password: str, base_dir: Path, *, read_schema: bool = False
    ) -> None:
        self._settings = settings
        self._password = password
        self._base_dir = base_dir
        self._read_schema = read_schema
        self._lock = threading.Lock()
        self._connection: ldap3.Connection | None = None

    def run(self, doing: str, work: Callable[[ldap3.Connection], T]) -> T:
        """``work`` on the bound connection; ldap3's errors come out translated, and
        ``doing`` (e.g. ``modify uid=x,ou=people``) says what failed."""
        with self._lock, boundary(doing):
            try:
                return work(self._connected())
            except BaseException as exc:
                if is_connection_error(exc):
                    self._drop()
                raise

    def schema_info(self) -> SchemaInfo | None:
        """The subschema read at the last bind (``read_schema`` sessions only)."""
        with self._lock:
            return None if self._connection is None else self._connection.server.schema

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _connected(self) -> ldap3.Connection:
        if self._connection is None:
            self._connection = self._open()
        return self._connection

    def _open(self) -> ldap3.Connection:
        s = self._settings
        server = ldap3.Server(
            s.url,
            connect_timeout=s.timeout_s,
            get_info=ldap3.SCHEMA if self._read_schema else ldap3.NONE,
            tls=self._tls(),
        )
        connection = ldap3.Connection(
            server,
            user=s.bind_dn,
            password=self._password,
            # Whole seconds: ldap3 packs this into SO_RCVTIMEO as an integer.
            receive_timeout=math.ceil(s.timeout_s),
            raise_exceptions=True,
            # Names were checked against the schema at open; ldap3's own checks would
            # also rewrite DNs and reformat values, which must reach the server as given.
            check_names=False,
            auto_referrals=False,
            return_empty_attributes=False,
        )
        try:
            connection.open(read_server_info=False)
            if s.start_tls:
                connection.start_tls(read_server_info=False)
            connection.bind(read_server_info=self._read_schema)
        except BaseException:
            _unbind(connection)
            raise
        log.debug("bound to %s as %s", s.url, s.bind_dn, extra={"action": "ldap.bind"})
        return connection

    def _tls(self) -> ldap3.Tls | None:
        s = self._settings
        if not (s.start_tls or s.url.lower().startswith("ldaps:")):
            return None
        ca_file = None if s.ca_file is None else str(s.resolve(s.ca_file, self._base_dir))
        return _CheckedTls(urlsplit(s.url).hostname or "", ca_file)

    def _drop(self) -> None:
        if self._connection is not None:
            _unbind(self._connection)
            self._connection = None


class _CheckedTls(ldap3.Tls):  # type: ignore[misc] # ldap3 has no type hints
    """ldap3's TLS, with the certificate and the server's name checked by the ssl
    module: ldap3 2.9.1 turns the context's name check off and calls
    ``ssl.match_hostname``, deprecated since Python 3.7 and gone in 3.12, where
    ldap3's own copy cannot match an IP address. The system's CAs are trusted
    unless ``ca_file`` is given."""

    def __init__(self, host: str, ca_file: str | None) -> None:
        super().__init__(validate=ssl.CERT_REQUIRED, ca_certs_file=ca_file)
        self._context = ssl.create_default_context(cafile=ca_file)  # TLS 1.2+, names checked
        self._host = host

    def wrap_socket(self, connection: Any, do_handshake: bool = False) -> None:
        connection.socket = self._context.wrap_socket(
            connection.socket, server_hostname=self._host, do_handshake_on_connect=do_handshake
        )


def _unbind(connection: ldap3.Connection) -> None:
    # A broken connection cannot say goodbye; closing its socket is all that matters.
    try:
        connection.unbind()
    except (LDAPException, OSError):
        log.debug("unbind failed", exc_info=True)
    # ldap3 keeps the socket of a connect that failed, and unbind skips a connection
    # that never opened: close it here, or it lingers until garbage collection.
    sock = getattr(connection, "socket", None)
    if sock is not None:
        sock.close()
