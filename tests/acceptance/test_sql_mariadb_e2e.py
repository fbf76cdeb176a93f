"""The real ``ecmahost serve`` with a SQL connector over a real MariaDB table: Entra's
sequence (match, create, get by id and by filter, patch, disable, delete) checked in the
table itself, then a full import whose connector space equals the table; and a server
outage that exports ride out and deliver once it is over."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.acceptance.conftest import Server, ecmahost, filter_query, wait_until
from tests.conftest import CORE, EXT, TOKEN
from tests.connectors.sql.mariadb import MariadbServer, mariadb_fixture
from tests.connectors.sql.sql_support import mariadb_backend

__all__ = ["mariadb_fixture"]  # the session's MariaDB server, as fixture `mariadb`

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
URL_VARIABLE = "ECMAHOST_TEST_SQL_URL"
TOKEN_VARIABLE = "ECMAHOST_TEST_TOKEN_SQL"
# What a DBA would write for Entra's users on MariaDB: a binary anchor (see the README).
USERS = (
    'CREATE TABLE users ("AzureObjectID" VARCHAR(64) COLLATE utf8mb4_bin PRIMARY KEY, '
    '"DisplayName" VARCHAR(256), "UserName" VARCHAR(256), "Title" TEXT, '
    '"EmployeeId" VARCHAR(32), "Email" VARCHAR(256), "IsActive" BOOLEAN)'
)


def _toml() -> str:
    os.environ[TOKEN_VARIABLE] = TOKEN
    return f"""
[connectors.SQL]
type = "sql"
token = "env:{TOKEN_VARIABLE}"

[connectors.SQL.deprovision]
disable = "set_attribute"
disable_attribute = "IsActive"

[connectors.SQL.settings]
url = "env:{URL_VARIABLE}"
table = "users"
anchor = "AzureObjectID"
page_size = 2
"""


class Table:
    """The users table, read and written directly."""

    def __init__(self, mariadb: MariadbServer) -> None:
        self._backend = mariadb_backend(mariadb)
        self.url = self._backend.url
        self.run(USERS)

    def run(self, script: str) -> None:
        asyncio.run(self._backend.run(script))

    def rows(self) -> dict[str, dict[str, Any]]:
        found = asyncio.run(self._backend.rows("SELECT * FROM users"))
        return {row["AzureObjectID"]: row for row in found}


def _user(i: int, **values: str) -> dict[str, str]:
    anchor = str(uuid.UUID(int=0xA11CE_0000_4000_8000_0000_0000_0000 + i))
    return {
        "AzureObjectID": anchor,
        "UserName": f"user{i}@contoso.example",
        "DisplayName": f"User {i}",
        "Title": "Engineer",
        "Email": f"user{i}@contoso.example",
        "IsActive": "True",
        **values,
    }


def _find(server: Server, attribute: str, value: str) -> list[dict[str, Any]]:
    query = filter_query(f'{attribute} eq "{value}"')
    found = server.request("GET", "/Users" + query, name="SQL")
    assert found.status == 200, found.body
    return list(found.body.get("Resources", []))


def _patch(server: Server, user_id: str, *operations: dict[str, Any]) -> Any:
    body = {"schemas": [PATCH_OP], "Operations": list(operations)}
    response = server.request("PATCH", f"/Users/{user_id}", body, name="SQL")
    assert response.status == 200, response.body
    return response.body


def _set(path: str, value: Any) -> dict[str, Any]:
    return {"op": "Replace", "path": path if path == "active" else f"{EXT}:{path}", "value": value}


def test_entra_sequence_then_a_full_import_against_mariadb(
    mariadb: MariadbServer,
    write_config: Callable[..., Path],
    server_factory: Callable[..., Server],
) -> None:
    table = Table(mariadb)
    config = write_config(_toml())
    env = {URL_VARIABLE: table.url}
    server = server_factory(config, env=env)

    tricky = " O'Brien \\ \"Zoë\"; 日本 🙂 x'); DROP TABLE users; -- "
    users = [_user(1), _user(2, DisplayName=tricky), _user(3)]
    ids: dict[str, str] = {}
    for user in users:
        anchor = user["AzureObjectID"]
        assert not _find(server, "AzureObjectID", anchor)  # Entra's match misses first
        assert not _find(server, "UserName", user["UserName"])
        created = server.request("POST", "/Users", {"schemas": [CORE], EXT: user}, name="SQL")
        assert created.status == 201, created.body
        ids[anchor] = str(created.body["id"])
    rows = table.rows()
    for user in users:
        assert rows[user["AzureObjectID"]] == {**user, "EmployeeId": None, "IsActive": 1}

    first, second, third = (u["AzureObjectID"] for u in users)
    got = server.request("GET", f"/Users/{ids[second]}", name="SQL")
    assert got.status == 200 and got.body[EXT]["DisplayName"] == tricky
    assert [r["id"] for r in _find(server, "AzureObjectID", second)] == [ids[second]]

    _patch(server, ids[first], _set("Title", "Lead"), {"op": "Remove", "path": f"{EXT}:Email"})
    assert table.rows()[first] == {**rows[first], "Title": "Lead", "Email": None}
    assert _patch(server, ids[second], _set("active", "False"))["active"] is False
    assert table.rows()[second]["IsActive"] == 0
    deleted = server.request("DELETE", f"/Users/{ids[third]}", name="SQL")
    assert deleted.status == 204 and third not in table.rows()
    server.stop()

    # Changes made in the table behind the host's back, then a full import.
    table.run(
        f"UPDATE users SET \"Title\" = 'Changed' WHERE \"AzureObjectID\" = '{first}';"
        'INSERT INTO users ("AzureObjectID", "DisplayName", "IsActive") '
        "VALUES ('hr-only', 'Added by HR', 1)"
    )
    imported = ecmahost(config, "import", "SQL", env=env)
    assert imported.returncode == 0, imported.stderr[-2000:]
    cache = ecmahost(config, "cache", "SQL", env=env)
    assert cache.returncode == 0, cache.stderr[-2000:]
    space = {
        line["anchor"]: line["attributes"] for line in map(json.loads, cache.stdout.splitlines())
    }
    assert space == {anchor: _attributes(row) for anchor, row in table.rows().items()}
    assert mariadb.password not in "".join(server.stderr_lines) + imported.stderr


def _attributes(row: dict[str, Any]) -> dict[str, Any]:
    """A row as the connector space holds it: NULL and empty left out, 0/1 as booleans."""
    return {
        name: (value == 1 if name == "IsActive" else value)
        for name, value in row.items()
        if value is not None and value != ""
    }


def test_a_mariadb_outage_is_retried_then_delivered(
    mariadb: MariadbServer,
    write_config: Callable[..., Path],
    server_factory: Callable[..., Server],
) -> None:
    table = Table(mariadb)
    retry_quickly = (
        "export_wait_s = 10\nretry_base_s = 0.2\nretry_cap_s = 0.5\nretry_max_attempts = 1000\n"
    )
    config = write_config(_toml().replace('type = "sql"\n', 'type = "sql"\n' + retry_quickly))
    env = {URL_VARIABLE: table.url}
    server = server_factory(config, env=env)
    before, during = _user(1), _user(2)
    created = server.request("POST", "/Users", {"schemas": [CORE], EXT: before}, name="SQL")
    assert created.status == 201, created.body

    mariadb.stop()
    try:
        refused = server.request("POST", "/Users", {"schemas": [CORE], EXT: during}, name="SQL")
        assert refused.status == 503, refused.body
        assert "will be retried" in refused.body["detail"]
    finally:
        mariadb.start()  # same port, same data folder

    wait_until(lambda: during["AzureObjectID"] in table.rows(), timeout_s=20)
    listed = ecmahost(config, "exports", "list", "--failed", "--json", env=env)
    assert listed.returncode == 0 and listed.stdout == ""
