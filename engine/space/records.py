"""The values the store takes and hands out, besides ``StoredObject``: a write's
decision (``Staging``), and the export queue's events as the store sees them.

Frozen and free of SQL: every implementation of the store speaks in these.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from ecmahost.connectors.base import Value
from ecmahost.engine.space.states import ErrorKind, EventStatus, LogStatus, Op

__all__ = [
    "Delivered",
    "DueObject",
    "EventState",
    "EventView",
    "Failure",
    "LogEntry",
    "OutcomeView",
    "QueuedEvent",
    "Retry",
    "Staging",
    "is_pending",
    "object_id_for",
    "pending_anchor",
]

_ID_NAMESPACE = uuid.UUID("6f1c2f0e-5d1e-4b8a-9a57-2f0b9b8f3c11")


_NAMESPACE_BYTES = _ID_NAMESPACE.bytes


def object_id_for(connector: str, anchor: str) -> str:
    """The SCIM id of an anchor: derived, so it is stable across imports and restarts.

    ``uuid.uuid5(_ID_NAMESPACE, connector + NUL + anchor)``, spelled out: a full import
    derives one per object, and the uuid module's objects cost three times as much."""
    digest = bytearray(
        hashlib.sha1(_NAMESPACE_BYTES + f"{connector}\x00{anchor}".encode()).digest()[:16]
    )
    digest[6] = digest[6] & 0x0F | 0x50  # version 5
    digest[8] = digest[8] & 0x3F | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_PENDING = "\ufffcpending:"
"""Prefix of the anchor an object holds until the target assigns its own. U+FFFC
(the object replacement character) is in no identifier a target assigns, and a
text column of SQLite and PostgreSQL alike stores it; the object's id follows, so
each pending anchor is unique."""


def pending_anchor(object_id: str) -> str:
    """The provisional anchor of an object created before the target assigned one."""
    return f"{_PENDING}{object_id}"


def is_pending(anchor: str) -> bool:
    """Whether ``anchor`` is provisional: the target has not assigned one yet."""
    return anchor.startswith(_PENDING)


@dataclass(frozen=True, slots=True)
class Staging:
    """A write's decision: the object's new attributes, whether SCIM still shows it,
    and what to export (an ``Op``, or None for store-only)."""

    attributes: Mapping[str, Value]
    visible: bool
    export: Op | None
    exported: Mapping[str, Value] | None = None
    """What to export when it differs from ``attributes`` (a store-only disable)."""
    anchor: str | None = None
    """The new anchor of a rename; None keeps the object's anchor."""
    external_id: str | None = None


@dataclass(frozen=True, slots=True)
class QueuedEvent:
    """One pending event as a claim takes it."""

    id: int
    connector: str
    object_id: str
    anchor: str
    op: Op
    payload: Mapping[str, Any]
    attempts: int


@dataclass(frozen=True, slots=True)
class DueObject:
    """One object's claimed events, oldest first, and the anchor the target holds the
    object under (None: the target does not hold it)."""

    object_id: str
    events: tuple[QueuedEvent, ...]
    held_as: str | None


@dataclass(frozen=True, slots=True)
class Delivered:
    """The target took an object's claimed events: it now holds ``attributes`` under
    ``anchor``, or nothing (``attributes`` None: a delete)."""

    object_id: str
    event_ids: tuple[int, ...]
    anchor: str
    attributes: Mapping[str, Value] | None
    assigned_to: str | None = None
    """The anchor attribute, when the target assigned ``anchor`` (a create of a
    target-assigned anchor, an LDAP move of a DN anchor): the object is bound to it."""


@dataclass(frozen=True, slots=True)
class Failure:
    """An object's claimed events failed for good."""

    object_id: str
    event_ids: tuple[int, ...]
    error: str
    kind: ErrorKind


@dataclass(frozen=True, slots=True)
class Retry:
    """An object's claimed events failed for now; the object waits until ``at``."""

    object_id: str
    event_ids: tuple[int, ...]
    error: str
    at: datetime


class EventState(NamedTuple):
    """What an event's outcome is read from."""

    status: EventStatus
    last_error: str | None
    error_kind: ErrorKind | None


@dataclass(frozen=True, slots=True)
class EventView:
    """An export event as the admin API and the command line show it."""

    id: int
    connector: str
    object_id: str
    anchor: str
    op: Op
    status: EventStatus
    attempts: int
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    payload: dict[str, Any] | None
    """None once retention pruned the finished event."""


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One line of an event's append-only history."""

    status: LogStatus
    detail: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class OutcomeView:
    """One export outcome as the event log holds it: the event, what became of it
    (``done``, ``failed``, ``discarded`` or ``superseded``), why, and when."""

    event_id: int
    anchor: str
    op: Op
    status: LogStatus
    detail: str | None
    at: datetime
