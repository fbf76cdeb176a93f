"""The export queue's hot statements, built once: a claim's, and the status step a
batch's outcome records (group-writer jobs, on a synchronous session).

In sync mode every SCIM write is claimed and recorded within its own request, often
a batch of one: a statement tree built, hashed and coerced per call cost more than
running it, and so did running a built one through the session. Values are bound
parameters (``ids`` a JSON list, see ``objects.among``), so each statement is
compiled once per database and sent to the driver (``driver.Prepared``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from ecmahost.engine.space.driver import Prepared, driver_of, moment
from ecmahost.engine.space.event_rows import CLAIMED, queued
from ecmahost.engine.space.json_lists import json_list, listed
from ecmahost.engine.space.models import EventLog, ExportEvent, ObjectRow, utcnow
from ecmahost.engine.space.plans import EVENTS_DUE, EVENTS_OF_OBJECT, OBJECTS_BY_ID, indexed_by
from ecmahost.engine.space.records import DueObject, QueuedEvent
from ecmahost.engine.space.states import BLOCKING_STATUSES, ErrorKind, EventStatus, LogStatus
from sqlalchemy import (
    DateTime,
    Integer,
    Select,
    Table,
    Text,
    bindparam,
    exists,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session, aliased
from sqlalchemy.types import TypeEngine

__all__ = [
    "CLAIMED_EVENTS",
    "DUE_OBJECTS",
    "EXPIRED_LEASES",
    "NEXT_DUE",
    "claim",
    "mark",
    "next_due",
]

_EVENTS = cast(Table, ExportEvent.__table__)
_LOG = cast(Table, EventLog.__table__)
_OBJECTS = cast(Table, ObjectRow.__table__)
_PENDING = EventStatus.PENDING.value


def _among(name: str, type_: TypeEngine[Any] | None = None) -> Select[Any]:
    """The values of the JSON list bound as ``name``, as a subquery for ``IN``."""
    return listed(bindparam(name, type_=Text), type_)


def _blocker() -> Any:
    """The event's object waits behind a running event, or a failed one that no
    newer event superseded (held until replayed or discarded)."""
    blocker = aliased(_EVENTS)
    held = select(blocker.c.id).where(
        blocker.c.object_id == _EVENTS.c.object_id,
        # not ``in_``: its list is expanded at each execution, and ``Prepared`` sends
        # the text compiled once
        or_(*(blocker.c.status == s.value for s in BLOCKING_STATUSES)),
    )
    return exists(indexed_by(held, blocker, EVENTS_OF_OBJECT))


DUE_OBJECTS = indexed_by(
    select(_EVENTS.c.object_id)
    .where(
        _EVENTS.c.connector == bindparam("connector", type_=Text),
        _EVENTS.c.status == _PENDING,
        _EVENTS.c.next_attempt_at <= bindparam("now", type_=DateTime),
        ~_blocker(),
    )
    .group_by(_EVENTS.c.object_id)
    .order_by(func.min(_EVENTS.c.id))
    .limit(bindparam("limit", type_=Integer)),
    _EVENTS,
    EVENTS_DUE,
)
"""The objects with a due pending event, oldest first (no object starves), except
those held behind a running or failed event."""

CLAIMED_EVENTS = indexed_by(
    select(*(_EVENTS.c[c.key] for c in CLAIMED))
    .where(_EVENTS.c.object_id.in_(_among("ids")), _EVENTS.c.status == _PENDING)
    .order_by(_EVENTS.c.id),
    _EVENTS,
    EVENTS_OF_OBJECT,
)
"""The pending events of the claimed objects (``ids``), oldest first."""

NEXT_DUE = select(func.min(_EVENTS.c.next_attempt_at)).where(
    _EVENTS.c.connector == bindparam("connector", type_=Text),
    _EVENTS.c.status == _PENDING,
    ~_blocker(),
)
"""When the earliest claimable event of ``connector`` becomes due: the export worker
asks each time it finds nothing to claim."""

EXPIRED_LEASES = indexed_by(
    select(_EVENTS.c.id)
    .where(
        _EVENTS.c.connector == bindparam("connector", type_=Text),
        _EVENTS.c.status == EventStatus.RUNNING.value,
        _EVENTS.c.lease_until < bindparam("now", type_=DateTime),
    )
    .with_for_update(skip_locked=True),  # PostgreSQL: one host reclaims each (SQLite: no-op)
    _EVENTS,
    EVENTS_DUE,
)
"""The running events whose worker's lease ran out."""

_RUN = (
    update(_EVENTS)
    .where(_EVENTS.c.id.in_(_among("ids", Integer())))
    .values(status=EventStatus.RUNNING.value, lease_until=bindparam("lease_until"))
)
_HELD = indexed_by(
    select(_OBJECTS.c.id, _OBJECTS.c.target_anchor).where(
        _OBJECTS.c.id.in_(_among("ids")), _OBJECTS.c.target_anchor.is_not(None)
    ),
    _OBJECTS,
    OBJECTS_BY_ID,
)
_CHOSEN = _EVENTS.c.id.in_(_among("ids", Integer()))
_STEP = (
    update(_EVENTS)
    .where(_CHOSEN)
    .values(status=bindparam("status"), updated_at=bindparam("at"), attempts=_EVENTS.c.attempts + 1)
)
_FAILED_STEP = _STEP.values(last_error=bindparam("error"), error_kind=bindparam("kind"))
_LOG_STEP = insert(_LOG).from_select(
    ["event_id", "connector", "status", "detail", "at"],
    select(
        _EVENTS.c.id,
        _EVENTS.c.connector,
        bindparam("logged", type_=Text),
        bindparam("error", type_=Text),
        bindparam("at", type_=DateTime),
    ).where(_CHOSEN),
)

_RESET = update(_EVENTS).where(_CHOSEN).values(status=_PENDING)

_SEND_EXPIRED, _SEND_DUE, _SEND_CLAIMED = (
    Prepared(EXPIRED_LEASES),
    Prepared(DUE_OBJECTS),
    Prepared(CLAIMED_EVENTS),
)
_SEND_RUN, _SEND_HELD, _SEND_RESET = Prepared(_RUN), Prepared(_HELD), Prepared(_RESET)
_SEND_NEXT_DUE = Prepared(NEXT_DUE)
_SEND_STEP, _SEND_FAILED_STEP, _SEND_LOG_STEP = (
    Prepared(_STEP),
    Prepared(_FAILED_STEP),
    Prepared(_LOG_STEP),
)


# On a shared (PostgreSQL) space other hosts claim at the same time. Each object is
# taken under a transaction-scoped advisory lock, skipped when another claim holds
# it, and looked at again once held: a statement run after the lock sees every claim
# committed before it, so an object whose events another host runs is held back, and
# one object's events never run on two hosts at once nor out of order. (A lock on the
# object's row would do too, but an event's object row is not bound to exist.)
_TAKE_OBJECTS = text(
    "SELECT oid FROM json_array_elements_text(CAST(:ids AS json)) AS oid "
    "WHERE pg_try_advisory_xact_lock(1, hashtext(oid))"
)
_STILL_DUE = DUE_OBJECTS.where(_EVENTS.c.object_id.in_(_among("ids")))


def _exclusive(session: Session, due: dict[str, Any], object_ids: list[str]) -> list[str]:
    """Those of the due ``object_ids`` this transaction holds and that are still due."""
    taken = list(session.scalars(_TAKE_OBJECTS, {"ids": json_list(object_ids)}))
    if not taken:
        return []
    return list(session.scalars(_STILL_DUE, {**due, "ids": json_list(taken)}))


def claim(session: Session, connector: str, limit: int, lease_s: float) -> list[DueObject]:
    """``EventStore.claim``'s statements, in the caller's transaction."""
    now = utcnow()
    db = driver_of(session)
    expired = [r[0] for r in _SEND_EXPIRED.rows(db, {"connector": connector, "now": now})]
    if expired:
        at = {"ids": json_list(expired), "at": now, "error": "the worker's lease ran out"}
        _SEND_LOG_STEP.run(db, {**at, "logged": LogStatus.RECLAIMED.value})
        _SEND_RESET.run(db, at)
    due = {"connector": connector, "limit": limit, "now": now}
    object_ids = [r[0] for r in _SEND_DUE.rows(db, due)]
    if object_ids and session.get_bind().dialect.name == "postgresql":
        object_ids = _exclusive(session, due, object_ids)
    if not object_ids:
        return []
    objects = json_list(object_ids)
    # Plain rows, not ORM objects: a backlog is claimed thousands at a time.
    rows = [queued(r) for r in _SEND_CLAIMED.rows(db, {"ids": objects})]
    lease_until = now + timedelta(seconds=lease_s)
    _SEND_RUN.run(db, {"ids": json_list([r.id for r in rows]), "lease_until": lease_until})
    held = {oid: str(anchor) for oid, anchor in _SEND_HELD.rows(db, {"ids": objects})}
    by_object: dict[str, list[QueuedEvent]] = {}
    for event in rows:
        by_object.setdefault(event.object_id, []).append(event)
    return [DueObject(oid, tuple(evs), held.get(oid)) for oid, evs in by_object.items()]


def next_due(session: Session, connector: str) -> datetime | None:
    """``EventStore.next_due``'s statement, in the caller's transaction."""
    [(due,)] = _SEND_NEXT_DUE.rows(driver_of(session), {"connector": connector})
    return None if due is None else moment(due)


def mark(
    session: Session,
    event_ids: Sequence[int],
    status: EventStatus,
    error: str | None = None,
    error_kind: ErrorKind | None = None,
) -> None:
    """Move the events to ``status``, counting the attempt that got them there, and
    log the step (the log first: it selects the events by id, whatever their status):
    a pending one with an error is a retry."""
    logged = LogStatus.RETRYING if status == EventStatus.PENDING else LogStatus(status)
    values: dict[str, Any] = {"ids": json_list(event_ids), "status": status.value, "at": utcnow()}
    values |= {"logged": logged.value, "error": error}
    db = driver_of(session)
    _SEND_LOG_STEP.run(db, values)
    if error is None:
        _SEND_STEP.run(db, values)
    else:
        kind = None if error_kind is None else error_kind.value
        _SEND_FAILED_STEP.run(db, {**values, "kind": kind})
