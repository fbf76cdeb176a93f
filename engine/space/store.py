"""The connector space on SQLAlchemy: SQLite (WAL, one writer, group commit) with
its fast paths, behind the ``Store`` contract (``space.contract``).

What is SQLite's own is kept apart so that a PostgreSQL store can follow: the lookup
and the listing (``sqlite3`` reads on the event loop's thread), the group writer's
synchronous engine, the bulk import's driver-level statements and ``json_each``
lists of values.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime

from ecmahost.connectors.base import Delta, Record
from ecmahost.engine.exceptions import AnchorTakenError, NotFoundError
from ecmahost.engine.space import deltas, health, objects, retention, runs, watermarks, writes
from ecmahost.engine.space.contract import Store, Where
from ecmahost.engine.space.database import (
    migrate,
    open_engine,
    open_group_engine,
    require_current,
    sessionmaker_for,
)
from ecmahost.engine.space.events import Events
from ecmahost.engine.space.health import ImportSummary, QueueSummary
from ecmahost.engine.space.import_batch import upsert_batch
from ecmahost.engine.space.listing import Listing
from ecmahost.engine.space.lookup import Lookup
from ecmahost.engine.space.models import ObjectRow
from ecmahost.engine.space.point_reads import PointReads
from ecmahost.engine.space.records import Staging, object_id_for
from ecmahost.engine.space.sessions import Sessions
from ecmahost.engine.space.states import ObjectState, RunKind, RunStatus
from ecmahost.engine.space.stored import StoredObject
from ecmahost.engine.space.writer import GroupWriter
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

__all__ = ["ConnectorSpace", "Staging", "StoredObject", "Where", "object_id_for"]


class ConnectorSpace(Store):
    """``open`` it on a database URL; the constructor wires given session makers
    (the engines stay the caller's)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        write_sessions: async_sessionmaker[AsyncSession] | None = None,
        lookup: Lookup | None = None,
        synchronous: str = "FULL",
        point_reads: PointReads | None = None,
    ) -> None:
        self._db = Sessions(sessions, write_sessions)
        self._lookup = lookup
        self._point_reads = point_reads  # PostgreSQL's counterpart of the lookup
        self._listing = Listing(lookup) if lookup is not None else None
        self._engines: tuple[AsyncEngine, ...] = ()
        # SCIM writes commit in groups (see space/writer.py): on SQLite through a
        # synchronous engine on the same file; batch work keeps the async writer.
        self.group_engine = None
        if self._db.url.startswith("sqlite"):
            self.group_engine = open_group_engine(self._db.url, synchronous)
            self._writer = GroupWriter(self.group_engine, self._db.write_lock)
        else:
            self._writer = GroupWriter(self._db.write_engine, self._db.write_lock)
        self.events = Events(self._db, lookup, self._writer, point_reads)

    @classmethod
    async def open(
        cls, url: str, synchronous: str = "FULL", *, upgrade: bool = True
    ) -> ConnectorSpace:
        """The space of the database at ``url``, its schema migrated to the newest;
        ``synchronous`` is SQLite's durability level. Without ``upgrade`` (a database
        other hosts share, which ``ecmahost migrate`` upgrades) the schema must be
        this version's already: ``DatabaseUnusableError`` otherwise."""
        reader = open_engine(url, synchronous, reader=True)
        writer = open_engine(url, synchronous, writer=True)
        try:
            await (migrate(writer) if upgrade else require_current(writer))
        except BaseException:
            await reader.dispose()
            await writer.dispose()
            raise
        point_reads = None if url.startswith("sqlite") else await PointReads.open(url)
        space = cls(
            sessionmaker_for(reader),
            sessionmaker_for(writer),
            Lookup.for_url(url),
            synchronous,
            point_reads,
        )
        space._engines = (reader, writer)
        return space

    async def close(self) -> None:
        await self._writer.close()
        if self.group_engine is not None:
            self.group_engine.dispose()
        if self._lookup is not None:
            self._lookup.close()
        if self._point_reads is not None:
            await self._point_reads.close()
        for engine in self._engines:
            await engine.dispose()

    def read(self) -> AbstractAsyncContextManager[AsyncSession]:
        """A raw read session: for the store's white-box tests, never the engine's."""
        return self._db.read()

    def write(self) -> AbstractAsyncContextManager[AsyncSession]:
        """A raw write transaction: for the store's white-box tests, never the engine's."""
        return self._db.write()

    # -- reads -------------------------------------------------------------------

    async def get(self, connector: str, object_id: str) -> StoredObject | None:
        if self._lookup is not None:
            try:
                return self._lookup.get(connector, object_id)
            except sqlite3.OperationalError:  # busy: the async path waits for it
                pass
        if self._point_reads is not None:
            return await self._point_reads.get(connector, object_id)
        async with self._db.read() as session:
            return await objects.get(session, connector, object_id)

    async def query(
        self,
        connector: str,
        where: Where,
        start_index: int,
        count: int,
        eq: tuple[str, str] | None = None,
    ) -> tuple[int, list[StoredObject]]:
        """The lookup answers an ``eq`` with few matches, the listing a page of the
        whole list; ``where`` is built only when neither can."""
        found = None if eq is None else await self._matches(connector, *eq)
        if found is not None:
            return len(found), found[start_index - 1 : start_index - 1 + count]
        if callable(where):
            where = where()
        if where is None and self._listing is not None:
            try:
                return await self._listing.page(connector, start_index, count)
            except sqlite3.OperationalError:  # busy: the async path waits for it
                pass
        condition = objects.visible(connector)
        if where is not None:
            condition = condition & where
        async with self._db.read() as session:
            return await objects.page(session, condition, start_index, count)

    async def _matches(self, connector: str, attr: str, text: str) -> list[StoredObject] | None:
        """The few objects an ``eq`` names, by SQLite's lookup or PostgreSQL's point
        reads; None when there are many, or neither can answer now."""
        if self._lookup is not None:
            try:
                return self._lookup.by_value(connector, attr, text)
            except sqlite3.OperationalError:  # busy: the async path waits for it
                return None
        if self._point_reads is not None:
            return await self._point_reads.by_value(connector, attr, text)
        return None

    async def iter_objects(self, connector: str) -> AsyncIterator[StoredObject]:
        async with self._db.read() as session:
            async for stored in objects.stream(session, connector):
                yield stored

    # -- SCIM writes ----------------------------------------------------------------

    async def create(
        self, connector: str, anchor: str | None, staging: Staging
    ) -> tuple[StoredObject, int | None]:
        def work(session: Session) -> tuple[StoredObject, int | None]:
            created = writes.create(session, connector, anchor, staging)
            if created is not None:
                return created
            if anchor is None:
                return _stage(session, objects.provisional(session, connector), staging)
            row = objects.by_anchor(session, connector, anchor)
            if row is not None and row.state == ObjectState.PRESENT:
                raise AnchorTakenError(anchor)
            if row is None:
                row = ObjectRow.empty(
                    objects.free_id(session, connector, anchor), connector, anchor
                )
                session.add(row)
                session.flush()
            return _stage(session, row, staging)

        return await self._writer.run(work)

    async def update(
        self, connector: str, object_id: str, decide: Callable[[StoredObject], Staging]
    ) -> tuple[StoredObject, int | None]:
        def work(session: Session) -> tuple[StoredObject, int | None]:
            before = writes.current(session, connector, object_id)
            staging = decide(before)
            rewritten = writes.rewrite(session, before, staging)
            if rewritten is not None:
                return rewritten
            row = session.get(ObjectRow, object_id)
            if row is None:  # read a moment ago, in this very transaction
                raise NotFoundError(object_id)
            return _stage(session, row, staging)

        return await self._writer.run(work)

    # -- full imports ---------------------------------------------------------------

    async def begin_run(self, connector: str, kind: RunKind) -> int:
        async with self._db.write() as session:
            return await runs.begin_run(session, connector, kind)

    async def finish_run(
        self, run_id: int, status: RunStatus, counts: Mapping[str, int], error: str | None = None
    ) -> None:
        async with self._db.write() as session:
            await runs.finish_run(session, run_id, status, counts, error)

    async def import_records(
        self, connector: str, run_id: int, records: Sequence[Record]
    ) -> Mapping[str, int]:
        return await self._db.write_retrying(
            lambda session: upsert_batch(
                session, connector, run_id, records, lambda a: object_id_for(connector, a)
            )
        )

    async def count_unseen(self, connector: str, run_id: int) -> tuple[int, int]:
        async with self._db.read() as session:
            return await runs.count_unseen(session, connector, run_id)

    async def has_history(self, connector: str) -> bool:
        async with self._db.read() as session:
            return await runs.has_history(session, connector)

    async def remove_unseen(self, connector: str, run_id: int) -> int:
        return await self._db.write_retrying(
            lambda session: runs.remove_unseen(session, connector, run_id)
        )

    async def analyze(self) -> None:
        async with self._db.write() as session:
            await runs.analyze(session)

    # -- delta imports ----------------------------------------------------------------

    async def watermark(self, connector: str) -> str | None:
        async with self._db.read() as session:
            return await watermarks.load(session, connector)

    async def save_watermark(self, connector: str, watermark: str) -> None:
        async with self._db.write() as session:
            await watermarks.save(session, connector, watermark)

    async def apply_delta(
        self, connector: str, run_id: int, batch: Sequence[Delta]
    ) -> Mapping[str, int]:
        """One batch of a delta import and its last watermark, in one transaction."""
        return await self._db.write_retrying(
            lambda session: deltas.apply_batch(session, connector, run_id, batch)
        )

    # -- health --------------------------------------------------------------------

    async def has_finished_import(self, connector: str) -> bool:
        async with self._db.read() as session:
            return await health.has_finished_import(session, connector)

    async def last_import(
        self, connector: str, kind: RunKind = RunKind.IMPORT
    ) -> ImportSummary | None:
        """The newest finished full import (``kind``: delta import) of ``connector``."""
        async with self._db.read() as session:
            return await health.last_import(session, connector, kind)

    async def queue_summary(self, connector: str) -> QueueSummary:
        async with self._db.read() as session:
            return await health.queue_summary(session, connector)

    # -- retention -------------------------------------------------------------------

    async def prune_finished(self, before: datetime, batch: int = retention.DEFAULT_BATCH) -> int:
        return await retention.prune_finished(self._db, before, batch)


def _stage(session: Session, row: ObjectRow, staging: Staging) -> tuple[StoredObject, int | None]:
    """The SCIM write's one transaction: the object's new state and its export event
    (an object hidden without export is forgotten)."""
    objects.stage(session, row, staging)
    event_id = None
    if staging.export is not None:
        payload = staging.exported if staging.exported is not None else staging.attributes
        # Flushed first (Core statements do not autoflush): a row the database
        # refuses fails the job before its export is queued.
        session.flush()
        event_id = writes.append_event(
            session, row.id, row.connector, row.anchor, staging.export, payload
        )
    elif not staging.visible:
        objects.forget(session, row)
    return StoredObject.from_row(row), event_id
