"""The real ``ecmahost serve`` with a SQL connector over a real SQLite file whose
users' mail addresses live in a table of their own: Entra's arrays land there as
rows, PATCH changes the rows, and a start-up import shows them as sets."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

from tests.acceptance.conftest import Server, filter_query
from tests.conftest import CORE, EXT, TOKEN

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
TABLES = """
CREATE TABLE users ("AzureObjectID" TEXT PRIMARY KEY, "UserName" TEXT);
CREATE TABLE user_mail (
  user_id TEXT NOT NULL REFERENCES users ("AzureObjectID"), mail TEXT NOT NULL
);
INSERT INTO users VALUES ('seeded', 'seeded@contoso.example');
INSERT INTO user_mail VALUES ('seeded', 'one@contoso.example'), ('seeded', 'two@contoso.example');
"""


def sql_toml(database: Path) -> str:
    return f"""
[connectors.SQL]
type = "sql"
token = "env:ECMAHOST_TEST_TOKEN"

[connectors.SQL.settings]
url = "sqlite+aiosqlite:///{database}"
table = "users"
anchor = "AzureObjectID"

[connectors.SQL.settings.multi_valued.Email]
table = "user_mail"
key_column = "user_id"
value_column = "mail"
"""


def mails(database: Path, anchor: str) -> list[str]:
    with closing(sqlite3.connect(database)) as db:
        query = "SELECT mail FROM user_mail WHERE user_id = ? ORDER BY mail"
        return [mail for (mail,) in db.execute(query, (anchor,))]


def test_multi_valued_sql_arrays_land_as_rows_of_the_values_table(
    tmp_path: Path, write_config: Callable[..., Path], server_factory: Callable[..., Server]
) -> None:
    database = tmp_path / "hr.db"
    with closing(sqlite3.connect(database)) as db:
        db.executescript(TABLES)
    server = server_factory(write_config(sql_toml(database)), env={"ECMAHOST_TEST_TOKEN": TOKEN})

    seeded = server.request(
        "GET", "/Users" + filter_query('Email eq "two@contoso.example"'), name="SQL"
    )
    assert seeded.body["totalResults"] == 1  # imported at start-up, found by any value
    assert seeded.body["Resources"][0][EXT]["Email"] == [
        "one@contoso.example",
        "two@contoso.example",
    ]

    user = {"AzureObjectID": "adele", "UserName": "adele", "Email": ["b@x.org", "a@x.org"]}
    created = server.request("POST", "/Users", {"schemas": [CORE], EXT: user}, name="SQL")
    assert created.status == 201, created.body
    assert created.body[EXT]["Email"] == ["a@x.org", "b@x.org"]
    assert mails(database, "adele") == ["a@x.org", "b@x.org"]

    operations = [
        {"op": "add", "path": f"{EXT}:Email", "value": ["c@x.org"]},
        {"op": "remove", "path": f'{EXT}:Email[value eq "a@x.org"]'},
    ]
    patched = server.request(
        "PATCH",
        f"/Users/{created.body['id']}",
        {"schemas": [PATCH_OP], "Operations": operations},
        name="SQL",
    )
    assert patched.status == 200, patched.body
    assert mails(database, "adele") == ["b@x.org", "c@x.org"]

    refused = server.request(
        "POST", "/Users", {EXT: {"AzureObjectID": "x", "UserName": ["x", "y"]}}, name="SQL"
    )
    assert refused.status == 400 and "UserName" in refused.body["detail"]
