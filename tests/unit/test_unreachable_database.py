"""Which failures mean "the connector space's database cannot be reached now" (a
503 with Retry-After, a warning without a traceback) rather than a bug (a 500)."""

from __future__ import annotations

import sqlite3

import asyncpg
import pytest
from ecmahost.engine.space.database import unreachable
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError


def _raised_from(error: BaseException, cause: BaseException) -> BaseException:
    error.__cause__ = cause
    return error


class _AdaptedError(Exception):
    """What SQLAlchemy's asyncpg adapter puts between asyncpg and DBAPIError."""


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "Connection refused"),
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"),
        # A shutting-down server seen through the pool: a plain DBAPIError, raised
        # from the adapter's error, raised from asyncpg's.
        _raised_from(
            DBAPIError("SELECT 1", {}, Exception("shutting down")),
            _raised_from(
                _AdaptedError("shutting down"),
                asyncpg.exceptions.AdminShutdownError("the database system is shutting down"),
            ),
        ),
        OperationalError("BEGIN", {}, sqlite3.OperationalError("database is locked")),
    ],
    ids=["refused", "starting-up", "closed", "shutting-down-through-the-pool", "sqlite-busy"],
)
def test_a_database_out_of_reach_is_unreachable(error: BaseException) -> None:
    assert unreachable(error)


@pytest.mark.parametrize(
    "error",
    [
        ValueError("a bug"),
        IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE constraint failed")),
        DBAPIError("SELECT", {}, Exception("syntax error")),
        PermissionError(13, "Permission denied"),
    ],
    ids=["bug", "refused-row", "bad-statement", "file-permission"],
)
def test_anything_else_is_not(error: BaseException) -> None:
    assert not unreachable(error)
