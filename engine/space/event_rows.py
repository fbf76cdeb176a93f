"""Rows of ``export_events`` as the store's records (``space.records``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from ecmahost.engine.space.models import ExportEvent
from ecmahost.engine.space.records import EventState, EventView, QueuedEvent
from ecmahost.engine.space.states import ErrorKind, EventStatus, Op

__all__ = ["CLAIMED", "queued", "state_of", "view_of"]


CLAIMED = (
    ExportEvent.id,
    ExportEvent.connector,
    ExportEvent.object_id,
    ExportEvent.anchor,
    ExportEvent.op,
    ExportEvent.payload,
    ExportEvent.attempts,
)
"""The columns a claim reads: plain rows, not ORM objects, as a backlog is claimed
thousands at a time."""


def queued(row: Sequence[Any]) -> QueuedEvent:
    """A claimed row (of ``CLAIMED``, as the driver reads it: the payload as JSON
    text) as the event a claim hands out."""
    event_id, connector, object_id, anchor, op, payload, attempts = row
    if isinstance(payload, str | bytes):
        payload = orjson.loads(payload)
    return QueuedEvent(event_id, connector, object_id, anchor, Op(op), payload, attempts)


def state_of(status: str, last_error: str | None, error_kind: str | None) -> EventState:
    """An event's stored status, error and error kind as its ``EventState``."""
    return EventState(
        EventStatus(status), last_error, ErrorKind(error_kind) if error_kind else None
    )


def view_of(row: ExportEvent) -> EventView:
    """An event as the admin API and the command line show it."""
    return EventView(
        row.id,
        row.connector,
        row.object_id,
        row.anchor,
        Op(row.op),
        EventStatus(row.status),
        row.attempts,
        row.last_error,
        row.created_at,
        row.updated_at,
        None if row.payload is None else dict(row.payload),
    )
