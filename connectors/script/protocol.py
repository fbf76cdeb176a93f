"""The script connector's wire format: JSON Lines over stdin and stdout, UTF-8.

Every run gets a header line on stdin; ``export`` then gets one change per line.
``schema`` answers with object types and attributes, ``import`` with records (and
maybe a final watermark), ``delta_import`` with records and deletions since the
header's watermark and then the new watermark, ``export`` with one result per change.
The full contract, with examples, is the README ("The script connector"); this module
is its one implementation.
Output that breaks it raises ``ProtocolError`` with the line number.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ecmahost.connectors.base import (
    Attribute,
    Change,
    ChangeKind,
    DataType,
    Direction,
    Record,
    Schema,
    Value,
)
from ecmahost.connectors.exceptions import (
    ConflictError,
    EcmahostError,
    PermanentError,
    TransientError,
)
from ecmahost.connectors.script.process import ProtocolError
from ecmahost.connectors.secrets import scrub

__all__ = [
    "PROTOCOL_VERSION",
    "Deletion",
    "Expired",
    "ExportResult",
    "Header",
    "Watermark",
    "encode",
    "encode_change",
    "normalised_change",
    "parse_delta_line",
    "parse_import_line",
    "parse_result",
    "parse_schema",
]

PROTOCOL_VERSION = 1

_INTEGER = re.compile(r"[+-]?[0-9]+")


@dataclass(frozen=True, slots=True)
class Header:
    """The first line every script reads: who it is and its parameters."""

    role: str
    connector: str
    parameters: Mapping[str, str]
    """Effective values: ``Name`` from ``Name_RunStep`` when set, else ``Name_Global``."""
    config_parameters: Mapping[str, str]
    """Every parameter under its configured name, as ECMA2Host's ``$ConfigParameters``."""
    schema: Schema | None = None
    watermark: Any = None

    def encode(self) -> bytes:
        body: dict[str, Any] = {
            "ecmahost": PROTOCOL_VERSION,
            "role": self.role,
            "connector": self.connector,
            "parameters": dict(self.parameters),
            "config_parameters": dict(self.config_parameters),
        }
        if self.schema is not None:
            body["object_type"] = self.schema.object_type
            body["anchor"] = self.schema.anchor.name
            body["attributes"] = [_attribute_json(a) for a in self.schema.attributes]
        if self.watermark is not None or self.role == "delta_import":  # null: "where now?"
            body["watermark"] = self.watermark
        return encode(body)


@dataclass(frozen=True, slots=True)
class Watermark:
    """The last line of an import may hand back a watermark for a later delta import."""

    value: Any


@dataclass(frozen=True, slots=True)
class Deletion:
    """A delta import line: the target deleted the object with this anchor."""

    anchor: str


@dataclass(frozen=True, slots=True)
class Expired:
    """A delta import's only line when the script cannot list the changes since the
    watermark it was given (its change log was purged): a full import follows."""

    reason: str


@dataclass(frozen=True, slots=True)
class ExportResult:
    anchor: str
    error: EcmahostError | None


def encode(body: Mapping[str, Any]) -> bytes:
    """One JSON line. UTF-8 as is; ASCII escapes only for what UTF-8 cannot carry."""
    try:
        return (json.dumps(body, ensure_ascii=False) + "\n").encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, which JSON can escape but UTF-8 not
        return (json.dumps(body) + "\n").encode("ascii")


# -- schema -------------------------------------------------------------------------


def parse_schema(lines: Sequence[tuple[int, bytes]]) -> dict[str, list[Attribute]]:
    """Object types and their attributes, in output order."""
    types: dict[str, list[Attribute]] = {}
    current: list[Attribute] | None = None
    for number, line in lines:
        body = _object(number, line)
        if "object_type" in body:
            name = _string(body, "object_type", number)
            if name in types:
                raise ProtocolError(f"line {number}: object type {name!r} appears twice")
            current = types[name] = []
            continue
        if current is None:
            raise ProtocolError(f"line {number}: an attribute before any object_type line")
        current.append(_schema_attribute(body, number))
    if not types:
        raise ProtocolError("no object_type line: the schema is empty")
    return types


def _schema_attribute(body: Mapping[str, Any], number: int) -> Attribute:
    name = _string(body, "name", number)
    type_name = body.get("type", "String")
    data_type = next(
        (
            t
            for t in DataType
            if isinstance(type_name, str) and t.value.lower() == type_name.lower()
        ),
        None,
    )
    if data_type is None:
        expected = ", ".join(t.value for t in DataType)
        raise ProtocolError(
            f"line {number}: attribute {name!r} has type {type_name!r} ({expected})"
        )
    if body.get("multivalued", False) is not False:
        raise ProtocolError(f"line {number}: attribute {name!r} is multi-valued (not supported)")
    anchor = body.get("anchor", False)
    if not isinstance(anchor, bool):
        raise ProtocolError(f"line {number}: attribute {name!r}: anchor must be true or false")
    return Attribute(name, data_type, is_anchor=anchor, direction=_direction(body, name, number))


def _direction(body: Mapping[str, Any], name: str, number: int) -> Direction:
    """``direction`` as Schema.xml's AllowedAttributeOperation names it, in any case."""
    text = body.get("direction", Direction.IMPORT_EXPORT.value)
    for direction in Direction:
        if isinstance(text, str) and direction.value.lower() == text.lower():
            return direction
    expected = ", ".join(d.value for d in Direction)
    raise ProtocolError(f"line {number}: attribute {name!r} has direction {text!r} ({expected})")


def _attribute_json(attribute: Attribute) -> dict[str, Any]:
    return {
        "name": attribute.name,
        "type": attribute.data_type.value,
        "anchor": attribute.is_anchor,
        "direction": attribute.direction.value,
    }


# -- import -------------------------------------------------------------------------


def parse_delta_line(
    number: int, line: bytes, schema: Schema, known: frozenset[str]
) -> Record | Deletion | Watermark | Expired:
    """One delta import line: a record or the watermark as an import's,
    ``{"anchor": ..., "deleted": true}``, or ``{"watermark_expired": reason}``."""
    body = _object(number, line)
    if "deleted" in body:
        anchor = body.get("anchor")
        well_formed = set(body) == {"anchor", "deleted"} and body["deleted"] is True
        if not well_formed or not isinstance(anchor, str) or not anchor:
            raise ProtocolError(f"line {number}: a deletion is an anchor and deleted: true")
        return Deletion(anchor)
    if "watermark_expired" in body and len(body) == 1:
        return Expired(str(body["watermark_expired"]))
    return parse_import_line(number, line, schema, known)


def parse_import_line(
    number: int, line: bytes, schema: Schema, known: frozenset[str]
) -> Record | Watermark:
    """One import line: a record typed by ``schema``, or the watermark.

    Attributes in ``known`` (the script's full schema) that the configuration did not
    select are left out; any other unknown attribute is a protocol violation.
    """
    body = _object(number, line)
    if "watermark" in body and len(body) == 1:
        return Watermark(body["watermark"])
    attributes = body.get("attributes", {})
    if not isinstance(attributes, dict):
        raise ProtocolError(f"line {number}: attributes must be an object")
    anchor_name = schema.anchor.name
    anchor = body.get("anchor", attributes.get(anchor_name))
    if not isinstance(anchor, str) or not anchor:
        raise ProtocolError(f"line {number}: no anchor (a non-empty string)")
    values: dict[str, Value] = {anchor_name: anchor}
    for name, raw in attributes.items():
        attribute = schema.get(name)
        if attribute is None:
            if name.lower() in known:
                continue
            raise ProtocolError(f"line {number}: attribute {name!r} is not in the schema")
        if raw is None or not attribute.imported:  # export-only: never read back
            continue
        try:
            value = typed(raw, attribute.data_type)
        except ValueError as exc:
            raise ProtocolError(f"line {number}: attribute {name!r}: {exc}") from None
        if attribute.is_anchor and value != anchor:
            raise ProtocolError(f"line {number}: attribute {name!r} differs from the anchor")
        values[attribute.name] = value
    return Record(anchor, values)


def typed(raw: Any, data_type: DataType) -> Value:
    """``raw`` (a JSON value) as a value of ``data_type``; ValueError if it is not one.

    Booleans may also come as the strings ``True``/``False`` (any case) and integers
    as decimal strings, since that is how ECMA2Host scripts and files write them.
    """
    if data_type is DataType.BOOLEAN:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in ("true", "false"):
            return raw.lower() == "true"
        raise ValueError(f"expected a Boolean, got {raw!r}")
    if data_type is DataType.INTEGER:
        if type(raw) is int:
            return raw
        if isinstance(raw, str) and _INTEGER.fullmatch(raw):
            return int(raw)
        raise ValueError(f"expected an Integer, got {raw!r}")
    if isinstance(raw, str):
        return raw
    raise ValueError(f"expected a String, got {raw!r}")


# -- export -------------------------------------------------------------------------


def normalised_change(change: Change, schema: Schema) -> Change:
    """``change`` with every value typed as the schema says and the anchor attribute
    set; ValueError naming the attribute when it cannot be sent as it is."""
    if not change.anchor:
        raise ValueError("the anchor is empty")
    if change.kind is ChangeKind.DELETE:
        return Change(change.kind, change.anchor)
    if change.previous_anchor == "":
        raise ValueError("the previous anchor of a rename is empty")
    anchor_name = schema.anchor.name
    values: dict[str, Value] = {anchor_name: change.anchor}
    for name, raw in change.attributes.items():
        attribute = schema.get(name)
        if attribute is None:
            raise ValueError(f"attribute {name!r} is not in the schema")
        if attribute.data_type is DataType.STRING and not isinstance(raw, str):
            raw = ("True" if raw else "False") if isinstance(raw, bool) else str(raw)
        try:
            value = typed(raw, attribute.data_type)
        except ValueError as exc:
            raise ValueError(f"attribute {name!r}: {exc}") from None
        if attribute.is_anchor and value != change.anchor:
            raise ValueError(f"attribute {name!r} is {value!r}, not the change's anchor")
        values[attribute.name] = value
    return Change(change.kind, change.anchor, values, change.previous_anchor)


def encode_change(change: Change) -> bytes:
    body: dict[str, Any] = {"op": change.kind.value, "anchor": change.anchor}
    if change.previous_anchor is not None:
        body["previous_anchor"] = change.previous_anchor
    return encode({**body, "attributes": dict(change.attributes)})


def parse_result(number: int, line: bytes, label: str) -> ExportResult:
    """One export result; the error of an ``error`` result carries the script's message."""
    body = _object(number, line)
    anchor = _string(body, "anchor", number)
    status = body.get("status")
    if status == "success":
        return ExportResult(anchor, None)
    if status != "error":
        raise ProtocolError(f"line {number}: status must be 'success' or 'error', got {status!r}")
    message = body.get("message") or "the script reported an error without a message"
    if not isinstance(message, str):
        raise ProtocolError(f"line {number}: message must be a string")
    text = f"{label}: {scrub(message)}"  # the script's words reach Entra and the log
    if body.get("retry", False) is True:
        return ExportResult(anchor, TransientError(text))
    if body.get("conflict", False) is True:
        return ExportResult(anchor, ConflictError(text))
    return ExportResult(anchor, PermanentError(text))


# -- helpers ------------------------------------------------------------------------


def _object(number: int, line: bytes) -> dict[str, Any]:
    try:
        body = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"line {number} is not UTF-8 ({exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise ProtocolError(f"line {number} is not JSON ({exc.msg}): {_excerpt(line)}") from None
    if not isinstance(body, dict):
        raise ProtocolError(f"line {number} is not a JSON object: {_excerpt(line)}")
    return body


def _string(body: Mapping[str, Any], key: str, number: int) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise ProtocolError(f"line {number}: {key!r} must be a non-empty string")
    return value


def _excerpt(line: bytes, limit: int = 80) -> str:
    text = line[:limit].decode("utf-8", "replace")
    return repr(text + ("…" if len(line) > limit else ""))
