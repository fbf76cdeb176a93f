"""A throwaway OpenLDAP server for tests: its own cn=config, one mdb database, a free
loopback port, removed when the session ends.

``slapd_accesslog_fixture`` gives a second server whose database also logs every
write (the accesslog overlay, into a second database ``cn=accesslog``), for the
delta import tests; the other tests keep the plain server, whose writes cost no log.

Import ``slapd_fixture`` into a test module to get the ``slapd`` fixture. The server
is shared by every test module of a session (a fixture imported into two modules is
two fixtures to pytest, hence the reference count); tests that need their own corner
of the tree take a fresh organizational unit from ``Slapd.new_ou``. ``stop`` and
``start`` restart the same server on the same port with the same data, for outage
tests.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from ecmahost.connectors.ldap.driver import LDAPException, ldap3
from ecmahost.engine.tls import CERT_FILE_NAME, ensure_self_signed

from tests.helpers import unavailable

__all__ = [
    "ACCESSLOG",
    "PEOPLE",
    "ROOT_DN",
    "SUFFIX",
    "UNIQUE_OU",
    "Slapd",
    "slapd_accesslog_fixture",
    "slapd_fixture",
]

SUFFIX = "dc=example,dc=org"
ROOT_DN = f"cn=admin,{SUFFIX}"
PEOPLE = f"ou=people,{SUFFIX}"
UNIQUE_OU = f"ou=unique,{SUFFIX}"
"""Entries under this unit must have distinct ``mail`` values (the unique overlay)."""
ACCESSLOG = "cn=accesslog"
"""The suffix of the log database of a server built with ``accesslog``."""

SCHEMAS = ("core", "cosine", "nis", "inetorgperson")
TEST_OID = "2.25.191538753727713154475176635628564526316"
"""A UUID-derived OID arc (ITU-T X.667) for the test schema below."""
TEST_SCHEMA = f"""dn: cn=ecmahost,cn=schema,cn=config
objectClass: olcSchemaConfig
cn: ecmahost
olcAttributeTypes: ( {TEST_OID}.1.1 NAME 'ecmahostActive' DESC 'test: enabled'
  EQUALITY booleanMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.7 SINGLE-VALUE )
olcAttributeTypes: ( {TEST_OID}.1.2 NAME 'ecmahostLevel' DESC 'test: an integer'
  EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
olcAttributeTypes: ( {TEST_OID}.1.3 NAME 'ecmahostCode' DESC 'test: case matters'
  EQUALITY caseExactMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
olcObjectClasses: ( {TEST_OID}.2.1 NAME 'ecmahostAccount' DESC 'test: auxiliary class'
  SUP top AUXILIARY MAY ( ecmahostActive $ ecmahostLevel $ ecmahostCode ) )
"""
"""An auxiliary class with a Boolean, an Integer and a case-exact attribute, which the
standard user schemas lack."""
SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIRS = (Path("/usr/lib/ldap"), Path("/usr/lib64/openldap"), Path("/usr/libexec/openldap"))
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0


def _accesslog_ldif(folder: Path) -> str:
    """The log database (numbered before the main one, which names it) and the
    overlay logging the main database's writes with the entries' old values.
    Failed writes are logged too (``olcAccessLogSuccess`` stays FALSE), so that
    the tests show a delta import passing over them."""
    return f"""dn: olcDatabase={{1}}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {{1}}mdb
olcSuffix: {ACCESSLOG}
olcDbDirectory: {folder}/accesslog
olcRootDN: {ACCESSLOG}
olcAccess: to * by dn.exact="{ROOT_DN}" manage by * none
olcLimits: dn.exact="{ROOT_DN}" size=unlimited time=unlimited
olcDbMaxSize: 1073741824
olcDbNoSync: TRUE
olcDbIndex: objectClass,entryCSN,reqEnd,reqResult,reqStart,reqDN eq

"""


def _accesslog_overlay() -> str:
    return f"""
dn: olcOverlay={{1}}accesslog,olcDatabase={{2}}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcAccessLogConfig
olcOverlay: {{1}}accesslog
olcAccessLogDB: {ACCESSLOG}
olcAccessLogOps: writes
olcAccessLogOld: (objectClass=*)
"""


def _config_ldif(folder: Path, password: str, *, accesslog: bool = False) -> str:
    """cn=config for slapadd -n0: TLS with the certificate in ``folder/tls``, the
    schemas, back_mdb, the unique overlay, and the ppolicy module, for its
    pwdAccountLockedTime attribute (the overlay itself stays off); with
    ``accesslog``, the log database and overlay too."""
    module_dir = next((d for d in MODULE_DIRS if (d / "back_mdb.so").exists()), None)
    modules = (
        f"dn: cn=module{{0}},cn=config\nobjectClass: olcModuleList\ncn: module{{0}}\n"
        f"olcModulePath: {module_dir}\nolcModuleLoad: back_mdb\nolcModuleLoad: unique\n"
        "olcModuleLoad: ppolicy\n" + ("olcModuleLoad: accesslog\n" if accesslog else "") + "\n"
        if module_dir is not None
        else ""  # built in, as in some distributions' packages
    )
    main = 2 if accesslog else 1
    includes = "".join(f"include: file://{SCHEMA_DIR / name}.ldif\n\n" for name in SCHEMAS)
    includes += TEST_SCHEMA + "\n"
    return f"""dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: {folder}/slapd.pid
olcTLSCertificateFile: {folder}/tls/cert.pem
olcTLSCertificateKeyFile: {folder}/tls/key.pem

{modules}dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

{includes}dn: olcDatabase={{-1}}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {{-1}}frontend

dn: olcDatabase={{0}}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {{0}}config

{_accesslog_ldif(folder) if accesslog else ""}dn: olcDatabase={{{main}}}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {{{main}}}mdb
olcSuffix: {SUFFIX}
olcDbDirectory: {folder}/data
olcRootDN: {ROOT_DN}
olcRootPW: {password}
olcDbMaxSize: 1073741824
olcDbNoSync: TRUE
olcDbIndex: objectClass eq
olcDbIndex: uid,mail,employeeNumber,entryUUID eq

dn: olcOverlay={{0}}unique,olcDatabase={{{main}}}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcUniqueConfig
olcOverlay: {{0}}unique
olcUniqueURI: ldap:///{UNIQUE_OU}?mail?sub
{_accesslog_overlay() if accesslog else ""}"""


def _base_ldif() -> str:
    return "\n".join(
        f"dn: {dn}\n{body}\n"
        for dn, body in (
            (SUFFIX, "objectClass: dcObject\nobjectClass: organization\ndc: example\no: Example"),
            (PEOPLE, "objectClass: organizationalUnit\nou: people"),
            (UNIQUE_OU, "objectClass: organizationalUnit\nou: unique"),
        )
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run(*command: str, stdin: str | None = None) -> None:
    done = subprocess.run(command, input=stdin, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:3])} failed: {done.stderr.strip()}")


@dataclass
class Slapd:
    """One slapd process over ``folder``; ``start``/``stop`` keep port and data."""

    slapd: str
    folder: Path
    port: int = field(default_factory=_free_port)
    tls_port: int = field(default_factory=_free_port)
    password: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    process: subprocess.Popen[bytes] | None = None
    accesslog: bool = False
    """Log the writes with the accesslog overlay (see ``slapd_accesslog_fixture``)."""
    _units: int = 0
    _populated: dict[int, str] = field(default_factory=dict)

    bind_dn = ROOT_DN
    suffix = SUFFIX

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://127.0.0.1:{self.tls_port}"

    @property
    def ca_file(self) -> Path:
        """The server's self-signed certificate (for 127.0.0.1), to trust it."""
        return self.folder / "tls" / CERT_FILE_NAME

    def build(self) -> Slapd:
        """Write cn=config and the base entries with slapadd (the server is not running)."""
        ensure_self_signed(self.folder / "tls", "127.0.0.1")
        (self.folder / "config").mkdir(parents=True)
        (self.folder / "data").mkdir()
        if self.accesslog:
            (self.folder / "accesslog").mkdir()
        slapadd = str(Path(self.slapd).with_name("slapadd"))
        config = self.folder / "config"
        ldif = _config_ldif(self.folder, self.password, accesslog=self.accesslog)
        _run(slapadd, "-n0", "-F", str(config), stdin=ldif)
        _run(slapadd, "-q", "-b", SUFFIX, "-F", str(config), stdin=_base_ldif())
        return self

    def start(self) -> Slapd:
        """Start slapd and wait until it answers a bind."""
        log = (self.folder / "slapd.log").open("ab")
        self.process = subprocess.Popen(
            [
                self.slapd,
                "-d",
                "0",
                "-F",
                str(self.folder / "config"),
                "-h",
                f"{self.url}/ {self.ldaps_url}/",
            ],
            stdout=log,
            stderr=log,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"slapd exited: {self.log_tail()}")
            with contextlib.suppress(LDAPException):
                self.connection().unbind()
                return self
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"slapd did not answer in time: {self.log_tail()}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop slapd (SIGTERM, then SIGKILL after a grace period); the data stays."""
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    @contextlib.contextmanager
    def stopped(self) -> Iterator[None]:
        """The server is down inside the block and up again after it."""
        self.stop()
        try:
            yield
        finally:
            self.start()

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """The server accepts connections but answers nothing (SIGSTOP) inside the block."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            self.process.send_signal(signal.SIGCONT)

    def log_tail(self, chars: int = 2000) -> str:
        path = self.folder / "slapd.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def connection(self) -> ldap3.Connection:
        """A bound connection as the root DN, for checking what the directory holds."""
        server = ldap3.Server(self.url, connect_timeout=5)
        connection = ldap3.Connection(
            server,
            self.bind_dn,
            self.password,
            receive_timeout=10,
            raise_exceptions=True,
            check_names=False,
        )
        try:
            connection.open()
            connection.bind()
        except BaseException:
            if connection.socket is not None:  # ldap3 leaves a failed connect's socket open
                connection.socket.close()
            raise
        return connection

    def ldapadd(self, ldif: str) -> None:
        """Add entries with the ldapadd tool (much faster than a Python loop)."""
        path = self.folder / f"add-{secrets.token_hex(4)}.ldif"
        path.write_text(ldif, encoding="utf-8")
        try:
            self._tool("ldapadd", "-f", str(path))
        finally:
            path.unlink()

    def new_ou(self, parent: str = SUFFIX) -> str:
        """A new, empty organizational unit under ``parent``; its DN."""
        self._units += 1
        name = f"t{self._units}"
        self.ldapadd(f"dn: ou={name},{parent}\nobjectClass: organizationalUnit\nou: {name}\n")
        return f"ou={name},{parent}"

    def remove_tree(self, dn: str) -> None:
        """Delete ``dn`` and everything under it (ldapdelete -r)."""
        self._tool("ldapdelete", "-r", dn)

    def _tool(self, tool: str, *args: str) -> None:
        """An ldap-utils tool, bound as the root DN; ``-M`` (ManageDsaIT) makes it treat
        referral entries as plain entries."""
        _run(tool, "-x", "-M", "-H", self.url, "-D", self.bind_dn, "-w", self.password, *args)

    def populated_ou(self, count: int) -> str:
        """A unit holding ``count`` people, made once per session and shared: read only."""
        if count not in self._populated:
            dn = self.new_ou()
            self.add_people(dn, count)
            self._populated[count] = dn
        return self._populated[count]

    def add_people(self, parent: str, count: int, prefix: str = "bulk") -> None:
        """``count`` inetOrgPerson entries ``uid=<prefix>N`` under ``parent``, in one ldapadd."""
        self.ldapadd(
            "".join(
                f"dn: uid={prefix}{i},{parent}\nobjectClass: inetOrgPerson\nuid: {prefix}{i}\n"
                f"cn: Bulk User {i}\nsn: User{i}\nmail: {prefix}{i}@example.org\n\n"
                for i in range(count)
            )
        )


def _find_slapd() -> str:
    found = shutil.which("slapd") or shutil.which("slapd", path="/usr/sbin:/usr/local/sbin")
    tools = found and shutil.which("ldapadd") and Path(found).with_name("slapadd").exists()
    if found and tools:
        return found
    reason = "OpenLDAP slapd, slapadd and ldapadd are needed (apt-get install slapd ldap-utils)"
    unavailable(reason)


class _Shared:
    """One server of each kind per test session, whichever module asks first;
    stopped by the last user."""

    servers: dict[bool, Slapd] = {}
    users: dict[bool, int] = {False: 0, True: 0}


def _shared_server(*, accesslog: bool) -> Iterator[Slapd]:
    if accesslog not in _Shared.servers:
        folder = Path(tempfile.mkdtemp(prefix="ecmahost-slapd-"))
        try:
            server = Slapd(_find_slapd(), folder, accesslog=accesslog)
            _Shared.servers[accesslog] = server.build().start()
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
    _Shared.users[accesslog] += 1
    try:
        yield _Shared.servers[accesslog]
    finally:
        _Shared.users[accesslog] -= 1
        if _Shared.users[accesslog] == 0:
            server = _Shared.servers.pop(accesslog)
            server.stop()
            shutil.rmtree(server.folder, ignore_errors=True)


@pytest.fixture(scope="session", name="slapd")
def slapd_fixture() -> Iterator[Slapd]:
    """A running slapd with ``dc=example,dc=org``, ``ou=people`` and ``ou=unique``.

    Skipped when slapd is not installed, unless ``ECMAHOST_REQUIRE_SERVERS=1``.
    """
    yield from _shared_server(accesslog=False)


@pytest.fixture(scope="session", name="slapd_accesslog")
def slapd_accesslog_fixture() -> Iterator[Slapd]:
    """Another running slapd like ``slapd``, whose writes the accesslog overlay logs
    under ``cn=accesslog`` (every write, failed ones too, with old values)."""
    yield from _shared_server(accesslog=True)
