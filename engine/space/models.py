"""The connector space's tables (SQLAlchemy 2 declarative).

Changes here need a migration in ``migrations/versions``; a test compares the two.
Times are naive UTC ``datetime``s (``utcnow``) so that SQLite and PostgreSQL order
them the same way.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ecmahost.engine.space.states import FINISHED_STATUSES, ObjectState
from sqlalchemy import JSON, ColumnElement, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "NEXT_SERIAL_SQLITE",
    "SERIAL_SEQUENCE",
    "UNPRUNED",
    "Base",
    "ClusterHost",
    "EventLog",
    "ExportEvent",
    "NextSerial",
    "ObjectRow",
    "ObjectValue",
    "Run",
    "Watermark",
    "utcnow",
]


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


UNPRUNED = text(
    "pruned_at IS NULL AND status IN (" + ", ".join(f"'{s}'" for s in FINISHED_STATUSES) + ")"
)
"""Finished events retention has not pruned yet: the condition of their partial index.
Written with literals, not bound parameters, so that SQLite sees a query's condition is
the index's own and uses it."""


class NextSerial(ColumnElement[int]):
    """The next object's serial: on SQLite the highest plus one, evaluated in the
    INSERT under the single writer's lock; on PostgreSQL, where several hosts insert
    at once, the next value of the sequence migration 0008 made."""

    inherit_cache = True
    type = Integer()


SERIAL_SEQUENCE = "objects_serial_seq"
NEXT_SERIAL_SQLITE = "(SELECT coalesce(max(serial), 0) + 1 FROM objects)"


@compiles(NextSerial)
def _next_serial(_element: NextSerial, _compiler: Any, **_kw: Any) -> str:
    return NEXT_SERIAL_SQLITE


@compiles(NextSerial, "postgresql")
def _next_serial_postgresql(_element: NextSerial, _compiler: Any, **_kw: Any) -> str:
    return f"nextval('{SERIAL_SEQUENCE}')"


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON}


class ObjectRow(Base):
    """One object of a connector: what SCIM shows (``attributes``, ``state``) and what
    the target is known to hold (``confirmed``, None when not in the target)."""

    __tablename__ = "objects"
    __table_args__ = (
        UniqueConstraint("connector", "anchor", name="uq_objects_anchor"),
        Index("ix_objects_target_anchor", "connector", "target_anchor"),
        Index("ix_objects_listing", "connector", "state", "anchor"),
        Index("ix_objects_serial", "serial", unique=True),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    connector: Mapped[str] = mapped_column(String(200))
    anchor: Mapped[str] = mapped_column(Text)
    attributes: Mapped[dict[str, Any]]
    # none_as_null: Python None must be SQL NULL (not JSON 'null') for IS NULL tests.
    confirmed: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    state: Mapped[str] = mapped_column(String(16))  # present | deleted
    # The anchor the target holds the object under (None: not in the target); it
    # differs from ``anchor`` while a rename waits for its export.
    target_anchor: Mapped[str | None] = mapped_column(Text)
    external_id: Mapped[str | None] = mapped_column(Text)  # SCIM externalId, never exported
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    seen_run: Mapped[int | None]
    # The object's number in creation order, the value index's key (``ObjectValue``):
    # new objects take the next numbers, so their index rows are appended at the end of
    # the index instead of scattered over it by a random id. A full import numbers its
    # rows itself; any other insert takes the next one from ``NextSerial``, evaluated
    # in its own INSERT under the write lock (a trigger cost the import 40% of its
    # objects' insert). Nullable only because SQLite adds a column so.
    serial: Mapped[int | None] = mapped_column(Integer, default=NextSerial())

    # The default is a SQL expression: rows must be inserted one statement each, never
    # in one multi-row INSERT (each row's subquery would read the same maximum), so
    # the ORM is not asked to fetch it back with RETURNING.
    __mapper_args__ = {"eager_defaults": False}

    @classmethod
    def empty(cls, object_id: str, connector: str, anchor: str) -> ObjectRow:
        """A row not yet shown by SCIM nor held by the target: the write that creates
        it stages its state."""
        now = utcnow()
        return cls(
            id=object_id,
            connector=connector,
            anchor=anchor,
            attributes={},
            confirmed=None,
            state=ObjectState.DELETED,
            version=0,
            created_at=now,
            updated_at=now,
        )


class ObjectValue(Base):
    """An index row per attribute value, so ``eq`` on any attribute is a lookup.
    ``attr`` is the lower-cased name, ``value`` the case-folded text of the value; a
    multi-valued attribute has a row per value (hence ``value`` in the key).

    Keyed by the object's ``serial`` and stored without a rowid (the key is the table):
    an import appends its rows in key order, and only the lookup index takes them in
    value order."""

    __tablename__ = "object_values"
    __table_args__ = (
        Index("ix_object_values_lookup", "connector", "attr", "value"),
        {"sqlite_with_rowid": False},
    )

    # No foreign key: its check of every inserted row cost an import a tenth of its
    # value rows' insert. An object's rows go with it by the trigger objects_values_gone
    # (migration 0008), which every DELETE of objects fires.
    object_serial: Mapped[int] = mapped_column(Integer, primary_key=True)
    attr: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[str] = mapped_column(Text, primary_key=True)
    # After the key's columns: see migration 0008 (SQLite 3.40's quick_check).
    connector: Mapped[str] = mapped_column(String(200))


class ExportEvent(Base):
    """One staged change waiting for, or done with, its export (the queue)."""

    __tablename__ = "export_events"
    __table_args__ = (
        Index("ix_export_events_due", "connector", "status", "next_attempt_at"),
        Index("ix_export_events_object", "object_id", "id"),
        # Retention finds what to prune without reading the events of the last weeks'
        # history it keeps, nor the pending and failed ones.
        Index(
            "ix_export_events_unpruned",
            "updated_at",
            sqlite_where=UNPRUNED,
            postgresql_where=UNPRUNED,
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    connector: Mapped[str] = mapped_column(String(200))
    object_id: Mapped[str] = mapped_column(String(36))
    anchor: Mapped[str] = mapped_column(Text)
    op: Mapped[str] = mapped_column(String(16))  # upsert | delete
    # None once retention pruned the finished event (see ``pruned_at``).
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    status: Mapped[str] = mapped_column(String(16))  # pending|running|done|failed|discarded
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    lease_until: Mapped[datetime | None]  # a running event is reclaimed after this
    last_error: Mapped[str | None] = mapped_column(Text)
    error_kind: Mapped[str | None] = mapped_column(String(16))  # transient|permanent|conflict
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]  # of a finished event: when it finished
    pruned_at: Mapped[datetime | None]  # when retention took its payload and history


class EventLog(Base):
    """Append-only history of every export event's state changes."""

    __tablename__ = "event_log"
    __table_args__ = (Index("ix_event_log_event", "event_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[int]
    connector: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime]


class Run(Base):
    """One import or export run, for history and ``ecmahost`` listings."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    connector: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # import | export
    status: Mapped[str] = mapped_column(String(16))  # running | ok | failed
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    counts: Mapped[dict[str, Any]]
    error: Mapped[str | None] = mapped_column(Text)


class Watermark(Base):
    """Where a connector's next delta import starts: the target's change position (a
    timestamp, a change number, ...) reached by the last full import or committed delta
    batch. Opaque text to the engine; kept here so that it survives restarts."""

    __tablename__ = "watermarks"

    connector: Mapped[str] = mapped_column(String(200), primary_key=True)
    watermark: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime]


class ClusterHost(Base):
    """A host serving a shared (PostgreSQL) space: its last heartbeat, and the
    connectors whose imports it runs (``space.cluster``)."""

    __tablename__ = "cluster_hosts"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int]
    started_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime]
    leads: Mapped[list[str]] = mapped_column(JSON)
