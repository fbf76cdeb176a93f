"""Delta imports of a table by a watermark column (``[settings.delta]``).

Every write of a row must move its watermark column forward: a timestamp set on
each insert and update (a trigger, an ``ON UPDATE`` clause, the application) or a
growing number (a rowversion, a sequence). The watermark is the column's highest
value: a delta reads the rows above it in the column's order, so a bulk load that
gave thousands of rows one timestamp is not read again. A row several rows share a
value with is given, as its ``Delta`` watermark, the value before theirs until the
last of them: a delta cut short between them reads them all again next time.

A deleted row cannot be read: deletions reach a delta through a soft-delete column
(the row stays, marked), else only the next full import, which removes what the
table lacks. Full imports leave soft-deleted rows out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from ecmahost.connectors.base import ConnectorSettings, Delta
from ecmahost.connectors.exceptions import ConfigError, WatermarkExpiredError
from ecmahost.connectors.sql.mapping import TableMapping, column_named
from pydantic import Field
from sqlalchemy import (
    Boolean,
    Column,
    ColumnElement,
    Date,
    DateTime,
    Executable,
    Integer,
    and_,
    bindparam,
    case,
    false,
    func,
    or_,
    select,
    true,
    type_coerce,
)
from sqlalchemy.types import NullType

__all__ = ["DeltaColumns", "DeltaSettings", "Row", "changes_after"]

Read = Callable[[Executable], Awaitable[list[Any]]]
"""Runs a query, answering its rows."""
Changes = Callable[[list["Row"]], Awaitable[list[Delta | None]]]
"""The change each row is (watermarks left empty); None for a row without an anchor."""

_FALSE_WORDS = ("", "0", "false", "f", "no", "n")
"""Texts of a soft-delete column that do not mark a row deleted (without a value set)."""

_TRUE_WORDS = ("1", "true", "t", "yes", "y")


class DeltaSettings(ConnectorSettings):
    """``[connectors.X.settings.delta]``: the column every write moves forward, its
    kind, and optionally the column marking a row deleted (``soft_delete_value``: the
    value meaning deleted; default any true value: true, non-zero, a time set)."""

    watermark_column: str = Field(min_length=1)
    watermark_type: Literal["timestamp", "integer"] = "timestamp"
    soft_delete_column: str | None = None
    soft_delete_value: str | None = None


@dataclass(frozen=True, slots=True)
class Row:
    """One changed row: its mapped columns (as ``TableMapping.page`` reads them), its
    watermark value and whether it is marked deleted."""

    columns: Sequence[Any]
    mark: Any
    deleted: bool
    raw_mark: Any
    """The mark as the database holds it, for the next page's bound: SQLite compares
    the text it stored, which a parsed and re-formatted time may not equal."""


@dataclass(frozen=True, slots=True)
class DeltaColumns:
    """The statements of delta imports on one mapped table."""

    mapping: TableMapping
    settings: DeltaSettings
    mark: Any  # the watermark Column
    deleted: ColumnElement[bool] | None  # true for a soft-deleted row

    @classmethod
    def build(cls, mapping: TableMapping, settings: DeltaSettings, key: str) -> DeltaColumns:
        table = mapping.table
        mark = column_named(table, settings.watermark_column, f"{key}.watermark_column")
        wanted = DateTime if settings.watermark_type == "timestamp" else Integer
        if not isinstance(mark.type, wanted) and not (
            wanted is DateTime and isinstance(mark.type, Date)
        ):
            raise ConfigError(
                f"column {mark.name} is {mark.type}, not a {settings.watermark_type} column",
                f"{key}.watermark_type",
            )
        deleted = None
        if settings.soft_delete_column is not None:
            column = column_named(table, settings.soft_delete_column, f"{key}.soft_delete_column")
            deleted = _deleted(column, settings.soft_delete_value, f"{key}.soft_delete_value")
        return cls(mapping, settings, mark, deleted)

    @property
    def kept(self) -> ColumnElement[bool] | None:
        """The condition of the rows a full import reads: those not soft-deleted."""
        if self.deleted is None:
            return None
        return case((self.deleted, false()), else_=true())  # a NULL mark keeps the row

    def highest(self) -> Executable:
        return select(func.max(self.mark))

    def text(self, value: Any) -> str:
        """A watermark column value as the watermark's text (empty for None: every
        row with a watermark is a change since)."""
        if value is None:
            return ""
        return value.isoformat() if isinstance(value, dt.date) else str(int(value))

    def value(self, text: str) -> Any:
        """The watermark's text as a value of the column; ``WatermarkExpiredError``
        for a text this column never gave (a changed ``watermark_type``, say)."""
        try:
            if self.settings.watermark_type == "integer":
                return int(text)
            return dt.datetime.fromisoformat(text)
        except ValueError:
            raise WatermarkExpiredError(f"{text!r} is no {self.settings.watermark_type}") from None

    def expired(self, since: Any, highest: Any) -> bool:
        """Whether a watermark above the column's highest value is stored: the table
        was recreated or restored, so the changes since then are not what it holds."""
        if highest is None:
            return True
        if isinstance(highest, dt.datetime) and (since.tzinfo is None) != (highest.tzinfo is None):
            since = since.replace(tzinfo=highest.tzinfo)
        return bool(since > highest)

    def page(self, since: Any, after: tuple[Any, Any] | None, size: int) -> Executable:
        """The next ``size`` rows changed after ``since`` (None: every row with a
        watermark), ordered by watermark then anchor, after the row ``after``
        (its watermark value and raw anchor)."""
        anchor = self.mapping.anchor.column
        columns = [
            type_coerce(f.column, NullType()).label(f"c{i}")
            for i, f in enumerate(self.mapping.read_fields)
        ]
        flag = case((self.deleted, true()), else_=false()) if self.deleted is not None else false()
        where = self.mark.is_not(None) & anchor.is_not(None)
        if since is not None:
            where = where & (self.mark > since)
        if after is not None:
            mark = type_coerce(self.mark, NullType())
            last_mark = bindparam("after_mark", after[0], NullType())
            last_anchor = bindparam("after_anchor", after[1], NullType())
            where = where & or_(mark > last_mark, and_(mark == last_mark, anchor > last_anchor))
        return (
            select(
                *columns,
                self.mark.label("mark"),
                flag.label("deleted"),
                type_coerce(self.mark, NullType()).label("raw_mark"),
            )
            .where(where)
            .order_by(self.mark, anchor)
            .limit(size)
        )


def _deleted(column: Column[Any], value: str | None, key: str) -> ColumnElement[bool]:
    """The condition of a row the soft-delete ``column`` marks deleted."""
    kind = column.type
    if value is not None:
        try:
            if isinstance(kind, Boolean):
                return column == (value.casefold() in _TRUE_WORDS)
            if isinstance(kind, Integer):
                return column == int(value)
        except ValueError:
            raise ConfigError(f"{value!r} is no value of column {column.name}", key) from None
        return column == value
    if isinstance(kind, Boolean):
        return column == true()
    if isinstance(kind, Integer):
        return column.is_not(None) & (column != 0)
    if isinstance(kind, Date | DateTime):
        return column.is_not(None)
    return column.is_not(None) & func.lower(column).not_in(_FALSE_WORDS)


async def changes_after(
    columns: DeltaColumns, watermark: str, read: Read, changes: Changes, size: int
) -> AsyncIterator[Delta]:
    """The changes made after ``watermark`` in the column's order. A row that rows
    after it share its value with gets the value before theirs as its watermark, so
    a delta stopped between them reads them all again."""
    since = columns.value(watermark) if watermark else None
    if since is not None:
        highest = (await read(columns.highest()))[0][0]
        if columns.expired(since, highest):
            table = columns.mapping.table.fullname
            raise WatermarkExpiredError(
                f"watermark {watermark} is above the highest {columns.mark.name} of "
                f"{table} ({columns.text(highest) or 'none'}): the table was recreated or restored"
            )
    done, held = watermark, None
    async for page in _rows_after(read, columns, since, size):
        for row, change in zip(page, await changes(page), strict=True):
            if held is not None:
                if held[0].mark != row.mark:  # the last row of its value
                    done = columns.text(held[0].mark)
                if held[1] is not None:
                    yield replace(held[1], watermark=done)
            held = (row, change)
    if held is not None and held[1] is not None:
        yield replace(held[1], watermark=columns.text(held[0].mark))


async def _rows_after(
    read: Read, columns: DeltaColumns, since: Any, size: int
) -> AsyncIterator[list[Row]]:
    """Pages of the rows changed after ``since``; ``read(statement)`` runs a query."""
    after: tuple[Any, Any] | None = None
    while True:
        result = await read(columns.page(since, after, size))
        rows = [Row(tuple(r[:-3]), r[-3], bool(r[-2]), r[-1]) for r in result]
        if rows:
            yield rows
        if len(rows) < size:
            return
        after = (rows[-1].raw_mark, rows[-1].columns[0])
