"""The real ``ecmahost serve`` with a SQL connector over a real PostgreSQL table: the
Entra sequence checked in the table itself, a start-up import of 10,000 rows, and a
database outage that exports ride out and deliver once it is over."""

from __future__ import annotations

import asyncio
import os
import secrets
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg

from tests.acceptance.conftest import Server, ecmahost, filter_query, wait_until
from tests.conftest import CORE, EXT, TOKEN
from tests.connectors.sql.postgres import PostgresServer, postgres_fixture

__all__ = ["postgres_fixture"]  # the session's PostgreSQL server, as fixture `postgres`

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
URL_VARIABLE = "ECMAHOST_TEST_SQL_URL"
TOKEN_VARIABLE = "ECMAHOST_TEST_TOKEN_SQL"
USERS = (
    'CREATE TABLE users ("AzureObjectID" text PRIMARY KEY, "DisplayName" text, '
    '"UserName" text, "Title" text, "EmployeeId" text, "Email" text, "IsActive" boolean)'
)
SEEDED = 10_000


def sql_connector_toml(**extra: Any) -> str:
    """The SQL connector's TOML; the URL (a secret) and the token by reference."""
    os.environ[TOKEN_VARIABLE] = TOKEN
    lines = "\n".join(f"{key} = {value}" for key, value in extra.items())
    return f"""
[connectors.SQL]
type = "sql"
token = "env:{TOKEN_VARIABLE}"
{lines}

[connectors.SQL.deprovision]
disable = "set_attribute"
disable_attribute = "IsActive"

[connectors.SQL.settings]
url = "env:{URL_VARIABLE}"
table = "users"
anchor = "AzureObjectID"
page_size = 500
"""


class Database:
    """A fresh database holding the users table, read directly with asyncpg."""

    def __init__(self, postgres: PostgresServer) -> None:
        name = f"e2e_{secrets.token_hex(4)}"
        self.url = postgres.create_database(name)
        self.dsn = postgres.dsn(name)
        self.run(lambda db: db.execute(USERS))

    def run(self, work: Callable[[asyncpg.Connection], Any]) -> Any:
        async def session() -> Any:
            db = await asyncpg.connect(self.dsn)
            try:
                return await work(db)
            finally:
                await db.close()

        return asyncio.run(session())

    def rows(self) -> dict[str, dict[str, Any]]:
        found = self.run(lambda db: db.fetch("SELECT * FROM users"))
        return {row["AzureObjectID"]: dict(row) for row in found}

    def seed(self, count: int) -> None:
        """``count`` rows, as if the table had been filled before ecmahost came."""
        rows = [
            (f"seed-{i:05d}", f"Seeded {i}", f"seed{i}@contoso.example", True) for i in range(count)
        ]
        columns = ["AzureObjectID", "DisplayName", "UserName", "IsActive"]
        self.run(lambda db: db.copy_records_to_table("users", records=rows, columns=columns))

    def row(self, anchor: str) -> dict[str, Any] | None:
        found = self.run(
            lambda db: db.fetchrow('SELECT * FROM users WHERE "AzureObjectID" = $1', anchor)
        )
        return dict(found) if found is not None else None


def _anchor(i: int) -> str:
    return str(uuid.UUID(int=0x5EED_0000_0000_4000_8000_0000_0000_0000 + i))


def _user(i: int, **values: str) -> dict[str, str]:
    return {
        "AzureObjectID": _anchor(i),
        "UserName": f"user{i}@contoso.example",
        "DisplayName": f"User {i}",
        "Title": "Engineer",
        "Email": f"user{i}@contoso.example",
        "IsActive": "True",
        **values,
    }


def _create(server: Server, user: dict[str, str]) -> str:
    for attribute in ("AzureObjectID", "UserName"):  # Entra's matching misses first
        query = filter_query(f'{attribute} eq "{user[attribute]}"')
        assert server.request("GET", "/Users" + query, name="SQL").body["totalResults"] == 0
    created = server.request("POST", "/Users", {"schemas": [CORE], EXT: user}, name="SQL")
    assert created.status == 201, created.body
    return str(created.body["id"])


def _patch(server: Server, user_id: str, *operations: dict[str, Any], status: int = 200) -> Any:
    body = {"schemas": [PATCH_OP], "Operations": list(operations)}
    response = server.request("PATCH", f"/Users/{user_id}", body, name="SQL")
    assert response.status == status, response.body
    return response.body


def _set(path: str, value: Any) -> dict[str, Any]:
    """A Replace operation as Entra sends it (URN path for extension attributes)."""
    return {"op": "Replace", "path": path if path == "active" else f"{EXT}:{path}", "value": value}


def _total(server: Server) -> int:
    return int(server.request("GET", "/Users?count=1", name="SQL").body["totalResults"])


def _id_of(server: Server, anchor: str) -> str:
    found = server.request(
        "GET", "/Users" + filter_query(f'AzureObjectID eq "{anchor}"'), name="SQL"
    )
    return str(found.body["Resources"][0]["id"])


def test_entra_sequence_and_a_large_import_against_postgresql(
    postgres: PostgresServer,
    write_config: Callable[..., Path],
    server_factory: Callable[..., Server],
) -> None:
    database = Database(postgres)
    database.seed(SEEDED)
    config = write_config(sql_connector_toml())
    env = {URL_VARIABLE: database.url}
    server = server_factory(config, env=env)  # its start-up import reads the 10,000 rows

    assert _total(server) == SEEDED
    cache = ecmahost(config, "cache", "SQL", env=env)
    assert cache.returncode == 0, cache.stderr
    assert len(cache.stdout.splitlines()) == SEEDED

    users = [_user(i) for i in range(5)]
    users[1]["DisplayName"] = ' O\'Brien; "Zoë"\nÅngström, 日本 = <#> '
    ids = {user["AzureObjectID"]: _create(server, user) for user in users}
    rows = database.rows()
    for user in users:
        assert rows[user["AzureObjectID"]] == {**user, "EmployeeId": None, "IsActive": True}

    # Patches in Entra's dialects: URN path, path-less value, remove.
    first, second = (u["AzureObjectID"] for u in users[:2])
    _patch(server, ids[first], _set("Title", "Lead"))
    _patch(
        server,
        ids[second],
        {"op": "replace", "value": {"displayName": "B", f"{EXT}:EmployeeId": "E-2"}},
    )
    _patch(server, ids[first], {"op": "Remove", "path": f"{EXT}:Email"})
    assert database.row(first) == {**rows[first], "Title": "Lead", "Email": None}
    assert database.row(second) == {**rows[second], "DisplayName": "B", "EmployeeId": "E-2"}

    # A row the import brought in is changed like any other, its other columns kept.
    seeded = database.row("seed-00042")
    _patch(server, _id_of(server, "seed-00042"), _set("Title", "Moved"))
    assert database.row("seed-00042") == {**seeded, "Title": "Moved"}  # type: ignore[dict-item]

    # Disable (set_attribute IsActive), enable again, then delete.
    for user in users:
        assert (
            _patch(server, ids[user["AzureObjectID"]], _set("active", "False"))["active"] is False
        )
        assert database.row(user["AzureObjectID"])["IsActive"] is False  # type: ignore[index]
    _patch(server, ids[first], _set("active", True))
    assert database.row(first)["IsActive"] is True  # type: ignore[index]
    for user in users:
        deleted = server.request("DELETE", f"/Users/{ids[user['AzureObjectID']]}", name="SQL")
        assert deleted.status == 204
        assert database.row(user["AzureObjectID"]) is None
    assert len(database.rows()) == SEEDED and _total(server) == SEEDED

    assert postgres.password not in "".join(server.stderr_lines)


def test_a_database_outage_is_retried_then_delivered(
    postgres: PostgresServer,
    write_config: Callable[..., Path],
    server_factory: Callable[..., Server],
) -> None:
    database = Database(postgres)
    retry_quickly = {"retry_base_s": 0.2, "retry_cap_s": 0.5, "retry_max_attempts": 1000}
    config = write_config(sql_connector_toml(export_wait_s=10, **retry_quickly))
    env = {URL_VARIABLE: database.url}
    server = server_factory(config, env=env)
    before = _user(1)
    before_id = _create(server, before)
    assert database.row(before["AzureObjectID"]) is not None

    postgres.stop()
    try:
        during = _user(2)
        created = server.request("POST", "/Users", {"schemas": [CORE], EXT: during}, name="SQL")
        assert created.status == 503, created.body
        assert "retry-after" in created.headers
        assert "cannot write to table users" in created.body["detail"]  # the connector's words
        assert "will be retried" in created.body["detail"]
        _patch(server, before_id, _set("Title", "Patched during the outage"), status=503)
    finally:
        postgres.start()  # same port, same data folder

    def delivered() -> bool:
        rows = database.rows()
        title = rows[before["AzureObjectID"]]["Title"]
        return during["AzureObjectID"] in rows and title == "Patched during the outage"

    wait_until(delivered, timeout_s=20)
    listed = ecmahost(config, "exports", "list", "--failed", "--json", env=env)
    assert listed.returncode == 0 and listed.stdout == ""
    _patch(server, before_id, _set("Title", "After"))
    assert database.row(before["AzureObjectID"])["Title"] == "After"  # type: ignore[index]
