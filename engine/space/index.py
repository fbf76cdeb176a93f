"""The attribute value index: one row per present value, so that ``eq`` on any
attribute of any connector is an index lookup instead of a scan."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from ecmahost.connectors.base import Value
from ecmahost.engine.space.models import ObjectRow, ObjectValue
from ecmahost.engine.space.states import ObjectState
from sqlalchemy import Table, bindparam, delete, insert
from sqlalchemy.orm import Session

__all__ = ["index_rows", "index_text", "reindex"]

_VALUES = cast(Table, ObjectValue.__table__)
# Built once: every SCIM write runs them, and a statement rebuilt per call costs its
# cache key each time.
_CLEAR = delete(_VALUES).where(_VALUES.c.object_id == bindparam("object_id"))
_INSERT = insert(_VALUES)


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
        session.execute(_INSERT, values)


def index_rows(
    object_id: str, connector: str, attributes: Mapping[str, Any]
) -> list[dict[str, str]]:
    """The index rows of an object's present values: one per value of a set. Values
    of a set that differ only in case index as one row (the key holds the text)."""
    rows: dict[tuple[str, str], dict[str, str]] = {}
    for name, value in attributes.items():
        for item in value if isinstance(value, list) else [value]:
            if item is None or item == "":
                continue
            row = {"object_id": object_id, "connector": connector, "attr": name.lower()}
            row["value"] = index_text(item)
            rows.setdefault((row["attr"], row["value"]), row)
    return list(rows.values())
