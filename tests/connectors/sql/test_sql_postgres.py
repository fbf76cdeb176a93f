"""The SQL connector passes the conformance suite against a real PostgreSQL server.

(The generic upsert runs the suite on SQLite only: it is the same portable SQL.)"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

import asyncpg
import pytest
from ecmahost.connectors.base import Record
from ecmahost.connectors.sql.connector import SqlConnector, SqlSettings

from tests.connectors.conformance import HOSTILE_VALUES, ConnectorConformance, Objects
from tests.connectors.sql.postgres import PostgresServer
from tests.connectors.sql.sql_support import (
    SQL_ATTRIBUTES,
    insert_statement,
    row_of,
    typed,
    users_ddl,
)


@pytest.fixture(scope="session")
def conformance_database(postgres: PostgresServer) -> str:
    postgres.create_database("conformance")
    return "conformance"


class TestPostgresConformance(ConnectorConformance):
    expected_attributes = SQL_ATTRIBUTES
    # PostgreSQL's text type cannot hold U+0000 (its strings are NUL-terminated inside
    # the server); the connector must refuse such a value rather than alter it.
    unsupported_values = frozenset({HOSTILE_VALUES["nul"]})

    @pytest.fixture
    async def table(
        self, postgres: PostgresServer, conformance_database: str
    ) -> AsyncIterator[str]:
        """A new, empty users table for each test, dropped afterwards."""
        name = f"users_{secrets.token_hex(4)}"
        db = await asyncpg.connect(postgres.dsn(conformance_database))
        try:
            await db.execute(users_ddl(name))
            yield name
            await db.execute(f'DROP TABLE "{name}"')
        finally:
            await db.close()

    @pytest.fixture
    async def connector(
        self, postgres: PostgresServer, conformance_database: str, table: str, tmp_path: Path
    ) -> AsyncIterator[SqlConnector]:
        settings = SqlSettings(
            url=postgres.url(conformance_database),
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
        self, postgres: PostgresServer, conformance_database: str, table: str
    ) -> Callable[[], Awaitable[Objects]]:
        async def read() -> Objects:
            db = await asyncpg.connect(postgres.dsn(conformance_database))
            try:
                rows = [typed(dict(row)) for row in await db.fetch(f'SELECT * FROM "{table}"')]
            finally:
                await db.close()
            return {str(row["AzureObjectID"]): row for row in rows}

        return read

    @pytest.fixture
    def seed(
        self, postgres: PostgresServer, conformance_database: str, table: str
    ) -> Callable[[Sequence[Record]], Awaitable[None]]:
        async def write(records: Sequence[Record]) -> None:
            db = await asyncpg.connect(postgres.dsn(conformance_database))
            try:
                places = [f"${i + 1}" for i in range(len(SQL_ATTRIBUTES))]
                await db.executemany(insert_statement(table, places), [row_of(r) for r in records])
            finally:
                await db.close()

        return write
