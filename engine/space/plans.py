"""The index each hot statement of the space must use, forced on SQLite.

SQLite picks a plan from the statistics (``sqlite_stat1``) a connection read when it
prepared the statement. Taken when the space held a handful of users, they make an
``eq`` lookup walk every object in anchor order (cheaper, for four rows, than a sort)
and the read-only connection keeps that plan however many users SCIM creates later.
Each statement here has exactly one good plan whatever the table holds, so it names
its index with ``INDEXED BY``: the plan no longer depends on when statistics were
taken, and a statement whose index is gone fails loudly instead of scanning.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Table
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.selectable import Alias, HasHints

__all__ = [
    "EVENTS_DUE",
    "EVENTS_OF_OBJECT",
    "OBJECTS_BY_ANCHOR",
    "OBJECTS_BY_ID",
    "OBJECTS_BY_SERIAL",
    "OBJECTS_BY_TARGET_ANCHOR",
    "OBJECTS_LISTING",
    "VALUES_LOOKUP",
    "indexed",
    "indexed_by",
]

OBJECTS_BY_ID = "sqlite_autoindex_objects_1"
"""The primary key of ``objects`` (a text key, so SQLite's own unique index)."""
OBJECTS_BY_ANCHOR = "sqlite_autoindex_objects_2"
"""``objects (connector, anchor)``, its unique constraint: an import's known anchors."""
OBJECTS_BY_TARGET_ANCHOR = "ix_objects_target_anchor"
"""``objects (connector, target_anchor)``: the objects an import's anchors name in the
target."""
OBJECTS_BY_SERIAL = "ix_objects_serial"
"""``objects (serial)``: the objects an ``eq`` filter's value rows name."""
OBJECTS_LISTING = "ix_objects_listing"
"""``objects (connector, state, anchor)``: pages and marks in anchor order."""
VALUES_LOOKUP = "ix_object_values_lookup"
"""``object_values (connector, attr, value)``: an ``eq`` filter on any attribute."""
EVENTS_DUE = "ix_export_events_due"
"""``export_events (connector, status, next_attempt_at)``: the claim and the reclaim."""
EVENTS_OF_OBJECT = "ix_export_events_object"
"""``export_events (object_id, id)``: an object's events, and what blocks them."""

S = TypeVar("S", bound=HasHints)


def indexed(table: str, alias: str, index: str) -> str:
    """``table alias INDEXED BY index``, for the plain SQL of the read-only path."""
    return f"{table} {alias} INDEXED BY {index}"


def indexed_by(statement: S, table: Any, index: str) -> S:
    """``statement`` with ``table`` (a model, alias or table) read through ``index``
    on SQLite; other databases plan for themselves and see no hint."""
    return statement.with_hint(table, f"INDEXED BY {index}", dialect_name="sqlite")


# SQLAlchemy keeps a statement's hints but its SQLite compiler renders none of them
# (hints are a feature of MySQL and SQL Server there): these two hooks write the
# hint after the table, or after the alias, as SQLite's grammar puts INDEXED BY.
# Statements without a SQLite hint compile exactly as before.


@compiles(Table, "sqlite")
def _hinted_table(element: Table, compiler: SQLCompiler, **kw: Any) -> str:
    sql: str = compiler.visit_table(element, **kw)  # type: ignore[no-untyped-call]
    return _with_hint(sql, element, kw)


@compiles(Alias, "sqlite")
def _hinted_alias(element: Alias, compiler: SQLCompiler, **kw: Any) -> str:
    sql: str = compiler.visit_alias(element, **kw)  # type: ignore[no-untyped-call]
    return _with_hint(sql, element, kw)


def _with_hint(sql: str, element: Any, kw: dict[str, Any]) -> str:
    hint = (kw.get("fromhints") or {}).get(element) if kw.get("asfrom") else None
    return f"{sql} {hint}" if hint else sql
