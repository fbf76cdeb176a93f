"""Periodic full imports. The scheduler only asks for an import; the connector's
importer task runs it, so a slow import never piles up scheduled jobs."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Protocol

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

__all__ = ["ImportRequests", "next_import_at", "start_scheduler"]


class ImportRequests(Protocol):
    """What the scheduler asks: an ``Importer``, or anything that passes the request
    on to one (the host's, for a connector not up yet)."""

    name: str

    def request(self) -> None: ...


def start_scheduler(plans: Iterable[tuple[ImportRequests, int]]) -> AsyncIOScheduler:
    """One interval job per ``(importer, minutes)``; 0 minutes means never."""
    scheduler = AsyncIOScheduler(timezone=UTC)
    for importer, minutes in plans:
        if minutes > 0:
            scheduler.add_job(
                _requester(importer),
                IntervalTrigger(minutes=minutes, timezone=UTC),
                id=_job_id(importer.name),
                coalesce=True,
                max_instances=1,
                replace_existing=True,
            )
    scheduler.start()
    return scheduler


def next_import_at(scheduler: AsyncIOScheduler, name: str) -> datetime | None:
    """When the connector's next scheduled import is asked for (aware, UTC); None
    when it has no schedule (``autosync_minutes = 0``)."""
    job = scheduler.get_job(_job_id(name))
    return None if job is None else job.next_run_time


def _job_id(name: str) -> str:
    return f"import:{name}"


def _requester(importer: ImportRequests):  # type: ignore[no-untyped-def]
    # A coroutine job runs on the event loop; a plain function would run in a
    # thread, where setting an asyncio.Event is not safe.
    async def request_import() -> None:
        importer.request()

    return request_import
