"""Periodic full imports. The scheduler only asks for an import; the connector's
importer task runs it, so a slow import never piles up scheduled jobs."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC
from typing import Protocol

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

__all__ = ["ImportRequests", "start_scheduler"]


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
                id=f"import:{importer.name}",
                coalesce=True,
                max_instances=1,
                replace_existing=True,
            )
    scheduler.start()
    return scheduler


def _requester(importer: ImportRequests):  # type: ignore[no-untyped-def]
    # A coroutine job runs on the event loop; a plain function would run in a
    # thread, where setting an asyncio.Event is not safe.
    async def request_import() -> None:
        importer.request()

    return request_import
