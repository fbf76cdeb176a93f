"""An anchor column the database fills, over the real ``ecmahost serve``: Entra's
whole request sequence, in both export modes, on every engine of the ``backend``
fixture (SQLite, PostgreSQL, MariaDB; add an engine there and its DDL to ``TABLES``). The
create goes out without an anchor, the id is bound to the value the database
generated, a column with a default keeps it, and an import afterwards finds the same
object rather than a duplicate."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.conftest import Server, filter_query, wait_until
from tests.conftest import CORE, EXT, TOKEN
from tests.connectors.sql.mariadb import mariadb_fixture
from tests.connectors.sql.postgres import postgres_fixture
from tests.connectors.sql.sql_support import Backend, backend_fixture

__all__ = ["backend_fixture", "mariadb_fixture", "postgres_fixture"]

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
URL_VARIABLE = "ECMAHOST_TEST_GENERATED_URL"
TOKEN_VARIABLE = "ECMAHOST_TEST_TOKEN_SQL"
COLUMNS = (
    '"UserName" text UNIQUE, "DisplayName" text, "Title" text, "IsActive" boolean, '
    "\"Department\" text NOT NULL DEFAULT 'Unassigned'"
)
TABLES = {
    "sqlite": 'CREATE TABLE users ("ObjectGUID" text PRIMARY KEY '
    f"DEFAULT (lower(hex(randomblob(16)))), {COLUMNS})",
    "postgresql": 'CREATE TABLE users ("ObjectGUID" uuid PRIMARY KEY '
    f"DEFAULT gen_random_uuid(), {COLUMNS})",
    "mariadb": f'CREATE TABLE users ("ObjectGUID" uuid PRIMARY KEY DEFAULT uuid(), {COLUMNS})',
}
"""Per engine: a users table whose anchor column the database fills."""


def config(mode: str) -> str:
    os.environ[TOKEN_VARIABLE] = TOKEN
    return f"""
[connectors.SQL]
type = "sql"
token = "env:{TOKEN_VARIABLE}"
export_mode = "{mode}"
autosync_minutes = 0

[connectors.SQL.deprovision]
disable = "set_attribute"
disable_attribute = "IsActive"

[connectors.SQL.settings]
url = "env:{URL_VARIABLE}"
table = "users"
anchor = "ObjectGUID"
anchor_generated = true
"""


def rows(backend: Backend) -> list[dict[str, Any]]:
    found = asyncio.run(backend.rows('SELECT * FROM users ORDER BY "UserName"'))
    return [{k: str(v) if k == "ObjectGUID" else v for k, v in row.items()} for row in found]


def request(server: Server, method: str, path: str, body: Any = None) -> dict[str, Any]:
    response = server.request(method, path, body, name="SQL")
    assert response.status in (200, 201), (response.status, response.body)
    return dict(response.body)


def match(server: Server, user_name: str) -> list[str]:
    found = request(server, "GET", "/Users" + filter_query(f'UserName eq "{user_name}"'))
    return [r["id"] for r in found["Resources"]]


def replace(server: Server, user_id: str, path: str, value: Any) -> None:
    body = {"schemas": [PATCH_OP], "Operations": [{"op": "Replace", "path": path, "value": value}]}
    request(server, "PATCH", f"/Users/{user_id}", body)


def only_row(backend: Backend) -> dict[str, Any]:
    found = rows(backend)
    assert len(found) == 1, found
    return found[0]


@pytest.mark.parametrize("mode", ["sync", "queued"])
def test_generated_anchor_column_entra_sequence(
    backend: Backend,
    write_config: Callable[..., Path],
    server_factory: Callable[..., Server],
    mode: str,
) -> None:
    asyncio.run(backend.run(TABLES[backend.name]))
    env = {TOKEN_VARIABLE: TOKEN, URL_VARIABLE: backend.url}
    server = server_factory(write_config(config(mode)), env=env)

    probe = request(server, "GET", "/Users" + filter_query(f'PLACEHOLDER eq "{uuid.uuid4()}"'))
    assert probe["totalResults"] == 0
    assert match(server, "avance@contoso.example") == []
    new = {"UserName": "avance@contoso.example", "DisplayName": "Adele Vance", "IsActive": "True"}
    created = request(server, "POST", "/Users", {"schemas": [CORE], EXT: new})
    user_id = created["id"]
    assert request(server, "GET", f"/Users/{user_id}")["id"] == user_id
    assert match(server, "avance@contoso.example") == [user_id]
    # Queued before the anchor is known, it reaches the same row.
    replace(server, user_id, f"{EXT}:Title", "Store Manager")
    wait_until(lambda: rows(backend) and only_row(backend)["Title"] == "Store Manager")
    row = only_row(backend)
    generated = row["ObjectGUID"]
    if mode == "sync":
        assert created[EXT]["ObjectGUID"] == generated
    wait_until(
        lambda: request(server, "GET", f"/Users/{user_id}")[EXT].get("ObjectGUID") == generated
    )
    assert row["Department"] == "Unassigned"  # the default, not NULL

    replace(server, user_id, "active", "False")
    wait_until(lambda: only_row(backend)["IsActive"] in (False, 0))
    replace(server, user_id, f"{EXT}:UserName", "adele.vance@contoso.example")
    wait_until(lambda: only_row(backend)["UserName"] == "adele.vance@contoso.example")
    row = only_row(backend)
    assert (row["ObjectGUID"], row["Department"]) == (generated, "Unassigned")
    assert match(server, "adele.vance@contoso.example") == [user_id]

    # The start-up import finds the bound object: same id, no duplicate.
    server.restart()
    assert match(server, "adele.vance@contoso.example") == [user_id]
    assert request(server, "GET", "/Users")["totalResults"] == 1

    assert server.request("DELETE", f"/Users/{user_id}", name="SQL").status == 204
    wait_until(lambda: rows(backend) == [])
