"""What the SQL connector does beyond the conformance suite, against real SQLite files
and the real PostgreSQL and MariaDB servers: constraint violations, locks, an unreachable server,
and imports that page through the table."""

from __future__ import annotations

import socket
import sqlite3
import tracemalloc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from pathlib import Path

import aiomysql
import asyncpg
import pytest
from ecmahost.connectors.base import Change, ChangeKind
from ecmahost.connectors.exceptions import ConflictError, PermanentError, TransientError
from sqlalchemy import make_url

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
    statements,
    users_ddl,
)

# -- exports -----------------------------------------------------------------------------


async def test_constraint_violations_fail_only_their_change(
    make_sql: Factory, backend: Backend
) -> None:
    await backend.run(
        'CREATE TABLE users ("AzureObjectID" TEXT PRIMARY KEY, "UserName" TEXT UNIQUE, '
        '"LoginCount" INTEGER CHECK ("LoginCount" >= 0));'
        "INSERT INTO users VALUES ('taken', 'alice', 1)"
    )
    connector = await make_sql(backend.url)
    results = await connector.export(
        [
            add("first", UserName="bob"),
            add("twin", UserName="alice"),
            add("negative", LoginCount=-1),
            add("last", UserName="carol"),
        ]
    )
    assert [r.anchor for r in results] == ["first", "twin", "negative", "last"]
    assert results[0].ok and results[3].ok
    assert isinstance(results[1].error, ConflictError), results[1].error
    # Each database's own words: "unique" (PostgreSQL, SQLite), "Duplicate entry" (MariaDB).
    assert any(word in str(results[1].error).lower() for word in ("unique", "duplicate"))
    assert type(results[2].error) is PermanentError, results[2].error
    assert "constraint" in str(results[2].error).lower()
    stored = await backend.rows('SELECT "AzureObjectID" FROM users ORDER BY 1')
    assert [r["AzureObjectID"] for r in stored] == ["first", "last", "taken"]


async def test_a_batch_goes_as_one_statement_per_kind_of_change(
    make_sql: Factory, backend: Backend
) -> None:
    await backend.run(users_ddl("users"))
    connector = await make_sql(backend.url)
    await connector.export([add("gone"), add("kept", Title="old")])
    batch = [
        add("a", Title="x"),
        add("b", Title="y"),
        add("kept", Title="new"),
        add("c"),  # other columns: a statement of its own
        Change(ChangeKind.DELETE, "gone", {}),
    ]
    with statements() as seen:
        results = await connector.export(batch)
    assert all(r.ok for r in results), results
    stored = await backend.rows('SELECT "AzureObjectID", "Title" FROM users ORDER BY 1')
    assert [(r["AzureObjectID"], r["Title"]) for r in stored] == [
        ("a", "x"),
        ("b", "y"),
        ("c", None),
        ("kept", "new"),
    ]
    # (verb, rows): an executemany's parameters are a list, one item a row
    sent = [(sql.split()[0].upper(), len(p) if isinstance(p, list) else 1) for sql, p in seen]
    sent = [(verb, rows) for verb, rows in sent if verb in ("INSERT", "DELETE", "SAVEPOINT")]
    if backend.name == "mariadb":  # change by change (see connectors.sql.batch)
        assert [verb for verb, _ in sent].count("SAVEPOINT") == len(batch)
        return
    # Savepoints cost two round trips a change: a batch the database takes needs none.
    assert sorted(sent) == [
        ("DELETE", 1),
        ("INSERT", 1),
        ("INSERT", 3),
    ]


async def test_a_batch_naming_an_anchor_twice_applies_its_changes_in_order(
    make_sql: Factory, backend: Backend
) -> None:
    await backend.run(users_ddl("users"))
    connector = await make_sql(backend.url)
    await connector.export([add("x", Title="old")])
    results = await connector.export([Change(ChangeKind.DELETE, "x", {}), add("x", Title="new")])
    assert all(r.ok for r in results), results
    stored = await backend.rows('SELECT "AzureObjectID", "Title" FROM users')
    assert [(r["AzureObjectID"], r["Title"]) for r in stored] == [("x", "new")]


async def test_a_locked_table_is_transient_with_the_database_message(
    make_sql: Factory, backend: Backend, tmp_path: Path
) -> None:
    await backend.run(users_ddl("users"))
    connector = await make_sql(backend.url, timeout_s=1.5)  # room to connect under load
    batch = [add("a", Title="x"), add("b", IsActive="not a boolean"), add("c", Title="y")]
    async with _row_locked(backend, tmp_path):
        results = await connector.export(batch)
    locked, invalid, also_locked = (r.error for r in results)
    assert isinstance(locked, TransientError) and "lock" in str(locked).lower(), locked
    assert isinstance(locked.__cause__, Exception)  # the driver's error, chained
    assert also_locked is locked
    assert isinstance(invalid, PermanentError), "it could never be written: no retry"
    results = await connector.export(batch)  # the lock is gone
    assert [r.ok for r in results] == [True, False, True]


@asynccontextmanager
async def _row_locked(backend: Backend, tmp_path: Path) -> AsyncIterator[None]:
    """Another client holds the users table locked meanwhile."""
    if backend.name == "sqlite":
        path = backend.url.removeprefix("sqlite+aiosqlite:///")
        with closing(sqlite3.connect(path, isolation_level=None)) as db:
            db.execute("BEGIN EXCLUSIVE")
            yield
            db.execute("ROLLBACK")
        return
    if backend.name == "mariadb":
        async with _mariadb_table_locked(backend):
            yield
        return
    db = await asyncpg.connect(backend.url.replace("postgresql+asyncpg", "postgresql"))
    try:
        async with db.transaction():
            await db.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
            yield
    finally:
        await db.close()


@asynccontextmanager
async def _mariadb_table_locked(backend: Backend) -> AsyncIterator[None]:
    url = make_url(backend.url)
    db = await aiomysql.connect(
        host=url.host, port=url.port, user=url.username, password=url.password, db=url.database
    )
    try:
        async with db.cursor() as cursor:
            await cursor.execute("LOCK TABLES users WRITE")  # readers wait too
            yield
            await cursor.execute("UNLOCK TABLES")
    finally:
        db.close()


async def test_a_locked_database_fails_the_import_transiently(
    make_sql: Factory, backend: Backend, tmp_path: Path
) -> None:
    await backend.run(users_ddl("users"))
    connector = await make_sql(backend.url, timeout_s=1.5)  # room to connect under load
    async with _row_locked(backend, tmp_path):
        with pytest.raises(TransientError):
            await imported(connector)


async def test_an_unreachable_server_is_transient(
    make_sql: Factory, postgres: PostgresServer
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        url = postgres.url("postgres").replace(str(postgres.port), str(probe.getsockname()[1]))
        with pytest.raises(TransientError, match=r"Connect call failed|refused"):
            await make_sql(url)


# -- imports -----------------------------------------------------------------------------


async def test_import_pages_by_anchor_with_bound_limits(
    make_sql: Factory, backend: Backend
) -> None:
    await backend.run(users_ddl("users"))
    connector = await make_sql(backend.url, page_size=3)
    await connector.export([add(f"u{i}", Title=f"t{i}") for i in range(9)])
    with statements() as seen:
        records = await imported(connector)
    assert sorted(records) == [f"u{i}" for i in range(9)]
    pages = [(sql, params) for sql, params in seen if sql.lstrip().upper().startswith("SELECT")]
    pages = [(sql, params) for sql, params in pages if "LIMIT" in sql.upper()]
    assert len(pages) == 4  # three full pages, then an empty one
    for sql, params in pages:
        assert "ORDER BY" in sql.upper() and 3 in tuple(params)
        assert "u0" not in sql and "'" not in sql  # values are bound, never in the text


async def test_rows_the_schema_cannot_read_lose_only_that_value(
    make_sql: Factory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    target = sqlite_backend(tmp_path / "target.db")
    # SQLite keeps whatever it is given, whatever the column's declared type.
    await target.run(
        users_ddl("users") + ";"
        'INSERT INTO users ("AzureObjectID", "IsActive", "LoginCount", "Title") '
        "VALUES ('odd', 'maybe', 'many', ''), (NULL, 1, 1, 'no anchor'), ('ok', 1, 2, 'x')"
    )
    connector = await make_sql(target.url)
    assert await imported(connector) == {
        "odd": {"AzureObjectID": "odd"},
        "ok": {"AzureObjectID": "ok", "IsActive": True, "LoginCount": 2, "Title": "x"},
    }
    actions = [getattr(r, "action", "") for r in caplog.records]
    assert actions.count("sql.import.invalid_value") == 2
    assert actions.count("sql.import.no_anchor") == 0  # NULL anchors are not even read


async def test_ten_thousand_rows_are_imported_one_page_at_a_time(
    make_sql: Factory, pg: Backend, postgres: PostgresServer
) -> None:
    await pg.run(users_ddl("users"))
    db = await asyncpg.connect(pg.url.replace("postgresql+asyncpg", "postgresql"))
    try:
        rows = [(f"{i:05d}", f"User {i}", f"user{i}@contoso.example", True) for i in range(10_000)]
        columns = ["AzureObjectID", "DisplayName", "UserName", "IsActive"]
        await db.copy_records_to_table("users", records=rows, columns=columns)
    finally:
        await db.close()
    connector = await make_sql(pg.url, page_size=250)

    tracemalloc.start()
    try:
        with statements() as seen:
            count = 0
            async for record in connector.full_import():
                count += 1
                assert record.attributes["DisplayName"] == f"User {int(record.anchor)}"
        _, streaming_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        held = [r async for r in connector.full_import()]
        _, holding_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == len(held) == 10_000
    assert sum("LIMIT" in sql.upper() for sql, _ in seen) == 41  # 40 full pages, one empty
    # Streaming holds one page; holding every record costs many times that.
    assert streaming_peak < holding_peak / 4, (streaming_peak, holding_peak)
