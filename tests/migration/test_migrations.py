"""The Alembic migrations build exactly the schema ecmahost.engine.space.models declares."""

from __future__ import annotations

from collections.abc import AsyncIterator
from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from ecmahost.engine.space.database import migrate, open_engine, sqlite_url
from ecmahost.engine.space.models import Base, EventLog, ExportEvent, ObjectRow, Run
from ecmahost.engine.space.states import (
    ErrorKind,
    EventStatus,
    LogStatus,
    ObjectState,
    Op,
    RunKind,
    RunStatus,
)
from sqlalchemy import Connection, String, inspect
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


@pytest.mark.parametrize(
    ("words", "column"),
    [
        (ObjectState, ObjectRow.state),
        (Op, ExportEvent.op),
        (EventStatus, ExportEvent.status),
        (ErrorKind, ExportEvent.error_kind),
        (LogStatus, EventLog.status),
        (RunKind, Run.kind),
        (RunStatus, Run.status),
    ],
)
def test_the_state_enums_fit_their_string_columns(words: type[StrEnum], column: Any) -> None:
    """The enums are the columns' strings as they were: no migration, every word fits."""
    assert isinstance(column.type, String) and column.type.length is not None
    assert all(len(word) <= column.type.length for word in words)
