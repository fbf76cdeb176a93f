"""The durable queue, on SQLite and on PostgreSQL: group commit, leases, ordering."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from ecmahost.connectors.base import ChangeKind
from ecmahost.engine import queue
from ecmahost.engine.exceptions import AnchorTakenError
from ecmahost.engine.queue import ErrorKind, Outcome, OutcomeStatus
from ecmahost.engine.space import ConnectorSpace, Staging
from ecmahost.engine.space.events import due_objects
from ecmahost.engine.space.models import ObjectRow, utcnow
from ecmahost.engine.space.states import EventStatus, Op
from ecmahost.engine.space.stored import StoredObject
from sqlalchemy import Engine, event, select, text
from sqlalchemy import delete as sa_delete
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.util import await_only

NAME = "Mem"


async def group_engine(space: ConnectorSpace) -> Engine:
    """The engine the group writer commits through: SQLite's synchronous group engine,
    else (PostgreSQL) the async writer's."""
    if space.group_engine is not None:
        return space.group_engine
    async with space.write() as session:
        return session.get_bind()


async def group_commits(space: ConnectorSpace) -> list[int]:
    """A list that gets an entry at each commit of the group writer."""
    commits: list[int] = []
    event.listen(await group_engine(space), "commit", lambda _conn: commits.append(1))
    return commits


def retitle(title: str) -> Callable[[StoredObject], Staging]:
    return lambda o: Staging({**o.attributes, "Title": title}, True, Op.UPSERT)


def staging(anchor: str) -> Staging:
    return Staging({"AzureObjectID": anchor, "Title": "t"}, visible=True, export=Op.UPSERT)


async def refuse_events_of(space: ConnectorSpace, anchor: str) -> None:
    """The database refuses to queue an export event of ``anchor``: a write of it fails
    on its last statement, after it staged the object and its index rows. (On
    PostgreSQL the trigger runs a function, which fails as a violated constraint, as
    SQLite's ABORT does.)"""
    async with space.write() as session:
        if session.get_bind().dialect.name == "sqlite":
            statements = [
                "CREATE TRIGGER refuse BEFORE INSERT ON export_events"
                f" WHEN NEW.anchor = '{anchor}' BEGIN SELECT RAISE(ABORT, 'refused'); END"
            ]
        else:
            statements = [
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
                " RAISE EXCEPTION 'refused' USING ERRCODE = 'check_violation'; END $$",
                "CREATE TRIGGER refuse BEFORE INSERT ON export_events FOR EACH ROW"
                f" WHEN (NEW.anchor = '{anchor}') EXECUTE FUNCTION refuse()",
            ]
        for statement in statements:
            await session.execute(text(statement))


async def test_concurrent_writes_share_commits_and_fail_alone(space: ConnectorSpace) -> None:
    await refuse_events_of(space, "refused")
    commits = await group_commits(space)
    anchors = [f"user-{i}" for i in range(60)]
    writes = [space.create(NAME, a, staging(a)) for a in anchors]
    # Three writes fail in the middle of the group, each with writes before and after it.
    # Only the first fails before writing anything; the other two fail after their own
    # statements ran, which their savepoint alone takes back.
    failing = {
        20: space.create(NAME, "user-7", staging("user-7")),  # a visible object has it
        # inserts its row, then finds the anchor it renames to taken
        40: space.create(NAME, "renamed", replace(staging("renamed"), anchor="user-3")),
        50: space.create(NAME, "refused", staging("refused")),  # the event is refused
    }
    for at, write in failing.items():
        writes.insert(at, write)

    results = await asyncio.gather(*writes, return_exceptions=True)

    errors = {i: type(r) for i, r in enumerate(results) if isinstance(r, Exception)}
    assert errors == {20: AnchorTakenError, 40: AnchorTakenError, 50: IntegrityError}
    total, objects = await space.query(NAME, None, 1, 100)
    assert total == 60 and {o.anchor for o in objects} == set(anchors)
    async with space.read() as session:  # no trace of the failed writes, hidden or not
        stored = set((await session.scalars(select(ObjectRow.anchor))).all())
    assert stored == set(anchors)
    assert 1 <= len(commits) < 60 / 4, f"{len(commits)} commits for 63 writes: no grouping"
    events = await queue.list_events(space, connector=NAME)
    assert {e.anchor for e in events} == set(anchors)
    assert len(events) == 60 and all(e.status == EventStatus.PENDING for e in events)


async def test_a_dead_workers_claim_is_reclaimed_after_its_lease(space: ConnectorSpace) -> None:
    _, event_id = await space.create(NAME, "a", staging("a"))

    [first] = await queue.claim(space, NAME, 10, lease_s=0.2)
    assert await queue.claim(space, NAME, 10) == []  # the lease holds it
    await asyncio.sleep(0.3)  # the worker "died": its lease runs out
    [again] = await queue.claim(space, NAME, 10)

    assert again.event_ids == first.event_ids == (event_id,)
    statuses = [h["status"] for h in await queue.history(space, event_id)]
    assert statuses == ["pending", "reclaimed"]


async def test_at_start_up_a_dead_processs_running_events_are_queued_again(
    space: ConnectorSpace,
) -> None:
    await space.create(NAME, "a", staging("a"))
    await space.create(NAME, "b", staging("b"))
    claimed = await queue.claim(space, NAME, 10, lease_s=300)  # then the process died
    assert await queue.claim(space, NAME, 10) == []  # held by the lease

    assert await queue.recover(space) == 2

    again = await queue.claim(space, NAME, 10)  # not after the lease: at once
    assert [c.event_ids for c in again] == [c.event_ids for c in claimed]


async def test_a_newer_change_supersedes_a_failed_create_and_is_exported_as_an_add(
    space: ConnectorSpace,
) -> None:
    obj, first = await space.create(NAME, "a", staging("a"))
    [claim] = await queue.claim(space, NAME, 10)
    await queue.record(space, failed=[(claim, "rejected", ErrorKind.PERMANENT)])
    # The failed create left nothing visible, so Entra creates again, then patches.
    _, second = await space.create(
        NAME, "a", Staging({"AzureObjectID": "a", "Title": "t1"}, True, Op.UPSERT)
    )
    [failed] = await queue.list_events(space, ids=[first])
    assert failed.status == EventStatus.SUPERSEDED and failed.last_error == "rejected"
    await space.update(
        NAME, obj.id, lambda o: Staging({**o.attributes, "Title": "t2"}, True, Op.UPSERT)
    )

    [claim] = await queue.claim(space, NAME, 10)  # not held behind the failed create
    assert claim.object_id == obj.id and claim.event_ids[0] == second
    # The target holds nothing: the newest state is an add.
    assert claim.change.kind is ChangeKind.ADD
    assert claim.change.attributes == {"AzureObjectID": "a", "Title": "t2"}
    assert await queue.replay(space, [first]) == []  # a superseded event is never replayed
    assert await queue.discard(space, [first]) == []
    steps = [h["status"] for h in await queue.history(space, first)]
    assert steps == ["pending", "failed", "superseded"]
    assert await queue.outcome(space, first) == Outcome(
        OutcomeStatus.FAILED, "rejected", ErrorKind.PERMANENT
    )


async def test_a_failure_with_a_newer_change_waiting_is_superseded_at_once(
    space: ConnectorSpace,
) -> None:
    obj, _ = await space.create(NAME, "a", staging("a"))
    [claim] = await queue.claim(space, NAME, 10)
    await queue.record(space, done=[claim])
    await space.update(NAME, obj.id, retitle("bad"))
    [claim] = await queue.claim(space, NAME, 10)
    _, later = await space.update(NAME, obj.id, retitle("good"))  # while "bad" is exported
    assert await queue.claim(space, NAME, 10) == []  # held behind the running one: order kept

    await queue.record(space, failed=[(claim, "rejected", ErrorKind.PERMANENT)])
    [failed] = await queue.list_events(space, ids=list(claim.event_ids))
    assert failed.status == EventStatus.SUPERSEDED
    assert (await space.get(NAME, obj.id)).attributes["Title"] == "good"  # not rolled back
    [claim] = await queue.claim(space, NAME, 10)
    assert claim.event_ids == (later,) and claim.change.kind is ChangeKind.REPLACE
    assert claim.change.attributes["Title"] == "good"


async def test_a_change_queued_while_a_create_failed_is_exported_as_an_add(
    space: ConnectorSpace,
) -> None:
    obj, _ = await space.create(NAME, "a", staging("a"))
    [claim] = await queue.claim(space, NAME, 10)
    _, later = await space.update(NAME, obj.id, retitle("t2"))  # while the create runs
    await queue.record(space, failed=[(claim, "rejected", ErrorKind.PERMANENT)])

    assert (await space.get(NAME, obj.id)).attributes["Title"] == "t2"  # still shown
    [claim] = await queue.claim(space, NAME, 10)
    assert claim.event_ids == (later,)
    assert claim.change.kind is ChangeKind.ADD  # the target never took the create
    assert claim.change.attributes == {"AzureObjectID": "a", "Title": "t2"}


async def test_a_batch_is_marked_done_at_once_even_if_an_object_went_away(
    space: ConnectorSpace,
) -> None:
    await space.create(NAME, "kept", staging("kept"))
    gone, _ = await space.create(NAME, "gone", staging("gone"))
    deleted, _ = await space.create(NAME, "deleted", staging("deleted"))
    first = await queue.claim(space, NAME, 10)
    await queue.record(space, done=first)
    await space.update(NAME, deleted.id, lambda b: Staging(b.attributes, False, Op.DELETE))
    claims = await queue.claim(space, NAME, 10)
    assert [c.change.kind.value for c in claims] == ["delete"]
    async with space.write() as session:  # the object goes away while exported
        await session.execute(sa_delete(ObjectRow).where(ObjectRow.id == gone.id))

    await queue.record(space, done=[*claims, *first])  # "gone" is no error

    async with space.read() as session:
        rows = {r.anchor: r for r in (await session.scalars(select(ObjectRow))).all()}
    events = await queue.list_events(space, connector=NAME)
    assert set(rows) == {"kept"}  # the deleted object, once exported, is forgotten
    assert rows["kept"].confirmed == {"AzureObjectID": "kept", "Title": "t"}
    assert rows["kept"].target_anchor == "kept"
    assert {e.status for e in events} == {EventStatus.DONE}
    statuses = [h["status"] for h in await queue.history(space, claims[0].event_ids[0])]
    assert statuses == ["pending", "done"]


async def test_claims_look_pending_events_up_after_an_import_analyzed_the_space(
    sqlite_space: ConnectorSpace, tmp_path: Path
) -> None:
    """SQLite's own: which statistics ANALYZE keeps, and the plan they give."""
    space = sqlite_space
    for i in range(40):  # a history of done events: all of them one status
        await space.create(NAME, f"u{i}", staging(f"u{i}"))
    await queue.record(space, done=await queue.claim(space, NAME, 100))
    db_file = tmp_path / "ecmahost.db"
    with sqlite3.connect(db_file) as db:
        db.execute("ANALYZE")  # what an earlier version left: statistics of every table

    await space.analyze()

    with sqlite3.connect(db_file) as db:
        analyzed = {t for (t,) in db.execute("SELECT DISTINCT tbl FROM sqlite_stat1")}
        due = due_objects(NAME, 10).compile(
            dialect=sqlite_dialect.dialect(), compile_kwargs={"literal_binds": True}
        )
        plan = " ".join(row[-1] for row in db.execute(f"EXPLAIN QUERY PLAN {due}"))
    assert {"objects", "object_values"} <= analyzed
    assert analyzed.isdisjoint({"export_events", "event_log", "runs"})
    assert "SEARCH export_events USING INDEX ix_export_events_due" in plan, plan


async def test_a_retry_waits_and_giving_up_is_logged_as_failed(space: ConnectorSpace) -> None:
    _, event_id = await space.create(NAME, "a", staging("a"))
    [claim] = await queue.claim(space, NAME, 10)

    await queue.record(space, retries=[(claim, "target down", 60.0)])

    assert await queue.claim(space, NAME, 10) == []  # it waits for its retry time
    assert await queue.outcome(space, event_id) == Outcome(
        OutcomeStatus.RETRYING, "target down", ErrorKind.TRANSIENT
    )
    [retried] = await queue.list_events(space, ids=[event_id])
    assert (retried.status, retried.attempts) == (EventStatus.PENDING, 1)

    await queue.record(space, failed=[(claim, "gave up", ErrorKind.TRANSIENT)])

    assert await queue.outcome(space, event_id) == Outcome(
        OutcomeStatus.FAILED, "gave up", ErrorKind.TRANSIENT
    )
    statuses = [h["status"] for h in await queue.history(space, event_id)]
    assert statuses == ["pending", "retrying", "failed"]


async def test_an_unknown_event_has_failed_and_a_later_change_releases_the_object(
    space: ConnectorSpace,
) -> None:
    assert await queue.outcome(space, 999) == Outcome(
        OutcomeStatus.FAILED, "export event 999 not found"
    )
    obj, _ = await space.create(NAME, "a", staging("a"))
    [claim] = await queue.claim(space, NAME, 10)
    await queue.record(space, done=[claim])
    await space.update(
        NAME, obj.id, lambda o: Staging({**o.attributes, "Title": "x"}, True, Op.UPSERT)
    )
    [claim] = await queue.claim(space, NAME, 10)
    await queue.record(space, failed=[(claim, "rejected", ErrorKind.PERMANENT)])
    assert (await space.get(NAME, obj.id)).attributes["Title"] == "t"  # what the target holds
    _, later = await space.update(
        NAME, obj.id, lambda o: Staging({**o.attributes, "Title": "y"}, True, Op.UPSERT)
    )
    # The failed one is superseded: nothing to discard, nothing holds the object.
    assert await queue.discard(space, claim.event_ids) == []

    [claim] = await queue.claim(space, NAME, 10)
    assert claim.event_ids == (later,) and claim.change.attributes["Title"] == "y"
    assert claim.change.kind is ChangeKind.REPLACE


async def test_recent_outcomes_are_the_connectors_newest_first_a_replay_listed_again(
    space: ConnectorSpace,
) -> None:
    _, first = await space.create(NAME, "a", staging("a"))
    _, second = await space.create(NAME, "b", staging("b"))
    await space.create("Other", "c", staging("c"))
    claims = {c.event_ids[0]: c for c in await queue.claim(space, NAME, 10)}
    await queue.record(space, done=[claims[second]])
    await queue.record(space, failed=[(claims[first], "rejected", ErrorKind.PERMANENT)])
    await queue.replay(space, [first])
    [claim] = await queue.claim(space, NAME, 10)
    await queue.record(space, done=[claim])
    [other] = await queue.claim(space, "Other", 10)
    await queue.record(space, done=[other])

    outcomes = await queue.recent_outcomes(space, NAME)
    assert [(o.event_id, o.status, o.detail) for o in outcomes] == [
        (first, "done", None),
        (first, "failed", "rejected"),
        (second, "done", None),
    ]
    assert outcomes[0].anchor == "a" and outcomes[0].op == Op.UPSERT
    assert [o.event_id for o in await queue.recent_outcomes(space, NAME, limit=1)] == [first]


async def test_closing_the_space_finishes_the_commit_under_way(space_url: str) -> None:
    space = await ConnectorSpace.open(space_url)
    committing = threading.Event()
    on_thread = space.group_engine is not None

    def slow_commit(_connection: object) -> None:
        committing.set()
        # The group's commit is on its way to disk when the host stops. SQLite's runs
        # on the writer's thread; PostgreSQL's on the event loop, in SQLAlchemy's
        # greenlet, where waiting must let the loop run.
        if on_thread:
            time.sleep(0.2)
        else:
            await_only(asyncio.sleep(0.2))

    event.listen(await group_engine(space), "commit", slow_commit)
    writes = [asyncio.create_task(space.create(NAME, f"u{i}", staging(f"u{i}"))) for i in range(20)]
    await asyncio.to_thread(committing.wait, 5)

    await space.close()

    async with asyncio.timeout(5):  # every writer is answered: none is left waiting
        results = await asyncio.gather(*writes, return_exceptions=True)
    assert not [r for r in results if isinstance(r, BaseException)]
    again = await ConnectorSpace.open(space_url)
    try:
        assert (await again.query(NAME, None, 1, 100))[0] == 20
    finally:
        await again.close()


async def test_the_next_due_time_is_the_earliest_claimable_events(space: ConnectorSpace) -> None:
    """What the export worker sleeps until when a claim finds nothing."""
    assert await queue.next_due(space, NAME) is None  # nothing queued
    await space.create(NAME, "a", staging("a"))
    await space.create(NAME, "b", staging("b"))
    assert (await queue.next_due(space, NAME) or utcnow()) <= utcnow()  # due now
    a, b = sorted(await queue.claim(space, NAME, 10), key=lambda c: c.change.anchor)
    assert await queue.next_due(space, NAME) is None  # both running: neither claimable

    await queue.record(space, done=[b], retries=[(a, "busy", 60.0)])

    due = await queue.next_due(space, NAME)
    assert due is not None and 50 < (due - utcnow()).total_seconds() <= 60
