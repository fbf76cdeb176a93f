"""Point reads of the connector space on the event loop's own thread.

Fetching one object by id, or the few objects an ``eq`` filter names, is an index
lookup that SQLite answers in microseconds; the async driver's hop to its worker
thread and back, and the ORM around it, cost a hundred times more. So these reads
go through a plain ``sqlite3`` connection, opened read-only: in WAL mode a reader
never waits for the writer. Only reads bounded by an index come here; anything that
may walk many rows (lists, other filters, many matches) stays on the async path so
that it never holds up the event loop.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

import orjson
from ecmahost.engine.space import plans
from ecmahost.engine.space.models import ExportEvent, ObjectRow, ObjectValue
from ecmahost.engine.space.plans import indexed
from ecmahost.engine.space.states import ObjectState
from ecmahost.engine.space.stored import READ_COLUMNS, StoredObject
from sqlalchemy.engine import make_url

__all__ = ["Lookup", "connect_read_only"]

MAX_MATCHES = 100
"""More matches than this, and an ``eq`` filter is left to the async path."""

_OBJECTS = ObjectRow.__tablename__
_VALUES = ObjectValue.__tablename__
_COLUMNS = ", ".join(f"o.{c.name}" for c in READ_COLUMNS)
_BY_ID = (
    f"SELECT {_COLUMNS} FROM {indexed(_OBJECTS, 'o', plans.OBJECTS_BY_ID)} "
    "WHERE o.id = ? AND o.connector = ? AND o.state = ?"
)
_BY_VALUE = (
    f"SELECT {_COLUMNS} FROM {indexed(_OBJECTS, 'o', plans.OBJECTS_BY_SERIAL)} WHERE o.serial IN ("
    f"SELECT v.object_serial FROM {indexed(_VALUES, 'v', plans.VALUES_LOOKUP)} "
    f"WHERE v.connector = ? AND v.attr = ? AND v.value = ? "
    f"LIMIT {MAX_MATCHES + 1}) AND o.connector = ? AND o.state = ? ORDER BY o.anchor"
)
_PAGE_FROM = (
    f"SELECT {_COLUMNS} FROM {indexed(_OBJECTS, 'o', plans.OBJECTS_LISTING)} "
    "WHERE o.connector = ? AND o.state = ? AND o.anchor >= ? ORDER BY o.anchor LIMIT ? OFFSET ?"
)
_EVENT_STATE = (
    f"SELECT {ExportEvent.status.key}, {ExportEvent.last_error.key}, {ExportEvent.error_kind.key} "
    f"FROM {ExportEvent.__tablename__} WHERE id = ?"
)
_PRESENT = ObjectState.PRESENT.value


def connect_read_only(path: Path, *, check_same_thread: bool = True) -> sqlite3.Connection:
    """A connection that cannot write, and runs each statement on its own snapshot
    unless told BEGIN (no implicit transactions)."""
    return sqlite3.connect(
        f"{path.resolve().as_uri()}?mode=ro",
        uri=True,
        check_same_thread=check_same_thread,
        isolation_level=None,
    )


class Lookup:
    """A read-only connection for index-bounded reads; None for a database that is
    not a SQLite file (the async path serves everything then)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = connect_read_only(path, check_same_thread=False)
        # Never block the event loop waiting: the caller sends a read that finds the
        # database busy (sqlite3.OperationalError) to the async path instead.
        self._db.execute("PRAGMA busy_timeout=0")

    @classmethod
    def for_url(cls, url: str) -> Lookup | None:
        parsed = make_url(url)
        if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
            return None
        return cls(Path(parsed.database))

    def close(self) -> None:
        self._db.close()

    def get(self, connector: str, object_id: str) -> StoredObject | None:
        """The visible object with this id, or None."""
        row = self._db.execute(_BY_ID, (object_id, connector, _PRESENT)).fetchone()
        return None if row is None else _stored(row)

    def event_state(self, event_id: int) -> tuple[str, str | None, str | None] | None:
        """An export event's (status, last error, error kind); None if there is none."""
        row = self._db.execute(_EVENT_STATE, (event_id,)).fetchone()
        return None if row is None else (row[0], row[1], row[2])

    def data_version(self) -> int:
        """A number that changes whenever another connection commits a write."""
        return int(self._db.execute("PRAGMA data_version").fetchone()[0])

    def page_from(self, connector: str, anchor: str, skip: int, count: int) -> list[StoredObject]:
        """``count`` visible objects in anchor order, from the ``skip``-th one at or
        after ``anchor`` (the listing keeps ``skip`` small)."""
        rows = self._db.execute(_PAGE_FROM, (connector, _PRESENT, anchor, count, skip)).fetchall()
        return [_stored(r) for r in rows]

    def by_value(self, connector: str, attr: str, text: str) -> list[StoredObject] | None:
        """The visible objects whose ``attr`` (lower-cased name) has the index text
        ``text``, in anchor order; None when there are more than ``MAX_MATCHES``.
        (Only visible objects have index rows, so the state test drops none of the
        subquery's ids and the count is exact.)"""
        rows = self._db.execute(_BY_VALUE, (connector, attr, text, connector, _PRESENT)).fetchall()
        if len(rows) > MAX_MATCHES:
            return None
        return [_stored(r) for r in rows]


def _stored(row: tuple[str, str, str, str, int, str, str, str | None]) -> StoredObject:
    object_id, connector, anchor, attributes, version, created, updated, external_id = row
    return StoredObject(
        object_id,
        connector,
        anchor,
        orjson.loads(attributes),
        True,
        version,
        datetime.fromisoformat(created),
        datetime.fromisoformat(updated),
        external_id,
    )
