"""The rows a SCIM write inserts (group-writer jobs): a create's object, its
value-index rows and the export event of every write.

Core statements built once, at import: SQLAlchemy then finds a request's compiled
form by the statement object's cached key instead of building and hashing a new
statement tree per request, and no ORM object is constructed, flushed and expired
for rows that are only inserted. A create of an anchor no object holds inserts each
row once; anything else (a hidden object to reuse, a rename) stages through the ORM
(``objects.stage``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, cast

from ecmahost.engine.space.events import supersede
from ecmahost.engine.space.index import INSERT_ROWS, index_rows
from ecmahost.engine.space.models import EventLog, ExportEvent, ObjectRow, utcnow
from ecmahost.engine.space.records import Staging, object_id_for, pending_anchor
from ecmahost.engine.space.states import EventStatus, LogStatus, ObjectState, Op
from ecmahost.engine.space.stored import StoredObject
from sqlalchemy import CursorResult, Row, Table, bindparam, insert, select
from sqlalchemy.orm import Session

__all__ = ["append_event", "create"]

_OBJECTS = cast(Table, ObjectRow.__table__)
_EVENTS = cast(Table, ExportEvent.__table__)
_LOG = cast(Table, EventLog.__table__)

_HOLDER = select(_OBJECTS.c.id).where(
    _OBJECTS.c.connector == bindparam("connector"), _OBJECTS.c.anchor == bindparam("anchor")
)
_ID_TAKEN = select(_OBJECTS.c.id).where(_OBJECTS.c.id == bindparam("id"))
_WAITING_OR_FAILED = select(_EVENTS.c.status, _EVENTS.c.next_attempt_at).where(
    _EVENTS.c.object_id == bindparam("object_id"),
    _EVENTS.c.status.in_([EventStatus.PENDING.value, EventStatus.FAILED.value]),
)
_INSERT_OBJECT = insert(_OBJECTS)
_INSERT_VALUES = INSERT_ROWS  # each row under its object's serial
_INSERT_EVENT = insert(_EVENTS)
_INSERT_LOG = insert(_LOG)


def create(
    session: Session, connector: str, anchor: str | None, staging: Staging
) -> tuple[StoredObject, int | None] | None:
    """Insert a new visible object and queue its export; None (nothing written) when
    the create is not that simple: an object holds ``anchor`` (a hidden one is reused
    by the ORM path, a visible one refused there), or the staging renames, hides or
    does not export."""
    if staging.export is None or not staging.visible:
        return None
    if anchor is None:  # the target assigns it: a fresh id, which no event can name yet
        if staging.anchor is not None:
            return None
        object_id = str(uuid.uuid4())
        anchor, fresh = pending_anchor(object_id), True
    else:
        if staging.anchor not in (None, anchor):
            return None
        if session.execute(_HOLDER, {"connector": connector, "anchor": anchor}).first():
            return None
        object_id = _free_id(session, connector, anchor)
        fresh = False
    now = utcnow()
    attributes = dict(staging.attributes)
    session.execute(
        _INSERT_OBJECT,
        {
            "id": object_id,
            "connector": connector,
            "anchor": anchor,
            "attributes": attributes,
            "confirmed": None,
            "state": ObjectState.PRESENT.value,
            "external_id": staging.external_id,
            "version": 1,
            "created_at": now,
            "updated_at": now,
        },
    )
    values = index_rows(object_id, connector, attributes)
    if values:
        session.execute(_INSERT_VALUES, values)
    payload = staging.exported if staging.exported is not None else attributes
    event_id = append_event(session, object_id, connector, anchor, staging.export, payload, fresh)
    stored = StoredObject(
        object_id, connector, anchor, attributes, True, 1, now, now, staging.external_id
    )
    return stored, event_id


def _free_id(session: Session, connector: str, anchor: str) -> str:
    """The anchor's derived id, unless an object renamed away from it still has it."""
    derived = object_id_for(connector, anchor)
    taken = session.execute(_ID_TAKEN, {"id": derived}).first()
    return derived if taken is None else str(uuid.uuid4())


def append_event(
    session: Session,
    object_id: str,
    connector: str,
    anchor: str,
    op: Op,
    payload: Mapping[str, Any],
    fresh: bool = False,
) -> int:
    """Queue the object's staged state. A new event inherits the back-off of the
    object's pending ones, so it can never become due before them, and supersedes the
    object's failed events: it carries the object's whole newest state, so they no
    longer hold it back. ``fresh``: the object's id is new, so it has no events."""
    now = utcnow()
    # One look at the object's waiting and failed events (mostly none) serves both
    # rules, so a write that has nothing to supersede pays no statement for it.
    waiting = [] if fresh else session.execute(_WAITING_OR_FAILED, {"object_id": object_id}).all()
    due = max((at for status, at in waiting if status == EventStatus.PENDING), default=None)
    inserted = session.execute(
        _INSERT_EVENT,
        {
            "connector": connector,
            "object_id": object_id,
            "anchor": anchor,
            "op": op.value,
            "payload": dict(payload) if op == Op.UPSERT else {},
            "status": EventStatus.PENDING.value,
            "attempts": 0,
            "next_attempt_at": max(now, due) if due else now,
            "created_at": now,
            "updated_at": now,
        },
    )
    key = cast(CursorResult[Any], inserted).inserted_primary_key  # a single row's: never None
    event_id = int(cast(Row[Any], key)[0])
    session.execute(
        _INSERT_LOG,
        {
            "event_id": event_id,
            "connector": connector,
            "status": LogStatus.PENDING.value,
            "detail": None,
            "at": now,
        },
    )
    if any(status == EventStatus.FAILED for status, _ in waiting):
        for statement in supersede(object_id, event_id):
            session.execute(statement)
    return event_id
