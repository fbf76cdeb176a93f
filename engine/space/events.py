"""The export queue's statements: a status column on ``export_events`` plus the
append-only ``event_log``; ``Events`` is the store's ``EventStore``.

Per object, events are claimed in id order; an object whose event is running holds
its later events back. A failed event is superseded by the object's next change (in
the transaction that queues it, or when the failure is recorded if one already
waits): that change exports the object's newest state, so nothing waits for the
failed one. Retry back-off is per object.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from ecmahost.engine.space import objects
from ecmahost.engine.space.claiming import (
    CLAIMED_EVENTS,
    DUE_OBJECTS,
    EXPIRED_LEASES,
    claim,
    mark,
    next_due,
)
from ecmahost.engine.space.contract import EventStore
from ecmahost.engine.space.erasure import erase_sealed, without_sealed
from ecmahost.engine.space.event_rows import state_of, view_of
from ecmahost.engine.space.json_lists import json_list
from ecmahost.engine.space.lookup import Lookup
from ecmahost.engine.space.models import EventLog, ExportEvent, utcnow
from ecmahost.engine.space.point_reads import PointReads
from ecmahost.engine.space.records import (
    Delivered,
    DueObject,
    EventState,
    EventView,
    Failure,
    LogEntry,
    OutcomeView,
    Retry,
)
from ecmahost.engine.space.sessions import Sessions
from ecmahost.engine.space.states import (
    WAITING_STATUSES,
    ErrorKind,
    EventStatus,
    LogStatus,
    Op,
)
from ecmahost.engine.space.writer import GroupWriter
from sqlalchemy import (
    ColumnElement,
    DateTime,
    Executable,
    Select,
    Text,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

__all__ = [
    "Events",
    "claimed_events",
    "due_objects",
    "expired_leases",
    "log_each",
    "supersede",
]

T = TypeVar("T")

_PENDING = EventStatus.PENDING
_OUTCOMES = (LogStatus.DONE, LogStatus.FAILED, LogStatus.DISCARDED, LogStatus.SUPERSEDED)
"""The log steps that end an attempt at an event, for ``recent_outcomes``."""


def due_objects(connector: str, limit: int) -> Select[Any]:
    """The objects a claim would take now (``claiming.DUE_OBJECTS``, its values bound)."""
    return DUE_OBJECTS.params(connector=connector, limit=limit, now=utcnow())


class Events(EventStore):
    """The queue on the space's sessions; an event's state is read by the lookup when
    there is one, claims and outcomes are written by the group writer when there is
    one."""

    def __init__(
        self,
        db: Sessions,
        lookup: Lookup | None = None,
        writer: GroupWriter | None = None,
        point_reads: PointReads | None = None,
    ) -> None:
        self._db = db
        self._lookup = lookup
        self._writer = writer
        self._point_reads = point_reads

    async def claim(self, connector: str, limit: int, lease_s: float) -> list[DueObject]:
        return await self._job(lambda session: claim(session, connector, limit, lease_s))

    async def next_due(self, connector: str) -> datetime | None:
        # A job of the group writer, like the claim it follows: a read through the
        # async driver cost the event loop more than the statement.
        return await self._job(lambda session: next_due(session, connector))

    async def record(
        self, done: Sequence[Delivered], failed: Sequence[Failure], retried: Sequence[Retry]
    ) -> None:
        if done or failed or retried:
            await self._job(lambda session: _record(session, done, failed, retried))

    async def _job(self, work: Callable[[Session], T]) -> T:
        """Run the queue's bookkeeping as one job of the group writer when there is
        one: a single hop to its thread, committed (fsync and all) with the SCIM
        writes of the same group, instead of a hop per statement through the async
        driver. Otherwise in a write transaction of its own."""
        if self._writer is not None:
            return await self._writer.run(work)
        async with self._db.write() as session:
            return await session.run_sync(work)

    async def recover(self) -> int:
        async with self._db.write() as session:
            result = await session.execute(
                update(ExportEvent)
                .where(ExportEvent.status == EventStatus.RUNNING)
                .values(status=_PENDING)
            )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def state(self, event_id: int) -> EventState | None:
        # Read by the lookup: sixteen sync-mode writers' reads through the async driver
        # kept as many worker threads fighting over the interpreter.
        if self._lookup is not None:
            try:
                found = self._lookup.event_state(event_id)
            except sqlite3.OperationalError:  # busy: the async path waits for it
                pass
            else:
                return None if found is None else state_of(*found)
        if self._point_reads is not None:
            found = await self._point_reads.event_state(event_id)
            return None if found is None else state_of(*found)
        async with self._db.read() as session:
            event = await session.get(ExportEvent, event_id)
        return None if event is None else state_of(event.status, event.last_error, event.error_kind)

    async def find(
        self,
        *,
        status: EventStatus | None = None,
        connector: str | None = None,
        ids: Sequence[int] | None = None,
        limit: int = 1000,
        after_id: int | None = None,
        since: datetime | None = None,
    ) -> list[EventView]:
        chosen = select(ExportEvent).order_by(ExportEvent.id).limit(limit)
        if after_id is not None:  # keyset paging: each page is one index range
            chosen = chosen.where(ExportEvent.id > after_id)
        if since is not None:
            chosen = chosen.where(ExportEvent.updated_at >= since)
        if status:
            chosen = chosen.where(ExportEvent.status == status)
        if connector:
            chosen = chosen.where(ExportEvent.connector == connector)
        if ids is not None:
            chosen = chosen.where(ExportEvent.id.in_(ids))
        async with self._db.read() as session:
            return [view_of(e) for e in (await session.scalars(chosen)).all()]

    async def history(self, event_id: int) -> list[LogEntry]:
        async with self._db.read() as session:
            rows = await session.scalars(
                select(EventLog).where(EventLog.event_id == event_id).order_by(EventLog.id)
            )
            return [LogEntry(LogStatus(r.status), r.detail, r.at) for r in rows]

    async def recent_outcomes(self, connector: str, limit: int = 50) -> list[OutcomeView]:
        # Read backwards along the log's primary key, which stops after ``limit`` rows of
        # this connector: no sort, however long the history.
        chosen = (
            select(
                EventLog.event_id,
                ExportEvent.anchor,
                ExportEvent.op,
                EventLog.status,
                EventLog.detail,
                EventLog.at,
            )
            .join(ExportEvent, ExportEvent.id == EventLog.event_id)
            .where(EventLog.connector == connector, EventLog.status.in_(_OUTCOMES))
            .order_by(EventLog.id.desc())
            .limit(limit)
        )
        async with self._db.read() as session:
            rows = (await session.execute(chosen)).all()
        return [
            OutcomeView(event_id, anchor, Op(op), LogStatus(status), detail, at)
            for event_id, anchor, op, status, detail, at in rows
        ]

    async def replay(self, ids: Sequence[int] | None) -> list[int]:
        async with self._db.write() as session:
            moved = await _move_failed(session, ids, _PENDING)
            for event in moved:
                if not await _has_newer(session, event):
                    await session.run_sync(
                        objects.restage,
                        event.object_id,
                        event.connector,
                        event.anchor,
                        Op(event.op),
                        # never None: failed events are not pruned; a password stays out
                        without_sealed(event.payload or {}),
                    )
        return [e.id for e in moved]

    async def discard(self, ids: Sequence[int]) -> list[int]:
        async with self._db.write() as session:
            moved = await _move_failed(session, ids, EventStatus.DISCARDED)
            erased = [e.id for e in moved]
            await session.run_sync(lambda sync: erase_sealed(sync, erased))
        return [e.id for e in moved]


def _record(
    session: Session, done: Sequence[Delivered], failed: Sequence[Failure], retried: Sequence[Retry]
) -> None:
    """``Events.record``'s statements, in the caller's transaction. Set-based where it
    counts: a backlog drains in batches of thousands, and per-event statements would
    take longer than the export itself."""
    if done:
        done_ids = [i for d in done for i in d.event_ids]
        mark(session, done_ids, EventStatus.DONE)
        # The target took the password: the queue keeps no copy of it.
        erase_sealed(session, done_ids, [d.object_id for d in done])
        for delivered in done:
            if delivered.assigned_to is not None:
                objects.bind(session, delivered, delivered.assigned_to)
        objects.confirm(session, done)
    for failure in failed:
        mark(session, failure.event_ids, EventStatus.FAILED, failure.error, failure.kind)
        newer = _first_waiting(session, failure.object_id)
        if newer is None:
            objects.settle_failed(session, failure.object_id)
        else:  # a change came while this one was exported: it goes next
            for statement in supersede(failure.object_id, newer):
                session.execute(statement)
    for retry in retried:
        mark(session, retry.event_ids, _PENDING, retry.error, ErrorKind.TRANSIENT)
        session.execute(
            update(ExportEvent)
            .where(ExportEvent.object_id == retry.object_id, ExportEvent.status == _PENDING)
            .values(next_attempt_at=retry.at)
        )


def claimed_events(object_ids: list[str]) -> Select[Any]:
    """The pending events of the claimed objects, oldest first (``claiming``'s)."""
    return CLAIMED_EVENTS.params(ids=json_list(object_ids))


def _log(
    session: AsyncSession | Session, event: ExportEvent, status: LogStatus, detail: str | None
) -> None:
    session.add(
        EventLog(
            event_id=event.id, connector=event.connector, status=status, detail=detail, at=utcnow()
        )
    )


def log_each(
    chosen: ColumnElement[bool], status: LogStatus, detail: str | None, at: datetime
) -> Executable:
    """One log entry for each event ``chosen`` selects, in one statement."""
    return insert(EventLog).from_select(
        ["event_id", "connector", "status", "detail", "at"],
        select(
            ExportEvent.id,
            ExportEvent.connector,
            literal(status.value, Text),
            literal(detail, Text),
            literal(at, DateTime),
        ).where(chosen),
    )


def expired_leases(connector: str) -> Select[Any]:
    """The running events whose worker's lease ran out (``claiming``'s)."""
    return EXPIRED_LEASES.params(connector=connector, now=utcnow())


def _first_waiting(session: Session, object_id: str) -> int | None:
    """The oldest change of the object that will still be exported (pending or
    running), if any."""
    chosen = select(func.min(ExportEvent.id)).where(
        ExportEvent.object_id == object_id, ExportEvent.status.in_(WAITING_STATUSES)
    )
    return session.scalar(chosen)


def supersede(object_id: str, by_event: int) -> tuple[Executable, Executable]:
    """The statements that mark the object's failed events superseded by event
    ``by_event``, logging the step; run in order (the log selects them while they
    are still failed). Their error stays: it tells why they failed."""
    chosen = (ExportEvent.object_id == object_id) & (ExportEvent.status == EventStatus.FAILED)
    now = utcnow()
    logged = log_each(chosen, LogStatus.SUPERSEDED, f"superseded by event {by_event}", now)
    moved = (
        update(ExportEvent)
        .where(chosen)
        .values(status=EventStatus.SUPERSEDED, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return logged, moved


async def _has_newer(session: AsyncSession, event: ExportEvent) -> bool:
    newer = await session.scalar(
        select(ExportEvent.id)
        .where(ExportEvent.object_id == event.object_id, ExportEvent.id > event.id)
        .limit(1)
    )
    return newer is not None


async def _move_failed(
    session: AsyncSession, ids: Sequence[int] | None, status: EventStatus
) -> list[ExportEvent]:
    """Failed events (of ``ids``, all when None) to ``status``, logged, in id order."""
    chosen = select(ExportEvent).where(ExportEvent.status == EventStatus.FAILED)
    if ids is not None:
        chosen = chosen.where(ExportEvent.id.in_(ids))
    events = list((await session.scalars(chosen.order_by(ExportEvent.id))).all())
    now = utcnow()
    for event in events:
        event.status, event.updated_at = status, now
        if status == _PENDING:
            event.attempts, event.next_attempt_at = 0, now
        _log(session, event, LogStatus.REPLAYED if status == _PENDING else LogStatus(status), None)
    return events
