"""Point reads on the event loop's thread answer exactly what the async path answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from ecmahost.connectors.base import Record
from ecmahost.engine.space import ConnectorSpace, Staging, object_id_for
from ecmahost.engine.space.database import migrate, open_engine, sessionmaker_for, sqlite_url
from ecmahost.engine.space.listing import STRIDE
from ecmahost.engine.space.lookup import MAX_MATCHES, Lookup
from ecmahost.engine.space.models import ObjectRow
from ecmahost.engine.space.states import Op

NAME = "Mem"


@pytest.fixture
async def spaces(tmp_path: Path) -> AsyncIterator[tuple[ConnectorSpace, ConnectorSpace]]:
    """The same database twice: with the lookup, and with the async path only."""
    url = sqlite_url(tmp_path)
    engine = open_engine(url)
    await migrate(engine)
    lookup = Lookup.for_url(url)
    assert lookup is not None
    fast, slow = (
        ConnectorSpace(sessionmaker_for(engine), lookup=lookup),
        ConnectorSpace(sessionmaker_for(engine)),
    )
    try:
        yield fast, slow
    finally:
        await fast.close()
        await slow.close()
        await engine.dispose()


def _record(i: int, title: str) -> Record:
    anchor = f"a{i:04d}"
    return Record(anchor, {"AzureObjectID": anchor, "Title": title, "UserName": f"U{i}@x"})


async def _import(space: ConnectorSpace, records: list[Record]) -> None:
    await space.import_records(NAME, 1, records)


async def test_eq_with_few_matches_is_answered_like_the_async_path(
    spaces: tuple[ConnectorSpace, ConnectorSpace],
) -> None:
    fast, slow = spaces
    await _import(fast, [_record(i, "Lead" if i % 10 == 0 else "Engineer") for i in range(50)])
    where = ObjectRow.id.in_([object_id_for(NAME, f"a{i:04d}") for i in range(0, 50, 10)])

    for start, count in ((1, 100), (2, 2), (5, 10), (9, 3)):
        got = await fast.query(NAME, where, start, count, ("title", "lead"))
        want = await slow.query(NAME, where, start, count)
        assert got == want
        assert got[0] == 5


async def test_eq_by_user_name_folds_case_like_the_index(
    spaces: tuple[ConnectorSpace, ConnectorSpace],
) -> None:
    fast, _ = spaces
    await _import(fast, [_record(i, "Engineer") for i in range(3)])

    total, objects = await fast.query(NAME, None, 1, 100, ("username", "u1@x"))

    assert total == 1
    assert objects[0].attributes["UserName"] == "U1@x"


async def test_eq_with_many_matches_falls_back_to_the_async_path(
    spaces: tuple[ConnectorSpace, ConnectorSpace],
) -> None:
    fast, slow = spaces
    await _import(fast, [_record(i, "Engineer") for i in range(MAX_MATCHES + 20)])
    where = ObjectRow.anchor.is_not(None)  # what the async path runs: every object

    total, page = await fast.query(NAME, where, 101, 50, ("title", "engineer"))

    assert total == MAX_MATCHES + 20
    assert [o.anchor for o in page] == [f"a{i:04d}" for i in range(100, MAX_MATCHES + 20)]
    assert (total, page) == await slow.query(NAME, where, 101, 50)


async def test_get_sees_a_write_at_once_and_not_a_hidden_object(
    spaces: tuple[ConnectorSpace, ConnectorSpace],
) -> None:
    fast, slow = spaces
    created, _ = await fast.create(NAME, "new", Staging({"AzureObjectID": "new"}, True, None))

    assert await fast.get(NAME, created.id) == await slow.get(NAME, created.id) == created
    assert await fast.get("Other", created.id) is None

    await fast.update(NAME, created.id, lambda before: Staging(before.attributes, False, Op.DELETE))

    assert await fast.get(NAME, created.id) is None
    assert await fast.query(NAME, None, 1, 10, ("azureobjectid", "new")) == (0, [])


def test_no_lookup_for_a_database_that_is_not_a_sqlite_file() -> None:
    assert Lookup.for_url("sqlite+aiosqlite:///:memory:") is None
    assert Lookup.for_url("postgresql+asyncpg://h/db") is None


async def test_list_pages_match_the_offset_path_at_every_position(
    spaces: tuple[ConnectorSpace, ConnectorSpace],
) -> None:
    fast, slow = spaces
    size = 3 * STRIDE + 7
    await _import(fast, [_record(i, "Engineer") for i in range(size)])

    for start in (1, 2, STRIDE, STRIDE + 1, 2 * STRIDE + 50, size, size + 1, size + 50):
        for count in (0, 1, 10, STRIDE + 3):
            assert await fast.query(NAME, None, start, count) == await slow.query(
                NAME, None, start, count
            ), (start, count)


async def test_a_write_is_listed_at_once(spaces: tuple[ConnectorSpace, ConnectorSpace]) -> None:
    fast, _ = spaces
    await _import(fast, [_record(i, "Engineer") for i in range(2 * STRIDE)])
    assert (await fast.query(NAME, None, 1, 1))[0] == 2 * STRIDE

    await fast.create(NAME, "a", Staging({"AzureObjectID": "a"}, True, None))  # sorts first
    total, page = await fast.query(NAME, None, 1, 2)

    assert total == 2 * STRIDE + 1
    assert [o.anchor for o in page] == ["a", "a0000"]
