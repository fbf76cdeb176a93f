"""The attribute value index: one row per present value, so that ``eq`` on any
attribute of any connector is an index lookup instead of a scan."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from ecmahost.connectors.base import Value
from ecmahost.engine.space.models import ObjectRow, ObjectValue
from ecmahost.engine.space.states import ObjectState
from sqlalchemy import String, Table, bindparam, delete, insert, select
from sqlalchemy.orm import Session

__all__ = [
    "INSERT_ROWS",
    "changed_attributes",
    "entries",
    "index_rows",
    "index_text",
    "keyed_rows",
    "reindex",
]

_OBJECTS = cast(Table, ObjectRow.__table__)
_VALUES = cast(Table, ObjectValue.__table__)
# Built once: every SCIM write runs them, and a statement rebuilt per call costs its
# cache key each time. Rows name their object by id; the index keys them by its
# serial, which only the database knows for an object inserted without one.
_SERIAL_OF = (
    select(_OBJECTS.c.serial).where(_OBJECTS.c.id == bindparam("object_id")).scalar_subquery()
)
_CLEAR = delete(_VALUES).where(_VALUES.c.object_serial == _SERIAL_OF)
INSERT_ROWS = insert(_VALUES).from_select(
    ["object_serial", "attr", "connector", "value"],
    select(
        _OBJECTS.c.serial,
        bindparam("attr", type_=String),
        bindparam("connector", type_=String),
        bindparam("value", type_=String),
    ).where(_OBJECTS.c.id == bindparam("object_id")),
)
"""Inserts ``index_rows`` (an executemany): each row under its object's serial."""


def index_text(value: Value) -> str:
    """The text a single value is indexed and compared under (case-insensitive)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).casefold()


def reindex(session: Session, row: ObjectRow) -> None:
    """Rewrite the object's index rows; an object SCIM does not show has none.
    (Synchronous: the group writer's jobs run on its thread; an async session runs
    it through ``run_sync``.)"""
    session.execute(_CLEAR, {"object_id": row.id})
    if row.state != ObjectState.PRESENT:
        return
    values = index_rows(row.id, row.connector, row.attributes)
    if values:
        session.execute(INSERT_ROWS, values)


def index_rows(
    object_id: str, connector: str, attributes: Mapping[str, Any]
) -> list[dict[str, str]]:
    """The index rows of an object's present values: one per value of a set. Values
    of a set that differ only in case index as one row (the key holds the text)."""
    return [
        {"object_id": object_id, "connector": connector, "attr": attr, "value": value}
        for attr, value in entries(attributes)
    ]


def keyed_rows(
    serial: int, connector: str, attributes: Mapping[str, Any]
) -> list[tuple[int, str, str, str]]:
    """``index_rows`` as the table's own tuples, in its columns' order (object_serial,
    attr, value, connector), for an import that knows the serials it gives."""
    return [(serial, attr, value, connector) for attr, value in entries(attributes)]


def changed_attributes(
    before: Mapping[str, Any], after: Mapping[str, Any]
) -> tuple[set[str], list[tuple[str, str]]]:
    """The (lower-cased) attributes whose index rows differ between ``before`` and
    ``after``, and ``after``'s entries of those attributes: a patch of one attribute
    rewrites that attribute's rows, not the object's."""
    old, new = entries(before), entries(after)
    changed = {attr for attr, _ in old.keys() ^ new.keys()}
    return changed, [entry for entry in new if entry[0] in changed]


def entries(attributes: Mapping[str, Any]) -> dict[tuple[str, str], None]:
    """The distinct (lower-cased attribute, index text) pairs, in attribute order."""
    entries: dict[tuple[str, str], None] = {}
    for name, value in attributes.items():
        attr = name.lower()
        if type(value) is str:  # most values: index_text's own case, without the call
            if value:
                entries[attr, value.casefold()] = None
            continue
        for item in value if isinstance(value, list) else (value,):
            if item is not None and item != "":
                entries[attr, index_text(item)] = None
    return entries
