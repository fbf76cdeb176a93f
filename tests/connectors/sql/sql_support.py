"""What the SQL connector's tests share: the users table, fresh SQLite, PostgreSQL and
MariaDB databases with direct access for checks, a connector factory, and a statement
log."""

from __future__ import annotations

import re
import secrets
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomysql
import asyncpg
import pytest
from ecmahost.connectors.base import Change, ChangeKind, DataType, Record, Value
from ecmahost.connectors.sql.connector import SqlConnector, SqlSettings
from sqlalchemy import event
from sqlalchemy.engine import Engine

from tests.connectors.conformance import DEMO_ATTRIBUTES
from tests.connectors.sql.mariadb import MariadbServer
from tests.connectors.sql.postgres import PostgresServer

__all__ = [
    "SQL_ATTRIBUTES",
    "Backend",
    "Factory",
    "add",
    "backend_fixture",
    "imported",
    "insert_statement",
    "make_sql_fixture",
    "mariadb_backend",
    "mariadb_connection",
    "pg_fixture",
    "postgres_backend",
    "row_of",
    "sqlite_backend",
    "statements",
    "typed",
    "users_ddl",
]

SQL_ATTRIBUTES: Mapping[str, DataType] = {**DEMO_ATTRIBUTES, "LoginCount": DataType.INTEGER}
"""The demo's columns, plus an integer one."""

_TYPES = {DataType.STRING: "TEXT", DataType.BOOLEAN: "BOOLEAN", DataType.INTEGER: "INTEGER"}


def users_ddl(table: str) -> str:
    """CREATE TABLE for the users table; quoted names keep their case on PostgreSQL.
    The anchor is a VARCHAR: MariaDB keys no TEXT column without a prefix length."""
    columns = ", ".join(
        f'"{name}" {"VARCHAR(255)" if name == "AzureObjectID" else _TYPES[t]}'
        for name, t in SQL_ATTRIBUTES.items()
    )
    return f'CREATE TABLE "{table}" ({columns}, PRIMARY KEY ("AzureObjectID"))'


def insert_statement(table: str, placeholders: list[str]) -> str:
    names = ", ".join(f'"{name}"' for name in SQL_ATTRIBUTES)
    return f'INSERT INTO "{table}" ({names}) VALUES ({", ".join(placeholders)})'


def row_of(record: Record) -> tuple[Any, ...]:
    return tuple(record.attributes.get(name) for name in SQL_ATTRIBUTES)


def typed(row: Mapping[str, Any]) -> dict[str, Value]:
    """A row as attribute values: NULL left out, SQLite's 0/1 booleans as booleans."""
    values: dict[str, Value] = {}
    for name, raw in row.items():
        if raw is None:
            continue
        if SQL_ATTRIBUTES[name] is DataType.BOOLEAN and type(raw) is int:
            assert raw in (0, 1), f"{name} holds {raw!r}"
            raw = raw == 1
        values[name] = raw
    return values


Factory = Callable[..., Awaitable[SqlConnector]]


@dataclass
class Backend:
    """A fresh database: its URL for the connector, and direct access for the test."""

    name: str
    url: str
    run: Callable[[str], Awaitable[None]]
    rows: Callable[[str], Awaitable[list[dict[str, Any]]]]


def sqlite_backend(path: Path) -> Backend:
    async def run(script: str) -> None:
        with closing(sqlite3.connect(path)) as db:
            db.executescript(script)

    async def rows(query: str) -> list[dict[str, Any]]:
        with closing(sqlite3.connect(path)) as db:
            db.row_factory = sqlite3.Row
            return [dict(row) for row in db.execute(query)]

    return Backend("sqlite", f"sqlite+aiosqlite:///{path}", run, rows)


def postgres_backend(server: PostgresServer) -> Backend:
    database = f"t_{secrets.token_hex(4)}"
    server.create_database(database)

    async def run(script: str) -> None:
        db = await asyncpg.connect(server.dsn(database))
        try:
            await db.execute(script)
        finally:
            await db.close()

    async def rows(query: str) -> list[dict[str, Any]]:
        db = await asyncpg.connect(server.dsn(database))
        try:
            return [dict(row) for row in await db.fetch(query)]
        finally:
            await db.close()

    return Backend("postgresql", server.url(database), run, rows)


async def mariadb_connection(server: MariadbServer, database: str) -> aiomysql.Connection:
    """A direct connection that reads double-quoted names as PostgreSQL does (ANSI_QUOTES),
    so the tests' SQL serves every server; the connector's own sessions keep the default."""
    db = await aiomysql.connect(
        host="127.0.0.1",
        port=server.port,
        user="ecmahost",
        password=server.password,
        db=database,
        charset="utf8mb4",
        autocommit=True,
        init_command="SET SESSION sql_mode = CONCAT(@@SESSION.sql_mode, ',ANSI_QUOTES')",
    )
    return db


def mariadb_backend(server: MariadbServer) -> Backend:
    database = f"t_{secrets.token_hex(4)}"
    server.create_database(database)

    async def run(script: str) -> None:
        db = await mariadb_connection(server, database)
        try:
            async with db.cursor() as cursor:
                for statement in filter(str.strip, script.split(";")):
                    await cursor.execute(_keyable_text(statement))
        finally:
            db.close()

    async def rows(query: str) -> list[dict[str, Any]]:
        db = await mariadb_connection(server, database)
        try:
            async with db.cursor(aiomysql.DictCursor) as cursor:
                await cursor.execute(query)
                return list(await cursor.fetchall())
        finally:
            db.close()

    return Backend("mariadb", server.url(database), run, rows)


def _keyable_text(statement: str) -> str:
    """The tests' ``TEXT PRIMARY KEY`` / ``TEXT UNIQUE`` as VARCHAR, which MariaDB can key."""
    return re.sub(r"\bTEXT(?= (PRIMARY KEY|UNIQUE))", "VARCHAR(255)", statement)


@pytest.fixture(name="backend", params=["sqlite", "postgresql", "mariadb"])
def backend_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """A fresh database of each kind, in turn."""
    if request.param == "sqlite":
        return sqlite_backend(tmp_path / "target.db")
    if request.param == "mariadb":
        return mariadb_backend(request.getfixturevalue("mariadb"))
    return postgres_backend(request.getfixturevalue("postgres"))


@pytest.fixture(name="pg")
def pg_fixture(postgres: PostgresServer) -> Backend:
    """A fresh PostgreSQL database."""
    return postgres_backend(postgres)


@pytest.fixture(name="make_sql")
async def make_sql_fixture(tmp_path: Path) -> AsyncIterator[Factory]:
    """Factory: ``await make_sql(url, table=..., **settings)`` opens a connector."""
    opened: list[SqlConnector] = []

    async def make(url: str, **settings: Any) -> SqlConnector:
        settings.setdefault("table", "users")
        settings.setdefault("anchor", "AzureObjectID")
        connector = SqlConnector("SQL", SqlSettings(url=url, **settings), tmp_path)
        opened.append(connector)
        await connector.open()
        return connector

    yield make
    for connector in opened:
        await connector.close()


def add(anchor: str, **attributes: Any) -> Change:
    return Change(ChangeKind.ADD, anchor, {"AzureObjectID": anchor, **attributes})


async def imported(connector: SqlConnector) -> dict[str, dict[str, Any]]:
    return {r.anchor: dict(r.attributes) async for r in connector.full_import()}


@contextmanager
def statements() -> Iterator[list[tuple[str, Any]]]:
    """Every SQL statement any engine sends meanwhile, with its parameters."""
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((statement, parameters))

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", record)
