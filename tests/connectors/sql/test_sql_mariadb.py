"""The SQL connector passes the conformance suite against a real MariaDB server, with
``INSERT … ON DUPLICATE KEY UPDATE`` (the anchor is the table's only unique key)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

import aiomysql
import pytest
from ecmahost.connectors.base import Record
from ecmahost.connectors.sql.connector import SqlConnector, SqlSettings

from tests.connectors.conformance import ConnectorConformance, Objects
from tests.connectors.sql.mariadb import MariadbServer
from tests.connectors.sql.sql_support import (
    SQL_ATTRIBUTES,
    insert_statement,
    mariadb_connection,
    row_of,
    typed,
    users_ddl,
)


@pytest.fixture(scope="session")
def conformance_database(mariadb: MariadbServer) -> str:
    mariadb.create_database("conformance")
    return "conformance"


class TestMariadbConformance(ConnectorConformance):
    expected_attributes = SQL_ATTRIBUTES

    @pytest.fixture
    async def table(self, mariadb: MariadbServer, conformance_database: str) -> AsyncIterator[str]:
        """A new, empty users table for each test, dropped afterwards."""
        name = f"users_{secrets.token_hex(4)}"
        await _execute(mariadb, conformance_database, users_ddl(name))
        yield name
        await _execute(mariadb, conformance_database, f'DROP TABLE "{name}"')

    @pytest.fixture
    async def connector(
        self, mariadb: MariadbServer, conformance_database: str, table: str, tmp_path: Path
    ) -> AsyncIterator[SqlConnector]:
        settings = SqlSettings(
            url=mariadb.url(conformance_database),
            table=table,
            anchor="AzureObjectID",
            page_size=4,  # the imports below span several pages
        )
        connector = SqlConnector("SQL", settings, tmp_path)
        await connector.open()
        yield connector
        await connector.close()

    @pytest.fixture
    def target_reader(
        self, mariadb: MariadbServer, conformance_database: str, table: str
    ) -> Callable[[], Awaitable[Objects]]:
        async def read() -> Objects:
            db = await mariadb_connection(mariadb, conformance_database)
            try:
                async with db.cursor(aiomysql.DictCursor) as cursor:
                    await cursor.execute(f'SELECT * FROM "{table}"')
                    rows = [typed(row) for row in await cursor.fetchall()]
            finally:
                db.close()
            return {str(row["AzureObjectID"]): row for row in rows}

        return read

    @pytest.fixture
    def seed(
        self, mariadb: MariadbServer, conformance_database: str, table: str
    ) -> Callable[[Sequence[Record]], Awaitable[None]]:
        async def write(records: Sequence[Record]) -> None:
            db = await mariadb_connection(mariadb, conformance_database)
            try:
                async with db.cursor() as cursor:
                    places = ["%s"] * len(SQL_ATTRIBUTES)
                    statement = insert_statement(table, places)
                    await cursor.executemany(statement, [row_of(r) for r in records])
            finally:
                db.close()

        return write


async def _execute(server: MariadbServer, database: str, statement: str) -> None:
    db = await mariadb_connection(server, database)
    try:
        async with db.cursor() as cursor:
            await cursor.execute(statement)
    finally:
        db.close()
