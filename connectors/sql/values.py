"""How a column's values become attribute values and back: one codec per column type.

Columns are read raw, past SQLAlchemy's result processing, so that one malformed
value (SQLite stores anything anywhere) costs that value rather than the whole page.
Writes go through SQLAlchemy's bind processing, so ``to_db`` returns what the
column type expects (a ``datetime``, a ``UUID``).

Text, integer and boolean columns map to String, Integer and Boolean. Columns that
hold a moment or an identifier map to String: date/time columns as ISO 8601 text, UUID
columns as the canonical lower-case form. Anything else (binary, JSON, arrays,
numeric, ...) has no codec and cannot be mapped.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ecmahost.connectors.base import DataType, Value
from sqlalchemy import types

__all__ = ["INTEGER_ANCHOR", "Codec", "codec_for", "flag_codec"]


@dataclass(frozen=True, slots=True)
class Codec:
    """``to_db`` and ``from_db`` raise ValueError for a value they cannot convert."""

    data_type: DataType
    to_db: Callable[[Value], Any]
    from_db: Callable[[Any], Value]
    name: str
    """What the column holds, for messages ("text", "timestamp with time zone", ...)."""

    @property
    def holds_text(self) -> bool:
        """Whether the column stores the attribute's text itself (fit for an anchor)."""
        return self.name in ("text", "uuid", INTEGER_ANCHOR.name)


def codec_for(column_type: types.TypeEngine[Any]) -> Codec | None:
    """The codec for a reflected column type, or None when it has none."""
    # Order matters: Boolean and Enum columns are also Integer or String to SQLAlchemy.
    if isinstance(column_type, types.Boolean):
        return BOOLEAN
    if isinstance(column_type, types.Integer):
        return INTEGER
    if isinstance(column_type, types.Uuid):
        return UUID
    if isinstance(column_type, types.String):
        return TEXT
    if isinstance(column_type, types.DateTime):
        return TIMESTAMP_TZ if column_type.timezone else TIMESTAMP
    if isinstance(column_type, types.Date):
        return DATE
    if isinstance(column_type, types.Time):
        return TIME
    return None


def flag_codec(column_type: types.TypeEngine[Any]) -> Codec | None:
    """A Boolean codec for a disable column: a boolean one, or an integer one as 1/0."""
    if isinstance(column_type, types.Boolean):
        return BOOLEAN
    if isinstance(column_type, types.Integer):
        return INTEGER_FLAG
    return None


# -- to the database -------------------------------------------------------------------


def _expect_text(value: Value) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a String, got {type(value).__name__} {value!r}")
    return value


def _expect_integer(value: Value) -> int:
    if type(value) is not int:  # bool is an int to Python, not to the schema
        raise ValueError(f"expected an Integer, got {type(value).__name__} {value!r}")
    return value


def _expect_digits(text: str) -> str:
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"expected the digits of a generated number, got {text!r}")
    return text


def _expect_boolean(value: Value) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected a Boolean, got {type(value).__name__} {value!r}")
    return value


def _to_uuid(value: Value) -> uuid.UUID:
    try:
        return uuid.UUID(_expect_text(value))
    except ValueError:
        raise ValueError(f"expected a UUID, got {value!r}") from None


def _to_moment(value: Value, aware: bool) -> dt.datetime:
    moment: dt.datetime = _parse(_expect_text(value), dt.datetime.fromisoformat, "date and time")
    # A moment without an offset is taken as UTC; a column without one stores UTC.
    if aware and moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    if not aware and moment.tzinfo is not None:
        return moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment


def _parse(text: str, parse: Callable[[str], Any], what: str) -> Any:
    try:
        return parse(text)
    except ValueError:
        raise ValueError(f"expected an ISO 8601 {what}, got {text!r}") from None


# -- from the database -----------------------------------------------------------------


def _from_text(raw: Any) -> str:
    if isinstance(raw, str):
        return raw
    if type(raw) is int:  # SQLite keeps what it was given, even in a text column
        return str(raw)
    raise ValueError(f"not text but {type(raw).__name__}")


def _from_integer(raw: Any) -> int:
    if type(raw) is not int:
        raise ValueError(f"not an integer but {type(raw).__name__}")
    return raw


def _from_boolean(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if type(raw) is int and raw in (0, 1):  # SQLite and others store booleans as 0/1
        return raw == 1
    raise ValueError(f"not a boolean but {type(raw).__name__}")


def _from_uuid(raw: Any) -> str:
    if isinstance(raw, uuid.UUID):
        return str(raw)
    try:  # a database without a uuid type holds text (SQLAlchemy writes 32 hex digits)
        return str(uuid.UUID(_from_text(raw)))
    except ValueError:
        raise ValueError("not a UUID") from None


def _iso(kind: type[dt.date] | type[dt.time]) -> Callable[[Any], str]:
    def from_db(raw: Any) -> str:
        if isinstance(raw, str):  # SQLite stores text; normalise it the same way
            raw = _parse(raw, kind.fromisoformat, kind.__name__)
        if not isinstance(raw, kind):
            raise ValueError(f"not a {kind.__name__} but {type(raw).__name__}")
        return raw.isoformat()

    return from_db


TEXT = Codec(DataType.STRING, _expect_text, _from_text, "text")
INTEGER = Codec(DataType.INTEGER, _expect_integer, _from_integer, "integer")
BOOLEAN = Codec(DataType.BOOLEAN, _expect_boolean, _from_boolean, "boolean")
INTEGER_FLAG = Codec(
    DataType.BOOLEAN,
    lambda value: int(_expect_boolean(value)),
    lambda raw: _from_integer(raw) != 0,
    "integer used as a boolean",
)
UUID = Codec(DataType.STRING, _to_uuid, _from_uuid, "uuid")
INTEGER_ANCHOR = Codec(
    DataType.STRING,
    lambda v: int(_expect_digits(_expect_text(v))),
    lambda raw: str(_from_integer(raw)),
    "integer the database generates",
)
"""An IDENTITY or sequence column as a generated anchor: anchors are text to the host,
so its numbers travel as their decimal digits."""
TIMESTAMP = Codec(DataType.STRING, lambda v: _to_moment(v, False), _iso(dt.datetime), "timestamp")
TIMESTAMP_TZ = Codec(
    DataType.STRING, lambda v: _to_moment(v, True), _iso(dt.datetime), "timestamp with time zone"
)
DATE = Codec(
    DataType.STRING,
    lambda v: _parse(_expect_text(v), dt.date.fromisoformat, "date"),
    _iso(dt.date),
    "date",
)
TIME = Codec(
    DataType.STRING,
    lambda v: _parse(_expect_text(v), dt.time.fromisoformat, "time"),
    _iso(dt.time),
    "time",
)
