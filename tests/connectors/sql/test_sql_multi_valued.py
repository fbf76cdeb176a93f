"""Multi-valued attributes of the SQL connector, each in a table of its own (one row
per value, keyed by the anchor), on every engine of the ``backend`` fixture: written
as differences with the object's row, imported with one query per page."""

from __future__ import annotations

from typing import Any

import pytest
from ecmahost.connectors.base import Change, ChangeKind
from ecmahost.connectors.exceptions import ConfigError, PermanentError

from tests.connectors.sql.sql_support import (  # noqa: F401 - fixtures
    Backend,
    Factory,
    add,
    backend_fixture,
    imported,
    make_sql_fixture,
    statements,
)

MAIL = {"table": "user_mail", "key_column": "user_id", "value_column": "mail"}
SETS = {"multi_valued": {"Email": MAIL}}


async def create_tables(backend: Backend) -> None:
    serial = {"postgresql": "SERIAL", "mariadb": "INTEGER AUTO_INCREMENT"}.get(backend.name)
    # VARCHAR keys: MariaDB cannot key or reference a TEXT column.
    await backend.run(
        'CREATE TABLE users ("AzureObjectID" VARCHAR(255) PRIMARY KEY, "UserName" TEXT);'
        f"CREATE TABLE user_mail (id {serial or 'INTEGER'} PRIMARY KEY, "
        'user_id VARCHAR(255) NOT NULL REFERENCES users ("AzureObjectID"), '
        "mail TEXT NOT NULL CHECK (length(mail) < 40))"
    )


async def mails(backend: Backend) -> dict[str, list[tuple[int, str]]]:
    """(row id, mail) of every value row, by user."""
    found: dict[str, list[tuple[int, str]]] = {}
    for row in await backend.rows("SELECT id, user_id, mail FROM user_mail ORDER BY mail"):
        found.setdefault(row["user_id"], []).append((row["id"], row["mail"]))
    return found


def values(rows: list[tuple[int, str]]) -> list[str]:
    return [mail for _, mail in rows]


async def test_multi_valued_sql_schema_serves_the_set_attribute(
    make_sql: Factory, backend: Backend
) -> None:
    await create_tables(backend)
    schema = await (await make_sql(backend.url, **SETS)).schema()
    email = schema.get("Email")
    assert email is not None and email.multi_valued
    assert not any(a.multi_valued for a in schema.attributes if a is not email)


async def test_multi_valued_sql_sets_are_written_as_differences(
    make_sql: Factory, backend: Backend
) -> None:
    await create_tables(backend)
    connector = await make_sql(backend.url, **SETS)
    first = add("adele", UserName="adele", Email=["a@example.org", "b@example.org"])
    assert [r.error for r in await connector.export([first])] == [None]
    before = await mails(backend)
    assert values(before["adele"]) == ["a@example.org", "b@example.org"]

    second = add("adele", UserName="adele", Email=["b@example.org", "c@example.org"])
    assert [r.error for r in await connector.export([second])] == [None]
    after = await mails(backend)
    assert values(after["adele"]) == ["b@example.org", "c@example.org"]
    kept = dict(before["adele"])
    assert [i for i, mail in after["adele"] if mail == "b@example.org"] == [
        i for i, mail in kept.items() if mail == "b@example.org"
    ]  # the value both sets hold is not rewritten

    assert (await imported(connector))["adele"]["Email"] == ["b@example.org", "c@example.org"]
    cleared = add("adele", UserName="adele")
    assert [r.error for r in await connector.export([cleared])] == [None]
    assert await mails(backend) == {}
    assert "Email" not in (await imported(connector))["adele"]


async def test_multi_valued_sql_rename_and_delete_carry_the_values(
    make_sql: Factory, backend: Backend
) -> None:
    await create_tables(backend)
    connector = await make_sql(backend.url, **SETS)
    await connector.export([add("old", Email=["x@example.org"])])
    renamed = Change(
        ChangeKind.REPLACE, "new", {"AzureObjectID": "new", "Email": ["x@example.org"]}, "old"
    )
    assert [r.error for r in await connector.export([renamed])] == [None]
    assert values((await mails(backend))["new"]) == ["x@example.org"]
    deleted = Change(ChangeKind.DELETE, "new")
    assert [r.error for r in await connector.export([deleted])] == [None]
    assert await mails(backend) == {}
    assert await backend.rows("SELECT * FROM users") == []


async def test_multi_valued_sql_a_refused_value_fails_the_whole_object(
    make_sql: Factory, backend: Backend
) -> None:
    await create_tables(backend)
    connector = await make_sql(backend.url, **SETS)
    too_long = "x" * 50 + "@example.org"
    results = await connector.export(
        [add("bad", UserName="bad", Email=["ok@example.org", too_long]), add("good", Email=["g@x"])]
    )
    assert isinstance(results[0].error, PermanentError), results[0].error
    assert results[1].ok
    assert [r["AzureObjectID"] for r in await backend.rows("SELECT * FROM users")] == ["good"]
    assert list(await mails(backend)) == ["good"]


async def test_multi_valued_sql_import_reads_values_once_per_page(
    make_sql: Factory, backend: Backend
) -> None:
    await create_tables(backend)
    connector = await make_sql(backend.url, page_size=4, **SETS)
    users = [add(f"u{i:02}", Email=[f"{i}@a.example", f"{i}@b.example"]) for i in range(10)]
    users.append(add("none"))
    assert all(r.ok for r in await connector.export(users))
    with statements() as seen:
        found = await imported(connector)
    assert found["u07"]["Email"] == ["7@a.example", "7@b.example"]
    assert "Email" not in found["none"]
    reads = [s for s, _ in seen if "user_mail" in s and s.lstrip().upper().startswith("SELECT")]
    assert len(reads) == 3  # 11 users, 4 a page: one read of the values per page


@pytest.mark.parametrize(
    ("sets", "fragment", "key"),
    [
        ({"Email": {**MAIL, "value_column": "nope"}}, "no column", "Email.value_column"),
        ({"Email": {**MAIL, "table": "nope"}}, "no table", "Email.table"),
        ({"Email": {**MAIL, "value_column": "id"}}, "text column", "Email.value_column"),
        ({"UserName": MAIL}, "also a column", ""),
    ],
)
async def test_multi_valued_sql_settings_refused(
    make_sql: Factory, backend: Backend, sets: dict[str, Any], fragment: str, key: str
) -> None:
    await create_tables(backend)
    with pytest.raises(ConfigError) as caught:
        await make_sql(backend.url, multi_valued=sets)
    assert fragment in str(caught.value)
    assert caught.value.key == f"connectors.SQL.settings.multi_valued{'.' + key if key else ''}"
