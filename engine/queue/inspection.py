"""What the command line and the admin API do with the queue: list events, show an
event's history, replay or discard failed ones."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ecmahost.engine.space.contract import Store
from ecmahost.engine.space.records import EventView, OutcomeView
from ecmahost.engine.space.states import EventStatus

__all__ = ["discard", "history", "list_events", "recent_outcomes", "replay"]


async def list_events(
    space: Store,
    *,
    status: EventStatus | None = None,
    connector: str | None = None,
    ids: Sequence[int] | None = None,
    limit: int = 1000,
    after_id: int | None = None,
    since: datetime | None = None,
) -> list[EventView]:
    """Up to ``limit`` events in id order, filtered by whichever criteria are given."""
    return await space.events.find(
        status=status, connector=connector, ids=ids, limit=limit, after_id=after_id, since=since
    )


async def history(space: Store, event_id: int) -> list[dict[str, Any]]:
    """The event's steps, oldest first, as JSON-ready dicts."""
    return [
        {"status": e.status, "detail": e.detail, "at": e.at.isoformat()}
        for e in await space.events.history(event_id)
    ]


async def recent_outcomes(space: Store, connector: str, limit: int = 50) -> list[OutcomeView]:
    """The connector's newest ``limit`` export outcomes, newest first."""
    return await space.events.recent_outcomes(connector, limit)


async def replay(space: Store, ids: Sequence[int] | None) -> list[int]:
    """Failed events (these, or all when ``ids`` is None) go back to the queue now;
    an object whose newest event is replayed shows that event's state again."""
    return await space.events.replay(ids)


async def discard(space: Store, ids: Sequence[int]) -> list[int]:
    """Failed events are given up on; they stay listed as ``discarded``."""
    return await space.events.discard(ids)
