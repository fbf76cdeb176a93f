"""Erasing sealed values from export events once nothing will export them again.

A sealed value (see ``engine.queue.sealed``) is an export-only attribute, such as an
initial password, kept encrypted in an event's payload only until the target took
it: the space recognises one by its marker alone, so it never needs the key."""

from __future__ import annotations

import typing
from collections.abc import Mapping, Sequence
from typing import Any, Final

import orjson
from ecmahost.engine.space.driver import Prepared, driver_of
from ecmahost.engine.space.json_lists import json_list, listed
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
    db = driver_of(session)
    holding = _SEND_BOTH if superseded_of else _SEND_EVENTS
    rows = holding.rows(db, _lists(event_ids, superseded_of))
    _SEND_ERASE.run_many(  # one executemany
        db, [{"event": i, "kept": without_sealed(_payload(p))} for i, p in rows]
    )
    return len(rows)


def sealed_payloads(
    event_ids: Sequence[int], superseded_of: Sequence[str] = ()
) -> Select[Any] | CompoundSelect[Any]:
    """The id and payload of those events whose payload holds a sealed value (the
    statement ``erase_sealed`` runs, its values bound)."""
    chosen = _BOTH if superseded_of else _EVENTS
    return chosen.params(_lists(event_ids, superseded_of))


def _lists(event_ids: Sequence[int], superseded_of: Sequence[str]) -> dict[str, str]:
    return {"events": json_list(event_ids), "objects": json_list(superseded_of)}


def _payload(stored: str | Mapping[str, Any] | None) -> Mapping[str, Any]:
    return orjson.loads(stored) if isinstance(stored, str) else stored or {}


_MARKED = cast(ExportEvent.payload, Text).contains(SEALED_MARK, autoescape=True)
_EVENTS = select(ExportEvent.id, ExportEvent.payload).where(
    ExportEvent.id.in_(listed(bindparam("events", type_=Text), Integer())), _MARKED
)
# The superseded events of the objects are a second query joined with UNION ALL,
# each read through its own index: PostgreSQL read every event to answer the two
# conditions joined by OR. (An event found twice is erased twice, harmlessly.)
_BOTH = union_all(
    _EVENTS,
    select(ExportEvent.id, ExportEvent.payload).where(
        ExportEvent.object_id.in_(listed(bindparam("objects", type_=Text))),
        ExportEvent.status == EventStatus.SUPERSEDED,
        _MARKED,
    ),
)
_TABLE = typing.cast(Table, ExportEvent.__table__)
_SEND_EVENTS, _SEND_BOTH = Prepared(_EVENTS), Prepared(_BOTH)
_SEND_ERASE = Prepared(
    update(_TABLE).where(_TABLE.c.id == bindparam("event")).values(payload=bindparam("kept"))
)
