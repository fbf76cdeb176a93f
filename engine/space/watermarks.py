"""Statements of the watermarks: where each connector's next delta import starts.

A full import stores the position it read before streaming; each delta batch stores
the position of its last change in the batch's own transaction, so the watermark
never runs ahead of what the space holds (a crash replays a batch, never skips one).
"""

from __future__ import annotations

from ecmahost.engine.space.models import Watermark, utcnow
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["forget", "load", "save"]


async def load(session: AsyncSession, connector: str) -> str | None:
    """The stored watermark of ``connector``; None when none was ever stored."""
    return await session.scalar(select(Watermark.watermark).where(Watermark.connector == connector))


async def save(session: AsyncSession, connector: str, watermark: str) -> None:
    now = utcnow()
    postgres = (await session.connection()).dialect.name == "postgresql"
    insert = postgresql.insert if postgres else sqlite.insert
    statement = insert(Watermark).values(connector=connector, watermark=watermark, updated_at=now)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[Watermark.connector],
            set_={"watermark": watermark, "updated_at": now},
        )
    )


async def forget(session: AsyncSession, connector: str) -> None:
    """Drop the watermark: the next delta import is a full one."""
    found = await session.get(Watermark, connector)
    if found is not None:
        await session.delete(found)
