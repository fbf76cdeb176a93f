"""Group commit: the connector space's single writer task.

Each SCIM write is a job run inside its own SAVEPOINT of a shared transaction;
the jobs that queued up while the previous commit was being made to disk are
committed together. Durability (``synchronous=FULL``) then costs one fsync per
group instead of one per request. A job's own error rolls back only its
savepoint; a failed commit fails every job of the group. Nobody is answered
before the commit that holds their write has returned.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

__all__ = ["GroupWriter"]

log = logging.getLogger(__name__)

T = TypeVar("T")
Work = Callable[[AsyncSession], Awaitable[Any]]

MAX_GROUP = 256
"""Jobs per transaction at most: bounds how long one group holds the write lock."""


@dataclass(slots=True)
class _Job:
    work: Work
    done: asyncio.Future[Any] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class GroupWriter:
    """Runs write jobs in groups, one commit per group, under ``lock``."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], lock: asyncio.Lock) -> None:
        self._sessions = sessions
        self._lock = lock
        self._jobs: asyncio.Queue[_Job] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._committing: asyncio.Future[None] | None = None

    async def run(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Run ``work`` in the next group; returns once its commit has returned."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._loop(), name="ecmahost-group-writer")
        job = _Job(work)
        await self._jobs.put(job)
        # Shielded: a caller that goes away must not cancel a write other jobs share.
        return await asyncio.shield(job.done)

    async def close(self) -> None:
        """Stop taking jobs; a commit under way is finished first, not abandoned."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._committing is not None:
            await asyncio.gather(self._committing, return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            group = [await self._jobs.get()]
            while len(group) < MAX_GROUP and not self._jobs.empty():
                group.append(self._jobs.get_nowait())
            self._committing = asyncio.ensure_future(self._commit(group))
            await asyncio.shield(self._committing)

    async def _commit(self, group: list[_Job]) -> None:
        results: list[tuple[bool, Any]] = []
        try:
            async with self._lock, self._sessions.begin() as session:
                for job in group:
                    results.append(await self._one(session, job))
        except Exception as exc:  # the commit itself failed: nothing of the group is saved
            log.error("group commit failed: %s", exc, extra={"action": "space.commit_failed"})
            results = [(False, exc)] * len(group)
        for job, (ok, value) in zip(group, results, strict=True):
            if job.done.done():
                continue
            if ok:
                job.done.set_result(value)
            else:
                job.done.set_exception(value)

    @staticmethod
    async def _one(session: AsyncSession, job: _Job) -> tuple[bool, Any]:
        try:
            async with session.begin_nested():
                return True, await job.work(session)
        except Exception as exc:
            return False, exc
