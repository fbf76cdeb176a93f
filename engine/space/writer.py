"""Group commit: the connector space's single writer task.

Each SCIM write is a job run inside its own SAVEPOINT of a shared transaction (a
job alone in its group runs in the transaction itself);
the jobs that queued up while the previous commit was being made to disk are
committed together. Durability (``synchronous=FULL``) then costs one fsync per
group instead of one per request. A job's own error rolls back only its
savepoint; a failed commit fails every job of the group. Nobody is answered
before the commit that holds their write has returned.

A group runs on a worker thread with a synchronous session: the jobs are plain
functions, and the whole group costs one hop to that thread rather than one per
statement, which through the async driver cost more than the statement itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session, sessionmaker

__all__ = ["GroupWriter"]

log = logging.getLogger(__name__)

T = TypeVar("T")
Work = Callable[[Session], Any]

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

    def __init__(
        self,
        sessions: sessionmaker[Session] | None,
        lock: asyncio.Lock,
        async_sessions: async_sessionmaker[AsyncSession] | None = None,
    ) -> None:
        """``sessions``: a synchronous engine's, whose groups run on a worker thread
        (SQLite). ``async_sessions`` instead: groups run on the event loop through
        the async driver, the jobs' synchronous calls bridged by SQLAlchemy
        (PostgreSQL: asyncpg has no synchronous form, and its round trips do not
        hold the loop)."""
        self._sessions = sessions
        self._async_sessions = async_sessions
        self._lock = lock
        self._jobs: asyncio.Queue[_Job] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._committing: asyncio.Future[None] | None = None

    async def run(self, work: Callable[[Session], T]) -> T:
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
        works = [job.work for job in group]
        async with self._lock:
            if self._async_sessions is None:
                results = await asyncio.to_thread(self._in_thread, works)
            else:
                async with self._async_sessions() as session:
                    results = await session.run_sync(_run_group, works)
        for job, (ok, value) in zip(group, results, strict=True):
            if job.done.done():
                continue
            if ok:
                job.done.set_result(value)
            else:
                job.done.set_exception(value)

    def _in_thread(self, works: list[Work]) -> list[tuple[bool, Any]]:
        assert self._sessions is not None
        with self._sessions() as session:
            return _run_group(session, works)


def _run_group(session: Session, jobs: list[Work]) -> list[tuple[bool, Any]]:
    """Every job, then one commit."""
    if len(jobs) == 1:
        return [_alone(session, jobs[0])]
    results: list[tuple[bool, Any]] = []
    try:
        with session.begin():
            for work in jobs:
                results.append(_one(session, work))
    except Exception as exc:  # the commit itself failed: nothing of the group is saved
        log.error("group commit failed: %s", exc, extra={"action": "space.commit_failed"})
        results = [(False, exc)] * len(jobs)
    return results


def _alone(session: Session, work: Work) -> tuple[bool, Any]:
    """A group of one job needs no savepoint: the transaction is the job's own,
    rolled back whole if the job fails."""
    session.begin()
    try:
        value = work(session)
    except Exception as exc:
        session.rollback()
        return False, exc
    try:
        session.commit()
    except Exception as exc:
        log.error("group commit failed: %s", exc, extra={"action": "space.commit_failed"})
        return False, exc
    return True, value


def _one(session: Session, work: Work) -> tuple[bool, Any]:
    try:
        with session.begin_nested():
            return True, work(session)
    except Exception as exc:
        return False, exc
    finally:
        # Most jobs write through Core statements, which the ORM's identity map
        # does not see: a row an ORM job loaded would be stale for a later job
        # of the group. Its changes are flushed by now (the savepoint is over).
        session.expunge_all()
