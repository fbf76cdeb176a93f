"""Statements of full imports: their runs, the end of a run (objects the target no
longer holds), and the planner's statistics."""

from __future__ import annotations

from collections.abc import Mapping

from ecmahost.engine.space.models import EventLog, ExportEvent, ObjectRow, ObjectValue, Run, utcnow
from ecmahost.engine.space.states import OPEN_STATUSES, RunKind, RunStatus
from sqlalchemy import ColumnElement, delete, exists, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["analyze", "begin_run", "count_unseen", "finish_run", "has_history", "remove_unseen"]

_ANALYZED = (ObjectRow.__tablename__, ObjectValue.__tablename__)
_UNANALYZED = (ExportEvent.__tablename__, EventLog.__tablename__, Run.__tablename__)
_HAS_STATISTICS = "SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'"


async def begin_run(session: AsyncSession, connector: str, kind: RunKind) -> int:
    run = Run(
        connector=connector, kind=kind, status=RunStatus.RUNNING, started_at=utcnow(), counts={}
    )
    session.add(run)
    await session.flush()
    return run.id


async def finish_run(
    session: AsyncSession,
    run_id: int,
    status: RunStatus,
    counts: Mapping[str, int],
    error: str | None,
) -> None:
    await session.execute(
        update(Run)
        .where(Run.id == run_id)
        .values(status=status, counts=dict(counts), error=error, finished_at=utcnow())
    )


async def count_unseen(session: AsyncSession, connector: str, run_id: int) -> tuple[int, int]:
    """How many objects ``remove_unseen`` would forget, and how many the connector has:
    a full import weighs its removals before making any."""
    unseen = await session.scalar(
        select(func.count()).select_from(ObjectRow).where(await _unseen(session, connector, run_id))
    )
    total = await session.scalar(
        select(func.count()).select_from(ObjectRow).where(ObjectRow.connector == connector)
    )
    return int(unseen or 0), int(total or 0)


async def remove_unseen(session: AsyncSession, connector: str, run_id: int) -> int:
    """Forget the objects ``run_id`` did not see, unless an export of theirs is open
    or changed since the run began."""
    result = await session.execute(
        delete(ObjectRow).where(await _unseen(session, connector, run_id))
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def _unseen(session: AsyncSession, connector: str, run_id: int) -> ColumnElement[bool]:
    started_at = await session.scalar(select(Run.started_at).where(Run.id == run_id))
    recent = select(ExportEvent.object_id).where(
        ExportEvent.connector == connector,
        ExportEvent.status.in_(OPEN_STATUSES) | (ExportEvent.updated_at >= started_at),
    )
    return (
        (ObjectRow.connector == connector)
        & (ObjectRow.seen_run.is_(None) | (ObjectRow.seen_run != run_id))
        & ObjectRow.id.not_in(recent)
    )


async def has_history(session: AsyncSession, connector: str) -> bool:
    """Whether the space ever held ``connector``: a finished import, or any object."""
    imported = exists().where(
        Run.connector == connector, Run.kind == RunKind.IMPORT, Run.status == RunStatus.OK
    )
    held = exists().where(ObjectRow.connector == connector)
    return bool(await session.scalar(select(imported | held)))


async def analyze(session: AsyncSession) -> None:
    """Refresh the query planner's statistics of the objects and their values (after a
    full import changed many rows). Without them SQLite may walk every object of a
    connector instead of looking a filtered value up in the value index.

    The queue's tables get none: their shape changes by the minute (all events done
    at one moment, a backlog pending the next), and statistics taken when every
    event was done made claims scan the whole history of events rather than look the
    pending ones up."""
    connection = await session.connection()
    if connection.dialect.name != "sqlite":
        return
    stale = ", ".join(f"'{t}'" for t in _UNANALYZED)
    if await session.scalar(text(_HAS_STATISTICS)):
        await session.execute(text(f"DELETE FROM sqlite_stat1 WHERE tbl IN ({stale})"))
    for table in _ANALYZED:
        await session.execute(text(f"ANALYZE {table}"))
