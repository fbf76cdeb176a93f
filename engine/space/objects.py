"""Statements on the objects (and their value index): reads, the rows SCIM writes
stage, and the rewrites the queue's outcomes make.

SCIM writes and the queue's outcomes run as group-writer jobs on a synchronous
session; reads use async sessions.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any, cast

from ecmahost.engine.exceptions import AnchorTakenError
from ecmahost.engine.space.driver import Prepared, driver_of
from ecmahost.engine.space.index import reindex
from ecmahost.engine.space.json_lists import json_list, listed
from ecmahost.engine.space.models import ExportEvent, ObjectRow, utcnow
from ecmahost.engine.space.records import Delivered, Staging, object_id_for, pending_anchor
from ecmahost.engine.space.states import WAITING_STATUSES, ObjectState, Op
from ecmahost.engine.space.stored import StoredObject
from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    Text,
    bindparam,
    delete,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

__all__ = [
    "bind",
    "by_anchor",
    "confirm",
    "forget",
    "free_id",
    "get",
    "page",
    "page_statements",
    "provisional",
    "restage",
    "settle_failed",
    "stage",
    "stream",
    "visible",
]

log = logging.getLogger(__name__)

_PRESENT = ObjectState.PRESENT


# -- reads --------------------------------------------------------------------------


def visible(connector: str) -> ColumnElement[bool]:
    """The objects of ``connector`` that SCIM shows."""
    return (ObjectRow.connector == connector) & (ObjectRow.state == _PRESENT)


async def get(session: AsyncSession, connector: str, object_id: str) -> StoredObject | None:
    row = await session.get(ObjectRow, object_id)
    if row is None or row.connector != connector or row.state != _PRESENT:
        return None
    return StoredObject.from_row(row)


def page_statements(
    condition: ColumnElement[bool], start_index: int, count: int
) -> tuple[Select[int], Select[ObjectRow]]:
    """The statements ``page`` runs: the count, and the page."""
    total = select(func.count()).where(condition)
    chosen = (
        select(ObjectRow)
        .where(condition)
        .order_by(ObjectRow.anchor)
        .offset(start_index - 1)
        .limit(count)
    )
    return total, chosen


async def page(
    session: AsyncSession, condition: ColumnElement[bool], start_index: int, count: int
) -> tuple[int, list[StoredObject]]:
    """The number of objects ``condition`` selects and one page of them by anchor."""
    total, chosen = page_statements(condition, start_index, count)
    found = await session.scalar(total)
    rows = list((await session.scalars(chosen)).all()) if count > 0 else []
    return int(found or 0), [StoredObject.from_row(r) for r in rows]


async def stream(session: AsyncSession, connector: str) -> AsyncIterator[StoredObject]:
    chosen = (
        select(ObjectRow)
        .where(visible(connector))
        .order_by(ObjectRow.anchor)
        .execution_options(yield_per=500)
    )
    async for row in await session.stream_scalars(chosen):
        yield StoredObject.from_row(row)


# -- SCIM writes (group-writer jobs) --------------------------------------------------


def by_anchor(session: Session, connector: str, anchor: str) -> ObjectRow | None:
    return session.scalar(
        select(ObjectRow).where(ObjectRow.connector == connector, ObjectRow.anchor == anchor)
    )


def free_id(session: Session, connector: str, anchor: str) -> str:
    """The anchor's derived id, unless an object renamed away from it still has it."""
    derived = object_id_for(connector, anchor)
    return derived if session.get(ObjectRow, derived) is None else str(uuid.uuid4())


def provisional(session: Session, connector: str) -> ObjectRow:
    """A new row whose anchor the target will assign: a fresh id, and a pending anchor
    unique to it until the create's export binds the target's."""
    object_id = str(uuid.uuid4())
    row = ObjectRow.empty(object_id, connector, pending_anchor(object_id))
    session.add(row)
    session.flush()
    return row


def stage(session: Session, row: ObjectRow, staging: Staging) -> None:
    """Make ``row`` show what ``staging`` decided (its export is the caller's)."""
    if staging.anchor is not None and staging.anchor != row.anchor:
        _take_anchor(session, row, staging.anchor)
    row.external_id = staging.external_id
    row.attributes = dict(staging.attributes)
    row.state = ObjectState.PRESENT if staging.visible else ObjectState.DELETED
    row.version += 1
    row.updated_at = utcnow()
    reindex(session, row)


def forget(session: Session, row: ObjectRow) -> None:
    session.delete(row)


def _take_anchor(session: Session, row: ObjectRow, anchor: str) -> None:
    """Rename ``row``; AnchorTakenError if a visible object has the anchor. A hidden one
    (deleted, its export perhaps pending) lets go of it: its events carry their own
    anchor."""
    holder = by_anchor(session, row.connector, anchor)
    if holder is not None and holder.state == _PRESENT:
        raise AnchorTakenError(anchor)
    if holder is not None:
        session.delete(holder)
        session.flush()
    row.anchor = anchor


# -- what the queue's outcomes rewrite ------------------------------------------------


def confirm(session: Session, delivered: Iterable[Delivered]) -> None:
    """The target holds what was delivered: record it as the objects' confirmed state.
    A hidden object the target no longer holds is forgotten, unless another change of
    it waits (its row carries what that change staged). Objects gone are no error."""
    delivered = list(delivered)
    db = driver_of(session)
    _SEND_CONFIRM.run_many(  # a row deleted meanwhile is no error
        db,
        [
            {"row": d.object_id, "held": dict(d.attributes), "under": d.anchor}
            for d in delivered
            if d.attributes is not None
        ],
    )
    gone = [d.object_id for d in delivered if d.attributes is None]
    if gone:
        _SEND_UNCONFIRM.run(db, {"ids": json_list(gone)})
        _SEND_FORGET_GONE.run(db, {"ids": json_list(gone)})


_OBJECTS = cast(Table, ObjectRow.__table__)
_GONE = _OBJECTS.c.id.in_(listed(bindparam("ids", type_=Text)))
_SEND_CONFIRM = Prepared(
    update(_OBJECTS)
    .where(_OBJECTS.c.id == bindparam("row"))
    .values(confirmed=bindparam("held"), target_anchor=bindparam("under"))
)
_SEND_UNCONFIRM = Prepared(update(_OBJECTS).where(_GONE).values(confirmed=None, target_anchor=None))
_SEND_FORGET_GONE = Prepared(
    delete(_OBJECTS).where(
        _GONE,
        _OBJECTS.c.state != _PRESENT.value,
        ~exists().where(
            ExportEvent.object_id == _OBJECTS.c.id,
            # not ``in_``: its list is expanded at each execution (see ``Prepared``)
            or_(*(ExportEvent.status == s.value for s in WAITING_STATUSES)),
        ),
    )
)


def bind(session: Session, delivered: Delivered, attribute: str) -> None:
    """Bind the object to the anchor the target assigned it (``attribute`` holds it):
    the id stays, the anchor and the attribute change, and the object's events still
    waiting carry the new anchor, so a change queued before it was known (a patch, a
    delete) reaches the same entry. An object an import made of that entry before
    this outcome was recorded is folded into this one."""
    row = session.get(ObjectRow, delivered.object_id)
    if row is None:
        return
    anchor, previous = delivered.anchor, row.anchor
    if row.anchor != anchor:
        if not _fold(session, row, anchor):
            log.warning(
                "the target holds object %s under %r, which another object's waiting "
                "change holds: not bound",
                row.id,
                anchor,
                extra={"action": "export.bind_conflict", "connector": row.connector},
            )
            return
        row.anchor = anchor
    waiting = list(
        session.scalars(
            select(ExportEvent).where(
                ExportEvent.object_id == row.id,
                ExportEvent.status.in_(WAITING_STATUSES),
                ExportEvent.id.not_in(delivered.event_ids),
            )
        )
    )
    # The view shows the target's anchor, unless a newer change waits with a value of
    # its own (a new -dn- asked for): that one's export binds it in turn.
    if not waiting or row.attributes.get(attribute) in (None, previous):
        _settle(session, row, {**row.attributes, attribute: anchor}, ObjectState(row.state))
    for event in waiting:
        event.anchor = anchor
        if event.payload is not None and event.payload.get(attribute) == previous:
            # Staged before the bind, it carried the old anchor: not a request to go back.
            event.payload = {**event.payload, attribute: anchor}


def _fold(session: Session, row: ObjectRow, anchor: str) -> bool:
    """Free ``anchor`` for ``row``; False when it cannot be. Another object holding it
    with no change of its own waiting can only be this object's entry, imported
    before the bind; a hidden one (deleted, its export pending) lets go of it, as on
    a rename: its events carry their own anchor."""
    waiting = exists().where(
        ExportEvent.object_id == ObjectRow.id, ExportEvent.status.in_(WAITING_STATUSES)
    )
    others = (
        (ObjectRow.connector == row.connector)
        & (ObjectRow.anchor == anchor)
        & (ObjectRow.id != row.id)
    )
    session.execute(delete(ObjectRow).where(others, ~waiting | (ObjectRow.state != _PRESENT)))
    session.flush()
    return session.scalar(select(ObjectRow.id).where(others)) is None


def settle_failed(session: Session, object_id: str) -> None:
    """The object's change failed for good: show what the target still holds. A
    failed create is forgotten; a failed rename gets the target's anchor back if no
    other object took it meanwhile."""
    row = session.get(ObjectRow, object_id)
    if row is None:
        return
    if row.confirmed is None or row.target_anchor is None:
        session.delete(row)
    elif _anchor_free(session, row, row.target_anchor):
        row.anchor = row.target_anchor
        _settle(session, row, row.confirmed)


def restage(
    session: Session,
    object_id: str,
    connector: str,
    anchor: str,
    op: Op,
    payload: Mapping[str, Any],
) -> None:
    """A replayed event is the object's newest: show its state again (bringing back
    an object a failed create dropped; a replayed rename takes its anchor back if no
    other object holds it)."""
    row = session.get(ObjectRow, object_id)
    if row is None:
        row = ObjectRow.empty(object_id, connector, anchor)
        session.add(row)
        session.flush()
    if op == Op.DELETE:
        _settle(session, row, row.attributes, ObjectState.DELETED)
        return
    if row.anchor != anchor and _anchor_free(session, row, anchor):
        row.anchor = anchor
    _settle(session, row, dict(payload), ObjectState.PRESENT)


def _anchor_free(session: Session, row: ObjectRow, anchor: str) -> bool:
    other = session.scalar(
        select(ObjectRow.id).where(
            ObjectRow.connector == row.connector, ObjectRow.anchor == anchor, ObjectRow.id != row.id
        )
    )
    return other is None


def _settle(
    session: Session,
    row: ObjectRow,
    attributes: dict[str, Any],
    state: ObjectState = ObjectState.PRESENT,
) -> None:
    """Make the SCIM view of ``row`` these attributes and state."""
    if row.attributes != attributes or row.state != state:
        row.attributes, row.state = dict(attributes), state
        row.version += 1
        row.updated_at = utcnow()
        reindex(session, row)
