"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from ecmahost.engine.space import ConnectorSpace
from ecmahost.engine.space.database import sqlite_url


@pytest.fixture
async def space(tmp_path: Path) -> AsyncIterator[ConnectorSpace]:
    """A fresh connector space in a SQLite file (modules with another kind of space
    define their own ``space``)."""
    opened = await ConnectorSpace.open(sqlite_url(tmp_path))
    try:
        yield opened
    finally:
        await opened.close()
