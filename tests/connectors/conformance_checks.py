"""The conformance suite's vocabulary: changes built from whole objects, and the
checks that a connector's results, its imports and its target agree."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence

import pytest
from ecmahost.connectors.base import (
    Attribute,
    Capability,
    Change,
    ChangeKind,
    Connector,
    DataType,
    Record,
    Result,
    Schema,
    Value,
)
from ecmahost.connectors.exceptions import PermanentError

__all__ = [
    "Objects",
    "Seed",
    "TargetReader",
    "add",
    "add_object",
    "anchor_of",
    "assert_holds",
    "assert_refused",
    "by_anchor",
    "check_record",
    "delete",
    "export_ok",
    "import_all",
    "keyed",
    "optional_attribute",
    "replace",
    "require",
    "text_attribute",
]

Objects = dict[str, dict[str, Value]]
"""What a target holds: attributes by anchor."""
TargetReader = Callable[[], Awaitable[Objects]]
Seed = Callable[[Sequence[Record]], Awaitable[None]]


def require(connector: Connector, capability: Capability) -> None:
    """Skip unless the connector declares ``capability``: it must not be asked otherwise."""
    if capability not in type(connector).capabilities:
        pytest.skip(f"{type(connector).__name__} does not declare {capability.name}")


def add(anchor: str, attributes: Mapping[str, Value]) -> Change:
    return Change(ChangeKind.ADD, anchor, dict(attributes))


def add_object(attributes: Mapping[str, Value], schema: Schema) -> Change:
    return add(anchor_of(attributes, schema), attributes)


def replace(anchor: str, attributes: Mapping[str, Value], schema: Schema) -> Change:
    return Change(ChangeKind.REPLACE, anchor, {**attributes, schema.anchor.name: anchor})


def delete(anchor: str) -> Change:
    return Change(ChangeKind.DELETE, anchor)


def anchor_of(attributes: Mapping[str, Value], schema: Schema) -> str:
    return str(attributes[schema.anchor.name])


def keyed(objects: Sequence[Mapping[str, Value]], schema: Schema) -> Objects:
    return {anchor_of(o, schema): dict(o) for o in objects}


def text_attribute(schema: Schema) -> Attribute:
    """The first String attribute other than the anchor."""
    found = [a for a in schema.attributes if a.data_type is DataType.STRING and not a.is_anchor]
    if not found:
        pytest.skip("the schema has no String attribute besides the anchor")
    return found[0]


def optional_attribute(schema: Schema) -> Attribute:
    """The last attribute other than the anchor (the one a Replace leaves out)."""
    found = [a for a in schema.attributes if not a.is_anchor]
    if not found:
        pytest.skip("the schema has no attribute besides the anchor")
    return found[-1]


async def export_ok(connector: Connector, changes: Sequence[Change]) -> Sequence[Result]:
    """Export ``changes``, asserting one successful result per change, in order."""
    results = await connector.export(changes)
    assert [r.anchor for r in results] == [c.anchor for c in changes]
    assert all(r.ok for r in results), [str(r.error) for r in results if not r.ok]
    return results


async def import_all(connector: Connector) -> Objects:
    return by_anchor([record async for record in connector.full_import()])


def by_anchor(records: Sequence[Record]) -> Objects:
    found = {r.anchor: dict(r.attributes) for r in records}
    assert len(found) == len(records), "the import returned an anchor twice"
    return found


def check_record(record: Record, schema: Schema) -> None:
    """The anchor is set and repeated as the anchor attribute; every value is typed."""
    assert isinstance(record.anchor, str) and record.anchor
    assert record.attributes.get(schema.anchor.name) == record.anchor
    for name, value in record.attributes.items():
        attribute = schema.get(name)
        assert attribute is not None and attribute.name == name, f"{name} not in the schema"
        expected = {DataType.STRING: str, DataType.INTEGER: int, DataType.BOOLEAN: bool}
        assert type(value) is expected[attribute.data_type], f"{name}: {value!r}"


async def assert_holds(
    connector: Connector, target_reader: TargetReader, expected: Objects
) -> None:
    """The target holds exactly ``expected``, read directly and through a new import."""
    assert await target_reader() == expected
    if Capability.IMPORT in type(connector).capabilities:
        schema = await connector.schema()
        records = [record async for record in connector.full_import()]
        for record in records:
            check_record(record, schema)
        assert by_anchor(records) == expected


async def assert_refused(connector: Connector, target_reader: TargetReader, change: Change) -> None:
    """A value the target cannot hold is refused, alone, and nothing is stored."""
    results = await connector.export([change])
    assert [r.anchor for r in results] == [change.anchor]
    assert isinstance(results[0].error, PermanentError), results[0].error
    await assert_holds(connector, target_reader, {})
