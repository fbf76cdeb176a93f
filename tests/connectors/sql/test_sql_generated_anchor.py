"""An anchor column the database fills, on every engine of the ``backend`` fixture
(add an engine there and its DDL here): an add without an anchor returns the value
the database generated, later changes find the row by it, the column is never
written, and a column the settings call generated must be one."""

from __future__ import annotations

import pytest
from ecmahost.connectors.base import Change, ChangeKind, Result
from ecmahost.connectors.exceptions import ConfigError

from tests.connectors.sql.postgres import postgres_fixture
from tests.connectors.sql.sql_support import (  # noqa: F401 - fixtures
    Backend,
    Factory,
    backend_fixture,
    imported,
    make_sql_fixture,
)

__all__ = ["postgres_fixture"]

OTHERS = '"UserName" text UNIQUE, "Title" text, "Department" text NOT NULL DEFAULT \'None yet\''
IDENTITY = {
    "sqlite": f'CREATE TABLE users ("Id" INTEGER PRIMARY KEY, {OTHERS})',
    "postgresql": 'CREATE TABLE users ("Id" integer GENERATED ALWAYS AS IDENTITY '
    f"PRIMARY KEY, {OTHERS})",
    "mariadb": f'CREATE TABLE users ("Id" INTEGER AUTO_INCREMENT PRIMARY KEY, {OTHERS})',
}
"""Per engine: a table keyed on a number the database generates."""
NO_DEFAULT = {
    "sqlite": f'CREATE TABLE users ("Id" text PRIMARY KEY, {OTHERS})',
    "postgresql": f'CREATE TABLE users ("Id" text PRIMARY KEY, {OTHERS})',
    "mariadb": f'CREATE TABLE users ("Id" VARCHAR(64) PRIMARY KEY, {OTHERS})',
}


def ok(results: object) -> list[str]:
    assert isinstance(results, list)
    assert all(isinstance(r, Result) and r.error is None for r in results), results
    return [r.anchor for r in results]


async def test_generated_anchor_column_identity_numbers_are_the_anchors(
    make_sql: Factory, backend: Backend
) -> None:
    await backend.run(IDENTITY[backend.name])
    connector = await make_sql(backend.url, anchor="Id", anchor_generated=True)
    schema = await connector.schema()
    assert schema.anchor.name == "Id" and schema.anchor.assigned

    adds = [Change(ChangeKind.ADD, "", {"UserName": name}) for name in ("a", "b")]
    first, second = ok(await connector.export(adds))
    assert (first, second) == ("1", "2")
    # Found by its number; a value sent for the anchor is never written.
    changed = {"UserName": "a", "Title": "Boss", "Id": "99"}
    assert ok(await connector.export([Change(ChangeKind.REPLACE, first, changed)])) == [first]
    rows = await backend.rows('SELECT * FROM users ORDER BY "Id"')
    assert [(r["Id"], r["Title"], r["Department"]) for r in rows] == [
        (1, "Boss", "None yet"),  # the default kept, not cleared
        (2, None, "None yet"),
    ]
    assert sorted(await imported(connector)) == ["1", "2"]

    # A row gone meanwhile is added again, under a new number the result names.
    await backend.run('DELETE FROM users WHERE "Id" = 2')
    again = Change(ChangeKind.REPLACE, second, {"UserName": "b"})
    [renumbered] = ok(await connector.export([again]))
    held = await backend.rows('SELECT "Id" FROM users WHERE "UserName" = \'b\'')
    assert [str(r["Id"]) for r in held] == [renumbered]
    # Never added: nothing to delete.
    gone = [Change(ChangeKind.DELETE, ""), Change(ChangeKind.DELETE, renumbered)]
    ok(await connector.export(gone))
    assert [r["Id"] for r in await backend.rows('SELECT "Id" FROM users')] == [1]


async def test_generated_anchor_column_needs_a_default(make_sql: Factory, backend: Backend) -> None:
    await backend.run(NO_DEFAULT[backend.name])
    with pytest.raises(ConfigError) as caught:
        await make_sql(backend.url, anchor="Id", anchor_generated=True)
    assert caught.value.key == "connectors.SQL.settings.anchor_generated"
    assert "no default" in str(caught.value)


async def test_generated_anchor_column_refuses_multi_valued_tables(
    make_sql: Factory, backend: Backend
) -> None:
    await backend.run(IDENTITY[backend.name])
    await backend.run("CREATE TABLE user_mail (user_id integer, mail VARCHAR(255))")
    tables = {"Email": {"table": "user_mail", "key_column": "user_id", "value_column": "mail"}}
    with pytest.raises(ConfigError) as caught:
        await make_sql(backend.url, anchor="Id", anchor_generated=True, multi_valued=tables)
    assert caught.value.key == "connectors.SQL.settings.multi_valued"
