"""ECMA2Host's ``Schema.xml``: the object type a file-based connector serves.

The file is the one Microsoft's ECMA2HostCSV sample ships with (UTF-8, often with a
byte order mark)::

    <Schema><Types><SchemaType>
      <Name>Person</Name>
      <Attributes><SchemaAttribute>
        <Name>AzureObjectID</Name><DataType>String</DataType>
        <IsAnchor>1</IsAnchor><IsMultiValued>0</IsMultiValued>
        <AllowedAttributeOperation>ImportExport</AllowedAttributeOperation>
      </SchemaAttribute>...</Attributes>
    </SchemaType></Types></Schema>

Only what ecmahost can serve is accepted: one object type, one String anchor,
single-valued String/Integer/Boolean attributes, each flowing as its
``AllowedAttributeOperation`` says (``ImportExport`` when absent; ``ImportOnly``,
``ExportOnly``; never one way for the anchor). Anything else is a ``ConfigError``
whose one line names the file and the problem.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from ecmahost.connectors.base import Attribute, DataType, Direction, Schema
from ecmahost.connectors.exceptions import ConfigError

__all__ = ["parse_schema_xml"]

_TYPES = ", ".join(t.value for t in DataType)
_FLAGS = {"0": False, "1": True, "false": False, "true": True}


def parse_schema_xml(path: Path) -> Schema:
    """The single object type described by the ``Schema.xml`` at ``path``, anchor first.

    Raises ``ConfigError`` naming ``path`` when the file is missing, unreadable, not
    XML, or describes something ecmahost cannot serve.
    """
    schema_type = _single_schema_type(_root(path), path)
    object_type = _text(schema_type, "Name")
    if not object_type:
        raise ConfigError(f"{path}: the SchemaType has no Name")
    nodes = schema_type.findall("Attributes/SchemaAttribute")
    if not nodes:
        raise ConfigError(f"{path}: SchemaType {object_type!r} has no attributes")
    attributes = [_attribute(node, index, path) for index, node in enumerate(nodes, 1)]
    _check_unique(attributes, path)
    anchor = _single_anchor(attributes, path)
    others = tuple(a for a in attributes if not a.is_anchor)
    return Schema(object_type, (anchor, *others))


def _root(path: Path) -> ET.Element:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"Schema.xml not found: {path}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read Schema.xml {path}: {exc.strerror or exc}") from exc
    try:
        # Bytes, not text: expat then honours the XML declaration and skips the BOM.
        # ElementTree resolves no external entities, so a local config file is safe here.
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise ConfigError(f"{path}: not well-formed XML ({exc})") from exc
    if root.tag != "Schema":
        raise ConfigError(f"{path}: root element is <{root.tag}>, expected <Schema>")
    return root


def _single_schema_type(root: ET.Element, path: Path) -> ET.Element:
    found = root.findall("Types/SchemaType")
    if len(found) != 1:
        raise ConfigError(f"{path}: expected exactly one <Types>/<SchemaType>, found {len(found)}")
    return found[0]


def _attribute(node: ET.Element, index: int, path: Path) -> Attribute:
    name = _text(node, "Name")
    if not name:
        raise ConfigError(f"{path}: SchemaAttribute #{index} has no Name")
    if _flag(node, "IsMultiValued", name, path):
        raise ConfigError(
            f"{path}: attribute {name!r} is multi-valued (IsMultiValued=1), which is not supported"
        )
    data_type = _data_type(_text(node, "DataType"), name, path)
    is_anchor = _flag(node, "IsAnchor", name, path)
    direction = _direction(_text(node, "AllowedAttributeOperation"), name, path)
    if is_anchor and direction is not Direction.IMPORT_EXPORT:
        raise ConfigError(
            f"{path}: the anchor {name!r} must be ImportExport, not {direction.value}"
        )
    return Attribute(name, data_type, is_anchor=is_anchor, direction=direction)


def _direction(text: str, name: str, path: Path) -> Direction:
    if not text:
        return Direction.IMPORT_EXPORT
    for direction in Direction:
        if direction.value.lower() == text.lower():
            return direction
    known = ", ".join(d.value for d in Direction)
    raise ConfigError(
        f"{path}: attribute {name!r} has AllowedAttributeOperation {text!r} ({known})"
    )


def _data_type(text: str, name: str, path: Path) -> DataType:
    if not text:
        raise ConfigError(f"{path}: attribute {name!r} has no DataType ({_TYPES})")
    for data_type in DataType:
        # .NET parses the enum name case-insensitively; accept what ECMA2Host accepts.
        if data_type.value.lower() == text.lower():
            return data_type
    raise ConfigError(f"{path}: attribute {name!r} has unsupported DataType {text!r} ({_TYPES})")


def _flag(node: ET.Element, tag: str, name: str, path: Path) -> bool:
    text = _text(node, tag)
    if not text:
        return False
    try:
        return _FLAGS[text.lower()]
    except KeyError:
        raise ConfigError(
            f"{path}: attribute {name!r} has {tag} {text!r}, expected 0 or 1"
        ) from None


def _check_unique(attributes: list[Attribute], path: Path) -> None:
    seen: set[str] = set()
    for attribute in attributes:
        key = attribute.name.lower()
        if key in seen:
            raise ConfigError(f"{path}: attribute {attribute.name!r} is defined twice")
        seen.add(key)


def _single_anchor(attributes: list[Attribute], path: Path) -> Attribute:
    anchors = [a for a in attributes if a.is_anchor]
    if not anchors:
        raise ConfigError(f"{path}: no anchor attribute (IsAnchor=1)")
    if len(anchors) > 1:
        names = ", ".join(a.name for a in anchors)
        raise ConfigError(f"{path}: {len(anchors)} anchor attributes ({names}), expected one")
    anchor = anchors[0]
    if anchor.data_type is not DataType.STRING:
        # Records carry the anchor as text; an Integer or Boolean anchor would compare
        # differently in the file, the engine and Entra.
        raise ConfigError(
            f"{path}: anchor attribute {anchor.name!r} has DataType "
            f"{anchor.data_type.value!r}, expected String"
        )
    return anchor


def _text(node: ET.Element, tag: str) -> str:
    return (node.findtext(tag) or "").strip()
