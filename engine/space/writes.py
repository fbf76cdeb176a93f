"""The rows a SCIM write writes (group-writer jobs): a create's object, a replace's or
a delete's new state, their value-index rows and the export event of every write.

Every row goes straight to the driver (``sqlite3``) of the session's transaction as
SQL text and plain tuples (on PostgreSQL, through ``exec_driver_sql``, which asyncpg
prepares once per text): sqlite3 keeps each text's prepared statement, and the
request pays neither SQLAlchemy's compilation lookup, nor its per-parameter type
processing, nor its execution context and result set-up (together ~0.1 ms of CPU per
statement, several times what SQLite spends). No ORM object is made for a row that
is only inserted or rewritten. A create of an anchor no object
holds inserts each row once, a replace or a delete rewrites the object's row by its
id; anything else (a hidden object to reuse, a rename) stages through the ORM
(``objects.stage``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from ecmahost.engine.exceptions import NotFoundError
from ecmahost.engine.space.driver import (
    Db,
    as_sqlalchemy,
    driver_of,
    json_text,
    moment,
    stored_time,
)
from ecmahost.engine.space.events import supersede
from ecmahost.engine.space.index import changed_attributes, entries
from ecmahost.engine.space.models import NEXT_SERIAL_SQLITE, utcnow
from ecmahost.engine.space.records import Staging, object_id_for, pending_anchor
from ecmahost.engine.space.states import EventStatus, LogStatus, ObjectState, Op
from ecmahost.engine.space.stored import StoredObject
from sqlalchemy.orm import Session

__all__ = ["append_event", "create", "current", "rewrite"]

# The value index is keyed by the object's serial (see ``ObjectValue``).
_CLEAR_VALUES = (
    "DELETE FROM object_values WHERE object_values.object_serial = "
    "(SELECT objects.serial FROM objects WHERE objects.id = ?)"
)
_CLEAR_ATTRIBUTE = _CLEAR_VALUES + " AND object_values.attr = ?"
_INSERT_VALUE = (
    "INSERT INTO object_values (object_serial, attr, connector, value) "
    "SELECT objects.serial, ?, ?, ? FROM objects WHERE objects.id = ?"
)

_PRESENT, _DELETED = ObjectState.PRESENT.value, ObjectState.DELETED.value
_HOLDER = "SELECT objects.id FROM objects WHERE objects.connector = ? AND objects.anchor = ?"
_ID_TAKEN = "SELECT objects.id FROM objects WHERE objects.id = ?"
_CURRENT = (
    "SELECT objects.id, objects.connector, objects.anchor, objects.attributes, "
    "objects.version, objects.created_at, objects.updated_at, objects.external_id, "
    "objects.state FROM objects WHERE objects.id = ?"
)
# ``serial``: the next number, taken in the INSERT itself under the write lock (as
# the model's default does for the ORM's inserts).
_INSERT_OBJECT = (
    "INSERT INTO objects (id, connector, anchor, attributes, confirmed, state, "
    "external_id, version, created_at, updated_at, serial) VALUES (?, ?, ?, ?, NULL, ?, ?, 1, "
    f"?, ?, {NEXT_SERIAL_SQLITE})"
)
_REWRITE = (
    "UPDATE objects SET attributes = ?, state = ?, external_id = ?, version = ?, "
    "updated_at = ? WHERE objects.id = ?"
)
_FORGET = "DELETE FROM objects WHERE objects.id = ?"
_WAITING_OR_FAILED = (
    "SELECT export_events.status, export_events.next_attempt_at FROM export_events "
    "WHERE export_events.object_id = ? AND export_events.status IN (?, ?)"
)
_INSERT_EVENT = (
    "INSERT INTO export_events (connector, object_id, anchor, op, payload, status, "
    "attempts, next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?) "
    "RETURNING id"
)
_INSERT_LOG = (
    "INSERT INTO event_log (event_id, connector, status, detail, at) VALUES (?, ?, ?, NULL, ?)"
)
_PENDING, _FAILED = EventStatus.PENDING.value, EventStatus.FAILED.value


def _index(db: Db, object_id: str, connector: str, indexed: Iterable[tuple[str, str]]) -> None:
    """The object's index rows ``indexed`` ((attribute, text) pairs), in one executemany."""
    rows = [(attr, connector, text, object_id) for attr, text in indexed]
    if rows:
        db.executemany(_INSERT_VALUE, rows)


def _reindex(db: Db, before: StoredObject, attributes: Mapping[str, Any]) -> None:
    """Rewrite the index rows of the attributes that changed since ``before``; the
    rows of the others stay as they are."""
    changed, indexed = changed_attributes(before.attributes, attributes)
    if changed:
        db.executemany(_CLEAR_ATTRIBUTE, [(before.id, attr) for attr in changed])
    _index(db, before.id, before.connector, indexed)


@as_sqlalchemy
def create(
    session: Session, connector: str, anchor: str | None, staging: Staging
) -> tuple[StoredObject, int | None] | None:
    """Insert a new visible object and queue its export; None (nothing written) when
    the create is not that simple: an object holds ``anchor`` (a hidden one is reused
    by the ORM path, a visible one refused there), or the staging renames, hides or
    does not export."""
    if staging.export is None or not staging.visible:
        return None
    db = driver_of(session)
    if anchor is None:  # the target assigns it: a fresh id, which no event can name yet
        if staging.anchor is not None:
            return None
        object_id = str(uuid.uuid4())
        anchor, fresh = pending_anchor(object_id), True
    else:
        if staging.anchor not in (None, anchor):
            return None
        if db.execute(_HOLDER, (connector, anchor)).fetchone():
            return None
        object_id = _free_id(db, connector, anchor)
        fresh = False
    now = utcnow()
    at = stored_time(db, now)
    attributes = dict(staging.attributes)
    db.execute(
        _INSERT_OBJECT,
        (
            object_id,
            connector,
            anchor,
            json_text(attributes),
            _PRESENT,
            staging.external_id,
            at,
            at,
        ),
    )
    _index(db, object_id, connector, entries(attributes))
    payload = staging.exported if staging.exported is not None else attributes
    event_id = _append(db, session, object_id, connector, anchor, staging.export, payload, fresh)
    stored = StoredObject(
        object_id, connector, anchor, attributes, True, 1, now, now, staging.external_id
    )
    return stored, event_id


@as_sqlalchemy
def current(session: Session, connector: str, object_id: str) -> StoredObject:
    """The object SCIM shows under ``object_id``, read as plain columns (no ORM
    object); NotFoundError when there is none."""
    found = driver_of(session).execute(_CURRENT, (object_id,)).fetchone()
    if found is None or found[1] != connector or found[8] != _PRESENT:
        raise NotFoundError(object_id)
    oid, connector, anchor, attributes, version, created, updated, external_id, _ = found
    return StoredObject(
        oid,
        connector,
        anchor,
        json.loads(attributes) if isinstance(attributes, str) else attributes,
        True,
        version,
        moment(created),
        moment(updated),
        external_id,
    )


@as_sqlalchemy
def rewrite(
    session: Session, before: StoredObject, staging: Staging
) -> tuple[StoredObject, int | None] | None:
    """Give the visible object ``before`` the state ``staging`` decided (a replace, a
    patch, a delete), its value index and its export event; None (nothing written)
    for a rename, which the ORM path stages (another object may hold the anchor)."""
    if staging.anchor not in (None, before.anchor):
        return None
    db = driver_of(session)
    now, object_id = utcnow(), before.id
    attributes = dict(staging.attributes)
    after = StoredObject(
        object_id,
        before.connector,
        before.anchor,
        attributes,
        staging.visible,
        before.version + 1,
        before.created_at,
        now,
        staging.external_id,
    )
    if not staging.visible:  # a hidden object has no index rows
        db.execute(_CLEAR_VALUES, (object_id,))
        if staging.export is None:  # nor a row, when nothing exports it
            db.execute(_FORGET, (object_id,))
            return after, None
    state = _PRESENT if staging.visible else _DELETED
    db.execute(
        _REWRITE,
        (
            json_text(attributes),
            state,
            staging.external_id,
            after.version,
            stored_time(db, now),
            object_id,
        ),
    )
    if staging.visible:
        _reindex(db, before, attributes)
    if staging.export is None:
        return after, None
    payload = staging.exported if staging.exported is not None else attributes
    event_id = _append(
        db, session, object_id, before.connector, before.anchor, staging.export, payload, False
    )
    return after, event_id


def _free_id(db: Db, connector: str, anchor: str) -> str:
    """The anchor's derived id, unless an object renamed away from it still has it."""
    derived = object_id_for(connector, anchor)
    taken = db.execute(_ID_TAKEN, (derived,)).fetchone()
    return derived if taken is None else str(uuid.uuid4())


@as_sqlalchemy
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
    return _append(driver_of(session), session, object_id, connector, anchor, op, payload, fresh)


def _append(
    db: Db,
    session: Session,
    object_id: str,
    connector: str,
    anchor: str,
    op: Op,
    payload: Mapping[str, Any],
    fresh: bool,
) -> int:
    """``append_event`` on the connection of the session's transaction."""
    at = stored_time(db, utcnow())
    # One look at the object's waiting and failed events (mostly none) serves both
    # rules, so a write that has nothing to supersede pays no statement for it.
    waiting = (
        [] if fresh else db.execute(_WAITING_OR_FAILED, (object_id, _PENDING, _FAILED)).fetchall()
    )
    # Stored times are text in one format on SQLite, so the latest is the greatest.
    due = max((when for status, when in waiting if status == _PENDING), default=at)
    body = json_text(dict(payload) if op == Op.UPSERT else {})
    inserted = db.execute(
        _INSERT_EVENT,
        (connector, object_id, anchor, op.value, body, _PENDING, max(at, due), at, at),
    )
    event_id = int(inserted.fetchall()[0][0])  # read whole: the statement is done
    db.execute(_INSERT_LOG, (event_id, connector, LogStatus.PENDING.value, at))
    if any(status == _FAILED for status, _ in waiting):
        for statement in supersede(object_id, event_id):
            session.execute(statement)
    return event_id
