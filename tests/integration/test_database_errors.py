"""A database error names its statement, never the statement's values: its text
reaches the log, the connector's degraded reason and the alert webhook, and the
values are users' attributes or sealed passwords."""

from __future__ import annotations

from pathlib import Path

import pytest
from ecmahost.engine.space.database import open_engine, open_group_engine, sqlite_url
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

VALUE = "ada.lovelace@example.org"
FAILING = text("SELECT * FROM no_such_table WHERE mail = :mail")


async def test_an_engines_error_leaves_the_values_out(space_url: str) -> None:
    engine = open_engine(space_url)
    try:
        async with engine.connect() as connection:
            with pytest.raises(DBAPIError) as caught:
                await connection.execute(FAILING, {"mail": VALUE})
    finally:
        await engine.dispose()

    assert "no_such_table" in str(caught.value)
    assert VALUE not in str(caught.value)


def test_the_group_writers_error_leaves_the_values_out(tmp_path: Path) -> None:
    engine = open_group_engine(sqlite_url(tmp_path))
    try:
        with engine.connect() as connection, pytest.raises(DBAPIError) as caught:
            connection.execute(FAILING, {"mail": VALUE})
    finally:
        engine.dispose()

    assert "no_such_table" in str(caught.value)
    assert VALUE not in str(caught.value)
