"""Plain SQL on the driver: the hot statements of SCIM writes and imports go to the
database as text and tuples, past SQLAlchemy's per-statement work.

They are written for SQLite (``?`` parameters, ``json_each`` lists, times stored as
text); ``for_postgresql`` turns such a text into PostgreSQL's, and ``Bridged`` gives
a connection SQLAlchemy drives (asyncpg's; aiosqlite's in ``run_sync``) the few
calls of ``sqlite3.Connection`` they use.
A statement built with SQLAlchemy's Core (the queue's claim and outcome steps) is
compiled once per database by ``Prepared`` and sent the same way.
"""

from __future__ import annotations

import functools
import itertools
import json
import re
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, ParamSpec, TypeVar, cast

import orjson
from ecmahost.engine.space.models import NEXT_SERIAL_SQLITE, SERIAL_SEQUENCE
from sqlalchemy import Connection, Dialect
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

__all__ = [
    "DRIVER_INFO",
    "Bridged",
    "Db",
    "Prepared",
    "as_sqlalchemy",
    "driver_for",
    "driver_of",
    "for_postgresql",
    "json_text",
    "moment",
    "sqlite_time",
    "stored_time",
]


class Bridged:
    """``execute`` and ``executemany`` of SQLite-style texts on a connection whose
    driver SQLAlchemy bridges to synchronous calls: asyncpg (which prepares each
    text once per connection), or aiosqlite in an ``AsyncSession.run_sync``."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._postgresql = connection.dialect.name == "postgresql"

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._connection.exec_driver_sql(self._text(sql), tuple(params))

    def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        self._connection.exec_driver_sql(self._text(sql), rows)

    def _text(self, sql: str) -> str:
        return for_postgresql(sql) if self._postgresql else sql

    @property
    def dialect(self) -> Dialect:
        return self._connection.dialect

    def native(self, sql: str, params: Sequence[Any] | list[tuple[Any, ...]]) -> Any:
        """A text already in the dialect's form (a list of tuples: executemany)."""
        return self._connection.exec_driver_sql(sql, params)


Db = sqlite3.Connection | Bridged


DRIVER_INFO = "ecmahost.driver"
"""The key under which the group writer's session carries its connection's driver."""


def driver_of(session: Session) -> Db:
    """The driver's connection of the session's transaction: the group writer's,
    which a job's statements reach past its session; any other session's (its
    transaction begun if it was not).
    (Statements run on it bypass the engine's events: tests watch them through
    sqlite3's trace callback.)"""
    found: Db | None = session.info.get(DRIVER_INFO)
    return found if found is not None else driver_for(session.connection())


def driver_for(connection: Connection) -> Db:
    driver = connection.connection.driver_connection
    return driver if isinstance(driver, sqlite3.Connection) else Bridged(connection)


P = ParamSpec("P")
R = TypeVar("R")


def as_sqlalchemy(write: Callable[P, R]) -> Callable[P, R]:
    """The driver's errors as SQLAlchemy raises them (an ``IntegrityError`` is one
    whichever way the statement went), as the rest of the engine expects."""

    @functools.wraps(write)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return write(*args, **kwargs)
        except sqlite3.Error as exc:
            raise DBAPIError.instance(None, None, exc, sqlite3.Error) from exc

    return wrapped


_SQLITE = sqlite.dialect()


class Prepared:
    """A Core statement compiled once for each database and sent to the driver as
    text and a tuple: a Core statement run through the session costs its cache
    key, its execution context and its parameters' and results' processing
    (~0.05 ms of CPU) each time, several times what SQLite spends on a claim's
    statement. Parameters are given by name; times and JSON values are converted
    as the column types would; rows come back as the driver reads them (times as
    text and JSON as text on SQLite, JSON as text on PostgreSQL). A list given to
    ``in_`` is rendered at each execution, so it cannot be sent this way: a
    statement lists its values as a JSON parameter (``json_lists``) or spells the
    comparisons out."""

    def __init__(self, statement: ClauseElement) -> None:
        self._statement = statement
        self._forms: dict[str, tuple[str, tuple[str, ...], dict[str, Any]]] = {}

    def rows(self, db: Db, params: Mapping[str, Any]) -> list[Any]:
        return list(self._send(db, [params]))

    def run(self, db: Db, params: Mapping[str, Any]) -> None:
        self._send(db, [params])

    def run_many(self, db: Db, many: Sequence[Mapping[str, Any]]) -> None:
        if many:
            self._send(db, many)

    def _send(self, db: Db, many: Sequence[Mapping[str, Any]]) -> Any:
        dialect = db.dialect if isinstance(db, Bridged) else _SQLITE
        sql, names, fixed = self._form(dialect)
        on_sqlite = dialect.name == "sqlite"
        rows = [tuple(_bound(p[n] if n in p else fixed[n], on_sqlite) for n in names) for p in many]
        if isinstance(db, Bridged):
            return db.native(sql, rows[0] if len(rows) == 1 else rows)
        try:
            if len(rows) == 1:
                return db.execute(sql, rows[0]).fetchall()
            return db.executemany(sql, rows)
        except sqlite3.Error as exc:
            raise DBAPIError.instance(sql, None, exc, sqlite3.Error) from exc

    def _form(self, dialect: Dialect) -> tuple[str, tuple[str, ...], dict[str, Any]]:
        form = self._forms.get(dialect.name)
        if form is None:
            compiled = cast(SQLCompiler, self._statement.compile(dialect=dialect))
            if compiled.post_compile_params:
                raise ValueError(f"an expanding IN cannot be prepared: {compiled.string}")
            names = tuple(compiled.positiontup or ())
            form = self._forms[dialect.name] = (compiled.string, names, compiled.params)
        return form


def _bound(value: Any, on_sqlite: bool) -> Any:
    if isinstance(value, datetime):
        return sqlite_time(value) if on_sqlite else value
    if isinstance(value, dict | list):  # as ``writes`` stores JSON (any int included)
        return json_text(value)
    return value


def json_text(value: Any) -> str:
    """``value`` as stored JSON text: orjson writes it ten times faster than the json
    module; the rare value it refuses (an integer beyond 64 bits) goes there."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError is one
        return json.dumps(value)


@functools.lru_cache(maxsize=64)
def for_postgresql(sql: str) -> str:
    """``sql`` with ``$n`` parameters, lists read by ``json_array_elements_text``
    (values as text: a list of numbers is cast where it is read), serials taken
    from the sequence (several hosts insert at once) and no ``INDEXED BY``
    (SQLite's own; PostgreSQL plans from statistics it keeps fresh itself)."""
    sql = re.sub(r" INDEXED BY \w+", "", sql)
    sql = sql.replace(NEXT_SERIAL_SQLITE, f"nextval('{SERIAL_SEQUENCE}')")
    sql = sql.replace("json_each(?)", "json_array_elements_text(CAST(? AS json))")
    numbers = itertools.count(1)
    return re.sub(r"\?", lambda _: f"${next(numbers)}", sql)


def sqlite_time(at: datetime) -> str:
    """A time as SQLAlchemy's SQLite dialect stores it: text that sorts as time
    (``isoformat``: a quarter of ``strftime``'s cost, same text)."""
    return at.replace(tzinfo=None).isoformat(" ", "microseconds")


def stored_time(db: Db, at: datetime) -> Any:
    """A time as ``db`` takes it."""
    return sqlite_time(at) if isinstance(db, sqlite3.Connection) else at


def moment(stored: str | datetime) -> datetime:
    """A time read back: text on SQLite."""
    return stored if isinstance(stored, datetime) else datetime.fromisoformat(stored)
