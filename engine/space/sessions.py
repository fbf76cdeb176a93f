"""The store's sessions: many readers, one writer.

One asyncio lock makes this process the database's single writer: batch work (imports,
the queue's bookkeeping) and the group writer's commits take it in turn.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

__all__ = ["Sessions"]


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
