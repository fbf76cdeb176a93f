"""Plain SQL on the driver: the hot statements of SCIM writes and imports go to the
database as text and tuples, past SQLAlchemy's per-statement work.

They are written for SQLite (``?`` parameters, ``json_each`` lists, times stored as
text); ``for_postgresql`` turns such a text into PostgreSQL's, and ``Postgres`` gives
a session's PostgreSQL connection the few calls of ``sqlite3.Connection`` they use.
"""

from __future__ import annotations

import functools
import itertools
import re
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ecmahost.engine.space.models import NEXT_SERIAL_SQLITE, SERIAL_SEQUENCE
from sqlalchemy import Connection

__all__ = ["Db", "Postgres", "for_postgresql", "moment", "sqlite_time", "stored_time"]


class Postgres:
    """``execute`` and ``executemany`` of SQLite-style texts on a PostgreSQL
    connection (asyncpg prepares each text once per connection)."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._connection.exec_driver_sql(for_postgresql(sql), tuple(params))

    def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        self._connection.exec_driver_sql(for_postgresql(sql), rows)


Db = sqlite3.Connection | Postgres


@functools.lru_cache(maxsize=64)
def for_postgresql(sql: str) -> str:
    """``sql`` with ``$n`` parameters, lists read by ``json_array_elements_text``
    (values as text: a list of numbers is cast where it is read) and serials taken
    from the sequence (several hosts insert at once)."""
    sql = sql.replace(NEXT_SERIAL_SQLITE, f"nextval('{SERIAL_SEQUENCE}')")
    sql = sql.replace("json_each(?)", "json_array_elements_text(CAST(? AS json))")
    numbers = itertools.count(1)
    return re.sub(r"\?", lambda _: f"${next(numbers)}", sql)


@functools.lru_cache(maxsize=4)
def sqlite_time(at: datetime) -> str:
    """A time as SQLAlchemy's SQLite dialect stores it: text that sorts as time
    (cached: a batch's rows share one time)."""
    return at.strftime("%Y-%m-%d %H:%M:%S.%f")


def stored_time(db: Db, at: datetime) -> Any:
    """A time as ``db`` takes it."""
    return sqlite_time(at) if isinstance(db, sqlite3.Connection) else at


def moment(stored: str | datetime) -> datetime:
    """A time read back: text on SQLite."""
    return stored if isinstance(stored, datetime) else datetime.fromisoformat(stored)
