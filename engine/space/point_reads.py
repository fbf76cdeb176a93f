"""PostgreSQL's point reads: an object by id, the few objects an ``eq`` filter names,
and an export event's state, as prepared statements on asyncpg's own pool.

SQLite's ``Lookup`` serves these on the event loop's thread; on PostgreSQL they went
through the ORM's session, which cost the host several times the database's own work
for a read that is one index lookup (Entra matches before each create, and a sync
write reads its event's state). Each statement is prepared once per connection;
the pool is beside the space's, so a read never waits behind a write transaction.
Every read goes to the database: a write another host acknowledged is seen at once.
"""

from __future__ import annotations

import json
from typing import Any

import asyncpg
from ecmahost.engine.space.lookup import MAX_MATCHES
from ecmahost.engine.space.models import ExportEvent, ObjectRow, ObjectValue
from ecmahost.engine.space.states import ObjectState
from ecmahost.engine.space.stored import READ_COLUMNS, StoredObject
from sqlalchemy import make_url

__all__ = ["PointReads", "asyncpg_dsn"]

_COLUMNS = ", ".join(f"o.{c.name}" for c in READ_COLUMNS)
_BY_ID = (
    f"SELECT {_COLUMNS} FROM {ObjectRow.__tablename__} o "
    "WHERE o.id = $1 AND o.connector = $2 AND o.state = $3"
)
# A join, not ``serial IN (subquery)``: planned as index lookups however few
# statistics a new space has.
_BY_VALUE = (
    f"SELECT {_COLUMNS} FROM {ObjectValue.__tablename__} v "
    f"JOIN {ObjectRow.__tablename__} o ON o.serial = v.object_serial "
    "WHERE v.connector = $1 AND v.attr = $2 AND v.value = $3 AND o.connector = $1 "
    f"AND o.state = $4 ORDER BY o.anchor LIMIT {MAX_MATCHES + 1}"
)
_EVENT_STATE = (
    f"SELECT {ExportEvent.status.key}, {ExportEvent.last_error.key}, "
    f"{ExportEvent.error_kind.key} FROM {ExportEvent.__tablename__} WHERE id = $1"
)
_PRESENT = ObjectState.PRESENT.value


def asyncpg_dsn(url: str) -> str:
    """asyncpg's own form of the space's SQLAlchemy URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class PointReads:
    """``open`` it on the space's URL; ``close`` it with the space."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @classmethod
    async def open(cls, url: str) -> PointReads:
        # No floor of idle connections: asyncpg would log a traceback each time it
        # failed to restore it while the database is down.
        return cls(await asyncpg.create_pool(asyncpg_dsn(url), min_size=0, max_size=4))

    async def close(self) -> None:
        await self._pool.close()

    async def get(self, connector: str, object_id: str) -> StoredObject | None:
        """The visible object with this id, or None."""
        row = await self._pool.fetchrow(_BY_ID, object_id, connector, _PRESENT)
        return None if row is None else _stored(row)

    async def by_value(self, connector: str, attr: str, text: str) -> list[StoredObject] | None:
        """The visible objects whose ``attr`` (lower-cased name) has the index text
        ``text``, in anchor order; None when there are more than ``MAX_MATCHES``."""
        rows = await self._pool.fetch(_BY_VALUE, connector, attr, text, _PRESENT)
        if len(rows) > MAX_MATCHES:
            return None
        return [_stored(r) for r in rows]

    async def event_state(self, event_id: int) -> tuple[str, str | None, str | None] | None:
        """An export event's (status, last error, error kind); None if there is none."""
        row = await self._pool.fetchrow(_EVENT_STATE, event_id)
        return None if row is None else (row[0], row[1], row[2])


def _stored(row: Any) -> StoredObject:
    object_id, connector, anchor, attributes, version, created, updated, external_id = row
    return StoredObject(
        object_id,
        connector,
        anchor,
        json.loads(attributes),  # asyncpg gives json columns as their text
        True,
        version,
        created,
        updated,
        external_id,
    )
