"""The connector space: the durable copy of each target's objects that SCIM reads.

Every write stages an object's new state and appends its export event in ONE
transaction, so an acknowledged write can never be lost. One asyncio lock makes
this process the database's single writer.
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from ecmahost.connectors.base import Record, Value
from ecmahost.engine.exceptions import AnchorTakenError, NotFoundError
from ecmahost.engine.queue import OPEN_STATUSES, Outcome, append_event, outcome_from, outcome_of
from ecmahost.engine.space.database import open_group_engine
from ecmahost.engine.space.import_batch import upsert_batch
from ecmahost.engine.space.index import reindex
from ecmahost.engine.space.listing import Listing
from ecmahost.engine.space.lookup import Lookup
from ecmahost.engine.space.models import EventLog, ExportEvent, ObjectRow, ObjectValue, Run, utcnow
from ecmahost.engine.space.stored import StoredObject
from ecmahost.engine.space.writer import GroupWriter
from sqlalchemy import ColumnElement, delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session, sessionmaker

__all__ = [
    "ConnectorSpace",
    "Staging",
    "StoredObject",
    "object_id_for",
]

_ANALYZED = (ObjectRow.__tablename__, ObjectValue.__tablename__)
_UNANALYZED = (ExportEvent.__tablename__, EventLog.__tablename__, Run.__tablename__)
_HAS_STATISTICS = "SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'"

Where = ColumnElement[bool] | Callable[[], ColumnElement[bool] | None] | None
"""A filter's WHERE clause on objects, or a function building it on demand."""

_ID_NAMESPACE = uuid.UUID("6f1c2f0e-5d1e-4b8a-9a57-2f0b9b8f3c11")


def object_id_for(connector: str, anchor: str) -> str:
    """The SCIM id of an anchor: derived, so it is stable across imports and restarts."""
    return str(uuid.uuid5(_ID_NAMESPACE, f"{connector}\x00{anchor}"))


@dataclass(frozen=True, slots=True)
class Staging:
    """A write's decision: the object's new attributes, whether SCIM still shows it,
    and what to export (``"upsert"``, ``"delete"`` or None for store-only)."""

    attributes: Mapping[str, Value]
    visible: bool
    export: str | None
    exported: Mapping[str, Value] | None = None
    """What to export when it differs from ``attributes`` (a store-only disable)."""
    anchor: str | None = None
    """The new anchor of a rename; None keeps the object's anchor."""
    external_id: str | None = None


class ConnectorSpace:
    """Reads and writes of objects. Reads see only visible objects."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        write_sessions: async_sessionmaker[AsyncSession] | None = None,
        lookup: Lookup | None = None,
        synchronous: str = "FULL",
    ) -> None:
        self._sessions = sessions
        self._lookup = lookup
        self._listing = Listing(lookup) if lookup is not None else None
        self._write_sessions = write_sessions or sessions
        self._write_lock = asyncio.Lock()
        # SCIM writes commit through a synchronous engine on the same file (see
        # engine/writer.py); batch work keeps the async writer.
        self.group_engine = open_group_engine(str(self._write_sessions.kw["bind"].url), synchronous)
        self._writer = GroupWriter(sessionmaker(self.group_engine), self._write_lock)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A session whose transaction commits on exit, for batch work (imports,
        export bookkeeping). SCIM writes go through the group writer instead."""
        async with self._write_lock, self._write_sessions.begin() as session:
            yield session

    async def close(self) -> None:
        await self._writer.close()
        self.group_engine.dispose()
        if self._lookup is not None:
            self._lookup.close()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session:
            yield session

    # -- reads ---------------------------------------------------------------

    async def get(self, connector: str, object_id: str) -> StoredObject | None:
        """The visible object with this SCIM id, or None."""
        if self._lookup is not None:
            try:
                return self._lookup.get(connector, object_id)
            except sqlite3.OperationalError:  # busy: the async path waits for it
                pass
        async with self.read() as session:
            row = await session.get(ObjectRow, object_id)
        if row is None or row.connector != connector or row.state != "present":
            return None
        return StoredObject.from_row(row)

    async def query(
        self,
        connector: str,
        where: Where,
        start_index: int,
        count: int,
        eq: tuple[str, str] | None = None,
    ) -> tuple[int, list[StoredObject]]:
        """Total matches and one page (1-based ``start_index``) ordered by anchor.
        ``where`` selects the objects (None: all), or builds that clause when called:
        it is built only if the lookup or the listing cannot answer. ``eq`` is the
        (lower-cased attribute, index text) pair ``where`` amounts to when it is one
        ``eq`` comparison: a lookup answers then, if few objects match."""
        if eq is not None and self._lookup is not None:
            try:
                found = self._lookup.by_value(connector, *eq)
            except sqlite3.OperationalError:  # busy: the async path waits for it
                found = None
            if found is not None:
                return len(found), found[start_index - 1 : start_index - 1 + count]
        if callable(where):
            where = where()
        if where is None and self._listing is not None:
            try:
                return await self._listing.page(connector, start_index, count)
            except sqlite3.OperationalError:  # busy: the async path waits for it
                pass
        condition = (ObjectRow.connector == connector) & (ObjectRow.state == "present")
        if where is not None:
            condition = condition & where
        async with self.read() as session:
            total = await session.scalar(select(func.count()).where(condition))
            rows = []
            if count > 0:
                page = (
                    select(ObjectRow)
                    .where(condition)
                    .order_by(ObjectRow.anchor)
                    .offset(start_index - 1)
                    .limit(count)
                )
                rows = list((await session.scalars(page)).all())
        return int(total or 0), [StoredObject.from_row(r) for r in rows]

    async def outcome(self, event_id: int) -> Outcome | None:
        """The export event's outcome if it has one yet. Asked once per sync-mode
        write, so read by the lookup: sixteen writers' reads through the async driver
        kept as many worker threads fighting over the interpreter."""
        if self._lookup is not None:
            try:
                return outcome_from(event_id, self._lookup.event_state(event_id))
            except sqlite3.OperationalError:  # busy: the async path waits for it
                pass
        async with self.read() as session:
            return await outcome_of(session, event_id)

    async def iter_objects(self, connector: str) -> AsyncIterator[StoredObject]:
        """Every visible object of a connector, streamed in anchor order."""
        stmt = (
            select(ObjectRow)
            .where(ObjectRow.connector == connector, ObjectRow.state == "present")
            .order_by(ObjectRow.anchor)
            .execution_options(yield_per=500)
        )
        async with self.read() as session:
            async for row in await session.stream_scalars(stmt):
                yield StoredObject.from_row(row)

    # -- SCIM writes -----------------------------------------------------------

    async def create(
        self, connector: str, anchor: str, staging: Staging
    ) -> tuple[StoredObject, int | None]:
        """Stage a new object. AnchorTakenError if a visible object already has this anchor."""

        def work(session: Session) -> tuple[StoredObject, int | None]:
            row = _by_anchor(session, connector, anchor)
            if row is not None and row.state == "present":
                raise AnchorTakenError(anchor)
            if row is None:
                row = ObjectRow.empty(_free_id(session, connector, anchor), connector, anchor)
                session.add(row)
                session.flush()
            return _stage(session, row, staging)

        return await self._writer.run(work)

    async def update(
        self,
        connector: str,
        object_id: str,
        decide: Callable[[StoredObject], Staging],
    ) -> tuple[StoredObject, int | None]:
        """Stage the change ``decide`` computes from the current object, atomically.
        NotFoundError if no visible object has this id; ``decide`` may raise."""

        def work(session: Session) -> tuple[StoredObject, int | None]:
            row = session.get(ObjectRow, object_id)
            if row is None or row.connector != connector or row.state != "present":
                raise NotFoundError(object_id)
            return _stage(session, row, decide(StoredObject.from_row(row)))

        return await self._writer.run(work)

    # -- full import -----------------------------------------------------------

    async def begin_run(self, connector: str, kind: str) -> int:
        async with self.write() as session:
            run = Run(
                connector=connector, kind=kind, status="running", started_at=utcnow(), counts={}
            )
            session.add(run)
            await session.flush()
            return run.id

    async def finish_run(
        self, run_id: int, status: str, counts: Mapping[str, int], error: str | None = None
    ) -> None:
        async with self.write() as session:
            await session.execute(
                update(Run)
                .where(Run.id == run_id)
                .values(status=status, counts=dict(counts), error=error, finished_at=utcnow())
            )

    async def import_records(
        self, connector: str, run_id: int, records: Sequence[Record]
    ) -> Mapping[str, int]:
        """Upsert one batch of a full import. Objects with an open export event keep
        their staged state; only what the target holds (``confirmed``) is refreshed."""
        async with self.write() as session:
            return await upsert_batch(
                session, connector, run_id, records, lambda a: object_id_for(connector, a)
            )

    async def analyze(self) -> None:
        """Refresh the query planner's statistics of the objects and their values
        (after a full import changed many rows). Without them SQLite may walk every
        object of a connector instead of looking a filtered value up in the value
        index.

        The queue's tables get none: their shape changes by the minute (all events
        done at one moment, a backlog pending the next), and statistics taken when
        every event was done made claims scan the whole history of events rather
        than look the pending ones up."""
        async with self.write() as session:
            connection = await session.connection()
            if connection.dialect.name != "sqlite":
                return
            stale = ", ".join(f"'{t}'" for t in _UNANALYZED)
            if await session.scalar(text(_HAS_STATISTICS)):
                await session.execute(text(f"DELETE FROM sqlite_stat1 WHERE tbl IN ({stale})"))
            for table in _ANALYZED:
                await session.execute(text(f"ANALYZE {table}"))

    async def remove_unseen(self, connector: str, run_id: int) -> int:
        """End a full import: forget objects the target no longer holds, unless an
        export of theirs is still open or ran while the import did (the import may
        have read the target before that export reached it)."""
        async with self.write() as session:
            started_at = await session.scalar(select(Run.started_at).where(Run.id == run_id))
            recent = select(ExportEvent.object_id).where(
                ExportEvent.connector == connector,
                ExportEvent.status.in_(OPEN_STATUSES) | (ExportEvent.updated_at >= started_at),
            )
            result = await session.execute(
                delete(ObjectRow).where(
                    ObjectRow.connector == connector,
                    ObjectRow.seen_run.is_(None) | (ObjectRow.seen_run != run_id),
                    ObjectRow.id.not_in(recent),
                )
            )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _by_anchor(session: Session, connector: str, anchor: str) -> ObjectRow | None:
    return session.scalar(
        select(ObjectRow).where(ObjectRow.connector == connector, ObjectRow.anchor == anchor)
    )


def _free_id(session: Session, connector: str, anchor: str) -> str:
    """The anchor's derived id, unless an object renamed away from it still has it."""
    derived = object_id_for(connector, anchor)
    return derived if session.get(ObjectRow, derived) is None else str(uuid.uuid4())


def _stage(session: Session, row: ObjectRow, staging: Staging) -> tuple[StoredObject, int | None]:
    if staging.anchor is not None and staging.anchor != row.anchor:
        _take_anchor(session, row, staging.anchor)
    row.external_id = staging.external_id
    row.attributes = dict(staging.attributes)
    row.state = "present" if staging.visible else "deleted"
    row.version += 1
    row.updated_at = utcnow()
    reindex(session, row)
    event_id = None
    if staging.export is not None:
        payload = staging.exported if staging.exported is not None else staging.attributes
        event_id = append_event(session, row, staging.export, payload)
    elif not staging.visible:
        session.delete(row)
    return StoredObject.from_row(row), event_id


def _take_anchor(session: Session, row: ObjectRow, anchor: str) -> None:
    """Rename ``row``; AnchorTakenError if a visible object has the anchor. A hidden one (deleted,
    its export perhaps pending) lets go of it: its events carry their own anchor."""
    holder = _by_anchor(session, row.connector, anchor)
    if holder is not None and holder.state == "present":
        raise AnchorTakenError(anchor)
    if holder is not None:
        session.delete(holder)
        session.flush()
    row.anchor = anchor
