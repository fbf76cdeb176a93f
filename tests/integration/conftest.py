"""Fixtures shared by the integration tests.

``space`` is the store under test, once on SQLite and once on PostgreSQL: the store's
contract holds on both (modules that test SQLite's own paths use ``sqlite_space``)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from ecmahost.engine.space import ConnectorSpace
from ecmahost.engine.space.database import sqlite_url
from sqlalchemy import make_url

from tests.connectors.sql.postgres import PostgresServer, postgres_fixture

__all__ = ["postgres_fixture"]

_databases = itertools.count(1)


def fresh_database(postgres: PostgresServer) -> str:
    """The URL of a new, empty database on the session's PostgreSQL server."""
    return postgres.create_database(f"space_{next(_databases)}")


def _new_url(backend: str, request: pytest.FixtureRequest, folder: Path) -> str:
    if backend == "sqlite":
        folder.mkdir(exist_ok=True)
        return sqlite_url(folder)
    return fresh_database(request.getfixturevalue("postgres"))


@pytest.fixture(params=["sqlite", "postgresql"])
def space_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL for a new connector space, on each kind of database."""
    return _new_url(request.param, request, tmp_path)


@pytest.fixture
def second_space_url(space_url: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL for another new space, on the same kind of database as ``space_url``."""
    return _new_url(make_url(space_url).get_backend_name(), request, tmp_path / "second")


@pytest.fixture
async def space(space_url: str) -> AsyncIterator[ConnectorSpace]:
    """A fresh connector space (modules with another kind of space define their own
    ``space``)."""
    opened = await ConnectorSpace.open(space_url)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def sqlite_space(tmp_path: Path) -> AsyncIterator[ConnectorSpace]:
    """A fresh connector space in a SQLite file, for tests of SQLite's own paths."""
    opened = await ConnectorSpace.open(sqlite_url(tmp_path))
    try:
        yield opened
    finally:
        await opened.close()
