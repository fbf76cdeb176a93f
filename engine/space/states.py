"""The words the connector space's string columns hold, as enums.

They are ``StrEnum``s: a member *is* its string, so the columns, the rows already in
a database and every comparison with a string read back stay exactly as they were.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "BLOCKING_STATUSES",
    "FINISHED_STATUSES",
    "OPEN_STATUSES",
    "WAITING_STATUSES",
    "ErrorKind",
    "EventStatus",
    "LogStatus",
    "ObjectState",
    "Op",
    "RunKind",
    "RunStatus",
]


class ObjectState(StrEnum):
    """``objects.state``: whether SCIM shows the object."""

    PRESENT = "present"
    DELETED = "deleted"


class Op(StrEnum):
    """``export_events.op``: what an event exports."""

    UPSERT = "upsert"
    DELETE = "delete"


class EventStatus(StrEnum):
    """``export_events.status``: where an event is in the queue."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    DISCARDED = "discarded"
    SUPERSEDED = "superseded"
    """It failed, and a newer change of its object came: that change's export carries
    the object's newest state, so this one is never exported (kept for its history)."""


class ErrorKind(StrEnum):
    """``export_events.error_kind``: why an export attempt failed."""

    TRANSIENT = "transient"
    PERMANENT = "permanent"
    CONFLICT = "conflict"


class LogStatus(StrEnum):
    """``event_log.status``: the steps the append-only log records of an event."""

    PENDING = "pending"  # queued: an event's first entry
    RETRYING = "retrying"
    RECLAIMED = "reclaimed"
    REPLAYED = "replayed"
    DONE = "done"
    FAILED = "failed"
    DISCARDED = "discarded"
    SUPERSEDED = "superseded"
    PRUNED = "pruned"  # retention took the payload and the earlier steps: the only entry


class RunKind(StrEnum):
    """``runs.kind``."""

    IMPORT = "import"
    EXPORT = "export"
    DELTA = "delta"  # a delta import: only what changed since the stored watermark


class RunStatus(StrEnum):
    """``runs.status``."""

    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"
    REFUSED = "refused"  # a full import that would have wiped the view; nothing removed
    FELL_BACK = "fell_back"  # a delta that could not start (no or an expired watermark)


OPEN_STATUSES = (EventStatus.PENDING, EventStatus.RUNNING, EventStatus.FAILED)
"""Statuses of an event whose object the target may not yet reflect."""

FINISHED_STATUSES = (EventStatus.DONE, EventStatus.SUPERSEDED, EventStatus.DISCARDED)
"""Statuses of an event nothing will export again (a superseded or discarded event is
never replayed): retention may take their payloads."""

WAITING_STATUSES = (EventStatus.PENDING, EventStatus.RUNNING)
"""Statuses of an event that will still be exported without anyone's help."""

BLOCKING_STATUSES = (EventStatus.FAILED, EventStatus.RUNNING)
"""Statuses of an event that holds back its object's later events. A failed one does
only until the object's next event supersedes it, which queueing that event does at
once; so only a database from before superseding holds a failed event before a pending
one."""
