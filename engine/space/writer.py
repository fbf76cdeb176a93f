"""Group commit: the connector space's single writer task.

Each SCIM write is a job run inside its own SAVEPOINT of a shared transaction (a
job alone in its group runs in the transaction itself);
the jobs that queued up while the previous commit was being made to disk are
committed together. Durability (``synchronous=FULL``) then costs one fsync per
group instead of one per request. A job's own error rolls back only its
savepoint; a failed commit fails every job of the group. A job that PostgreSQL
gives up for another host's transaction (a deadlock) runs again in a later group.
Nobody is answered before the commit that holds their write has returned.

A group runs on a worker thread with a synchronous connection: the jobs are plain
functions, and the whole group costs one hop to that thread rather than one per
statement, which through the async driver cost more than the statement itself.
The transaction and the jobs' savepoints are the connection's own: most jobs send
their statements to the driver (``driver.driver_of``), and a Session's transaction
bookkeeping cost more than their statements. A job that uses the ORM gets it from
a Session joined to the transaction, which takes a savepoint of its own, inside the
job's, only once the job asks it for something.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ecmahost.engine.space.database import CONFLICT_TRIES, conflicted
from ecmahost.engine.space.driver import DRIVER_INFO, Db, driver_for
from sqlalchemy import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Session

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
    tries: int = 1


class GroupWriter:
    """Runs write jobs in groups, one commit per group, under ``lock``."""

    def __init__(self, engine: Engine | AsyncEngine, lock: asyncio.Lock) -> None:
        """``engine``: a synchronous engine's groups run on a worker thread (SQLite);
        an async engine's on the event loop through the async driver, the jobs'
        synchronous calls bridged by SQLAlchemy (PostgreSQL: asyncpg has no
        synchronous form, and its round trips do not hold the loop)."""
        self._engine = engine
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
            try:
                results = await self._run(works)
            except Exception as exc:  # no connection to run it on: the database is down
                results = [(False, exc)] * len(works)
        for job, (ok, value) in zip(group, results, strict=True):
            if job.done.done():
                continue
            if ok:
                job.done.set_result(value)
            elif conflicted(value) and job.tries < CONFLICT_TRIES:
                # PostgreSQL gave the job up for another host's transaction (a
                # deadlock): it runs again in a later group, once this one's locks
                # are gone. A job reads what it changes, so running it again is safe.
                job.tries += 1
                self._jobs.put_nowait(job)
            else:
                job.done.set_exception(value)

    async def _run(self, works: list[Work]) -> list[tuple[bool, Any]]:
        if isinstance(self._engine, AsyncEngine):
            async with self._engine.connect() as connection:
                return await connection.run_sync(_run_group, works)
        return await asyncio.to_thread(self._in_thread, works)

    def _in_thread(self, works: list[Work]) -> list[tuple[bool, Any]]:
        assert isinstance(self._engine, Engine)
        with self._engine.connect() as connection:
            return _run_group(connection, works)


def _run_group(connection: Connection, jobs: list[Work]) -> list[tuple[bool, Any]]:
    """Every job, then one commit. A job alone needs no savepoint: the transaction
    is its own, rolled back whole if the job fails."""
    db = driver_for(connection)
    session = Session(
        bind=connection,
        join_transaction_mode="create_savepoint",
        expire_on_commit=False,
        info={DRIVER_INFO: db},
    )
    try:
        connection.begin()
        if len(jobs) == 1:
            results = [_attempt(session, jobs[0])]
            if not results[0][0]:
                connection.rollback()
                return results
        else:
            results = [_in_savepoint(db, session, work) for work in jobs]
        connection.commit()
    except Exception as exc:  # the commit itself failed: nothing of the group is saved
        log.error("group commit failed: %s", exc, extra={"action": "space.commit_failed"})
        with contextlib.suppress(Exception):  # a connection that broke cannot say more
            connection.rollback()
        return [(False, exc)] * len(jobs)
    finally:
        session.close()
    return results


def _in_savepoint(db: Db, session: Session, work: Work) -> tuple[bool, Any]:
    db.execute("SAVEPOINT job")
    done = _attempt(session, work)
    if not done[0]:
        db.execute("ROLLBACK TO SAVEPOINT job")
    db.execute("RELEASE SAVEPOINT job")
    return done


def _attempt(session: Session, work: Work) -> tuple[bool, Any]:
    """``work``, with what it did through the ORM flushed (its savepoint released),
    or undone if it failed."""
    try:
        value = work(session)
        if session.in_transaction():
            session.commit()
    except Exception as exc:
        if session.in_transaction():
            session.rollback()
        return False, exc
    finally:
        # Most jobs write past the ORM, whose identity map does not see it: a row an
        # ORM job loaded would be stale for a later job of the group. (A job that
        # did not use the ORM left nothing to clear.)
        if session.identity_map or session.new:
            session.expunge_all()
    return True, value
