"""The durable export queue: a status column on ``export_events`` plus the
append-only ``event_log``.

Per object, events are exported in id order and coalesced: a claim takes all of
an object's pending events and exports only the newest state. An object whose
earlier event failed is held back until that event is replayed or discarded, so
a later change never overtakes an earlier one. Retry back-off is per object.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from ecmahost.connectors.base import Change, ChangeKind
from ecmahost.engine.space.index import reindex
from ecmahost.engine.space.models import EventLog, ExportEvent, ObjectRow, utcnow
from sqlalchemy import (
    ColumnElement,
    DateTime,
    Row,
    Select,
    Table,
    Text,
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, aliased

__all__ = [
    "OPEN_STATUSES",
    "Claim",
    "EventView",
    "Outcome",
    "append_event",
    "claim",
    "discard",
    "history",
    "list_events",
    "mark_done",
    "mark_failed",
    "mark_retry",
    "next_due",
    "outcome_from",
    "outcome_of",
    "recover",
    "replay",
]

OPEN_STATUSES = ("pending", "running", "failed")
"""Statuses of an event whose object the target may not yet reflect."""


@dataclass(frozen=True, slots=True)
class Claim:
    """One object's claimed events, coalesced into the change to export."""

    connector: str
    object_id: str
    event_ids: tuple[int, ...]
    change: Change
    attempts: int


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of an event: ``done``, ``failed`` or ``retrying``."""

    status: str
    error: str | None = None
    error_kind: str | None = None


@dataclass(frozen=True, slots=True)
class EventView:
    id: int
    connector: str
    object_id: str
    anchor: str
    op: str
    status: str
    attempts: int
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    payload: dict[str, Any]

    @classmethod
    def from_row(cls, row: ExportEvent) -> EventView:
        return cls(
            row.id,
            row.connector,
            row.object_id,
            row.anchor,
            row.op,
            row.status,
            row.attempts,
            row.last_error,
            row.created_at,
            row.updated_at,
            dict(row.payload),
        )


def append_event(session: Session, row: ObjectRow, op: str, payload: Mapping[str, Any]) -> int:
    """Queue the object's staged state. A new event inherits the back-off of the
    object's pending ones, so it can never become due before them."""
    now = utcnow()
    due = session.scalar(
        select(ExportEvent.next_attempt_at)
        .where(ExportEvent.object_id == row.id, ExportEvent.status == "pending")
        .order_by(ExportEvent.next_attempt_at.desc())
        .limit(1)
    )
    event = ExportEvent(
        connector=row.connector,
        object_id=row.id,
        anchor=row.anchor,
        op=op,
        payload=dict(payload) if op == "upsert" else {},
        status="pending",
        attempts=0,
        next_attempt_at=max(now, due) if due else now,
        created_at=now,
        updated_at=now,
    )
    session.add(event)
    session.flush()
    _log(session, event, "pending", None)
    return event.id


def _log(
    session: Session | AsyncSession, event: ExportEvent, status: str, detail: str | None
) -> None:
    session.add(
        EventLog(
            event_id=event.id, connector=event.connector, status=status, detail=detail, at=utcnow()
        )
    )


async def claim(
    session: AsyncSession, connector: str, limit: int, lease_s: float = 300.0
) -> list[Claim]:
    """Mark the due events of up to ``limit`` objects running for ``lease_s`` and
    return them, one coalesced change per object. Objects held behind a failed or
    running event wait; running events whose lease ran out (their worker died) are
    claimable again."""
    await _reclaim_expired(session, connector)
    object_ids = list((await session.scalars(due_objects(connector, limit))).all())
    if not object_ids:
        return []
    # Plain rows, not ORM objects: a backlog is claimed thousands at a time.
    events = (
        await session.execute(
            select(*_CLAIMED)
            .where(ExportEvent.object_id.in_(_among(object_ids)), ExportEvent.status == "pending")
            .order_by(ExportEvent.id)
        )
    ).all()
    lease_until = utcnow() + timedelta(seconds=lease_s)
    await session.execute(
        update(ExportEvent)
        .where(ExportEvent.id.in_(_among([e.id for e in events])))
        .values(status="running", lease_until=lease_until)
    )
    held = await _target_anchors(session, object_ids)
    by_object: dict[str, list[Row[Any]]] = {}
    for event in events:
        by_object.setdefault(event.object_id, []).append(event)
    return [_coalesce(oid, evs, held.get(oid)) for oid, evs in by_object.items()]


def _among(values: Iterable[Any]) -> Select[tuple[Any]]:
    """``values`` as a subquery for ``IN``: one JSON parameter instead of one bound
    parameter per value, which SQLAlchemy would coerce one by one (thousands for a
    batch) and compile anew for every length."""
    each = func.json_each(json.dumps(list(values))).table_valued("value")
    return select(each.c.value)


_CLAIMED = (
    ExportEvent.id,
    ExportEvent.connector,
    ExportEvent.object_id,
    ExportEvent.anchor,
    ExportEvent.op,
    ExportEvent.payload,
    ExportEvent.attempts,
)


def due_objects(connector: str, limit: int) -> Select[str]:
    """The objects with a due pending event, oldest first (no object starves), except
    those held behind a failed or running event."""
    return (
        select(ExportEvent.object_id)
        .where(
            ExportEvent.connector == connector,
            ExportEvent.status == "pending",
            ExportEvent.next_attempt_at <= utcnow(),
            ~_blocked(),
        )
        .group_by(ExportEvent.object_id)
        .order_by(func.min(ExportEvent.id))
        .limit(limit)
    )


def _blocked() -> ColumnElement[bool]:
    """The event's object waits behind a failed or running event."""
    blocker = aliased(ExportEvent)
    return exists().where(
        blocker.object_id == ExportEvent.object_id,
        blocker.status.in_(("failed", "running")),
    )


async def next_due(session: AsyncSession, connector: str) -> datetime | None:
    """When the earliest claimable event becomes due (may be in the past)."""
    return await session.scalar(
        select(func.min(ExportEvent.next_attempt_at)).where(
            ExportEvent.connector == connector, ExportEvent.status == "pending", ~_blocked()
        )
    )


async def _reclaim_expired(session: AsyncSession, connector: str) -> None:
    expired = (
        await session.scalars(
            select(ExportEvent).where(
                ExportEvent.connector == connector,
                ExportEvent.status == "running",
                ExportEvent.lease_until < utcnow(),
            )
        )
    ).all()
    for event in expired:
        event.status = "pending"
        _log(session, event, "reclaimed", "the worker's lease ran out")


async def _target_anchors(session: AsyncSession, object_ids: list[str]) -> dict[str, str]:
    """The anchor the target holds each object under, for those it holds."""
    rows = await session.execute(
        select(ObjectRow.id, ObjectRow.target_anchor).where(
            ObjectRow.id.in_(_among(object_ids)), ObjectRow.target_anchor.is_not(None)
        )
    )
    return {object_id: str(anchor) for object_id, anchor in rows}


def _coalesce(object_id: str, events: list[Row[Any]], held_as: str | None) -> Claim:
    """The one change that takes the target from what it holds (under ``held_as``,
    None if nothing) to the newest staged state."""
    last = events[-1]
    if last.op == "delete":
        change = Change(ChangeKind.DELETE, held_as or last.anchor)
    elif held_as is None:
        change = Change(ChangeKind.ADD, last.anchor, dict(last.payload))
    else:
        renamed_from = held_as if held_as != last.anchor else None
        change = Change(ChangeKind.REPLACE, last.anchor, dict(last.payload), renamed_from)
    attempts = max(e.attempts for e in events)
    return Claim(last.connector, object_id, tuple(e.id for e in events), change, attempts)


async def mark_done(session: AsyncSession, claims: Iterable[Claim]) -> None:
    """The target took these changes: record what it now holds. The SCIM view was
    staged before the export (or re-staged by a replay) and stays as it is.

    Set-based, a handful of statements for the whole batch: a backlog drains in
    batches of thousands, and per-claim statements would take longer than the
    export itself."""
    claims = list(claims)
    if not claims:
        return
    await _set_status(session, [i for c in claims for i in c.event_ids], "done", None, None)
    held = [
        {"row": c.object_id, "held": dict(c.change.attributes), "under": c.change.anchor}
        for c in claims
        if c.change.kind is not ChangeKind.DELETE
    ]
    if held:  # Core, not the ORM's bulk update: a row deleted meanwhile is no error
        objects = cast(Table, ObjectRow.__table__)
        await session.execute(
            update(objects)
            .where(objects.c.id == bindparam("row"))
            .values(confirmed=bindparam("held"), target_anchor=bindparam("under")),
            held,
        )
    gone = [c.object_id for c in claims if c.change.kind is ChangeKind.DELETE]
    if gone:
        await session.execute(
            update(ObjectRow)
            .where(ObjectRow.id.in_(_among(gone)))
            .values(confirmed=None, target_anchor=None)
        )
        # A hidden object the target no longer holds is forgotten, unless another
        # change of it waits (its row carries what that change staged).
        waiting = exists().where(
            ExportEvent.object_id == ObjectRow.id,
            ExportEvent.status.in_(("pending", "running")),
        )
        await session.execute(
            delete(ObjectRow).where(
                ObjectRow.id.in_(_among(gone)), ObjectRow.state != "present", ~waiting
            )
        )


async def mark_failed(session: AsyncSession, claims: Iterable[tuple[Claim, str, str]]) -> None:
    """These changes failed for good (``(claim, message, kind)``). The object shows
    what the target still holds, so Entra sees the change as not done."""
    for item, message, kind in claims:
        await _set_status(session, item.event_ids, "failed", message, kind)
        row = await session.get(ObjectRow, item.object_id)
        if row is None or await _has_pending(session, item.object_id):
            continue
        if row.confirmed is None or row.target_anchor is None:
            await session.delete(row)
        elif await _anchor_free(session, row, row.target_anchor):
            row.anchor = row.target_anchor  # a failed rename: back to the target's anchor
            await _settle(session, row, row.confirmed)


async def _anchor_free(session: AsyncSession, row: ObjectRow, anchor: str) -> bool:
    other = await session.scalar(
        select(ObjectRow.id).where(
            ObjectRow.connector == row.connector, ObjectRow.anchor == anchor, ObjectRow.id != row.id
        )
    )
    return other is None


async def _settle(
    session: AsyncSession, row: ObjectRow, attributes: dict[str, Any], state: str = "present"
) -> None:
    """Make the SCIM view of ``row`` these attributes and state."""
    if row.attributes != attributes or row.state != state:
        row.attributes, row.state = dict(attributes), state
        row.version += 1
        row.updated_at = utcnow()
        await session.run_sync(reindex, row)


async def mark_retry(session: AsyncSession, item: Claim, message: str, retry_at: datetime) -> None:
    """A transient failure: back to pending, and the whole object waits until ``retry_at``."""
    await _set_status(session, item.event_ids, "pending", message, "transient")
    await session.execute(
        update(ExportEvent)
        .where(ExportEvent.object_id == item.object_id, ExportEvent.status == "pending")
        .values(next_attempt_at=retry_at)
    )


async def _set_status(
    session: AsyncSession,
    event_ids: Sequence[int],
    status: str,
    error: str | None,
    error_kind: str | None,
) -> None:
    values: dict[str, Any] = {"status": status, "updated_at": utcnow()}
    if error is not None:
        values |= {"last_error": error, "error_kind": error_kind}
        values["attempts"] = ExportEvent.attempts + 1
    elif status == "done":
        values["attempts"] = ExportEvent.attempts + 1
    chosen = ExportEvent.id.in_(_among(event_ids))
    await session.execute(update(ExportEvent).where(chosen).values(values))
    logged = status if error_kind != "transient" else "retrying"
    await session.execute(
        insert(EventLog).from_select(
            ["event_id", "connector", "status", "detail", "at"],
            select(
                ExportEvent.id,
                ExportEvent.connector,
                literal(logged),
                literal(error, Text),
                literal(values["updated_at"], DateTime),
            ).where(chosen),
        )
    )


async def _has_pending(session: AsyncSession, object_id: str) -> bool:
    stmt = select(ExportEvent.id).where(
        ExportEvent.object_id == object_id, ExportEvent.status.in_(("pending", "running"))
    )
    return (await session.scalar(stmt.limit(1))) is not None


async def recover(session: AsyncSession) -> int:
    """At start-up: events left running by a process that died go back to pending."""
    result = await session.execute(
        update(ExportEvent).where(ExportEvent.status == "running").values(status="pending")
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def outcome_of(session: AsyncSession, event_id: int) -> Outcome | None:
    """The event's outcome if it has one yet (done, failed, or a failed attempt)."""
    event = await session.get(ExportEvent, event_id)
    if event is None:
        return outcome_from(event_id, None)
    return outcome_from(event_id, (event.status, event.last_error, event.error_kind))


def outcome_from(event_id: int, found: tuple[str, str | None, str | None] | None) -> Outcome | None:
    """The outcome an event's (status, last error, error kind) tells, if any yet."""
    if found is None:
        return Outcome("failed", f"export event {event_id} not found")
    status, last_error, error_kind = found
    if status in ("done", "failed", "discarded"):
        return Outcome(status, last_error, error_kind)
    if error_kind == "transient":
        return Outcome("retrying", last_error, "transient")
    return None


async def list_events(
    session: AsyncSession,
    *,
    status: str | None = None,
    connector: str | None = None,
    ids: Sequence[int] | None = None,
    limit: int = 1000,
) -> list[EventView]:
    stmt = select(ExportEvent).order_by(ExportEvent.id).limit(limit)
    if status:
        stmt = stmt.where(ExportEvent.status == status)
    if connector:
        stmt = stmt.where(ExportEvent.connector == connector)
    if ids is not None:
        stmt = stmt.where(ExportEvent.id.in_(ids))
    return [EventView.from_row(e) for e in (await session.scalars(stmt)).all()]


async def replay(session: AsyncSession, ids: Sequence[int] | None) -> list[int]:
    """Failed events (these, or all when ``ids`` is None) go back to pending now, and
    an object whose newest event is replayed shows that event's state again."""
    moved = await _move_failed(session, ids, "pending")
    for event in await session.scalars(select(ExportEvent).where(ExportEvent.id.in_(moved))):
        await _restage(session, event)
    return moved


async def _restage(session: AsyncSession, event: ExportEvent) -> None:
    newer = await session.scalar(
        select(ExportEvent.id)
        .where(ExportEvent.object_id == event.object_id, ExportEvent.id > event.id)
        .limit(1)
    )
    if newer is not None:
        return
    row = await session.get(ObjectRow, event.object_id)
    if row is None:  # a failed create's object was dropped: bring it back
        row = ObjectRow.empty(event.object_id, event.connector, event.anchor)
        session.add(row)
        await session.flush()
    if event.op == "delete":
        await _settle(session, row, row.attributes, "deleted")
        return
    if row.anchor != event.anchor and await _anchor_free(session, row, event.anchor):
        row.anchor = event.anchor  # a replayed rename
    await _settle(session, row, dict(event.payload), "present")


async def discard(session: AsyncSession, ids: Sequence[int]) -> list[int]:
    """Failed events are given up on; they stay listed as ``discarded``."""
    return await _move_failed(session, ids, "discarded")


async def _move_failed(session: AsyncSession, ids: Sequence[int] | None, status: str) -> list[int]:
    condition = ExportEvent.status == "failed"
    if ids is not None:
        condition = and_(condition, ExportEvent.id.in_(ids))
    events = list((await session.scalars(select(ExportEvent).where(condition))).all())
    now = utcnow()
    for event in events:
        event.status, event.updated_at = status, now
        if status == "pending":
            event.attempts, event.next_attempt_at = 0, now
        _log(session, event, "replayed" if status == "pending" else status, None)
    return [e.id for e in events]


def backoff_until(delay_s: float) -> datetime:
    return utcnow() + timedelta(seconds=delay_s)


async def history(session: AsyncSession, event_id: int) -> list[dict[str, Any]]:
    """The event's state changes, oldest first, from the append-only log."""
    rows = await session.scalars(
        select(EventLog).where(EventLog.event_id == event_id).order_by(EventLog.id)
    )
    return [{"status": r.status, "detail": r.detail, "at": r.at.isoformat()} for r in rows]
