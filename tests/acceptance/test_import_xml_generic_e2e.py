"""``ecmahost connectors import-xml`` on the Generic SQL and Generic LDAP exports of
``tests/fixtures`` (written from Microsoft's documentation), run as a user would: the
command writes the configuration, the real ``ecmahost serve`` starts on it against a
real PostgreSQL table and a real slapd, and one SCIM create reaches the target."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg

from tests.acceptance.conftest import Server, ecmahost
from tests.acceptance.test_ldap_e2e import directory
from tests.conftest import CORE, EXT, TOKEN
from tests.connectors.sql.postgres import PostgresServer, postgres_fixture
from tests.ldap_server import Slapd, slapd_fixture

__all__ = ["postgres_fixture", "slapd_fixture"]

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
HOST = '[host]\ntls = "off"\nstate_dir = "state"\n'
TABLES = (
    'CREATE TABLE "Employees" ("ContosoLogin" varchar(128) PRIMARY KEY, '
    '"AzureID" uuid UNIQUE, "FirstName" varchar(50) NOT NULL, "LastName" varchar(50) '
    'NOT NULL, "Email" varchar(128), "textID" varchar(128), "Disabled" boolean NOT NULL '
    'DEFAULT false, "CreatedAt" timestamptz DEFAULT now(), "UpdatedAt" timestamptz, '
    '"ChangeType" varchar(16))',
    'CREATE TABLE "EmployeeRoles" ("Login" varchar(128) NOT NULL, "Roles" text NOT NULL)',
)
CLASSES = ["top", "person", "organizationalPerson", "inetOrgPerson"]


def _import(folder: Path, source: Path) -> tuple[Path, str]:
    """Run the command into a configuration holding only ``[host]``; its stderr."""
    (folder / "state").mkdir(parents=True)
    config = folder / "ecmahost.toml"
    config.write_text(HOST, encoding="utf-8")
    done = ecmahost(config, "connectors", "import-xml", str(source), "--output", str(config))
    assert done.returncode == 0, done.stderr
    return config, done.stderr


def _rows(dsn: str, query: str) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        db = await asyncpg.connect(dsn)
        try:
            return [dict(row) for row in await db.fetch(query)]
        finally:
            await db.close()

    return asyncio.run(read())


def test_import_xml_sql_export_starts_on_postgresql(
    tmp_path: Path, postgres: PostgresServer, server_factory: Callable[..., Server]
) -> None:
    name = f"xml_{secrets.token_hex(4)}"
    url = postgres.create_database(name)
    for statement in TABLES:
        _rows(postgres.dsn(name), statement)
    source = tmp_path / "Configuration - Generic SQL.xml"
    source.write_bytes((FIXTURES / source.name).read_bytes())
    (tmp_path / "contoso-sql.dsn").write_bytes((FIXTURES / "contoso-sql.dsn").read_bytes())
    config, warnings = _import(tmp_path / "host", source)
    assert "set ECMAHOST_SQL_DATABASE_URL to the database URL, e.g. postgresql+asyncpg://" in (
        warnings
    )
    env = {"ECMAHOST_SQL_TOKEN": TOKEN, "ECMAHOST_SQL_DATABASE_URL": url}
    server = server_factory(config, env=env)
    assert server.url("SQL").endswith("/ecma2host_SQL/scim")

    user = {
        "ContosoLogin": "adele.vance@contoso.example",
        "AzureID": "4f1c2b8e-0d3a-4c55-9a57-6e0f6f1b2c3d",
        "FirstName": "Adele",
        "LastName": "Vance",
        "Roles": ["Sales", "Travel"],
    }
    created = server.request("POST", "/Users", {"schemas": [CORE], EXT: user}, name="SQL")
    assert created.status == 201, created.body
    [row] = _rows(postgres.dsn(name), 'SELECT * FROM "Employees"')
    assert (row["ContosoLogin"], row["LastName"], row["Disabled"]) == (
        "adele.vance@contoso.example",
        "Vance",
        False,
    )
    roles = _rows(postgres.dsn(name), 'SELECT "Roles" FROM "EmployeeRoles" ORDER BY 1')
    assert [r["Roles"] for r in roles] == ["Sales", "Travel"]
    # The Delete flow None: a SCIM DELETE leaves the row in the table.
    deleted = server.request("DELETE", f"/Users/{created.body['id']}", name="SQL")
    assert deleted.status == 204
    assert len(_rows(postgres.dsn(name), 'SELECT * FROM "Employees"')) == 1


def test_import_xml_ldap_export_starts_on_slapd(
    tmp_path: Path, slapd: Slapd, server_factory: Callable[..., Server]
) -> None:
    base = slapd.new_ou()
    host, port = slapd.url.removeprefix("ldap://").split(":")
    text = (FIXTURES / "Configuration - Generic LDAP.xml").read_text(encoding="utf-8")
    for written, local in (
        ("<Value>ldap.contoso.lab</Value>", f"<Value>{host}</Value>"),
        ("<Value>389</Value>", f"<Value>{port}</Value>"),
        ("cn=admin,dc=contoso,dc=lab", slapd.bind_dn),
        ("ou=CloudUsers,dc=contoso,dc=lab", base),
        ("dc=contoso,dc=lab", slapd.suffix),
    ):
        assert written in text, written
        text = text.replace(written, local)
    source = tmp_path / "export.xml"
    source.write_text(text, encoding="utf-8")
    config, warnings = _import(tmp_path / "host", source)
    assert "set ECMAHOST_LDAP_PASSWORD" in warnings
    env = {"ECMAHOST_LDAP_TOKEN": TOKEN, "ECMAHOST_LDAP_PASSWORD": slapd.password}
    server = server_factory(config, env=env)

    dn = f"uid=AdeleV,{base}"
    user = {
        "-dn-": dn,
        "uid": "AdeleV",
        "cn": "Adele Vance",
        "sn": "Vance",
        "mail": "adele.vance@contoso.example",
        "objectClass": CLASSES,
    }
    created = server.request("POST", "/Users", {"schemas": [CORE], EXT: user}, name="LDAP")
    assert created.status == 201, created.body
    assert created.body[EXT]["-dn-"].lower() == dn.lower()
    entry = directory(slapd, base)["AdeleV"]
    assert entry["sn"] == ["Vance"] and sorted(entry["objectclass"]) == sorted(CLASSES)
