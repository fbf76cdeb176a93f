"""The real ``ecmahost serve`` over a SQL table on PostgreSQL and on SQLite, configured
with one-way attributes, database defaults, an inverted disable flag and
``deprovision.delete = "none"``: each checked over HTTP and in the table itself."""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.acceptance.conftest import Server, ecmahost, filter_query, wait_until
from tests.conftest import CORE, EXT, TOKEN
from tests.connectors.sql.postgres import PostgresServer, postgres_fixture

__all__ = ["postgres_fixture"]

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
USERS = (
    'CREATE TABLE users ("AzureObjectID" TEXT PRIMARY KEY, "UserName" TEXT, "Title" TEXT, '
    "\"Department\" TEXT NOT NULL DEFAULT 'unassigned', "
    '"Shout" TEXT GENERATED ALWAYS AS (upper("UserName")) STORED, '
    '"Password" TEXT, "Disabled" BOOLEAN NOT NULL DEFAULT FALSE)'
)
CONNECTOR = f"""
[connectors.SQL]
type = "sql"
token = "{TOKEN}"

[connectors.SQL.deprovision]
disable = "set_attribute"
disable_attribute = "Disabled"
disabled_value = true
delete = "none"

[connectors.SQL.settings]
url = "{{url}}"
table = "users"
anchor = "AzureObjectID"
export_only = ["Password"]
"""


class Table:
    """The users table in a fresh database of one kind, read directly."""

    def __init__(self, kind: str, request: pytest.FixtureRequest, folder: Path) -> None:
        self.kind = kind
        if kind == "sqlite":
            self.path = folder / "target.db"
            self.url = f"sqlite+aiosqlite:///{self.path}"
        else:
            postgres: PostgresServer = request.getfixturevalue("postgres")
            name = f"dir_{secrets.token_hex(4)}"
            self.url = postgres.create_database(name)
            self.dsn = postgres.dsn(name)
        self.run(USERS)

    def run(self, statement: str) -> list[dict[str, Any]]:
        if self.kind == "sqlite":
            with closing(sqlite3.connect(self.path)) as db:
                db.row_factory = sqlite3.Row
                rows = [dict(r) for r in db.execute(statement)]
                db.commit()
                return rows
        return asyncio.run(self._pg(statement))

    async def _pg(self, statement: str) -> list[dict[str, Any]]:
        db = await asyncpg.connect(self.dsn)
        try:
            return [dict(r) for r in await db.fetch(statement)]
        finally:
            await db.close()

    def row(self, anchor: str) -> dict[str, Any]:
        (found,) = self.run(f"SELECT * FROM users WHERE \"AzureObjectID\" = '{anchor}'")
        if self.kind == "sqlite":  # SQLite keeps booleans as 0/1
            found["Disabled"] = bool(found["Disabled"])
        return found


@pytest.fixture(name="table", params=["postgresql", "sqlite"])
def table_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Table:
    return Table(request.param, request, tmp_path)


def _patch(server: Server, user_id: str, path: str, value: Any) -> dict[str, Any]:
    operation = {"op": "Replace", "path": path, "value": value}
    body = {"schemas": [PATCH_OP], "Operations": [operation]}
    response = server.request("PATCH", f"/Users/{user_id}", body, name="SQL")
    assert response.status == 200, response.body
    return dict(response.body)


def _find(server: Server, anchor: str) -> list[dict[str, Any]]:
    query = filter_query(f'AzureObjectID eq "{anchor}"')
    return list(server.request("GET", "/Users" + query, name="SQL").body["Resources"])


def test_directions_defaults_inverted_flag_and_delete_none(
    table: Table, write_config: Callable[..., Path], server_factory: Callable[..., Server]
) -> None:
    config = write_config(CONNECTOR.format(url=table.url))
    server = server_factory(config)
    user = {"AzureObjectID": "a-1", "UserName": "ann", "Password": "Initial-1", "Shout": "NO"}
    created = server.request("POST", "/Users", {"schemas": [CORE], EXT: user}, name="SQL")
    assert created.status == 201, created.body
    user_id = created.body["id"]
    # Export-only: written, never in an answer. Import-only (generated): ignored.
    assert "Password" not in created.body[EXT]
    assert "Password" not in server.request("GET", f"/Users/{user_id}", name="SQL").body[EXT]
    dumped = ecmahost(config, "cache", "SQL")  # the connector space's readable copy
    assert dumped.returncode == 0, dumped.stderr
    assert "a-1" in dumped.stdout and "Initial-1" not in dumped.stdout
    row = table.row("a-1")
    assert (row["Password"], row["Shout"], row["Department"]) == ("Initial-1", "ANN", "unassigned")

    # Later writes do not carry them: the column with a default is never set NULL
    # (NOT NULL would refuse it), the export-only value stays.
    _patch(server, user_id, f"{EXT}:Title", "Lead")
    row = table.row("a-1")
    assert (row["Title"], row["Password"], row["Department"]) == ("Lead", "Initial-1", "unassigned")

    # Inverted flag: active false is Disabled true in the table, and back.
    assert _patch(server, user_id, "active", "False")["active"] is False
    assert table.row("a-1")["Disabled"] is True
    assert _patch(server, user_id, "active", True)["active"] is True
    assert table.row("a-1")["Disabled"] is False

    # delete = "none": gone from the connector space, kept in the table.
    assert server.request("DELETE", f"/Users/{user_id}", name="SQL").status == 204
    assert server.request("GET", f"/Users/{user_id}", name="SQL").status == 404
    assert table.row("a-1")["UserName"] == "ann"

    # The next full import (at start) reads it back: import-only values shown,
    # the export-only one never read.
    table.run("UPDATE users SET \"Department\" = 'Sales'")
    server.restart()
    (found,) = wait_until(lambda: _find(server, "a-1"), timeout_s=20)
    assert found[EXT]["Shout"] == "ANN"
    assert found[EXT]["Department"] == "Sales"
    assert "Password" not in found[EXT]
    assert found["active"] is True
