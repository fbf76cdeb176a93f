"""The SQL connector passes the conformance suite against a real SQLite file, with the
native upsert and with the generic one other databases get."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import closing
from pathlib import Path

import pytest
from ecmahost.connectors.base import Record
from ecmahost.connectors.sql.connector import SqlConnector, SqlSettings
from ecmahost.connectors.sql.upsert import NATIVE_UPSERT

from tests.connectors.conformance import ConnectorConformance, Objects
from tests.connectors.sql.sql_support import (
    SQL_ATTRIBUTES,
    insert_statement,
    row_of,
    typed,
    users_ddl,
)


class TestSqliteConformance(ConnectorConformance):
    expected_attributes = SQL_ATTRIBUTES

    @pytest.fixture
    def database(self, tmp_path: Path) -> Path:
        path = tmp_path / "users.db"
        with closing(sqlite3.connect(path)) as db:
            db.execute(users_ddl("users"))
            db.commit()
        return path

    @pytest.fixture
    async def connector(self, database: Path) -> AsyncIterator[SqlConnector]:
        settings = SqlSettings(
            url="sqlite+aiosqlite:///users.db",  # relative: to the configuration's folder
            table="users",
            anchor="AzureObjectID",
            page_size=4,  # the imports below span several pages
        )
        connector = SqlConnector("SQL", settings, database.parent)
        await connector.open()
        yield connector
        await connector.close()

    @pytest.fixture
    def target_reader(self, database: Path) -> Callable[[], Awaitable[Objects]]:
        async def read() -> Objects:
            with closing(sqlite3.connect(database)) as db:
                db.row_factory = sqlite3.Row
                rows = [typed(dict(row)) for row in db.execute('SELECT * FROM "users"')]
            return {str(row["AzureObjectID"]): row for row in rows}

        return read

    @pytest.fixture
    def seed(self, database: Path) -> Callable[[Sequence[Record]], Awaitable[None]]:
        async def write(records: Sequence[Record]) -> None:
            with closing(sqlite3.connect(database)) as db:
                statement = insert_statement("users", ["?"] * len(SQL_ATTRIBUTES))
                db.executemany(statement, [row_of(r) for r in records])
                db.commit()

        return write


class TestSqliteGenericUpsertConformance(TestSqliteConformance):
    @pytest.fixture(autouse=True)
    def generic_upsert(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delitem(NATIVE_UPSERT, "sqlite")
