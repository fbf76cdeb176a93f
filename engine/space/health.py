"""Statements behind ``/health?detail=1``: per connector, its last finished import
and the state of its export queue. Each is one indexed query, cheap enough for a
monitor that asks every few seconds."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ecmahost.engine.space.models import ExportEvent, Run
from ecmahost.engine.space.states import WAITING_STATUSES, EventStatus, RunKind, RunStatus
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["ImportSummary", "QueueSummary", "has_finished_import", "last_import", "queue_summary"]


@dataclass(frozen=True, slots=True)
class ImportSummary:
    """A finished import run: when it ended, ``ok`` or ``failed``, its counts."""

    finished_at: datetime
    status: str
    counts: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True, slots=True)
class QueueSummary:
    """``pending``: events waiting or being exported; ``failed``: events that need
    an operator (replay or discard); ``oldest_pending_at``: when the oldest waiting
    event was queued, None with nothing waiting."""

    pending: int
    failed: int
    oldest_pending_at: datetime | None


async def has_finished_import(session: AsyncSession, connector: str) -> bool:
    found = await session.scalar(
        select(Run.id)
        .where(
            Run.connector == connector,
            Run.kind == RunKind.IMPORT,
            Run.status == RunStatus.OK,
        )
        .limit(1)
    )
    return found is not None


async def last_import(
    session: AsyncSession, connector: str, kind: RunKind = RunKind.IMPORT
) -> ImportSummary | None:
    run = await session.scalar(
        select(Run)
        .where(
            Run.connector == connector,
            Run.kind == kind,
            Run.finished_at.is_not(None),
        )
        .order_by(Run.id.desc())
        .limit(1)
    )
    if run is None or run.finished_at is None:
        return None
    return ImportSummary(run.finished_at, run.status, dict(run.counts or {}), run.error)


async def queue_summary(session: AsyncSession, connector: str) -> QueueSummary:
    # Both read the (connector, status, ...) index: only waiting and failed events
    # are visited, never the history of done ones.
    waiting = ExportEvent.connector == connector, ExportEvent.status.in_(WAITING_STATUSES)
    pending, oldest = (
        await session.execute(
            select(func.count(), func.min(ExportEvent.created_at)).where(*waiting)
        )
    ).one()
    failed = await session.scalar(
        select(func.count()).where(
            ExportEvent.connector == connector, ExportEvent.status == EventStatus.FAILED
        )
    )
    return QueueSummary(int(pending or 0), int(failed or 0), oldest)
