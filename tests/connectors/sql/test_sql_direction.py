"""Attribute flow direction and database defaults in the SQL connector, on real SQLite
files and the real PostgreSQL server: a column with a default or a generated value is
never set NULL by an export, import-only columns are never written, export-only ones
are written and never read back."""

from __future__ import annotations

import pytest
from ecmahost.connectors.base import Change, ChangeKind, Direction
from ecmahost.connectors.exceptions import ConfigError

from tests.connectors.sql.sql_support import (  # noqa: F401 - fixtures
    Backend,
    Factory,
    add,
    backend_fixture,
    imported,
    make_sql_fixture,
    pg_fixture,
)


def replace(anchor: str, **attributes: object) -> Change:
    return Change(ChangeKind.REPLACE, anchor, {"AzureObjectID": anchor, **attributes})


async def test_a_column_with_a_default_is_never_overwritten_with_null(
    make_sql: Factory, backend: Backend
) -> None:
    await backend.run(
        'CREATE TABLE users ("AzureObjectID" TEXT PRIMARY KEY, "UserName" TEXT, '
        '"Department" TEXT NOT NULL DEFAULT \'unassigned\', "Title" TEXT)'
    )
    connector = await make_sql(backend.url)
    assert (await connector.export([add("u1", UserName="ann", Title="Eng")]))[0].ok
    rows = await backend.rows('SELECT "Department", "Title" FROM users')
    assert rows == [{"Department": "unassigned", "Title": "Eng"}]

    results = await connector.export([replace("u1", UserName="ann", Department="Sales")])
    assert results[0].ok, results[0].error
    # The object no longer carries Department nor Title: Title (no default) is
    # cleared, Department keeps its value rather than becoming NULL.
    results = await connector.export([replace("u1", UserName="ann")])
    assert results[0].ok, results[0].error
    rows = await backend.rows('SELECT "Department", "Title" FROM users')
    assert rows == [{"Department": "Sales", "Title": None}]


async def test_a_generated_column_is_import_only(make_sql: Factory, backend: Backend) -> None:
    await backend.run(
        'CREATE TABLE users ("AzureObjectID" TEXT PRIMARY KEY, "UserName" TEXT, '
        '"Shout" TEXT GENERATED ALWAYS AS (upper("UserName")) STORED)'
    )
    connector = await make_sql(backend.url)
    schema = await connector.schema()
    assert schema.get("Shout").direction is Direction.IMPORT_ONLY  # type: ignore[union-attr]
    # A change carrying the generated value (a record read back, say) still exports.
    results = await connector.export([add("u1", UserName="ann", Shout="ignored")])
    assert results[0].ok, results[0].error
    results = await connector.export([replace("u1", UserName="bob")])
    assert results[0].ok, results[0].error
    assert (await imported(connector))["u1"]["Shout"] == "BOB"


async def test_import_only_attributes_are_read_and_never_written(
    make_sql: Factory, backend: Backend
) -> None:
    await backend.run(
        'CREATE TABLE users ("AzureObjectID" TEXT PRIMARY KEY, "UserName" TEXT, "Badge" TEXT);'
        "INSERT INTO users VALUES ('u1', 'ann', 'B-7')"
    )
    connector = await make_sql(backend.url, import_only=["badge"])
    assert (await imported(connector))["u1"] == {
        "AzureObjectID": "u1",
        "UserName": "ann",
        "Badge": "B-7",
    }
    results = await connector.export([replace("u1", UserName="bob", Badge="forged")])
    assert results[0].ok, results[0].error
    results = await connector.export([replace("u1", UserName="bob")])  # without it
    assert results[0].ok, results[0].error
    assert await backend.rows('SELECT "UserName", "Badge" FROM users') == [
        {"UserName": "bob", "Badge": "B-7"}
    ]


async def test_export_only_attributes_are_written_and_never_read_back(
    make_sql: Factory, backend: Backend
) -> None:
    await backend.run(
        'CREATE TABLE users ("AzureObjectID" TEXT PRIMARY KEY, "UserName" TEXT, "Secret" TEXT)'
    )
    connector = await make_sql(backend.url, export_only=["Secret"])
    schema = await connector.schema()
    assert schema.get("Secret").direction is Direction.EXPORT_ONLY  # type: ignore[union-attr]
    assert (await connector.export([add("u1", UserName="ann", Secret="initial")]))[0].ok
    assert "Secret" not in (await imported(connector))["u1"]
    # A later change of the object does not carry it: the target keeps it.
    assert (await connector.export([replace("u1", UserName="bob")]))[0].ok
    assert await backend.rows('SELECT "UserName", "Secret" FROM users') == [
        {"UserName": "bob", "Secret": "initial"}
    ]


async def test_defaulted_columns_from_the_settings_are_left_alone(
    make_sql: Factory, backend: Backend
) -> None:
    """A column a trigger fills shows no default to reflection; the setting says so."""
    await backend.run(
        'CREATE TABLE users ("AzureObjectID" TEXT PRIMARY KEY, "Stamp" TEXT);'
        "INSERT INTO users VALUES ('u1', 'by-trigger')"
    )
    connector = await make_sql(backend.url, defaulted_columns=["Stamp"])
    assert (await connector.export([replace("u1")]))[0].ok
    assert await backend.rows('SELECT "Stamp" FROM users') == [{"Stamp": "by-trigger"}]


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"import_only": ["Nope"]}, "import_only"),
        ({"export_only": ["AzureObjectID"]}, "export_only"),
        ({"export_only": ["Shout"]}, "export_only"),
        ({"defaulted_columns": ["Nope"]}, "defaulted_columns"),
    ],
)
async def test_direction_settings_the_table_cannot_serve_are_refused(
    make_sql: Factory, pg: Backend, settings: dict[str, list[str]], key: str
) -> None:
    await pg.run(
        'CREATE TABLE users ("AzureObjectID" TEXT PRIMARY KEY, "UserName" TEXT, '
        '"Shout" TEXT GENERATED ALWAYS AS (upper("UserName")) STORED)'
    )
    with pytest.raises(ConfigError) as caught:
        await make_sql(pg.url, **settings)
    assert caught.value.key == f"connectors.SQL.settings.{key}"


def test_one_attribute_cannot_flow_only_both_ways() -> None:
    from ecmahost.connectors.sql.connector import SqlSettings
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="cannot be import_only and export_only"):
        SqlSettings(
            url="sqlite+aiosqlite://",
            table="t",
            anchor="a",
            import_only=["X"],
            export_only=["x"],
        )
