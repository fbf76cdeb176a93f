"""Every point read, queue statement and import lookup keeps its index whatever the
statistics say.

The space is filled the way Entra fills it, through SCIM creates on the running app,
and each statement is planned on a read-only connection that read the statistics when
the space held 4 users (as the host's lookup connection does from its start), on a
fresh one after statistics taken at 3,000 users, after statistics of every table, and
on a copy with no statistics at all (a first import into a new space).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from ecmahost.engine.space import events, import_batch, listing, lookup
from ecmahost.engine.space.lookup import connect_read_only
from ecmahost.engine.space.plans import (
    EVENTS_DUE,
    EVENTS_OF_OBJECT,
    OBJECTS_BY_ANCHOR,
    OBJECTS_BY_ID,
    OBJECTS_BY_SERIAL,
    OBJECTS_BY_TARGET_ANCHOR,
    OBJECTS_LISTING,
    VALUES_LOOKUP,
)
from sqlalchemy import text
from sqlalchemy.dialects import sqlite

from tests.integration.csv_app import CsvApp, csv_app, user_body

__all__ = ["csv_app"]

CREATED = 3_000
CONCURRENCY = 16
ID = "00000000-0000-0000-0000-000000000000"

RAW: dict[str, tuple[str, tuple[object, ...], set[str]]] = {
    "get by id": (lookup._BY_ID, (ID, "CSV", "present"), {OBJECTS_BY_ID}),
    "eq on UserName": (
        lookup._BY_VALUE,
        ("CSV", "username", "user7@example.org", "CSV", "present"),
        {OBJECTS_BY_SERIAL, VALUES_LOOKUP},
    ),
    "list page": (lookup._PAGE_FROM, ("CSV", "present", "", 100, 3), {OBJECTS_LISTING}),
    "listing marks": (listing._MARKS, ("CSV", "present", 100), {OBJECTS_LISTING}),
    "listing total": (listing._TOTAL, ("CSV", "present"), {OBJECTS_LISTING}),
    "import: known anchors": (
        import_batch._ROWS_FOR_ANCHORS,
        ("CSV", f'["{ID}"]', "CSV", f'["{ID}"]'),
        {OBJECTS_BY_ANCHOR, OBJECTS_BY_TARGET_ANCHOR},
    ),
    "import: open exports": (
        import_batch._OPEN_EVENTS,
        (f'["{ID}"]', '["pending"]'),
        {EVENTS_OF_OBJECT},
    ),
    "import: ids taken": (import_batch._TAKEN_IDS, (f'["{ID}"]',), {OBJECTS_BY_ID}),
}
"""The read-only path's and the import's statements (private to their modules: the
plan is theirs)."""


def _compiled(statement: object) -> str:
    return str(
        statement.compile(  # type: ignore[attr-defined]
            dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}
        )
    )


QUEUE: dict[str, tuple[str, set[str]]] = {
    "claim: due objects": (_compiled(events.due_objects("CSV", 500)), {EVENTS_DUE}),
    "claim: their events": (
        _compiled(events.claimed_events([ID, "other"])),
        {EVENTS_OF_OBJECT},
    ),
    "reclaim: expired leases": (_compiled(events.expired_leases("CSV")), {EVENTS_DUE}),
}


def _plan(db: sqlite3.Connection, statement: str, parameters: tuple[object, ...] = ()) -> str:
    rows = db.execute(f"EXPLAIN QUERY PLAN {statement}", parameters).fetchall()
    return "\n".join(row[-1] for row in rows)


def _plans(db: sqlite3.Connection) -> Iterator[tuple[str, str, set[str]]]:
    for name, (statement, parameters, indexes) in RAW.items():
        yield name, _plan(db, statement, parameters), indexes
    for name, (statement, indexes) in QUEUE.items():
        yield name, _plan(db, statement), indexes


_HARMLESS = ("SCAN (subquery", "SCAN anon_", "SCAN json_each")
"""Walks of a subquery's own rows or of a statement's JSON list, not of a table."""


def _assert_indexed(db: sqlite3.Connection) -> None:
    for name, plan, indexes in _plans(db):
        for index in indexes:
            assert f"USING INDEX {index}" in plan or f"USING COVERING INDEX {index}" in plan, (
                name,
                plan,
            )
        scans = [
            line
            for line in plan.splitlines()
            if line.startswith("SCAN ") and not line.startswith(_HARMLESS)
        ]
        assert scans == [], (name, plan)


async def _analyze(app: CsvApp) -> None:
    """Statistics taken by the host itself (what it does after a full import)."""
    assert app.host.space is not None
    await app.host.space.analyze()


async def _analyze_everything(app: CsvApp) -> None:
    """Statistics of every table, the queue's included, taken while every event is
    done: what an operator's ``ANALYZE`` leaves, and the worst case for a claim."""
    assert app.host.space is not None
    async with app.host.space._db.write() as session:
        await session.execute(text("ANALYZE"))


def _without_statistics(db_file: Path, copy: Path) -> sqlite3.Connection:
    """A read-only connection to a copy of the space that has no statistics."""
    with sqlite3.connect(db_file) as source, sqlite3.connect(copy) as target:
        source.backup(target)
        target.execute("DROP TABLE sqlite_stat1")
    return connect_read_only(copy)


def _users(db_file: Path) -> int:
    with sqlite3.connect(db_file) as db:
        return int(db.execute("SELECT count(*) FROM objects").fetchone()[0])


def _serials(db_file: Path) -> tuple[int, int]:
    """(objects, distinct serials): each object needs its own, for its index rows."""
    with sqlite3.connect(db_file) as db:
        row = db.execute("SELECT count(*), count(DISTINCT serial) FROM objects").fetchone()
    return int(row[0]), int(row[1])


async def _create(app: CsvApp, count: int) -> None:
    numbers = iter(range(count))

    async def client() -> None:
        for i in numbers:
            body = user_body(f"bench-{i:06d}", UserName=f"user{i}@example.org")
            status, text = await app.send("POST", "/Users", json.dumps(body).encode())
            assert status == 201, text

    await asyncio.gather(*(client() for _ in range(CONCURRENCY)))


@pytest.mark.timeout(300)
async def test_every_statement_keeps_its_index_as_scim_creates_grow_the_space(
    csv_app: CsvApp, tmp_path: Path
) -> None:
    db_file = csv_app.target.parent / "ecmahost.db"
    assert _users(db_file) <= 4
    await _analyze(csv_app)  # statistics taken while the space held the seed's users
    early = connect_read_only(db_file)
    early.execute("SELECT count(*) FROM objects").fetchone()  # reads the statistics now

    await _create(csv_app, CREATED)

    assert _users(db_file) >= CREATED
    objects, serials = _serials(db_file)
    assert serials == objects  # concurrent creates never share a serial, nor lack one
    _assert_indexed(early)  # the plan the host's own lookup would run
    await _analyze(csv_app)
    fresh = connect_read_only(db_file)
    _assert_indexed(fresh)
    await _analyze_everything(csv_app)
    queue_analyzed = connect_read_only(db_file)
    _assert_indexed(queue_analyzed)
    unanalyzed = _without_statistics(db_file, tmp_path / "unanalyzed.db")
    _assert_indexed(unanalyzed)
    for db in (early, fresh, queue_analyzed, unanalyzed):
        db.close()
