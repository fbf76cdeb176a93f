"""The connector space and full imports, on SQLite and on PostgreSQL."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from ecmahost.connectors.memory.connector import MemoryConnector, MemorySettings
from ecmahost.engine import queue
from ecmahost.engine.space import ConnectorSpace, Staging, StoredObject, object_id_for
from ecmahost.engine.space.database import (
    database_file,
    migrate,
    open_engine,
    sessionmaker_for,
    sqlite_url,
)
from ecmahost.engine.space.models import ObjectRow, ObjectValue
from ecmahost.engine.space.states import EventStatus, Op
from ecmahost.engine.workers.gate import RunGate
from ecmahost.engine.workers.importer import Importer
from sqlalchemy import select, text

NAME = "Mem"


@dataclass
class Space:
    space: ConnectorSpace
    target: MemoryConnector
    importer: Importer

    async def visible(self) -> dict[str, StoredObject]:
        total, objects = await self.space.query(NAME, None, 1, 1000)
        assert total == len(objects)
        return {o.anchor: o for o in objects}


@pytest.fixture
async def space(space_url: str, tmp_path: Path) -> AsyncIterator[Space]:
    engine = open_engine(space_url)
    await migrate(engine)
    connector_space = ConnectorSpace(sessionmaker_for(engine))
    target = MemoryConnector(NAME, MemorySettings(), tmp_path)
    importer = Importer(NAME, target, connector_space, RunGate())
    try:
        yield Space(connector_space, target, importer)
    finally:
        await connector_space.close()
        await engine.dispose()


def person(anchor: str, **attributes: str | bool) -> dict[str, str | bool]:
    return {"AzureObjectID": anchor, "DisplayName": f"Person {anchor}", **attributes}


async def test_import_adds_then_updates_by_anchor_with_stable_ids(space: Space) -> None:
    space.target.objects = {"a": person("a"), "b": person("b"), "c": person("c")}

    first = await space.importer.full_import()
    ids_after_first = {a: o.id for a, o in (await space.visible()).items()}
    space.target.objects["b"] = person("b", Title="Changed")
    second = await space.importer.full_import()
    after = await space.visible()

    assert first.ok and second.ok
    assert (first.seen, first.counts["added"]) == (3, 3)
    assert (second.counts["added"], second.counts["updated"], second.counts["unchanged"]) == (
        0,
        1,
        2,
    )
    assert {a: o.id for a, o in after.items()} == ids_after_first
    assert ids_after_first == {a: object_id_for(NAME, a) for a in "abc"}
    assert after["b"].attributes == person("b", Title="Changed")
    assert after["b"].version > after["a"].version


async def test_an_import_into_a_new_database_gives_the_same_ids(
    space: Space, second_space_url: str
) -> None:
    space.target.objects = {"a": person("a")}
    await space.importer.full_import()
    other = await ConnectorSpace.open(second_space_url)
    try:
        await Importer(NAME, space.target, other, RunGate()).full_import()
        _, [found] = await other.query(NAME, None, 1, 10)
    finally:
        await other.close()

    assert found.id == (await space.visible())["a"].id


async def test_a_record_missing_from_the_next_import_disappears(space: Space) -> None:
    space.target.objects = {"a": person("a"), "b": person("b")}
    await space.importer.full_import()
    gone = object_id_for(NAME, "b")
    async with space.space.read() as session:
        serial = (await session.get(ObjectRow, gone)).serial  # type: ignore[union-attr]
    assert serial is not None
    del space.target.objects["b"]

    report = await space.importer.full_import()

    assert report.counts["removed"] == 1
    assert set(await space.visible()) == {"a"}
    assert await space.space.get(NAME, gone) is None
    async with space.space.read() as session:
        assert await session.get(ObjectRow, gone) is None
        values = await session.scalars(
            select(ObjectValue).where(ObjectValue.object_serial == serial)
        )
        assert values.all() == []


async def test_an_import_keeps_the_staged_state_of_an_object_with_a_pending_export(
    space: Space,
) -> None:
    space.target.objects = {"a": person("a", Title="Old")}
    await space.importer.full_import()
    staged = person("a", Title="Staged")

    def decide(obj: StoredObject) -> Staging:
        return Staging(staged, visible=True, export=Op.UPSERT)

    await space.space.update(NAME, object_id_for(NAME, "a"), decide)
    await space.space.create(NAME, "new", Staging(person("new"), visible=True, export=Op.UPSERT))
    space.target.objects["a"] = person("a", Title="Target moved on")

    report = await space.importer.full_import()

    assert report.counts["pending"] == 1
    assert report.counts["removed"] == 0
    visible = await space.visible()
    assert visible["a"].attributes == staged
    assert visible["new"].attributes == person("new")  # not in the target yet, but queued
    async with space.space.read() as session:
        row = await session.get(ObjectRow, object_id_for(NAME, "a"))
        assert row is not None
        assert row.confirmed == person("a", Title="Target moved on")
    assert [e.status for e in await queue.list_events(space.space)] == [EventStatus.PENDING] * 2


async def test_the_database_is_in_wal_mode(tmp_path: Path) -> None:
    """SQLite's own: the pragmas the engine sets on each connection, and the file."""
    engine = open_engine(sqlite_url(tmp_path))
    try:
        await migrate(engine)
        async with engine.connect() as conn:
            mode = (await conn.execute(text("PRAGMA journal_mode"))).scalar_one()
            synchronous = (await conn.execute(text("PRAGMA synchronous"))).scalar_one()
            foreign_keys = (await conn.execute(text("PRAGMA foreign_keys"))).scalar_one()
    finally:
        await engine.dispose()

    assert mode == "wal"
    assert synchronous == 2  # FULL
    assert foreign_keys == 1
    # WAL is a property of the file: a plain connection sees it too.
    plain = sqlite3.connect(database_file(tmp_path))
    try:
        assert plain.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        plain.close()
