"""The durable queue over a real SQLite file: group commit, leases, ordering."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from ecmahost.engine import queue
from ecmahost.engine.exceptions import AnchorTakenError
from ecmahost.engine.space.database import migrate, open_engine, sessionmaker_for, sqlite_url
from ecmahost.engine.space.models import ObjectRow
from ecmahost.engine.space.store import ConnectorSpace, Staging
from sqlalchemy import delete as sa_delete
from sqlalchemy import event, select
from sqlalchemy.dialects import sqlite as sqlite_dialect

NAME = "Mem"


@pytest.fixture
async def spaces(tmp_path: Path) -> AsyncIterator[tuple[ConnectorSpace, list[int]]]:
    """A space whose group writer counts its commits."""
    url = sqlite_url(tmp_path)
    reader, writer = open_engine(url), open_engine(url, writer=True)
    await migrate(writer)
    commits: list[int] = []
    space = ConnectorSpace(sessionmaker_for(reader), sessionmaker_for(writer))
    event.listen(space.group_engine, "commit", lambda _conn: commits.append(1))
    try:
        yield space, commits
    finally:
        await space.close()
        await reader.dispose()
        await writer.dispose()


def staging(anchor: str) -> Staging:
    return Staging({"AzureObjectID": anchor, "Title": "t"}, visible=True, export="upsert")


async def test_concurrent_writes_share_commits_and_fail_alone(
    spaces: tuple[ConnectorSpace, list[int]],
) -> None:
    space, commits = spaces
    anchors = [f"user-{i}" for i in range(60)] + ["user-7"]  # one duplicate anchor

    results = await asyncio.gather(
        *(space.create(NAME, a, staging(a)) for a in anchors), return_exceptions=True
    )

    errors = [r for r in results if isinstance(r, Exception)]
    assert len(errors) == 1 and isinstance(errors[0], AnchorTakenError)
    total, objects = await space.query(NAME, None, 1, 100)
    assert total == 60 and {o.anchor for o in objects} == set(anchors)
    assert 1 <= len(commits) < 60 / 4, f"{len(commits)} commits for 61 writes: no grouping"
    async with space.read() as session:
        events = await queue.list_events(session, connector=NAME)
    assert len(events) == 60 and all(e.status == "pending" for e in events)


async def test_a_dead_workers_claim_is_reclaimed_after_its_lease(
    spaces: tuple[ConnectorSpace, list[int]],
) -> None:
    space, _ = spaces
    _, event_id = await space.create(NAME, "a", staging("a"))

    async with space.write() as session:
        [first] = await queue.claim(session, NAME, 10, lease_s=0.2)
    async with space.write() as session:
        assert await queue.claim(session, NAME, 10) == []  # the lease holds it
    await asyncio.sleep(0.3)  # the worker "died": its lease runs out
    async with space.write() as session:
        [again] = await queue.claim(session, NAME, 10)

    assert again.event_ids == first.event_ids == (event_id,)
    async with space.read() as session:
        statuses = [h["status"] for h in await queue.history(session, event_id)]
    assert statuses == ["pending", "reclaimed"]


async def test_later_events_coalesce_and_never_overtake_a_failed_one(
    spaces: tuple[ConnectorSpace, list[int]],
) -> None:
    space, _ = spaces
    obj, first = await space.create(NAME, "a", staging("a"))
    async with space.write() as session:
        [claim] = await queue.claim(session, NAME, 10)
        await queue.mark_failed(session, [(claim, "rejected", "permanent")])
    # The failed create left nothing visible, so Entra creates again, then patches.
    await space.create(NAME, "a", Staging({"AzureObjectID": "a", "Title": "t1"}, True, "upsert"))
    await space.update(
        NAME, obj.id, lambda o: Staging({**o.attributes, "Title": "t2"}, True, "upsert")
    )

    async with space.write() as session:
        assert await queue.claim(session, NAME, 10) == []  # held behind the failed create
        assert await queue.replay(session, [first]) == [first]
    async with space.write() as session:
        [claim] = await queue.claim(session, NAME, 10)

    assert claim.object_id == obj.id and len(claim.event_ids) == 3
    assert claim.event_ids[0] == first  # in order, the replayed one first
    assert claim.change.attributes == {"AzureObjectID": "a", "Title": "t2"}  # the newest state


async def test_a_batch_is_marked_done_at_once_even_if_an_object_went_away(
    spaces: tuple[ConnectorSpace, list[int]],
) -> None:
    space, _ = spaces
    await space.create(NAME, "kept", staging("kept"))
    gone, _ = await space.create(NAME, "gone", staging("gone"))
    deleted, _ = await space.create(NAME, "deleted", staging("deleted"))
    async with space.write() as session:
        first = await queue.claim(session, NAME, 10)
    async with space.write() as session:
        await queue.mark_done(session, first)
    await space.update(NAME, deleted.id, lambda b: Staging(b.attributes, False, "delete"))
    async with space.write() as session:
        claims = await queue.claim(session, NAME, 10)
        assert [c.change.kind.value for c in claims] == ["delete"]
        await session.execute(sa_delete(ObjectRow).where(ObjectRow.id == gone.id))

    async with space.write() as session:
        await queue.mark_done(session, [*claims, *first])  # "gone" is no error

    async with space.read() as session:
        rows = {r.anchor: r for r in (await session.scalars(select(ObjectRow))).all()}
        events = await queue.list_events(session, connector=NAME)
    assert set(rows) == {"kept"}  # the deleted object, once exported, is forgotten
    assert rows["kept"].confirmed == {"AzureObjectID": "kept", "Title": "t"}
    assert rows["kept"].target_anchor == "kept"
    assert {e.status for e in events} == {"done"}
    async with space.read() as session:
        statuses = [h["status"] for h in await queue.history(session, claims[0].event_ids[0])]
    assert statuses == ["pending", "done"]


async def test_claims_look_pending_events_up_after_an_import_analyzed_the_space(
    spaces: tuple[ConnectorSpace, list[int]], tmp_path: Path
) -> None:
    space, _ = spaces
    for i in range(40):  # a history of done events: all of them one status
        await space.create(NAME, f"u{i}", staging(f"u{i}"))
    async with space.write() as session:
        await queue.mark_done(session, await queue.claim(session, NAME, 100))
    db_file = tmp_path / "ecmahost.db"
    with sqlite3.connect(db_file) as db:
        db.execute("ANALYZE")  # what an earlier version left: statistics of every table

    await space.analyze()

    with sqlite3.connect(db_file) as db:
        analyzed = {t for (t,) in db.execute("SELECT DISTINCT tbl FROM sqlite_stat1")}
        due = queue.due_objects(NAME, 10).compile(
            dialect=sqlite_dialect.dialect(), compile_kwargs={"literal_binds": True}
        )
        plan = " ".join(row[-1] for row in db.execute(f"EXPLAIN QUERY PLAN {due}"))
    assert {"objects", "object_values"} <= analyzed
    assert analyzed.isdisjoint({"export_events", "event_log", "runs"})
    assert "SEARCH export_events USING INDEX ix_export_events_due" in plan, plan
