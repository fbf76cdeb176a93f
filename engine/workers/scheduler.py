"""Periodic full imports, delta imports and retention. The scheduler only asks; the connector's
importer task (the retention task) does the work, so a slow run never piles up
scheduled jobs."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Protocol

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

__all__ = ["ImportRequests", "delta_job_id", "next_import_at", "start_scheduler"]


class ImportRequests(Protocol):
    """What the scheduler asks: an ``Importer``, or anything that passes the request
    on to one (the host's, for a connector not up yet); the ``Retention`` task too."""

    name: str

    def request(self) -> None: ...


RETENTION_MINUTES = 60
"""How often retention is asked to prune: hourly keeps each pass small."""


ALIGNED_TO = datetime(2000, 1, 1, tzinfo=UTC)
"""Where aligned schedules count their intervals from."""


def start_scheduler(
    plans: Iterable[tuple[ImportRequests, float]],
    retention: ImportRequests | None = None,
    deltas: Iterable[tuple[ImportRequests, float]] = (),
    *,
    aligned: bool = False,
) -> AsyncIOScheduler:
    """One interval job per ``(importer, minutes)``; 0 minutes means never. With a
    ``retention`` task, one more job asks it to prune every hour. ``deltas`` are
    ``(delta requester, minutes)``: jobs of their own, beside the full imports'.

    ``aligned``: the intervals count from ``ALIGNED_TO``, not from now, so that the
    hosts of a cluster tick at the same moments: when the host leading a connector's
    imports dies, the next one goes on with the same schedule, not one of its own."""
    scheduler = AsyncIOScheduler(timezone=UTC)
    start = ALIGNED_TO if aligned else None
    for importer, minutes in plans:
        if minutes > 0:
            _every(scheduler, minutes, _job_id(importer.name), importer, start)
    for requester, minutes in deltas:
        if minutes > 0:
            _every(scheduler, minutes, delta_job_id(requester.name), requester, start)
    if retention is not None:
        _every(scheduler, RETENTION_MINUTES, retention.name, retention, start)
    scheduler.start()
    return scheduler


def next_import_at(scheduler: AsyncIOScheduler, name: str) -> datetime | None:
    """When the connector's next scheduled import is asked for (aware, UTC); None
    when it has no schedule (``autosync_minutes = 0``)."""
    job = scheduler.get_job(_job_id(name))
    return None if job is None else job.next_run_time


def _job_id(name: str) -> str:
    return f"import:{name}"


def delta_job_id(name: str) -> str:
    """The id of the connector's scheduled delta job (``delta_minutes``)."""
    return f"delta:{name}"


def _every(
    scheduler: AsyncIOScheduler,
    minutes: float,
    job_id: str,
    requests: ImportRequests,
    start: datetime | None,
) -> None:
    scheduler.add_job(
        _requester(requests),
        IntervalTrigger(minutes=minutes, start_date=start, timezone=UTC),
        id=job_id,
        coalesce=True,
        max_instances=1,
        replace_existing=True,
    )


def _requester(importer: ImportRequests):  # type: ignore[no-untyped-def]
    # A coroutine job runs on the event loop; a plain function would run in a
    # thread, where setting an asyncio.Event is not safe.
    async def request_run() -> None:
        importer.request()

    return request_run
