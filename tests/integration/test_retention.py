"""Retention, on SQLite and on PostgreSQL: finished events older than the cut-off
lose their payloads and history, in small transactions that let writes through."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

from ecmahost.engine import queue
from ecmahost.engine.queue import ErrorKind
from ecmahost.engine.scim.admin import event_json
from ecmahost.engine.space import ConnectorSpace, Staging
from ecmahost.engine.space.models import ExportEvent, utcnow
from ecmahost.engine.space.retention import unpruned
from ecmahost.engine.space.states import EventStatus, Op
from ecmahost.engine.workers.retention import Retention
from sqlalchemy import update
from sqlalchemy.dialects import sqlite as sqlite_dialect

NAME = "Mem"
DAYS = 30


def staging(anchor: str, title: str = "t") -> Staging:
    return Staging({"AzureObjectID": anchor, "Title": title}, True, Op.UPSERT)


async def backdate(space: ConnectorSpace, ids: list[int], days: float) -> None:
    """Make the events look as if they finished ``days`` ago."""
    at = utcnow() - timedelta(days=days)
    async with space.write() as session:
        await session.execute(
            update(ExportEvent).where(ExportEvent.id.in_(ids)).values(updated_at=at)
        )


async def steps(space: ConnectorSpace, event_id: int) -> list[str]:
    return [h["status"] for h in await queue.history(space, event_id)]


async def export_all(space: ConnectorSpace) -> list[int]:
    """Claim every due event and record it done; returns their ids."""
    claims = await queue.claim(space, NAME, 100_000)
    await queue.record(space, done=claims)
    return [i for c in claims for i in c.event_ids]


async def one_of_each(space: ConnectorSpace) -> dict[str, int]:
    """An event in every status, by name."""
    events: dict[str, int] = {}
    obj, events["done"] = await space.create(NAME, "done", staging("done"))
    await export_all(space)
    for name in ("superseded", "discarded", "failed"):
        await space.create(NAME, name, staging(name))
        [claim] = await queue.claim(space, NAME, 10)
        await queue.record(space, failed=[(claim, "rejected", ErrorKind.PERMANENT)])
        [events[name]] = claim.event_ids
    await space.create(NAME, "superseded", staging("superseded", "again"))  # supersedes
    await queue.discard(space, [events["discarded"]])
    _, events["pending"] = await space.update(
        NAME, obj.id, lambda o: Staging({**o.attributes, "Title": "new"}, True, Op.UPSERT)
    )
    return events


async def test_only_old_finished_events_lose_their_payload_and_history(
    space: ConnectorSpace,
) -> None:
    events = await one_of_each(space)
    await backdate(space, list(events.values()), days=DAYS + 1)
    _, recent = await space.create(NAME, "recent", staging("recent"))
    await export_all(space)  # the pending one is exported too: done now, so recent
    events["recent"] = recent
    _, events["old pending"] = await space.create(NAME, "waiting", staging("waiting"))
    await backdate(space, [events["old pending"]], days=DAYS + 1)
    before = {e.id: e for e in await queue.list_events(space)}
    history = {i: await steps(space, i) for i in before}

    pruned = await space.prune_finished(utcnow() - timedelta(days=DAYS))

    old = {events["done"], events["superseded"], events["discarded"]}
    assert pruned == len(old)
    after = {e.id: e for e in await queue.list_events(space)}
    for event_id, event in after.items():
        if event_id in old:  # the outcome stays; what it carried is gone
            assert event.payload is None
            assert (event.status, event.last_error) == (
                before[event_id].status,
                before[event_id].last_error,
            )
            assert await steps(space, event_id) == ["pruned"]
        else:  # failed, pending and recent events are untouched
            assert event == before[event_id]
            assert await steps(space, event_id) == history[event_id]
    assert after[events["failed"]].status == EventStatus.FAILED
    assert after[events["old pending"]].status == EventStatus.PENDING
    assert await space.prune_finished(utcnow() - timedelta(days=DAYS)) == 0  # done once
    shown = json.loads(json.dumps(event_json(after[events["done"]])))  # as the API shows it
    assert shown["payload"] is None and shown["status"] == "done"


async def test_the_failed_event_a_replay_needs_keeps_its_payload(space: ConnectorSpace) -> None:
    await space.create(NAME, "a", staging("a", "kept"))
    [claim] = await queue.claim(space, NAME, 10)
    await queue.record(space, failed=[(claim, "rejected", ErrorKind.PERMANENT)])
    await backdate(space, list(claim.event_ids), days=DAYS * 10)

    assert await space.prune_finished(utcnow()) == 0
    assert await queue.replay(space, list(claim.event_ids)) == list(claim.event_ids)
    [again] = await queue.claim(space, NAME, 10)
    assert again.change.attributes == {"AzureObjectID": "a", "Title": "kept"}


async def test_a_large_prune_lets_writes_commit_between_its_batches(
    space: ConnectorSpace,
) -> None:
    await asyncio.gather(*(space.create(NAME, f"u{i}", staging(f"u{i}")) for i in range(400)))
    done = await export_all(space)
    await backdate(space, done, days=DAYS + 1)
    written_during: list[int] = []

    async def keep_writing(prune: asyncio.Task[int]) -> None:
        for i in range(100_000):
            await space.create(NAME, f"new-{i}", staging(f"new-{i}"))
            if prune.done():
                return
            written_during.append(i)

    prune = asyncio.create_task(space.prune_finished(utcnow() - timedelta(days=DAYS), batch=10))
    await asyncio.sleep(0)  # the prune takes the write lock first
    await keep_writing(prune)

    assert prune.result() == 400
    # One transaction per batch of 10: the writes take turns with its 40 batches.
    assert len(written_during) >= 10, f"{len(written_during)} writes during the prune"
    assert all(e.payload is None for e in await queue.list_events(space, ids=done))


async def test_retention_finds_its_events_by_their_partial_index(
    sqlite_space: ConnectorSpace, tmp_path: Path
) -> None:
    chosen = unpruned(datetime(2026, 1, 1), 500).compile(
        dialect=sqlite_dialect.dialect(), compile_kwargs={"literal_binds": True}
    )
    with sqlite3.connect(tmp_path / "ecmahost.db") as db:
        plan = " ".join(row[-1] for row in db.execute(f"EXPLAIN QUERY PLAN {chosen}"))
    assert "USING INDEX ix_export_events_unpruned" in plan, plan


async def test_the_worker_prunes_what_finished_before_its_period_at_each_request(
    space: ConnectorSpace,
) -> None:
    await space.create(NAME, "a", staging("a"))
    done = await export_all(space)
    retention = Retention(space, days=DAYS)
    assert await retention.prune() == 0  # finished just now: kept
    await backdate(space, done, days=DAYS + 1)
    worker = asyncio.create_task(retention.run())
    try:
        retention.request()
        for _ in range(100):
            await asyncio.sleep(0.02)
            if (await queue.list_events(space))[0].payload is None:
                break
        assert [e.payload for e in await queue.list_events(space)] == [None]
    finally:
        worker.cancel()
