"""The README's reproductions of Microsoft's SQL and LDAP guides, run as written: the
DDL and TOML blocks are read from README.md (so the documentation and this test cannot
drift), a real host is started on them, and Entra's request sequence is driven:
match by the guide's matching attribute, create without the anchor, get by id and by
filter, patch, disable, delete (and, for SQL, a restart whose import finds the same
user)."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.acceptance.conftest import Server, ecmahost, filter_query, wait_until
from tests.acceptance.test_ldap_e2e import LOCKED, PATCH_OP, directory
from tests.conftest import CORE, EXT, TOKEN
from tests.connectors.sql.mariadb import MariadbServer, mariadb_fixture
from tests.connectors.sql.postgres import PostgresServer, postgres_fixture
from tests.connectors.sql.sql_support import Backend, mariadb_backend, postgres_backend
from tests.ldap_server import Slapd, slapd_fixture

__all__ = ["mariadb_fixture", "postgres_fixture", "slapd_fixture"]

README = Path(__file__).resolve().parents[2] / "README.md"
CLASSES = ["top", "person", "organizationalPerson", "inetOrgPerson"]


def guide_block(name: str) -> str:
    """The fenced block that follows ``<!-- guide: name -->`` in the README."""
    found = re.search(
        rf"<!-- guide: {re.escape(name)} -->\n```\w+\n(.*?)\n```", README.read_text("utf-8"), re.S
    )
    assert found, f"README.md has no guide block {name}"
    return found.group(1)


def request(server: Server, name: str, method: str, path: str, body: Any = None) -> Any:
    response = server.request(method, path, body, name=name)
    assert response.status in (200, 201, 204), (response.status, response.body)
    return response.body


def matches(server: Server, name: str, expression: str) -> list[str]:
    found = request(server, name, "GET", "/Users" + filter_query(expression))
    return [r["id"] for r in found["Resources"]]


def patch(server: Server, name: str, user_id: str, path: str, value: Any) -> Any:
    operations = [{"op": "Replace", "path": path, "value": value}]
    body = {"schemas": [PATCH_OP], "Operations": operations}
    return request(server, name, "PATCH", f"/Users/{user_id}", body)


def table(backend: Backend) -> list[dict[str, Any]]:
    name = '"Employees"' if backend.name == "postgresql" else "Employees"
    found = asyncio.run(backend.rows(f"SELECT * FROM {name}"))
    return [{k: str(v) if "ID" in k else v for k, v in row.items()} for row in found]


def sql_guide_sequence(
    backend: Backend,
    write_config: Callable[..., Path],
    server_factory: Callable[..., Server],
) -> None:
    asyncio.run(backend.run(guide_block(f"sql-{backend.name}")))
    env = {"ECMAHOST_SQL_TOKEN": TOKEN, "ECMAHOST_SQL_DATABASE_URL": backend.url}
    server = server_factory(write_config(guide_block("sql-toml")), env=env)

    azure_id = str(uuid.uuid4())
    assert matches(server, "SQL", f'AzureID eq "{azure_id}"') == []
    user = {
        "AzureID": azure_id,
        "ContosoLogin": "adele.vance@contoso.example",
        "FirstName": "Adele",
        "LastName": "Vance",
        "Email": "adele.vance@contoso.example",
        "textID": "AdeleV",
    }
    created = request(server, "SQL", "POST", "/Users", {"schemas": [CORE], EXT: user})
    user_id = created["id"]
    [row] = table(backend)
    generated = row["InternalGUID"]
    assert created[EXT]["InternalGUID"] == generated
    assert (row["AzureID"], row["textID"]) == (azure_id, "AdeleV")

    assert request(server, "SQL", "GET", f"/Users/{user_id}")[EXT]["LastName"] == "Vance"
    assert matches(server, "SQL", f'AzureID eq "{azure_id}"') == [user_id]
    patch(server, "SQL", user_id, f"{EXT}:Email", "adele@contoso.example")
    [row] = table(backend)
    assert (row["Email"], row["InternalGUID"]) == ("adele@contoso.example", generated)

    # The guide's Disable flow is None and the table has no Boolean: the disable is
    # accepted and leaves the row as it was.
    patch(server, "SQL", user_id, "active", False)
    assert table(backend) == [row]

    # The start-up import finds the user under its generated anchor: no duplicate.
    server.restart()
    assert matches(server, "SQL", f'AzureID eq "{azure_id}"') == [user_id]
    assert request(server, "SQL", "GET", "/Users")["totalResults"] == 1

    assert server.request("DELETE", f"/Users/{user_id}", name="SQL").status == 204
    wait_until(lambda: table(backend) == [])


def test_sql_guide_postgresql(
    postgres: PostgresServer,
    write_config: Callable[..., Path],
    server_factory: Callable[..., Server],
) -> None:
    sql_guide_sequence(postgres_backend(postgres), write_config, server_factory)


def test_sql_guide_mariadb(
    mariadb: MariadbServer,
    write_config: Callable[..., Path],
    server_factory: Callable[..., Server],
) -> None:
    sql_guide_sequence(mariadb_backend(mariadb), write_config, server_factory)


def ldap_guide_toml(slapd: Slapd, base: str) -> str:
    toml = guide_block("ldap-toml")
    for written, local in (
        ("ldaps://ldap.contoso.lab", slapd.url),
        ("cn=admin,dc=contoso,dc=lab", slapd.bind_dn),
        ("ou=CloudUsers,dc=contoso,dc=lab", base),
    ):
        assert written in toml, written
        toml = toml.replace(written, local)
    return toml


def test_ldap_guide_openldap(
    slapd: Slapd, write_config: Callable[..., Path], server_factory: Callable[..., Server]
) -> None:
    nickname = "AdeleV"
    base = slapd.new_ou()
    env = {"ECMAHOST_LDAP_TOKEN": TOKEN, "ECMAHOST_LDAP_PASSWORD": slapd.password}
    server = server_factory(write_config(ldap_guide_toml(slapd, base)), env=env)

    assert matches(server, "LDAP", f'uid eq "{nickname}"') == []
    dn = f"uid={nickname},{base}"
    user = {
        "-dn-": dn,  # the guide's Join("", "uid=", [mailNickname], ",<container>")
        "uid": nickname,
        "mail": "adele.vance@contoso.example",
        "displayName": "Adele Vance",
        "cn": "Adele Vance",
        "givenName": "Adele",
        "sn": "Vance",
        "objectClass": CLASSES,
    }
    created = request(server, "LDAP", "POST", "/Users", {"schemas": [CORE], EXT: user})
    user_id = created["id"]
    assert created[EXT]["-dn-"].lower() == dn.lower()
    entry = directory(slapd, base)[nickname]
    assert sorted(entry["objectclass"]) == sorted(CLASSES)
    assert entry["sn"] == ["Vance"]

    assert request(server, "LDAP", "GET", f"/Users/{user_id}")[EXT]["uid"] == nickname
    assert matches(server, "LDAP", f'uid eq "{nickname}"') == [user_id]
    patch(server, "LDAP", user_id, f"{EXT}:displayName", "Adele V.")
    assert directory(slapd, base)[nickname]["displayname"] == ["Adele V."]

    patch(server, "LDAP", user_id, "active", False)
    assert directory(slapd, base)[nickname]["pwdaccountlockedtime"] == [LOCKED]
    patch(server, "LDAP", user_id, "active", True)
    assert "pwdaccountlockedtime" not in directory(slapd, base)[nickname]

    assert server.request("DELETE", f"/Users/{user_id}", name="LDAP").status == 204
    wait_until(lambda: nickname not in directory(slapd, base))


def test_ldap_guide_password_attribute_needs_export_only(
    slapd: Slapd, write_config: Callable[..., Path]
) -> None:
    """The README says the guide's password attribute must be export-only: mapped
    without it, the start stops; with it, the configuration connects."""
    base = slapd.new_ou()
    guide = ldap_guide_toml(slapd, base)
    env = {"ECMAHOST_LDAP_TOKEN": TOKEN, "ECMAHOST_LDAP_PASSWORD": slapd.password}
    config = write_config(guide)
    (config.parent / "state").mkdir()
    checked = ecmahost(config, "check-config", "--connect", env=env)
    assert checked.returncode == 0, checked.stderr

    mapped = guide.replace('mail = "mail"\n', 'mail = "mail"\npassword = "userPassword"\n')
    refused = ecmahost(write_config(mapped), "check-config", "--connect", env=env)
    assert refused.returncode == 1
    assert "connectors.LDAP.settings.attributes.password" in refused.stderr
    assert "userPassword" in refused.stderr and "export_only" in refused.stderr
    accepted = mapped.replace("multi_valued = ", 'export_only = ["password"]\nmulti_valued = ')
    checked = ecmahost(write_config(accepted), "check-config", "--connect", env=env)
    assert checked.returncode == 0, checked.stderr
