"""The store's contract: what every implementation of the connector space promises.

``ConnectorSpace`` (SQLite, with its fast paths) is today's implementation; one on
PostgreSQL (several hosts, ``FOR UPDATE SKIP LOCKED`` claims) is to pass the same
tests. The rest of the engine reaches the database only through these methods: it
never builds SQL nor opens a session.

Common promises:

* **Visibility.** A method that returned has committed: every later read, from any
  caller of this process, sees its effect. Reads of objects see only *visible* ones
  (``state`` present); hidden objects (deleted, their export perhaps pending) exist
  for the queue alone.
* **Atomicity.** Each writing method is one transaction: it happens whole or not at
  all. In particular a SCIM write stages the object and appends its export event in
  the same transaction, so an acknowledged write is never lost.
* **Errors.** Domain errors are ``ecmahost.engine.exceptions`` (``NotFoundError``,
  ``AnchorTakenError``); anything else is a fault of the database and propagates.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import datetime

from ecmahost.connectors.base import Delta, Record
from ecmahost.engine.space.health import ImportSummary, QueueSummary
from ecmahost.engine.space.records import (
    Delivered,
    DueObject,
    EventState,
    EventView,
    Failure,
    LogEntry,
    OutcomeView,
    Retry,
    Staging,
)
from ecmahost.engine.space.states import EventStatus, RunKind, RunStatus
from ecmahost.engine.space.stored import StoredObject
from sqlalchemy import ColumnElement

__all__ = ["EventStore", "Store", "Where"]

Where = ColumnElement[bool] | Callable[[], ColumnElement[bool] | None] | None
"""A filter's WHERE clause on objects (``space.search.filter_clause``), or a function
building it on demand; None selects every object."""


class EventStore(ABC):
    """The export queue's table: per object, events are exported in id order, and an
    object whose event is running holds its later events back. A failed event is
    superseded (status ``superseded``, logged, kept) by the object's next event: that
    one carries the object's whole newest state."""

    @abstractmethod
    async def claim(self, connector: str, limit: int, lease_s: float) -> list[DueObject]:
        """Take the due pending events of up to ``limit`` objects, oldest object first
        (no object starves), and mark them running for ``lease_s`` seconds.

        Each object comes with all its pending events in id order. Objects held
        behind a running event (or a failed one no newer event superseded) are not
        taken. First, running events whose lease ran out (their worker died) go back
        to pending, logged ``reclaimed``. Two claims never take the same event while
        its lease holds."""

    @abstractmethod
    async def next_due(self, connector: str) -> datetime | None:
        """When the earliest event a claim could take becomes due (may be past);
        None when there is none."""

    @abstractmethod
    async def record(
        self, done: Sequence[Delivered], failed: Sequence[Failure], retried: Sequence[Retry]
    ) -> None:
        """Record a batch's outcomes in one transaction, each event's step logged.

        * ``done``: the events are done (one more attempt counted); the object's
          ``confirmed`` state and target anchor become what the target now holds.
          A hidden object the target no longer holds, with no other change waiting,
          is forgotten. An object gone meanwhile is no error. A delivery with
          ``assigned_to`` binds the object to the anchor the target assigned: the
          object's anchor and that attribute become it, its waiting events carry
          it, and an object an import made of the same target entry meanwhile is
          folded into this one (same id as before, no duplicate).
        * ``failed``: the events fail with the error and its kind. Unless another
          change of the object waits, the object shows again what the target holds
          (a failed create is forgotten, a failed rename gets its anchor back when
          no other object took it), so Entra sees the change as not done. If one
          waits, the failed events are superseded by it at once.
        * ``retried``: the events are pending again with the error (kind transient),
          and every pending event of the object waits until the retry time."""

    @abstractmethod
    async def recover(self) -> int:
        """At start-up: running events (of a process that died) go back to pending;
        returns how many."""

    @abstractmethod
    async def state(self, event_id: int) -> EventState | None:
        """The event's status, last error and error kind; None if there is none.
        Cheap: asked once per sync-mode SCIM write."""

    @abstractmethod
    async def find(
        self,
        *,
        status: EventStatus | None = None,
        connector: str | None = None,
        ids: Sequence[int] | None = None,
        limit: int = 1000,
        after_id: int | None = None,
        since: datetime | None = None,
    ) -> list[EventView]:
        """Up to ``limit`` events in id order, of this status, connector and ids when
        given; with ``after_id`` only later ids (the next page), with ``since`` only
        events changed at or after it (naive UTC)."""

    @abstractmethod
    async def history(self, event_id: int) -> list[LogEntry]:
        """The event's logged steps, oldest first (empty for an unknown event)."""

    @abstractmethod
    async def recent_outcomes(self, connector: str, limit: int = 50) -> list[OutcomeView]:
        """The connector's newest ``limit`` outcomes, newest first: each time one of
        its events was done, failed, discarded or superseded, as the event log has it
        (a replayed event that then succeeds is listed again, as done)."""

    @abstractmethod
    async def replay(self, ids: Sequence[int] | None) -> list[int]:
        """Failed events (of ``ids``, or all when None) go back to pending, due now,
        their attempts reset, logged ``replayed``; returns their ids in id order.
        An object whose newest event is replayed shows that event's state again
        (brought back if a failure dropped it; a replayed rename takes its anchor
        back when no other object holds it). Ids of events not failed are ignored:
        a superseded event is never replayed (a newer change took its place)."""

    @abstractmethod
    async def discard(self, ids: Sequence[int]) -> list[int]:
        """Failed events of ``ids`` are given up on, kept as ``discarded``, so they
        hold their object back no more; returns their ids in id order."""


class Store(ABC):
    """The connector space: objects as SCIM shows them, full imports, and the export
    queue (``events``)."""

    events: EventStore

    @abstractmethod
    async def close(self) -> None:
        """Finish writes under way, then release every connection."""

    # -- reads -------------------------------------------------------------------

    @abstractmethod
    async def get(self, connector: str, object_id: str) -> StoredObject | None:
        """The visible object of ``connector`` with this SCIM id, or None."""

    @abstractmethod
    async def query(
        self,
        connector: str,
        where: Where,
        start_index: int,
        count: int,
        eq: tuple[str, str] | None = None,
    ) -> tuple[int, list[StoredObject]]:
        """The number of visible objects ``where`` selects, and the page of ``count``
        of them from the 1-based ``start_index``, in anchor order. ``eq`` is the
        (lower-cased attribute, index text) pair ``where`` amounts to when it is one
        ``eq`` comparison: an implementation may answer from it without building
        ``where``."""

    @abstractmethod
    def iter_objects(self, connector: str) -> AsyncIterator[StoredObject]:
        """Every visible object of ``connector`` in anchor order, streamed (memory
        does not grow with their number)."""

    # -- SCIM writes --------------------------------------------------------------

    @abstractmethod
    async def create(
        self, connector: str, anchor: str | None, staging: Staging
    ) -> tuple[StoredObject, int | None]:
        """Stage a new object under ``anchor`` and, if ``staging.export``, append its
        export event; returns the object and the event's id (None without export).
        The id is ``object_id_for(connector, anchor)`` unless another object still
        holds that id. AnchorTakenError if a visible object has the anchor; a hidden
        one holding it is taken over. With ``anchor`` None (the target assigns it) the
        id is new and the anchor pending (``pending_anchor``) until the create's
        export outcome binds the target's (see ``Events.record``)."""

    @abstractmethod
    async def update(
        self, connector: str, object_id: str, decide: Callable[[StoredObject], Staging]
    ) -> tuple[StoredObject, int | None]:
        """Stage what ``decide`` computes from the current object, atomically (no
        other write comes in between), and append its export event if any.
        ``staging.anchor`` renames: AnchorTakenError if a visible object holds it. A
        hidden object without export is forgotten. NotFoundError if no visible
        object of ``connector`` has the id; an error ``decide`` raises propagates and
        nothing is written. A new event never becomes due before the object's
        earlier pending ones (it inherits their back-off); in the same transaction
        it supersedes the object's failed events (``EventStore``). ``create`` too."""

    # -- full imports -------------------------------------------------------------

    @abstractmethod
    async def begin_run(self, connector: str, kind: RunKind) -> int:
        """Record a run as running from now; returns its id."""

    @abstractmethod
    async def finish_run(
        self, run_id: int, status: RunStatus, counts: Mapping[str, int], error: str | None = None
    ) -> None:
        """Record a run's end, its counts and error."""

    @abstractmethod
    async def import_records(
        self, connector: str, run_id: int, records: Sequence[Record]
    ) -> Mapping[str, int]:
        """Upsert one batch of a full import by anchor (the target's anchor of an
        object whose rename waits), marking each seen by ``run_id``, in one
        transaction. An object with an open export event keeps its staged state:
        only what the target holds (``confirmed``) is refreshed. Returns the counts
        ``added``, ``updated``, ``unchanged`` and ``pending``."""

    @abstractmethod
    async def count_unseen(self, connector: str, run_id: int) -> tuple[int, int]:
        """What ``remove_unseen`` would forget now, and how many objects ``connector``
        has: ``(removals, total)``. Changes nothing."""

    @abstractmethod
    async def has_history(self, connector: str) -> bool:
        """Whether the space ever held ``connector``: a successful full import or any
        object. False only on a connector's very first start."""

    @abstractmethod
    async def remove_unseen(self, connector: str, run_id: int) -> int:
        """End a full import: forget the objects ``run_id`` did not see, unless an
        export of theirs is open or changed since the run began (the import may have
        read the target before that export reached it); returns how many."""

    @abstractmethod
    async def analyze(self) -> None:
        """After many objects changed: refresh whatever keeps filtered reads index
        lookups (a no-op where nothing needs it)."""

    # -- delta imports ------------------------------------------------------------

    @abstractmethod
    async def watermark(self, connector: str) -> str | None:
        """Where the next delta import of ``connector`` starts; None before a full
        import stored one."""

    @abstractmethod
    async def save_watermark(self, connector: str, watermark: str) -> None:
        """Store the watermark a successful full import read before streaming."""

    @abstractmethod
    async def apply_delta(
        self, connector: str, run_id: int, batch: Sequence[Delta]
    ) -> Mapping[str, int]:
        """Apply one batch of a delta import in one transaction: records upserted as
        ``import_records`` does (a later change of an anchor wins), deletions removed
        as ``remove_unseen`` does, and the batch's last watermark stored. Returns the
        counts of ``import_records`` plus ``removed``."""

    # -- health: cheap enough for a monitor polling every few seconds ----------------

    @abstractmethod
    async def has_finished_import(self, connector: str) -> bool:
        """Whether a full import of ``connector`` ever ended ``ok``: until one has,
        its space is not a copy of the target and reads must not be answered."""

    @abstractmethod
    async def last_import(
        self, connector: str, kind: RunKind = RunKind.IMPORT
    ) -> ImportSummary | None:
        """The newest finished full import run (``kind``: delta import run) of
        ``connector``; None before the first one ended."""

    @abstractmethod
    async def queue_summary(self, connector: str) -> QueueSummary:
        """The export queue of ``connector`` in numbers: events waiting (pending or
        running), failed ones, and when the oldest waiting one was queued. Reads the
        queue's (connector, status) index only, never the done history."""

    # -- retention ---------------------------------------------------------------------

    @abstractmethod
    async def prune_finished(self, before: datetime, batch: int = 500) -> int:
        """Forget what finished events carried: every done, superseded or discarded
        event that finished (``updated_at``) before ``before`` (naive UTC) and is not
        yet pruned loses its payload (None) and its history, which becomes one
        ``pruned`` step; its status, error, attempts and times stay, so its outcome
        stays visible. Pending, running and failed events are never touched (a replay
        needs the payload). Works in transactions of at most ``batch`` events, so a
        write waits at most for one batch; returns how many events were pruned."""
