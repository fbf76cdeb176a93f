"""Writing one object by its anchor: an upsert that replaces the whole object, and a
delete. Every value is a bound parameter; SQLAlchemy quotes the identifiers.

PostgreSQL and SQLite get one ``INSERT … ON CONFLICT (anchor) DO UPDATE`` statement,
MariaDB and MySQL ``INSERT … ON DUPLICATE KEY UPDATE`` where that is safe (see
``mariadb``); other databases an ``UPDATE`` followed, when it matched no row, by an
``INSERT`` (the caller runs both in one savepoint, and one connector exports at a time).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ecmahost.connectors.sql import mariadb
from ecmahost.connectors.sql.mapping import TableMapping
from sqlalchemy import Column, Executable, bindparam, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = [
    "NATIVE_UPSERT",
    "anchor_parameter",
    "delete_object",
    "delete_statement",
    "insert_generated",
    "native_upsert",
    "parameters",
    "rename_object",
    "update_generated",
    "upsert_object",
    "upsert_statement",
]

_ANCHOR = "anchor_value"

NATIVE_UPSERT: dict[str, Callable[..., Any]] = {
    "postgresql": postgresql.insert,
    "sqlite": sqlite.insert,
}
"""Dialect name → its ``insert`` construct with ``on_conflict_do_update``."""


async def upsert_object(
    conn: AsyncConnection, mapping: TableMapping, values: Mapping[Column[Any], Any]
) -> None:
    """Insert the object, or replace the mapped columns of the row with its anchor
    (see ``upsert_statement``)."""
    statement = upsert_statement(conn.dialect.name, mapping, values)
    if statement is None:
        await _update_or_insert(conn, mapping, values)
    else:
        await conn.execute(statement, parameters(values))


def upsert_statement(
    dialect: str, mapping: TableMapping, values: Mapping[Column[Any], Any]
) -> Executable | None:
    """One statement that inserts an object holding ``values``' columns or replaces
    the row with its anchor, its values bound by column key (see ``parameters``), so
    it runs for any number of such objects at once; None where the database has no
    safe one.

    ``values`` holds the object's present attributes. A new row gets the table's
    defaults for the others; an existing row has them cleared (set NULL), since the
    change carries the whole object, except those the database fills and those that
    do not flow both ways (see ``Field.cleared_when_absent``). Unmapped columns are
    never touched."""
    if dialect in mariadb.DIALECTS:
        return mariadb.upsert_statement(mapping, values)
    make_insert = NATIVE_UPSERT.get(dialect)
    return None if make_insert is None else native_upsert(make_insert, mapping, values)


def native_upsert(
    make_insert: Callable[..., Any], mapping: TableMapping, values: Mapping[Column[Any], Any]
) -> Executable:
    """``INSERT … ON CONFLICT (anchor) DO UPDATE`` through a dialect's ``insert`` (one of
    ``NATIVE_UPSERT``), as ``upsert_statement`` describes it."""
    statement = make_insert(mapping.table)
    replaced = {
        f.column: statement.excluded[f.column.name] if f.column in values else None
        for f in mapping.replaced(values)
    }
    anchor = [mapping.anchor.column]
    upsert: Executable
    if replaced:
        upsert = statement.on_conflict_do_update(index_elements=anchor, set_=replaced)
    else:  # the table maps nothing but the anchor
        upsert = statement.on_conflict_do_nothing(index_elements=anchor)
    return upsert


def parameters(values: Mapping[Column[Any], Any]) -> dict[str, Any]:
    """Column values as a statement's parameters, by column key."""
    return {column.key: value for column, value in values.items()}


async def insert_generated(
    conn: AsyncConnection, mapping: TableMapping, values: Mapping[Column[Any], Any]
) -> Any:
    """Insert a row whose anchor the database fills; returns the anchor's raw value.
    Only present values are sent, so every other column gets its default."""
    table, column = mapping.table, mapping.anchor.column
    statement = insert(table).values(dict(values))
    if conn.dialect.insert_returning:
        return (await conn.execute(statement.returning(column))).scalar_one()
    result = await conn.execute(statement)
    if column.primary_key and result.inserted_primary_key:
        return result.inserted_primary_key[0]
    raise ValueError(f"the database cannot return the value it gave column {column.name}")


async def update_generated(
    conn: AsyncConnection, mapping: TableMapping, anchor: Any, values: Mapping[Column[Any], Any]
) -> bool:
    """Replace the mapped columns of the row whose generated anchor is ``anchor``;
    False when no row has it. An absent attribute clears its column, except a column
    with a default, which is left as it is rather than overwritten with NULL."""
    table, column = mapping.table, mapping.anchor.column
    replaced = {
        f.column: values.get(f.column)
        for f in mapping.fields[1:]
        if f.column in values or f.column.server_default is None
    }
    if not replaced:
        return await conn.scalar(select(column).where(column == anchor)) is not None
    result = await conn.execute(update(table).where(column == anchor).values(replaced))
    return result.rowcount > 0


async def rename_object(
    conn: AsyncConnection, mapping: TableMapping, previous: Any, anchor: Any
) -> None:
    """Move the row of ``previous`` to ``anchor`` (the upsert that follows writes its
    values). No row under ``previous``: an earlier attempt already moved it. A row
    already under ``anchor`` as well fails on the anchor's unique constraint."""
    table, column = mapping.table, mapping.anchor.column
    await conn.execute(update(table).where(column == previous).values({column: anchor}))


async def delete_object(conn: AsyncConnection, mapping: TableMapping, anchor: Any) -> None:
    """Delete the row with this anchor value; none is not an error."""
    await conn.execute(delete_statement(mapping), anchor_parameter(anchor))


def delete_statement(mapping: TableMapping) -> Executable:
    """Delete the row whose anchor is bound as ``anchor_value``."""
    table, column = mapping.table, mapping.anchor.column
    return delete(table).where(column == bindparam(_ANCHOR))


def anchor_parameter(anchor: Any) -> dict[str, Any]:
    """The parameters of ``delete_statement`` for this anchor value."""
    return {_ANCHOR: anchor}


async def _update_or_insert(
    conn: AsyncConnection, mapping: TableMapping, values: Mapping[Column[Any], Any]
) -> None:
    table, column = mapping.table, mapping.anchor.column
    anchor = values[column]
    replaced = {f.column: values.get(f.column) for f in mapping.replaced(values)}
    if replaced:
        result = await conn.execute(update(table).where(column == anchor).values(replaced))
        found = result.rowcount > 0
    else:
        found = await conn.scalar(select(column).where(column == anchor)) is not None
    if not found:
        await conn.execute(insert(table).values(dict(values)))
