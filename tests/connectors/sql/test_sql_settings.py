"""The SQL connector's settings, secret URL and table reflection, against real SQLite
files and the real PostgreSQL server."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from ecmahost.connectors.base import DataType
from ecmahost.connectors.exceptions import ConfigError, PermanentError, TransientError
from ecmahost.connectors.sql.connector import SqlSettings
from pydantic import ValidationError

from tests.connectors.sql.postgres import PostgresServer
from tests.connectors.sql.sql_support import (  # noqa: F401 - fixtures
    Backend,
    Factory,
    add,
    backend_fixture,
    imported,
    make_sql_fixture,
    pg_fixture,
    sqlite_backend,
    users_ddl,
)

# -- settings and the secret URL ---------------------------------------------------------


def test_settings_hide_the_url_and_refuse_unknown_keys() -> None:
    settings = SqlSettings(url="postgresql+asyncpg://u:hunter2@db/x", table="t", anchor="a")
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings.model_dump())
    assert settings.page_size == 1000 and settings.object_type == "Person"
    with pytest.raises(ValidationError, match="extra"):
        SqlSettings(url="sqlite+aiosqlite:///x.db", table="t", anchor="a", tabel="t")
    with pytest.raises(ValidationError):
        SqlSettings(url="sqlite+aiosqlite:///x.db", table="t", anchor="a", page_size=0)


async def test_url_by_reference_from_the_environment_or_a_file(
    make_sql: Factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = sqlite_backend(tmp_path / "target.db")
    await target.run(users_ddl("users"))
    monkeypatch.setenv("ECMAHOST_TEST_SQL_URL", target.url)
    by_env = await make_sql("env:ECMAHOST_TEST_SQL_URL")
    (tmp_path / "url.txt").write_text(target.url + "\n")
    by_file = await make_sql("file:url.txt")  # relative to the configuration's folder
    assert await by_env.schema() == await by_file.schema()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("env:ECMAHOST_TEST_UNSET_VARIABLE", "is not set"),
        ("not a url, password hunter2", "not a SQLAlchemy URL"),
        ("sqlite:///hunter2.db", "async"),  # a synchronous driver
    ],
)
async def test_unusable_url_is_a_config_error_naming_the_key(
    make_sql: Factory, url: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        await make_sql(url)
    assert caught.value.key == "connectors.SQL.settings.url"
    assert "hunter2" not in str(caught.value)


async def test_the_password_is_never_logged_nor_reported(
    make_sql: Factory, pg: Backend, postgres: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await pg.run(users_ddl("users"))
    connector = await make_sql(pg.url)
    await connector.export([add("a", Title="x"), add("b", IsActive="not a boolean")])
    await imported(connector)
    wrong_database = pg.url.rsplit("/", 1)[0] + "/no_such_database"
    with pytest.raises(TransientError) as caught:
        await make_sql(wrong_database)
    assert "no_such_database" in str(caught.value)
    assert postgres.password not in caplog.text + str(caught.value)


# -- reflection --------------------------------------------------------------------------


async def test_reflection_maps_column_types(
    make_sql: Factory, backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    binary = "BYTEA" if backend.name == "postgresql" else "BLOB"
    await backend.run(
        'CREATE TABLE people (id VARCHAR(40) PRIMARY KEY, "Name" TEXT, n INTEGER, big BIGINT, '
        f"flag BOOLEAN, born TIMESTAMP, day DATE, photo {binary})"
    )
    connector = await make_sql(backend.url, table="people", anchor="id", object_type="User")
    schema = await connector.schema()
    assert schema.object_type == "User" and schema.anchor.name == "id"
    assert {a.name: a.data_type for a in schema.attributes} == {
        "id": DataType.STRING,
        "Name": DataType.STRING,
        "n": DataType.INTEGER,
        "big": DataType.INTEGER,
        "flag": DataType.BOOLEAN,
        "born": DataType.STRING,
        "day": DataType.STRING,
    }
    skipped = [r for r in caplog.records if getattr(r, "action", "") == "sql.column_skipped"]
    assert len(skipped) == 1 and "photo" in skipped[0].getMessage()


async def test_attribute_mapping_renames_columns_and_leaves_others_alone(
    make_sql: Factory, backend: Backend
) -> None:
    await backend.run(
        "CREATE TABLE staff (object_id TEXT PRIMARY KEY, display TEXT, note TEXT);"
        "INSERT INTO staff VALUES ('a', 'Old', 'keep me')"
    )
    connector = await make_sql(
        backend.url,
        table="staff",
        anchor="object_id",
        attributes={"DisplayName": "display", "AzureObjectID": "object_id"},
    )
    assert [a.name for a in (await connector.schema()).attributes] == [
        "AzureObjectID",
        "DisplayName",
    ]
    results = await connector.export([add("a", DisplayName="New"), add("b", DisplayName="B")])
    assert all(r.ok for r in results)
    rows = {r["object_id"]: r for r in await backend.rows("SELECT * FROM staff")}
    assert rows["a"] == {"object_id": "a", "display": "New", "note": "keep me"}
    assert rows["b"] == {"object_id": "b", "display": "B", "note": None}
    assert await imported(connector) == {
        "a": {"AzureObjectID": "a", "DisplayName": "New"},
        "b": {"AzureObjectID": "b", "DisplayName": "B"},
    }


@pytest.mark.parametrize(
    ("ddl", "settings", "key", "message"),
    [
        ("CREATE TABLE other (a TEXT PRIMARY KEY)", {}, "table", "no table users"),
        (users_ddl("users"), {"anchor": "Nope"}, "anchor", "no column 'Nope'"),
        (
            users_ddl("users"),
            {"attributes": {"Mail": "EMail_Address"}},
            "attributes.Mail",
            "no column",
        ),
        ("CREATE TABLE users (AzureObjectID TEXT)", {}, "anchor", "neither the primary key"),
        ("CREATE TABLE users (AzureObjectID INTEGER PRIMARY KEY)", {}, "anchor", "text or uuid"),
        (users_ddl("users"), {"disable_column": "Title"}, "disable_column", "not a boolean"),
        (
            users_ddl("users"),
            {"attributes": {"Title": "Title"}, "disable_column": "IsActive"},
            "disable_column",
            "not mapped",
        ),
        (
            users_ddl("users"),
            {"attributes": {"title": "Title", "TITLE": "UserName"}},
            "attributes",
            "differ only in case",
        ),
    ],
    ids=[
        "no-table",
        "no-anchor",
        "no-column",
        "anchor-not-unique",
        "integer-anchor",
        "text-disable-column",
        "unmapped-disable-column",
        "names-clash",
    ],
)
async def test_settings_the_table_cannot_serve(
    make_sql: Factory,
    backend: Backend,
    ddl: str,
    settings: dict[str, Any],
    key: str,
    message: str,
) -> None:
    await backend.run(ddl)
    with pytest.raises(ConfigError, match=message) as caught:
        await make_sql(backend.url, **settings)
    assert caught.value.key == f"connectors.SQL.settings.{key}"


async def test_unquoted_postgresql_names_are_found_in_any_case(
    make_sql: Factory, pg: Backend
) -> None:
    await pg.run("CREATE TABLE Users (AzureObjectID TEXT PRIMARY KEY, IsActive BOOLEAN)")
    connector = await make_sql(pg.url, table="users", disable_column="IsActive")
    schema = await connector.schema()
    assert schema.anchor.name == "azureobjectid"  # PostgreSQL folded the unquoted names
    assert schema.get("IsActive") is not None


async def test_integer_disable_column_is_a_boolean(make_sql: Factory, backend: Backend) -> None:
    await backend.run('CREATE TABLE users ("AzureObjectID" TEXT PRIMARY KEY, active SMALLINT)')
    connector = await make_sql(backend.url, disable_column="active")
    assert (await connector.schema()).get("active").data_type is DataType.BOOLEAN  # type: ignore[union-attr]
    await connector.export([add("on", active=True), add("off", active=False)])
    stored = {r["AzureObjectID"]: r["active"] for r in await backend.rows("SELECT * FROM users")}
    assert stored == {"on": 1, "off": 0}
    assert {a: r["active"] for a, r in (await imported(connector)).items()} == {
        "on": True,
        "off": False,
    }


async def test_date_and_time_columns_are_iso_text(make_sql: Factory, backend: Backend) -> None:
    zoned = "TIMESTAMPTZ" if backend.name == "postgresql" else "DATETIME"
    await backend.run(
        f'CREATE TABLE users ("AzureObjectID" TEXT PRIMARY KEY, seen {zoned}, '
        "hired TIMESTAMP, born DATE)"
    )
    connector = await make_sql(backend.url)
    results = await connector.export(
        [
            add(
                "a",
                seen="2024-05-01T10:00:00+02:00",
                hired="2024-05-01T10:30:00",
                born="1990-02-03",
            ),
            add("b", born="yesterday"),
        ]
    )
    assert results[0].ok and isinstance(results[1].error, PermanentError)
    assert "born" in str(results[1].error) and "ISO 8601" in str(results[1].error)
    # Offsets are kept where the column has a time zone, else the moment is stored in UTC.
    seen = "2024-05-01T08:00:00+00:00" if backend.name == "postgresql" else "2024-05-01T08:00:00"
    assert (await imported(connector))["a"] == {
        "AzureObjectID": "a",
        "seen": seen,
        "hired": "2024-05-01T10:30:00",
        "born": "1990-02-03",
    }


async def test_uuid_anchor(make_sql: Factory, pg: Backend) -> None:
    await pg.run("CREATE TABLE users (AzureObjectID UUID PRIMARY KEY, Title TEXT)")
    connector = await make_sql(pg.url)
    anchor = "de4841f1-cb92-48e5-9056-29a36a0653c2"
    results = await connector.export([add(anchor, title="x"), add("not-a-uuid", title="y")])
    assert results[0].ok and isinstance(results[1].error, PermanentError)
    assert await imported(connector) == {anchor: {"azureobjectid": anchor, "title": "x"}}
