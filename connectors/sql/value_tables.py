"""Multi-valued attributes held in tables of their own: one row per value, keyed by
the object's anchor (``user_mail(user_id, mail)``), as a normalised schema keeps a
user's mail addresses or phone numbers.

Each such attribute is a set of strings (see ``connectors.base.Value``). A full
import reads the values of a whole page of objects with one query per table; an
export writes the differences (a delete of the values gone, an insert of the new
ones) in the savepoint of the object's own row, so the row and its values commit
together or not at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ecmahost.connectors.base import Attribute, DataType, Record, value_set
from ecmahost.connectors.exceptions import ConfigError
from ecmahost.connectors.sql.mapping import TableMapping, column_named
from ecmahost.connectors.sql.values import Codec, codec_for
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Column, Executable, Table, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["ValueTable", "ValueTableSettings", "wanted_sets", "with_sets"]

_KEYS_PER_QUERY = 5000
"""Anchors bound in one read of a values table: a page of the default size is one
query, and a huge page stays under the drivers' bound-parameter limits (32,766)."""


class ValueTableSettings(BaseModel):
    """Where a multi-valued attribute lives: ``table`` (in ``table_schema``, default
    the main table's), whose ``key_column`` holds the object's anchor (stored as the
    anchor column stores it) and ``value_column`` one value (a text column)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    table: str = Field(min_length=1)
    table_schema: str | None = None
    key_column: str = Field(min_length=1)
    value_column: str = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class ValueTable:
    """One multi-valued attribute and the table holding its values."""

    attribute: Attribute
    table: Table
    key: Column[Any]
    value: Column[Any]
    codec: Codec

    @classmethod
    def build(cls, name: str, table: Table, settings: ValueTableSettings, key: str) -> ValueTable:
        """``ConfigError`` naming the setting (``key``) when the table cannot serve."""
        key_column = column_named(table, settings.key_column, f"{key}.key_column")
        value_column = column_named(table, settings.value_column, f"{key}.value_column")
        codec = codec_for(value_column.type)
        if codec is None or codec.data_type is not DataType.STRING or not codec.holds_text:
            raise ConfigError(
                f"column {value_column.name} of {table.fullname} has type "
                f"{value_column.type}: a multi-valued attribute needs a text column",
                f"{key}.value_column",
            )
        attribute = Attribute(name, DataType.STRING, multi_valued=True)
        return cls(attribute, table, key_column, value_column, codec)

    # -- reading ---------------------------------------------------------------

    def of_page(self, anchors: Sequence[Any]) -> Executable:
        """(key, value) of every value of the objects whose stored anchors are
        ``anchors``: one query for a page of objects."""
        return select(self.key, self.value).where(self.key.in_(list(anchors)))

    def grouped(self, rows: Sequence[Sequence[Any]], anchor_codec: Codec) -> dict[str, list[str]]:
        """The rows of ``of_page`` as sets by anchor; values it cannot read (NULL,
        empty) are left out."""
        texts: dict[str, list[str]] = {}
        for raw_key, raw_value in rows:
            if raw_key is None or raw_value is None:
                continue
            texts.setdefault(str(anchor_codec.from_db(raw_key)), []).append(
                str(self.codec.from_db(raw_value))
            )
        return {anchor: value_set(values) for anchor, values in texts.items()}

    # -- writing ---------------------------------------------------------------

    async def write(self, conn: AsyncConnection, anchor: Any, wanted: Sequence[str]) -> None:
        """Make the values of ``anchor`` (as stored) exactly ``wanted``: delete those
        gone, insert those new; values already held are not touched."""
        result = await conn.execute(select(self.value).where(self.key == anchor))
        held = [str(self.codec.from_db(raw)) for (raw,) in result.all() if raw is not None]
        gone = sorted(set(held) - set(wanted))
        new = [v for v in wanted if v not in held]
        if gone:
            stored = [self.codec.to_db(v) for v in gone]
            await conn.execute(delete(self.table).where(self.key == anchor, self.value.in_(stored)))
        if new:
            rows = [{self.key.name: anchor, self.value.name: self.codec.to_db(v)} for v in new]
            await conn.execute(insert(self.table), rows)

    async def clear(self, conn: AsyncConnection, anchor: Any) -> None:
        await conn.execute(delete(self.table).where(self.key == anchor))


def wanted_sets(tables: Sequence[ValueTable], attributes: Mapping[str, Any]) -> list[list[str]]:
    """The set each table's attribute should hold after a change of ``attributes``
    (empty when absent); ValueError for a value that is not text."""
    by_lower = {name.lower(): value for name, value in attributes.items()}
    sets: list[list[str]] = []
    for table in tables:
        value = by_lower.get(table.attribute.name.lower())
        items = value if isinstance(value, list) else [] if value is None else [value]
        if not all(isinstance(item, str) for item in items):
            raise ValueError(f"attribute {table.attribute.name!r}: expected strings")
        sets.append(value_set(items))
    return sets


async def with_sets(
    conn: AsyncConnection, mapping: TableMapping, value_table: ValueTable, records: list[Record]
) -> list[Record]:
    """``records`` with the values ``value_table`` holds for them: one query per
    ``_KEYS_PER_QUERY`` records."""
    stored = [mapping.anchor_value(r.anchor) for r in records]
    rows: list[Any] = []
    for start in range(0, len(stored), _KEYS_PER_QUERY):
        chunk = stored[start : start + _KEYS_PER_QUERY]
        rows.extend((await conn.execute(value_table.of_page(chunk))).all())
    sets = value_table.grouped(rows, mapping.anchor.codec)
    name = value_table.attribute.name
    return [
        replace(r, attributes={**r.attributes, name: sets[r.anchor]}) if r.anchor in sets else r
        for r in records
    ]
