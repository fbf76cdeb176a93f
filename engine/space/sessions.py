"""The store's sessions: many readers, one writer.

One asyncio lock makes this process the database's single writer: batch work (imports,
the queue's bookkeeping) and the group writer's commits take it in turn.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

from ecmahost.engine.space.database import CONFLICT_TRIES, conflicted
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

__all__ = ["Sessions"]

log = logging.getLogger(__name__)

T = TypeVar("T")

CONFLICT_PAUSE_S = 0.05
"""The longest pause before a batch's second run; it grows with each try, and a random
share of it keeps two victims from meeting again at once."""


class Sessions:
    def __init__(
        self,
        read: async_sessionmaker[AsyncSession],
        write: async_sessionmaker[AsyncSession] | None = None,
    ) -> None:
        self._read = read
        self._write = write or read
        self.write_lock = asyncio.Lock()

    @property
    def write_sessions(self) -> async_sessionmaker[AsyncSession]:
        return self._write

    @property
    def write_engine(self) -> AsyncEngine:
        engine: AsyncEngine = self._write.kw["bind"]
        return engine

    @property
    def url(self) -> str:
        """The database URL of the writer."""
        return str(self.write_engine.url.render_as_string(hide_password=False))

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reads (no transaction to commit)."""
        async with self._read() as session:
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A session whose transaction commits on exit (rolls back on an error),
        holding the write lock throughout."""
        async with self.write_lock, self._write.begin() as session:
            yield session

    async def write_retrying(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """``work`` in a ``write`` transaction, run again from the start when the
        database gave the transaction up for another's sake (``conflicted``). For
        batch work (an import's batch, its removals) that is all or nothing, and
        reads what it changes inside its transaction: running it again is safe."""
        attempt = 1
        while True:
            try:
                async with self.write() as session:
                    return await work(session)
            except DBAPIError as exc:
                if attempt == CONFLICT_TRIES or not conflicted(exc):
                    raise
                log.info(
                    "a batch was given up for another transaction (%s); running it again",
                    str(exc.orig).partition("\n")[0],
                    extra={"action": "space.conflict", "attempt": attempt},
                )
            await asyncio.sleep(random.uniform(0, CONFLICT_PAUSE_S * attempt))
            attempt += 1
