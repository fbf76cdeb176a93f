"""Delta imports of the SQL connector on SQLite, PostgreSQL and MariaDB: only the rows
changed since the watermark, soft deletions as deletions, rows sharing a timestamp
never skipped, and a watermark the table never reached refused as expired."""

from __future__ import annotations

from typing import Any

import pytest
from ecmahost.connectors.base import Capability, Delta
from ecmahost.connectors.exceptions import ConfigError, WatermarkExpiredError
from ecmahost.connectors.sql.connector import SqlConnector

from tests.connectors.sql.sql_support import (
    Backend,
    Factory,
    backend_fixture,
    make_sql_fixture,
    pg_fixture,
)

__all__ = ["backend_fixture", "make_sql_fixture", "pg_fixture"]

_TIME = {"sqlite": "TIMESTAMP", "postgresql": "TIMESTAMP(6)", "mariadb": "DATETIME(6)"}


def people_ddl(backend: Backend) -> str:
    return (
        'CREATE TABLE "people" ("id" VARCHAR(64) PRIMARY KEY, "name" TEXT, '
        f'"changed" {_TIME[backend.name]}, "version" INTEGER, "deleted" BOOLEAN)'
    )


def at(second: int) -> str:
    """A timestamp literal every one of the three databases reads."""
    return f"'2026-01-01 10:{second // 60:02d}:{second % 60:02d}'"


async def seed(backend: Backend, rows: list[tuple[str, int]]) -> None:
    """Rows (id, second): version = second, not deleted."""
    values = ", ".join(f"('{i}', 'name {i}', {at(s)}, {s}, {'false'})" for i, s in rows)
    await backend.run(f'{people_ddl(backend)}; INSERT INTO "people" VALUES {values}')


async def open_people(make_sql: Factory, backend: Backend, **delta: Any) -> SqlConnector:
    settings = {"watermark_column": "changed", "soft_delete_column": "deleted", **delta}
    return await make_sql(
        backend.url,
        table="people",
        anchor="id",
        attributes={"id": "id", "name": "name"},
        page_size=2,  # pages end inside runs of rows sharing a timestamp
        delta=settings,
    )


async def deltas(connector: SqlConnector, watermark: str) -> list[Delta]:
    return [change async for change in connector.delta_import(watermark)]


async def test_delta_reads_only_changed_rows_and_soft_deletions(
    backend: Backend, make_sql: Factory
) -> None:
    await seed(backend, [(f"u{i}", 1) for i in range(5)])  # a bulk load: one timestamp
    connector = await open_people(make_sql, backend)
    assert Capability.DELTA_IMPORT in connector.capabilities
    mark = await connector.watermark()
    assert mark.startswith("2026-01-01T10:00:01")

    await backend.run(
        f'UPDATE "people" SET "name" = \'renamed\', "changed" = {at(5)} WHERE "id" = \'u1\';'
        f'UPDATE "people" SET "deleted" = true, "changed" = {at(6)} WHERE "id" = \'u2\';'
        f"INSERT INTO \"people\" VALUES ('u9', 'new', {at(7)}, 7, false)"
    )
    changes = await deltas(connector, mark)

    assert [(c.anchor, c.record is None) for c in changes] == [
        ("u1", False),
        ("u2", True),
        ("u9", False),
    ]
    assert changes[0].record is not None and changes[0].record.attributes["name"] == "renamed"
    assert changes[-1].watermark == await connector.watermark()
    assert await deltas(connector, changes[-1].watermark) == []  # nothing since
    full = [r.anchor async for r in connector.full_import()]
    assert sorted(full) == ["u0", "u1", "u3", "u4", "u9"]  # the soft-deleted row left out


async def test_rows_sharing_a_timestamp_hold_the_watermark_before_theirs(
    backend: Backend, make_sql: Factory
) -> None:
    await seed(backend, [("a", 1), ("b", 2), ("c", 2), ("d", 2), ("e", 3)])
    connector = await open_people(make_sql, backend)
    changes = await deltas(connector, "")  # no watermark yet: every row

    first = "2026-01-01T10:00:01"
    second = "2026-01-01T10:00:02"
    assert [(c.anchor, c.watermark[:19]) for c in changes] == [
        ("a", first),
        ("b", first),  # c and d share b's time: a delta stopped after b reads them again
        ("c", first),
        ("d", second),
        ("e", "2026-01-01T10:00:03"),
    ]
    assert [c.anchor for c in await deltas(connector, changes[1].watermark)] == [
        "b",
        "c",
        "d",
        "e",
    ]


async def test_an_integer_watermark_reads_rows_above_it(
    backend: Backend, make_sql: Factory
) -> None:
    await seed(backend, [("a", 1), ("b", 2), ("c", 3)])
    connector = await open_people(
        make_sql, backend, watermark_column="version", watermark_type="integer"
    )
    assert await connector.watermark() == "3"
    assert [c.anchor for c in await deltas(connector, "1")] == ["b", "c"]


async def test_a_watermark_above_the_table_is_expired(backend: Backend, make_sql: Factory) -> None:
    await seed(backend, [("a", 1), ("b", 2)])
    connector = await open_people(make_sql, backend)
    with pytest.raises(WatermarkExpiredError, match="recreated or restored"):
        await deltas(connector, "2026-01-01T11:00:00")
    await backend.run('DELETE FROM "people"')
    with pytest.raises(WatermarkExpiredError):
        await deltas(connector, "2026-01-01T10:00:01")


async def test_soft_delete_value_names_the_deleted_marker(
    backend: Backend, make_sql: Factory
) -> None:
    await seed(backend, [("a", 1), ("b", 2)])
    await backend.run('UPDATE "people" SET "name" = \'gone\' WHERE "id" = \'b\'')
    connector = await open_people(
        make_sql, backend, soft_delete_column="name", soft_delete_value="gone"
    )
    assert [r.anchor async for r in connector.full_import()] == ["a"]
    assert [(c.anchor, c.record is None) for c in await deltas(connector, "")] == [
        ("a", False),
        ("b", True),
    ]


async def test_a_watermark_column_of_the_wrong_type_is_a_configuration_error(
    backend: Backend, make_sql: Factory
) -> None:
    await seed(backend, [("a", 1)])
    with pytest.raises(ConfigError, match="watermark_type"):
        await open_people(make_sql, backend, watermark_column="name")


async def test_a_timestamp_with_time_zone_round_trips_as_a_watermark(
    pg: Backend, make_sql: Factory
) -> None:
    await pg.run(
        'CREATE TABLE "people" ("id" TEXT PRIMARY KEY, "name" TEXT, "changed" TIMESTAMPTZ);'
        "INSERT INTO \"people\" VALUES ('a', 'A', '2026-01-01 10:00:00+02'), "
        "('b', 'B', '2026-01-01 10:00:00.5+02')"
    )
    connector = await make_sql(
        pg.url, table="people", anchor="id", delta={"watermark_column": "changed"}
    )
    mark = await connector.watermark()
    assert mark == "2026-01-01T08:00:00.500000+00:00"
    assert await deltas(connector, mark) == []
    await pg.run('UPDATE "people" SET "changed" = now() WHERE "id" = \'a\'')
    assert [c.anchor for c in await deltas(connector, mark)] == ["a"]
