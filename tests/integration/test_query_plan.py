"""An ``eq`` filter on any attribute stays an index lookup at 100,000 objects."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from ecmahost.connectors.memory.connector import MemorySettings
from ecmahost.engine.config import Deprovision
from ecmahost.engine.scim.filter import parse_filter
from ecmahost.engine.scim.resource import EXTENSION, ResourceMapper
from ecmahost.engine.space.database import migrate, open_engine, sqlite_url
from ecmahost.engine.space.objects import page_statements, visible
from ecmahost.engine.space.search import filter_clause
from sqlalchemy.dialects import sqlite

NAME = "CSV"
OBJECTS = 100_000


async def _schema_mapper() -> ResourceMapper:
    from ecmahost.connectors.memory.connector import MemoryConnector

    schema = await MemoryConnector(NAME, MemorySettings(), Path(".")).schema()
    return ResourceMapper(schema, Deprovision(disable_attribute="IsActive"))


def _fill(db_file: Path) -> None:
    """100,000 users straight into the tables (what a full import leaves behind)."""
    now = "2026-01-01 00:00:00.000000"
    with sqlite3.connect(db_file) as db:
        db.executemany(
            "INSERT INTO objects (id, connector, anchor, attributes, state, version,"
            " created_at, updated_at, serial) VALUES (?, ?, ?, '{}', 'present', 1, ?, ?, ?)",
            ((f"id-{i}", NAME, f"anchor-{i}", now, now, i + 1) for i in range(OBJECTS)),
        )
        db.executemany(
            "INSERT INTO object_values (object_serial, attr, connector, value) VALUES (?, ?, ?, ?)",
            (
                (i + 1, attr, NAME, f"{attr}-{i}")
                for i in range(OBJECTS)
                for attr in ("azureobjectid", "username", "displayname")
            ),
        )
        db.execute("ANALYZE")


def _plan(db_file: Path, statement: object) -> str:
    compiled = statement.compile(  # type: ignore[attr-defined]
        dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}
    )
    with sqlite3.connect(db_file) as db:
        rows = db.execute(f"EXPLAIN QUERY PLAN {compiled}").fetchall()
    return "\n".join(row[-1] for row in rows)


@pytest.mark.slow
async def test_eq_on_a_non_anchor_attribute_is_an_index_lookup(tmp_path: Path) -> None:
    engine = open_engine(sqlite_url(tmp_path), writer=True)
    await migrate(engine)
    await engine.dispose()
    db_file = tmp_path / "ecmahost.db"
    _fill(db_file)
    mapper = await _schema_mapper()
    where = filter_clause(mapper, NAME, parse_filter(f'{EXTENSION}:UserName eq "UserName-77"'))
    count, page = page_statements(visible(NAME) & where, 1, 100)  # what a query runs

    for statement in (page, count):
        plan = _plan(db_file, statement)
        assert "SEARCH object_values USING" in plan and "ix_object_values_lookup" in plan, plan
        assert "(connector=? AND attr=? AND value=?)" in plan, plan
        assert "SCAN object_values" not in plan and "SCAN objects" not in plan, plan
    with sqlite3.connect(db_file) as db:  # and it finds the one user
        found = db.execute(
            str(page.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
        ).fetchall()
    assert [row[0] for row in found] == ["id-77"]
