"""The statements a SCIM create, replace and delete run in the group writer: each row
a create writes is inserted once, never inserted then updated nor read back; a replace
or a delete reads the object once and rewrites it by its id, and a replace rewrites
only the index rows of the attributes that changed. The count cannot grow back
unnoticed. (Watched on SQLite; how the group's jobs commit together or fail alone is
checked on PostgreSQL too.)"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast

import pytest
from ecmahost.connectors.base import Attribute, Schema
from ecmahost.engine.exceptions import AnchorTakenError
from ecmahost.engine.space import ConnectorSpace, Staging, writes
from ecmahost.engine.space.models import ObjectRow
from ecmahost.engine.space.states import EventStatus, Op
from sqlalchemy.orm import Session

from tests.integration.scim_search import search

NAME = "hr"


SCHEMA = Schema(
    "User", (Attribute("UserName", is_anchor=True), Attribute("Mail"), Attribute("DisplayName"))
)

sqlite_only = pytest.mark.parametrize("space_url", ["sqlite"], indirect=True)
"""For a test that watches the statements: through sqlite3's trace callback."""


@contextmanager
def statements(space: ConnectorSpace) -> Iterator[list[str]]:
    """The SQL the group writer's connection runs meanwhile, a statement per entry
    (watched by sqlite3's trace callback: the writes go to the driver, past the
    engine's events). The rows of one executemany of index rows count once."""
    seen: list[str] = []

    def record(statement: str) -> None:
        words = " ".join(statement.split()[:3])
        if not (seen and seen[-1] == words == "INSERT INTO object_values"):
            seen.append(words)

    _trace(space, record)
    try:
        yield seen
    finally:
        _trace(space, None)


def _trace(space: ConnectorSpace, callback: Callable[[str], None] | None) -> None:
    raw = space.group_engine.raw_connection()  # the pool's one connection
    try:
        cast(sqlite3.Connection, raw.driver_connection).set_trace_callback(callback)
    finally:
        raw.close()


def _person(name: str) -> dict[str, Any]:
    return {"UserName": name, "Mail": f"{name}@example.com", "DisplayName": name.title()}


@sqlite_only
async def test_a_create_inserts_each_row_once(space: ConnectorSpace) -> None:
    with statements(space) as seen:
        stored, event_id = await space.create(
            NAME, "adele", Staging(_person("adele"), visible=True, export=Op.UPSERT)
        )
    assert seen == [
        "BEGIN IMMEDIATE",  # a write alone in its group: no savepoint
        "SELECT objects.id FROM",  # does an object hold the anchor?
        "SELECT objects.id FROM",  # does one (renamed away) hold its derived id?
        "INSERT INTO objects",
        "INSERT INTO object_values",  # every value in one executemany
        "SELECT export_events.status, export_events.next_attempt_at",  # failed ones
        "INSERT INTO export_events",
        "INSERT INTO event_log",
        "COMMIT",
    ]
    assert stored.visible and stored.version == 1 and stored.anchor == "adele"
    assert await space.get(NAME, stored.id) == stored
    assert event_id is not None
    state = await space.events.state(event_id)
    assert state is not None and state.status == EventStatus.PENDING


@sqlite_only
async def test_a_create_the_target_assigns_an_anchor_to_looks_nothing_up(
    space: ConnectorSpace,
) -> None:
    with statements(space) as seen:
        stored, event_id = await space.create(
            NAME, None, Staging(_person("bruno"), visible=True, export=Op.UPSERT)
        )
    assert [s for s in seen if not s.startswith(("BEGIN", "SAVEPOINT", "RELEASE", "COMMIT"))] == [
        "INSERT INTO objects",
        "INSERT INTO object_values",
        "INSERT INTO export_events",
        "INSERT INTO event_log",
    ]
    assert event_id is not None
    assert await space.get(NAME, stored.id) == stored


@sqlite_only
async def test_a_create_of_a_visible_anchor_is_refused_and_writes_nothing(
    space: ConnectorSpace,
) -> None:
    await space.create(NAME, "carla", Staging(_person("carla"), visible=True, export=Op.UPSERT))
    with statements(space) as seen, pytest.raises(AnchorTakenError):
        await space.create(NAME, "carla", Staging(_person("carla"), visible=True, export=Op.UPSERT))
    assert not any(s.startswith("INSERT") for s in seen)


@sqlite_only
async def test_a_replace_rewrites_the_row_by_its_id(space: ConnectorSpace) -> None:
    created, _ = await space.create(
        NAME, "dora", Staging(_person("dora"), visible=True, export=Op.UPSERT)
    )
    changed = {**_person("dora"), "DisplayName": "Dora Maar"}
    with statements(space) as seen:
        stored, event_id = await space.update(
            NAME, created.id, lambda _: Staging(changed, visible=True, export=Op.UPSERT)
        )
    assert seen == [
        "BEGIN IMMEDIATE",  # a write alone in its group: no savepoint
        "SELECT objects.id, objects.connector,",  # the object as it is, plain columns
        "UPDATE objects SET",
        "DELETE FROM object_values",  # the changed attribute's rows only
        "INSERT INTO object_values",
        "SELECT export_events.status, export_events.next_attempt_at",
        "INSERT INTO export_events",
        "INSERT INTO event_log",
        "COMMIT",
    ]
    assert stored.version == 2 and stored.attributes == changed and stored.visible
    assert await space.get(NAME, created.id) == stored
    assert await space.query(NAME, None, 1, 10, eq=("displayname", "dora maar")) == (1, [stored])
    assert await space.query(NAME, None, 1, 10, eq=("displayname", "dora")) == (0, [])
    assert await space.query(NAME, None, 1, 10, eq=("mail", "dora@example.com")) == (1, [stored])
    assert event_id is not None


_FIRST = {"UserName": "ida", "Mail": ["ida@a.org", "ida@b.org"], "DisplayName": "Ida"}
_REPLACES: list[tuple[dict[str, Any], list[str]]] = [
    ({**_FIRST, "DisplayName": "IDA"}, []),  # the same text once case-folded
    ({**_FIRST, "Mail": ["ida@b.org", "ida@c.org"]}, ["DELETE", "INSERT"]),
    ({"UserName": "ida", "Mail": ["ida@b.org", "ida@c.org"]}, ["DELETE"]),
    # Two attributes changed: a DELETE each (one executemany), their new rows.
    (
        {"UserName": "ida", "Mail": ["ida@c.org"], "DisplayName": "Ida B"},
        ["DELETE", "DELETE", "INSERT"],
    ),
]
"""Replaces of one object, each with the value-index statements it runs."""


async def _replace(space: ConnectorSpace, object_id: str, attributes: dict[str, Any]) -> None:
    await space.update(
        NAME, object_id, lambda _: Staging(attributes, visible=True, export=Op.UPSERT)
    )


@sqlite_only
async def test_a_replace_rewrites_only_the_index_rows_of_what_changed(
    space: ConnectorSpace,
) -> None:
    created, _ = await space.create(NAME, "ida", Staging(_FIRST, visible=True, export=Op.UPSERT))
    for attributes, index_writes in _REPLACES:
        with statements(space) as seen:
            await _replace(space, created.id, attributes)
        assert [s.split()[0] for s in seen if "object_values" in s] == index_writes


async def test_after_replaces_each_value_matches_as_the_object_holds_it(
    space: ConnectorSpace,
) -> None:
    created, _ = await space.create(NAME, "ida", Staging(_FIRST, visible=True, export=Op.UPSERT))
    for attributes, _ in _REPLACES:
        await _replace(space, created.id, attributes)
    searched = [
        ("mail", "ida@a.org"),
        ("mail", "ida@b.org"),
        ("mail", "ida@c.org"),
        ("displayname", "ida"),
        ("displayname", "ida b"),
        ("username", "ida"),
    ]
    matched = {eq: (await space.query(NAME, None, 1, 10, eq=eq))[0] for eq in searched}
    assert matched == {
        ("mail", "ida@a.org"): 0,
        ("mail", "ida@b.org"): 0,
        ("mail", "ida@c.org"): 1,
        ("displayname", "ida"): 0,
        ("displayname", "ida b"): 1,
        ("username", "ida"): 1,
    }


@sqlite_only
async def test_a_delete_hides_the_row_and_drops_its_index(space: ConnectorSpace) -> None:
    created, _ = await space.create(
        NAME, "emil", Staging(_person("emil"), visible=True, export=Op.UPSERT)
    )
    with statements(space) as seen:
        stored, event_id = await space.update(
            NAME,
            created.id,
            lambda before: Staging(before.attributes, visible=False, export=Op.DELETE),
        )
    assert [s for s in seen if not s.startswith(("BEGIN", "SAVEPOINT", "RELEASE", "COMMIT"))] == [
        "SELECT objects.id, objects.connector,",
        "DELETE FROM object_values",
        "UPDATE objects SET",
        "SELECT export_events.status, export_events.next_attempt_at",
        "INSERT INTO export_events",
        "INSERT INTO event_log",
    ]
    assert not stored.visible and stored.version == 2 and event_id is not None
    assert await space.get(NAME, created.id) is None
    assert await space.query(NAME, None, 1, 10, eq=("username", "emil")) == (0, [])


async def test_a_hidden_object_nothing_exports_is_forgotten(space: ConnectorSpace) -> None:
    created, _ = await space.create(
        NAME, "fritz", Staging(_person("fritz"), visible=True, export=Op.UPSERT)
    )
    stored, event_id = await space.update(
        NAME, created.id, lambda before: Staging(before.attributes, visible=False, export=None)
    )
    assert event_id is None and not stored.visible
    async with space.read() as session:
        assert await session.get(ObjectRow, created.id) is None


async def test_a_job_of_a_group_sees_what_an_earlier_job_rewrote(space: ConnectorSpace) -> None:
    """A refused rename (an ORM job whose error keeps its row alive), a replace (Core)
    and a rename, in one group: the rename starts from the replace's row, not from
    the ORM's copy of the row the refused job loaded."""
    created, _ = await space.create(
        NAME, "gina", Staging(_person("gina"), visible=True, export=Op.UPSERT)
    )
    await space.create(NAME, "hans", Staging(_person("hans"), visible=True, export=Op.UPSERT))
    replaced = {**_person("gina"), "DisplayName": "Gina Lollo"}

    def renamed(anchor: str) -> Any:
        return lambda before: Staging(
            before.attributes, visible=True, export=Op.UPSERT, anchor=anchor
        )

    refused, second, third = await asyncio.gather(
        space.update(NAME, created.id, renamed("hans")),
        space.update(NAME, created.id, lambda _: Staging(replaced, visible=True, export=Op.UPSERT)),
        space.update(NAME, created.id, renamed("gina2")),
        return_exceptions=True,
    )
    assert isinstance(refused, AnchorTakenError)
    assert not isinstance(second, BaseException) and not isinstance(third, BaseException)
    assert [second[0].version, third[0].version] == [2, 3]
    stored = await space.get(NAME, created.id)
    assert stored is not None and stored.version == 3 and stored.anchor == "gina2"
    assert stored.attributes == replaced


async def test_a_write_alone_in_its_group_that_fails_leaves_nothing(space: ConnectorSpace) -> None:
    """Without a savepoint, the failed job's transaction is rolled back whole."""
    staging = Staging(_person("ivo"), visible=True, export=Op.UPSERT)

    def written_then_failed(session: Session) -> None:
        writes.create(session, NAME, "ivo", staging)
        raise RuntimeError("after the write")

    with pytest.raises(RuntimeError):
        await space._writer.run(written_then_failed)
    assert await search(space, NAME, SCHEMA, 'UserName eq "ivo"') == (0, [])
    stored, _ = await space.create(NAME, "ivo", staging)  # the next write commits
    assert await space.get(NAME, stored.id) == stored


async def test_a_failed_job_of_a_group_leaves_the_others(space: ConnectorSpace) -> None:
    """In a group of several, a job's error rolls back its savepoint only."""
    staging = Staging(_person("jana"), visible=True, export=Op.UPSERT)

    def written_then_failed(session: Session) -> None:
        writes.create(session, NAME, "kurt", Staging(_person("kurt"), True, Op.UPSERT))
        raise RuntimeError("after the write")

    failed, (stored, _) = await asyncio.gather(
        space._writer.run(written_then_failed),
        space.create(NAME, "jana", staging),
        return_exceptions=True,
    )
    assert isinstance(failed, RuntimeError)
    assert await search(space, NAME, SCHEMA, 'UserName eq "kurt"') == (0, [])
    assert await space.get(NAME, stored.id) == stored
