"""The Alembic migrations build exactly the schema ecmahost.engine.space.models declares."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from ecmahost.engine.space.database import migrate, open_engine, sqlite_url
from ecmahost.engine.space.models import Base
from sqlalchemy import Connection, inspect
from sqlalchemy.ext.asyncio import AsyncEngine


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = open_engine(sqlite_url(tmp_path))
    try:
        yield engine
    finally:
        await engine.dispose()


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "compare_server_default": True}
    )
    return list(compare_metadata(context, Base.metadata))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def test_the_migrated_schema_matches_the_models(engine: AsyncEngine) -> None:
    await migrate(engine)

    async with engine.connect() as conn:
        differences = await conn.run_sync(_differences)

    assert differences == []


async def test_the_migration_creates_exactly_the_model_tables(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        assert await conn.run_sync(_tables) == set()

    await migrate(engine)

    async with engine.connect() as conn:
        tables = await conn.run_sync(_tables)
    assert tables - {"alembic_version"} == set(Base.metadata.tables)
    assert "alembic_version" in tables


async def test_migrating_again_changes_nothing(engine: AsyncEngine) -> None:
    await migrate(engine)
    async with engine.connect() as conn:
        before = await conn.run_sync(_tables)

    await migrate(engine)

    async with engine.connect() as conn:
        assert await conn.run_sync(_tables) == before
        assert await conn.run_sync(_differences) == []
