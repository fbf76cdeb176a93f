"""A reflected table seen as one object type: which column holds which attribute.

Built once when the connector opens; afterwards it turns rows into records and
changes into column values, and builds the statements that read the table.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ecmahost.connectors.base import Attribute, Change, Direction, Record, Schema, Value
from ecmahost.connectors.direction import DirectionSettings, with_directions
from ecmahost.connectors.exceptions import ConfigError
from ecmahost.connectors.sql.values import INTEGER, INTEGER_ANCHOR, Codec, codec_for, flag_codec
from sqlalchemy import (
    Column,
    ColumnElement,
    Executable,
    Table,
    UniqueConstraint,
    bindparam,
    func,
    select,
    type_coerce,
)
from sqlalchemy.types import NullType

if TYPE_CHECKING:  # value_tables builds on this module
    from ecmahost.connectors.sql.value_tables import ValueTable

__all__ = ["Field", "TableMapping", "column_named"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Field:
    """One attribute and the column that holds it."""

    attribute: Attribute
    column: Column[Any]
    codec: Codec
    defaulted: bool = False
    """The database fills the column when a write leaves it out (a default, a
    sequence, a generated value): an object without the attribute never sets it NULL."""

    @property
    def cleared_when_absent(self) -> bool:
        """Whether a change without the attribute sets the column NULL: only for a
        column that flows both ways and has no database default, since a change
        carries the whole object."""
        direction = self.attribute.direction is Direction.IMPORT_EXPORT
        return direction and not self.defaulted


@dataclass(frozen=True, slots=True)
class TableMapping:
    """The table, its anchor field and every mapped field (anchor first); ``sets``
    are the multi-valued attributes, each a ``ValueTable`` (listed after the fields
    in the schema)."""

    table: Table
    schema: Schema
    fields: tuple[Field, ...]
    sets: tuple[ValueTable, ...] = ()

    @property
    def anchor(self) -> Field:
        return self.fields[0]

    @property
    def anchor_generated(self) -> bool:
        """The database fills the anchor column: creates come without an anchor."""
        return self.anchor.attribute.assigned

    @classmethod
    def build(
        cls,
        table: Table,
        *,
        anchor: str,
        attributes: Mapping[str, str] | None,
        object_type: str,
        disable_column: str | None,
        key: str,
        sets: Sequence[ValueTable] = (),
        directions: DirectionSettings | None = None,
        defaulted_columns: Sequence[str] = (),
        anchor_generated: bool = False,
    ) -> TableMapping:
        """The mapping the settings ask for; ``ConfigError`` naming the setting (under
        ``key``, e.g. ``connectors.HR.settings``) when the table cannot serve it.

        Generated columns are import-only; ``directions`` may make others so, or
        export-only. Columns with a database default, and ``defaulted_columns``, are
        left out of a write whose object lacks them. ``anchor_generated``: the
        database fills the anchor column, which must then have a default or be an
        identity column."""
        anchor_column = column_named(table, anchor, f"{key}.anchor")
        if anchor_generated:
            _check_generated(anchor_column, f"{key}.anchor_generated")
            if sets:  # their rows are keyed by an anchor the host knows before the insert
                raise ConfigError(
                    "multi-valued tables need an anchor the host writes, "
                    "not one the database generates",
                    f"{key}.multi_valued",
                )
        flag_column = None
        if disable_column is not None:
            flag_column = column_named(table, disable_column, f"{key}.disable_column")
        pairs = _pairs(table, anchor_column, attributes, key)
        fields = [
            _field(name, column, anchor_column, flag_column, key, generated=anchor_generated)
            for name, column in pairs
        ]
        _check_fields(fields, flag_column, key)
        _check_unique(table, anchor_column, f"{key}.anchor")
        defaulted = {
            column_named(table, name, f"{key}.defaulted_columns") for name in defaulted_columns
        }
        fields = _directed(fields, object_type, directions, defaulted, key)
        if anchor_generated:
            anchor_field = fields[0]
            assigned = dataclasses.replace(anchor_field.attribute, assigned=True)
            fields[0] = dataclasses.replace(anchor_field, attribute=assigned)
        served = [f.attribute for f in fields] + [s.attribute for s in sets]
        names = [a.name.lower() for a in served]
        if len(set(names)) != len(names):
            raise ConfigError("a multi-valued attribute is also a column", f"{key}.multi_valued")
        return cls(table, Schema(object_type, tuple(served)), tuple(fields), tuple(sets))

    def replaced(self, values: Mapping[Column[Any], Any]) -> list[Field]:
        """The fields an update of an existing row sets: those the object holds, and
        those it lacks whose column is to be cleared."""
        return [f for f in self.fields[1:] if f.column in values or f.cleared_when_absent]

    @property
    def read_fields(self) -> tuple[Field, ...]:
        """The fields an import reads (anchor first): export-only ones never are."""
        return tuple(f for f in self.fields if f.attribute.imported)

    # -- reading ---------------------------------------------------------------

    def count(self) -> Executable:
        """How many rows the table holds (a full import's progress total)."""
        return select(func.count()).select_from(self.table)

    def page(self, after: Any, size: int, kept: ColumnElement[bool] | None = None) -> Executable:
        """The next ``size`` rows by anchor, after the raw anchor value ``after``;
        only those meeting ``kept`` when given (rows not soft-deleted)."""
        anchor = self.anchor.column
        # Raw in and out: SQLAlchemy's processing is the codecs' job (see sql_values).
        columns = [
            type_coerce(f.column, NullType()).label(f"c{i}") for i, f in enumerate(self.read_fields)
        ]
        where = (
            anchor.is_not(None) if after is None else anchor > bindparam("after", after, NullType())
        )
        if kept is not None:
            where = where & kept
        return select(*columns).where(where).order_by(anchor).limit(size)

    def record(self, row: Sequence[Any]) -> Record | None:
        """The record a row of ``page`` holds; None (with a warning) without an anchor."""
        anchor = self._anchor_of(row[0])
        if anchor is None:
            self._warn("sql.import.no_anchor", "row without a usable anchor skipped", row[0])
            return None
        attributes: dict[str, Value] = {}
        for field, raw in zip(self.read_fields, row, strict=True):
            value = self._value(field, raw, anchor)
            if value is not None:
                attributes[field.attribute.name] = value
        return Record(anchor, attributes)

    def _anchor_of(self, raw: Any) -> str | None:
        try:
            anchor = self.anchor.codec.from_db(raw) if raw is not None else None
        except ValueError:
            return None
        return anchor if isinstance(anchor, str) and anchor else None

    def _value(self, field: Field, raw: Any, anchor: str) -> Value | None:
        if raw is None:
            return None
        try:
            value = field.codec.from_db(raw)
        except ValueError as exc:
            name = field.attribute.name
            self._warn("sql.import.invalid_value", f"{anchor!r}: {name} left out: {exc}", raw)
            return None
        # An empty string is "no value" to SCIM and to the engine, as NULL is.
        return None if value == "" else value

    def _warn(self, action: str, message: str, raw: Any) -> None:
        log.warning("%s: %s", self.table.fullname, message, extra={"action": action})
        log.debug("%s: the raw value was %r", self.table.fullname, raw)

    # -- writing ---------------------------------------------------------------

    def anchor_value(self, anchor: str) -> Any:
        """The anchor as the anchor column stores it; ValueError if it cannot."""
        if not anchor:
            raise ValueError("the anchor is empty")
        return self.anchor.codec.to_db(anchor)

    def values(self, change: Change) -> dict[Column[Any], Any]:
        """The change's whole object as column values (absent attributes left out, and
        import-only ones, which are the database's to set, as a generated anchor is);
        ValueError naming the attribute when one cannot be stored."""
        values: dict[Column[Any], Any] = {}
        if not self.anchor_generated:
            values[self.anchor.column] = self.anchor_value(change.anchor)
        for name, value in change.attributes.items():
            if self._is_set(name):
                continue  # written to its own table (see value_tables)
            field = self._field(name)
            if not field.attribute.exported:
                continue
            if field is self.anchor and self.anchor_generated:
                continue  # the database's: never written
            if field is self.anchor:
                if value != change.anchor:
                    raise ValueError(f"attribute {name!r} is {value!r}, not the change's anchor")
                continue
            try:
                values[field.column] = field.codec.to_db(value)
            except ValueError as exc:
                raise ValueError(f"attribute {field.attribute.name!r}: {exc}") from None
        return values

    def _is_set(self, name: str) -> bool:
        attribute = self.schema.get(name)
        return attribute is not None and attribute.multi_valued

    def _field(self, name: str) -> Field:
        attribute = self.schema.get(name)
        if attribute is None:
            raise ValueError(f"attribute {name!r} is not in the schema")
        return next(f for f in self.fields if f.attribute is attribute)


# -- building --------------------------------------------------------------------------


def column_named(table: Table, name: str, key: str) -> Column[Any]:
    """The column called ``name``: exactly, else the only one whose name differs in case
    (PostgreSQL folds unquoted names to lower case, so ``AzureObjectID`` may be
    ``azureobjectid`` there)."""
    if name in table.columns:
        return table.columns[name]
    similar = [c for c in table.columns if c.name.lower() == name.lower()]
    if len(similar) == 1:
        return similar[0]
    known = ", ".join(c.name for c in table.columns)
    raise ConfigError(f"table {table.fullname} has no column {name!r} (columns: {known})", key)


def _pairs(
    table: Table, anchor: Column[Any], attributes: Mapping[str, str] | None, key: str
) -> list[tuple[str, Column[Any]]]:
    """(attribute name, column) for every attribute, the anchor's first."""
    if attributes is None:
        pairs = [(c.name, c) for c in table.columns if _usable(c)]
    else:
        pairs = [
            (name, column_named(table, column, f"{key}.attributes.{name}"))
            for name, column in attributes.items()
        ]
    if not any(column is anchor for _, column in pairs):
        pairs.append((anchor.name, anchor))
    return sorted(pairs, key=lambda pair: pair[1] is not anchor)  # stable: table order kept


def _usable(column: Column[Any]) -> bool:
    if codec_for(column.type) is not None:
        return True
    log.warning(
        "%s: column %s of type %s has no attribute type and is not mapped",
        column.table.fullname,
        column.name,
        column.type,
        extra={"action": "sql.column_skipped"},
    )
    return False


def _field(
    name: str,
    column: Column[Any],
    anchor: Column[Any],
    flag: Column[Any] | None,
    key: str,
    *,
    generated: bool = False,
) -> Field:
    if column is flag:
        codec = flag_codec(column.type)
        if codec is None:
            raise ConfigError(
                f"column {column.name} has type {column.type}, not a boolean or integer type",
                f"{key}.disable_column",
            )
    else:
        codec = codec_for(column.type)
        if codec is None:
            raise ConfigError(
                f"column {column.name} has type {column.type}, which maps to no attribute type "
                "(text, integer, boolean, date/time and uuid columns do)",
                f"{key}.attributes.{name}",
            )
    if column is anchor and generated and codec is INTEGER:
        codec = INTEGER_ANCHOR  # an identity or sequence: its numbers as text
    if column is anchor and not codec.holds_text:
        raise ConfigError(
            f"the anchor column {column.name} has type {column.type}; it must be text or uuid",
            f"{key}.anchor",
        )
    return Field(Attribute(name, codec.data_type, is_anchor=column is anchor), column, codec)


def _check_generated(column: Column[Any], key: str) -> None:
    """A generated anchor needs something in the database that fills it."""
    # An integer primary key alone is numbered by the database (SQLite's rowid,
    # MySQL's AUTO_INCREMENT): SQLAlchemy names it the table's autoincrement column.
    numbered = column is column.table.autoincrement_column
    if (
        column.server_default is None
        and column.identity is None
        and column.autoincrement is not True
        and not numbered
    ):
        raise ConfigError(
            f"column {column.name} has no default and is no identity column: the "
            "database cannot fill it",
            key,
        )


def _check_fields(fields: Sequence[Field], flag: Column[Any] | None, key: str) -> None:
    seen: dict[str, str] = {}
    for field in fields:
        lower = field.attribute.name.lower()
        if lower in seen:
            raise ConfigError(
                f"attribute names {seen[lower]!r} and {field.attribute.name!r} differ only in case",
                f"{key}.attributes",
            )
        seen[lower] = field.attribute.name
    columns = [f.column for f in fields]
    if len(set(columns)) != len(columns):
        raise ConfigError("two attributes are mapped to one column", f"{key}.attributes")
    if flag is not None and flag not in columns:
        raise ConfigError(
            f"column {flag.name} is not mapped to an attribute", f"{key}.disable_column"
        )


def _generated(column: Column[Any]) -> bool:
    """Whether the database computes the column and refuses writes to it."""
    identity = column.identity
    return column.computed is not None or (identity is not None and bool(identity.always))


def _has_default(column: Column[Any]) -> bool:
    return column.server_default is not None or column.identity is not None


def _marked(field: Field, defaulted: set[Column[Any]]) -> Field:
    """The field as the database defines it: a generated column is import-only (not
    the anchor: who picks it, Entra or the database, is the anchor settings' rule)."""
    generated = _generated(field.column)
    attribute = field.attribute
    if generated and not attribute.is_anchor:
        attribute = dataclasses.replace(attribute, direction=Direction.IMPORT_ONLY)
    filled = generated or _has_default(field.column) or field.column in defaulted
    return dataclasses.replace(field, attribute=attribute, defaulted=filled)


def _directed(
    fields: Sequence[Field],
    object_type: str,
    directions: DirectionSettings | None,
    defaulted: set[Column[Any]],
    key: str,
) -> list[Field]:
    """The fields with their flow direction and whether the database fills them."""
    marked = [_marked(f, defaulted) for f in fields]
    if directions is None:
        return marked
    schema = with_directions(
        Schema(object_type, tuple(f.attribute for f in marked)), directions, key
    )
    directed = [
        dataclasses.replace(f, attribute=a) for f, a in zip(marked, schema.attributes, strict=True)
    ]
    for field in directed:
        if _generated(field.column) and field.attribute.exported and not field.attribute.is_anchor:
            raise ConfigError(
                f"column {field.column.name} is generated by the database and cannot be written",
                f"{key}.export_only",
            )
    return directed


def _check_unique(table: Table, anchor: Column[Any], key: str) -> None:
    """Upserts find objects by anchor: the database must keep it unique."""
    candidates = [list(table.primary_key.columns)]
    candidates += [list(i.columns) for i in table.indexes if i.unique]
    candidates += [list(c.columns) for c in table.constraints if isinstance(c, UniqueConstraint)]
    if not any(columns == [anchor] for columns in candidates):
        raise ConfigError(
            f"column {anchor.name} of {table.fullname} is neither the primary key nor unique; "
            "add a unique constraint on it",
            key,
        )
