"""Erasing sealed values from export events once nothing will export them again.

A sealed value (see ``engine.queue.sealed``) is an export-only attribute, such as an
initial password, kept encrypted in an event's payload only until the target took
it: the space recognises one by its marker alone, so it never needs the key."""

from __future__ import annotations

import typing
from collections.abc import Mapping, Sequence
from typing import Any, Final

from ecmahost.engine.space.json_lists import among
from ecmahost.engine.space.models import ExportEvent
from ecmahost.engine.space.states import EventStatus
from sqlalchemy import (
    CompoundSelect,
    Integer,
    Select,
    Table,
    Text,
    bindparam,
    cast,
    select,
    union_all,
    update,
)
from sqlalchemy.orm import Session

__all__ = ["SEALED_MARK", "erase_sealed", "is_sealed", "without_sealed"]

SEALED_MARK: Final = "$sealed"
"""The key of the one-key JSON object a sealed value is stored as."""


def is_sealed(value: Any) -> bool:
    return isinstance(value, Mapping) and len(value) == 1 and SEALED_MARK in value


def without_sealed(payload: Mapping[str, Any]) -> dict[str, Any]:
    """``payload`` less its sealed values."""
    return {name: value for name, value in payload.items() if not is_sealed(value)}


def erase_sealed(
    session: Session, event_ids: Sequence[int], superseded_of: Sequence[str] = ()
) -> int:
    """Take the sealed values out of these events' payloads, and out of those of the
    objects ``superseded_of`` names that a newer change superseded (they will never
    be exported); returns how many events held one. Only payloads whose text holds
    the marker are read, so a batch without passwords costs one indexed scan. A
    synchronous session: it runs inside the group writer's job that records the
    outcome (``AsyncSession.run_sync`` elsewhere)."""
    if not event_ids and not superseded_of:
        return 0
    holding = sealed_payloads(event_ids, superseded_of)
    rows = session.execute(holding).all()
    if rows:  # one executemany (Core: no ORM bookkeeping per row)
        events = typing.cast(Table, ExportEvent.__table__)
        session.execute(
            update(events)
            .where(events.c.id == bindparam("event"))
            .values(payload=bindparam("kept")),
            [{"event": i, "kept": without_sealed(payload or {})} for i, payload in rows],
        )
    return len(rows)


def sealed_payloads(
    event_ids: Sequence[int], superseded_of: Sequence[str] = ()
) -> Select[Any] | CompoundSelect[Any]:
    """The id and payload of those events whose payload holds a sealed value.

    The superseded events of ``superseded_of`` are a second query joined with UNION
    ALL, each read through its own index: PostgreSQL read every event to answer the
    two conditions joined by OR. (An event found twice is erased twice, harmlessly.)"""
    marked = cast(ExportEvent.payload, Text).contains(SEALED_MARK, autoescape=True)
    columns = (ExportEvent.id, ExportEvent.payload)
    chosen = select(*columns).where(ExportEvent.id.in_(among(event_ids, Integer())), marked)
    if not superseded_of:
        return chosen
    superseded = select(*columns).where(
        ExportEvent.object_id.in_(among(superseded_of)),
        ExportEvent.status == EventStatus.SUPERSEDED,
        marked,
    )
    return union_all(chosen, superseded)
