"""The statements a SCIM create runs in the group writer: each row it writes is
inserted once, never inserted then updated nor read back, so the count cannot grow
back unnoticed."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from ecmahost.engine.exceptions import AnchorTakenError
from ecmahost.engine.space import ConnectorSpace, Staging
from ecmahost.engine.space.states import EventStatus, Op
from sqlalchemy import event

NAME = "hr"


@contextmanager
def statements(space: ConnectorSpace) -> Iterator[list[str]]:
    """The SQL the group writer's engine runs meanwhile, a statement per entry."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(" ".join(statement.split()[:3]))

    event.listen(space.group_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(space.group_engine, "before_cursor_execute", record)


def _person(name: str) -> dict[str, Any]:
    return {"UserName": name, "Mail": f"{name}@example.com", "DisplayName": name.title()}


async def test_a_create_inserts_each_row_once(space: ConnectorSpace) -> None:
    with statements(space) as seen:
        stored, event_id = await space.create(
            NAME, "adele", Staging(_person("adele"), visible=True, export=Op.UPSERT)
        )
    assert seen == [
        "BEGIN IMMEDIATE",
        "SAVEPOINT sa_savepoint_1",
        "SELECT objects.id FROM",  # does an object hold the anchor?
        "SELECT objects.id FROM",  # does one (renamed away) hold its derived id?
        "INSERT INTO objects",
        "INSERT INTO object_values",  # every value in one executemany
        "SELECT export_events.status, export_events.next_attempt_at",  # failed ones
        "INSERT INTO export_events",
        "INSERT INTO event_log",
        "RELEASE SAVEPOINT sa_savepoint_1",
    ]
    assert stored.visible and stored.version == 1 and stored.anchor == "adele"
    assert await space.get(NAME, stored.id) == stored
    assert event_id is not None
    state = await space.events.state(event_id)
    assert state is not None and state.status == EventStatus.PENDING


async def test_a_create_the_target_assigns_an_anchor_to_looks_nothing_up(
    space: ConnectorSpace,
) -> None:
    with statements(space) as seen:
        stored, event_id = await space.create(
            NAME, None, Staging(_person("bruno"), visible=True, export=Op.UPSERT)
        )
    assert [s for s in seen if not s.startswith(("BEGIN", "SAVEPOINT", "RELEASE"))] == [
        "INSERT INTO objects",
        "INSERT INTO object_values",
        "INSERT INTO export_events",
        "INSERT INTO event_log",
    ]
    assert event_id is not None
    assert await space.get(NAME, stored.id) == stored


async def test_a_create_of_a_visible_anchor_is_refused_and_writes_nothing(
    space: ConnectorSpace,
) -> None:
    await space.create(NAME, "carla", Staging(_person("carla"), visible=True, export=Op.UPSERT))
    with statements(space) as seen, pytest.raises(AnchorTakenError):
        await space.create(NAME, "carla", Staging(_person("carla"), visible=True, export=Op.UPSERT))
    assert not any(s.startswith("INSERT") for s in seen)
