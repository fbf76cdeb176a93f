"""Retention: finished export events lose their payloads and history after a while.

An event nothing will export again (done, superseded, discarded) keeps the person's
attributes it carried, and its history, only as long as the host's ``retention_days``.
Then its payload becomes NULL and its history rows give way to one ``pruned`` step;
the row itself stays, with its status, error and times, so its outcome stays visible.

Pruning runs in transactions of a small batch each, taking the space's write lock
in turn with everyone else: a SCIM write waits at most for one batch.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from ecmahost.engine.space.events import log_each
from ecmahost.engine.space.json_lists import among
from ecmahost.engine.space.models import UNPRUNED, EventLog, ExportEvent, utcnow
from ecmahost.engine.space.sessions import Sessions
from ecmahost.engine.space.states import LogStatus
from sqlalchemy import Integer, Select, delete, null, select, update
from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["DEFAULT_BATCH", "prune_finished", "unpruned"]

DEFAULT_BATCH = 500
"""Events per transaction: a batch takes some 30 ms (with its fsync), so writes wait
at most that long, never for a whole pass."""

_DETAIL = "payload and history removed by retention"


def unpruned(before: datetime, limit: int) -> Select[int]:
    """The ids of up to ``limit`` finished, unpruned events that finished before
    ``before``, oldest first (read from their partial index)."""
    return (
        select(ExportEvent.id)
        .where(UNPRUNED, ExportEvent.updated_at < before)
        .order_by(ExportEvent.updated_at)
        .limit(limit)
    )


async def prune_finished(db: Sessions, before: datetime, batch: int = DEFAULT_BATCH) -> int:
    """Prune batch after batch, each in its own transaction, until none is left;
    returns how many events were pruned."""
    pruned = 0
    while True:
        async with db.write() as session:
            count = await _prune_batch(session, before, batch)
        pruned += count
        if count < batch:
            return pruned
        # The write lock is fair: writes that queued up during the batch go first.
        await asyncio.sleep(0)


async def _prune_batch(session: AsyncSession, before: datetime, batch: int) -> int:
    ids = list((await session.scalars(unpruned(before, batch))).all())
    if not ids:
        return 0
    chosen = ExportEvent.id.in_(among(ids, Integer()))
    now = utcnow()
    await session.execute(delete(EventLog).where(EventLog.event_id.in_(among(ids, Integer()))))
    await session.execute(
        update(ExportEvent)
        .where(chosen)
        .values(payload=null(), pruned_at=now)
        .execution_options(synchronize_session=False)
    )
    await session.execute(log_each(chosen, LogStatus.PRUNED, _DETAIL, now))
    return len(ids)
