"""Two hosts on one PostgreSQL space: a write one acknowledged is read at once by the
other, by id and by filter (no host keeps a copy); and when both claim exports at
the same time the work is shared, but no event is claimed twice, one object's events
are never exported by two hosts at once, and each object's events go out in order.
An import's batch or a SCIM write that PostgreSQL gives up for another host's
transaction (a deadlock) runs again instead of failing."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import asyncpg
import pytest
from ecmahost.connectors.base import Record
from ecmahost.engine import queue
from ecmahost.engine.space import ConnectorSpace, Staging
from ecmahost.engine.space.point_reads import asyncpg_dsn
from ecmahost.engine.space.states import Op, RunKind
from ecmahost.engine.space.stored import StoredObject

from tests.connectors.sql.postgres import PostgresServer
from tests.integration.conftest import fresh_database

T = TypeVar("T")

NAME = "Mem"
OBJECTS = 60
WRITES = 600


@pytest.fixture
def url(postgres: PostgresServer) -> str:
    return fresh_database(postgres)


@pytest.fixture
async def hosts(url: str) -> AsyncIterator[tuple[ConnectorSpace, ConnectorSpace]]:
    """Two spaces on one database, as two hosts have them."""
    first = await ConnectorSpace.open(url)
    second = await ConnectorSpace.open(url, upgrade=False)
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


def _staging(anchor: str, version: int) -> Staging:
    return Staging({"AzureObjectID": anchor, "Version": str(version)}, True, Op.UPSERT)


async def test_a_write_on_one_host_is_read_at_once_on_the_other(
    hosts: tuple[ConnectorSpace, ConnectorSpace],
) -> None:
    one, other = hosts
    created, _ = await one.create(NAME, "ada", _staging("ada", 1))
    assert await other.get(NAME, created.id) == created
    assert await other.query(NAME, None, 1, 10, eq=("azureobjectid", "ada")) == (1, [created])

    changed, _ = await other.update(NAME, created.id, lambda o: _staging(o.anchor, 2))
    assert await one.get(NAME, created.id) == changed
    assert (await one.query(NAME, None, 1, 10, eq=("version", "2")))[1] == [changed]
    assert await one.query(NAME, None, 1, 10, eq=("version", "1")) == (0, [])

    await one.update(NAME, created.id, lambda o: Staging(o.attributes, False, Op.DELETE))
    assert await other.get(NAME, created.id) is None
    assert await other.query(NAME, None, 1, 10, eq=("azureobjectid", "ada")) == (0, [])


async def test_two_hosts_share_the_queue_without_overlap_nor_disorder(
    hosts: tuple[ConnectorSpace, ConnectorSpace],
) -> None:
    anchors = [f"u{i}" for i in range(OBJECTS)]
    ids = {}
    for anchor in anchors:
        stored, _ = await hosts[0].create(NAME, anchor, _staging(anchor, 0))
        ids[anchor] = stored.id
    exporting: dict[str, int] = {}  # object id -> worker exporting it now
    overlaps: list[str] = []
    exported: dict[str, list[int]] = {}  # object id -> event ids, in export order
    by_host = [0, 0]
    writing = True

    async def write() -> None:
        nonlocal writing
        rng = random.Random(7)
        for version in range(1, WRITES + 1):
            anchor = rng.choice(anchors)
            space = hosts[version % 2]
            await space.update(NAME, ids[anchor], lambda o, v=version: _staging(o.anchor, v))
            if version % 20 == 0:
                await asyncio.sleep(0)
        writing = False

    async def work(host: int, worker: int) -> None:
        space = hosts[host]
        while True:
            claims = await queue.claim(space, NAME, 5, lease_s=300)
            if not claims:
                if not writing and not await _pending(space):
                    return
                await asyncio.sleep(0.005)
                continue
            for claim in claims:
                if claim.object_id in exporting:
                    overlaps.append(claim.object_id)
                exporting[claim.object_id] = worker
                exported.setdefault(claim.object_id, []).extend(claim.event_ids)
            await asyncio.sleep(0.002)  # the target takes a moment
            for claim in claims:
                exporting.pop(claim.object_id, None)
            await queue.record(space, done=claims)
            by_host[host] += len(claims)

    workers = [work(host, host * 10 + w) for host in (0, 1) for w in range(3)]
    await asyncio.gather(write(), *workers)

    assert not overlaps, f"objects exported by two workers at once: {overlaps[:5]}"
    every = [event_id for events in exported.values() for event_id in events]
    assert len(every) == len(set(every)) == OBJECTS + WRITES, "an event was claimed twice"
    assert all(events == sorted(events) for events in exported.values()), "out of order"
    assert min(by_host) > 0, f"one host did all the work: {by_host}"


async def _pending(space: ConnectorSpace) -> bool:
    summary = await space.queue_summary(NAME)
    return bool(summary.pending)


async def test_an_import_batch_given_up_for_a_deadlock_runs_again(
    hosts: tuple[ConnectorSpace, ConnectorSpace], url: str
) -> None:
    """Another host's transaction holds the batch's second object and then asks for
    its first, which the batch holds: PostgreSQL gives up the batch (it waited first)."""
    space = hosts[0]
    first_run = await space.begin_run(NAME, RunKind.IMPORT)
    records = [Record(a, {"AzureObjectID": a, "Version": "1"}) for a in ("a", "b")]
    await space.import_records(NAME, first_run, records)
    ids = {o.anchor: o.id for o in (await space.query(NAME, None, 1, 10))[1]}
    run_id = await space.begin_run(NAME, RunKind.IMPORT)
    changed = [Record("a", {"AzureObjectID": "a", "Version": "2"}), records[1]]
    # The batch holds "a", then waits for "b".
    counts = await _in_a_deadlock(
        url, ids["b"], ids["a"], lambda: space.import_records(NAME, run_id, changed)
    )

    assert (counts["updated"], counts["unchanged"]) == (1, 1)
    again = await space.get(NAME, ids["a"])
    assert again is not None and again.attributes["Version"] == "2"


async def _in_a_deadlock(url: str, held: str, wanted: str, work: Callable[[], Awaitable[T]]) -> T:
    """``work()``'s result, started while another connection holds the object ``held``.
    Once it waits for that object, the other asks for ``wanted``, which it holds:
    PostgreSQL gives up ``work``'s transaction, which waited first."""
    lock = "UPDATE objects SET seen_run = seen_run WHERE id = $1"
    other = await asyncpg.connect(asyncpg_dsn(url))
    try:
        async with other.transaction():
            await other.execute(lock, held)
            running = asyncio.ensure_future(work())
            await _until_a_backend_waits_for_a_lock(other)
            await other.execute(lock, wanted)  # the cycle
        return await running
    finally:
        await other.close()


async def _until_a_backend_waits_for_a_lock(connection: asyncpg.Connection) -> None:
    waiting = (
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    for _ in range(500):
        if await connection.fetchval(waiting):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the space's transaction never waited for the object held")


async def test_a_scim_write_given_up_for_a_deadlock_runs_again(
    hosts: tuple[ConnectorSpace, ConnectorSpace], url: str
) -> None:
    """Two writes share a group: the first holds its user, the second waits for a
    user another host's transaction holds, which then asks for the first's: PostgreSQL
    gives up the second write (it waited first), which runs in the next group."""
    space = hosts[0]
    ids = {}
    for anchor in ("x", "y"):
        stored, _ = await space.create(NAME, anchor, _staging(anchor, 1))
        ids[anchor] = stored.id

    def write(anchor: str) -> Awaitable[tuple[StoredObject, int | None]]:
        return space.update(NAME, ids[anchor], lambda o: _staging(o.anchor, 2))

    # One group, "y" first: it holds "y", then the write of "x" waits for "x".
    written = await _in_a_deadlock(
        url, ids["x"], ids["y"], lambda: asyncio.gather(write("y"), write("x"))
    )

    assert [stored.attributes["Version"] for stored, _ in written] == ["2", "2"]
    again = await space.get(NAME, ids["x"])
    assert again is not None and again.attributes["Version"] == "2"
