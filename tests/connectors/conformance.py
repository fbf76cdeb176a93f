"""The connector conformance suite: what every connector must do, tested one way.

A connector's test module subclasses ``ConnectorConformance`` and provides fixtures:

``connector``
    the connector, opened over a fresh target that holds no objects; closed after.
``target_reader``
    an async callable returning what the target holds, ``{anchor: {attribute: value}}``,
    read straight from the target (not through the connector), with values typed as
    the schema says and absent values left out. It fails if the target holds an
    anchor twice.
``seed`` (optional)
    an async callable that writes records straight into the target. Without it, the
    records are exported through the connector.

It may override class attributes: ``expected_object_type`` and
``expected_attributes`` (the schema it must discover, anchor first), and
``unsupported_values``, values the target cannot hold. Each unsupported value needs a
comment saying why; the connector must then refuse it with a ``PermanentError`` for
that change, never store something else. And it may override two hooks:
``valid_object`` (objects the target accepts, when its attributes have syntaxes) and
``wrong_type_change`` (a change the target must refuse).

Tests that need a capability the connector does not declare are skipped, so the
suite asks a connector for nothing it does not claim to do.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from typing import ClassVar

import pytest
from ecmahost.connectors.base import (
    Capability,
    Change,
    ChangeKind,
    Connector,
    DataType,
    Record,
    Schema,
    Value,
)
from ecmahost.connectors.exceptions import PermanentError

from tests.connectors.conformance_checks import (
    Objects,
    Seed,
    TargetReader,
    add,
    add_object,
    anchor_of,
    assert_holds,
    assert_refused,
    by_anchor,
    check_record,
    delete,
    export_ok,
    import_all,
    keyed,
    optional_attribute,
    replace,
    require,
    text_attribute,
)

__all__ = ["DEMO_ATTRIBUTES", "HOSTILE_VALUES", "ConnectorConformance", "Objects", "replace"]

DEMO_ATTRIBUTES: Mapping[str, DataType] = {
    "AzureObjectID": DataType.STRING,
    "DisplayName": DataType.STRING,
    "UserName": DataType.STRING,
    "Title": DataType.STRING,
    "EmployeeId": DataType.STRING,
    "Email": DataType.STRING,
    "IsActive": DataType.BOOLEAN,
}
"""The demo's Schema.xml, anchor first."""

HOSTILE_VALUES: Mapping[str, str] = {
    "double-quote": 'She said "hi"',
    "single-quote": "O'Brien",
    "semicolon": "Vance; Adele",
    "comma": "Vance, Adele",
    "newline": "line one\nline two",
    "crlf": "line one\r\nline two",
    "tab": "tab\there",
    "asterisk": "*",
    "parentheses": "(cn=*)",
    "backslash": "back\\slash\\",
    "plus-equals": "a+b=c",
    "angle-brackets-hash": "<b>#1",
    "leading-hash": "#hash",
    "leading-equals": "=cmd|' /C calc'!A0",
    "spaces": "  padded both sides  ",
    "latin": "Zoë Ångström",
    "cjk": "日本",
    "emoji": "smile 🙂",
    "sql": "x'); DROP TABLE users; --",
    "wildcards": "100% _match_",
    "nul": "nul\x00byte",
    "everything": " \"';,\n*()\\+=<>#% ",
}
"""Values that break naive escaping in files, LDAP filters and DNs, and SQL."""


class ConnectorConformance:
    """Subclass as ``Test…Conformance`` and provide the fixtures described above."""

    expected_object_type: ClassVar[str] = "Person"
    expected_attributes: ClassVar[Mapping[str, DataType]] = DEMO_ATTRIBUTES
    unsupported_values: ClassVar[frozenset[str]] = frozenset()

    # -- fixtures a subclass provides ------------------------------------------

    @pytest.fixture
    def connector(self) -> Connector:
        raise NotImplementedError("the connector's test module provides `connector`")

    @pytest.fixture
    def target_reader(self) -> TargetReader:
        raise NotImplementedError("the connector's test module provides `target_reader`")

    @pytest.fixture
    def seed(self, connector: Connector) -> Seed:
        async def export_them(records: Sequence[Record]) -> None:
            require(connector, Capability.EXPORT)
            await export_ok(connector, [add(r.anchor, r.attributes) for r in records])

        return export_them

    # -- hooks a subclass may override -----------------------------------------

    def valid_object(self, schema: Schema, number: int) -> dict[str, Value]:
        """A complete object the target accepts; different for every ``number``."""
        values: dict[str, Value] = {}
        for attribute in schema.attributes:
            if attribute.is_anchor:
                values[attribute.name] = f"00000000-0000-4000-8000-{number:012d}"
            elif attribute.data_type is DataType.BOOLEAN:
                values[attribute.name] = number % 2 == 0
            elif attribute.data_type is DataType.INTEGER:
                values[attribute.name] = number * 7 + 1
            else:
                values[attribute.name] = f"{attribute.name} {number}"
        return values

    async def wrong_type_change(self, connector: Connector, schema: Schema, anchor: str) -> Change:
        """A Replace of ``anchor`` that the target must refuse: a String where the schema
        says Boolean or Integer."""
        typed = [a for a in schema.attributes if a.data_type is not DataType.STRING]
        if not typed:
            pytest.skip("the schema has no Boolean or Integer attribute to give a wrong type")
        attributes = {**self.valid_object(schema, 99), typed[0].name: "not-a-number-or-boolean"}
        return replace(anchor, attributes, schema)

    # -- capabilities and schema -----------------------------------------------

    def test_capabilities_are_declared_as_data(self, connector: Connector) -> None:
        declared = type(connector).capabilities
        assert isinstance(declared, frozenset)
        assert declared and all(isinstance(c, Capability) for c in declared)
        assert declared & {Capability.IMPORT, Capability.EXPORT}, "it must import or export"

    async def test_schema_is_discovered(self, connector: Connector) -> None:
        schema = await connector.schema()
        assert schema.object_type == self.expected_object_type
        anchors = [a for a in schema.attributes if a.is_anchor]
        assert len(anchors) == 1 and schema.attributes[0] is anchors[0]
        assert anchors[0].data_type is DataType.STRING
        assert {a.name: a.data_type for a in schema.attributes} == dict(self.expected_attributes)
        assert next(iter(self.expected_attributes)) == anchors[0].name
        assert await connector.schema() == schema, "the schema must be stable while open"

    # -- full import -----------------------------------------------------------

    async def test_fresh_target_imports_nothing(self, connector: Connector) -> None:
        require(connector, Capability.IMPORT)
        assert await import_all(connector) == {}

    async def test_full_import_streams_valid_records(
        self, connector: Connector, seed: Seed
    ) -> None:
        require(connector, Capability.IMPORT)
        schema = await connector.schema()
        objects = keyed(self.objects(schema, range(25)), schema)
        await seed([Record(anchor, values) for anchor, values in objects.items()])
        stream = connector.full_import()
        assert isinstance(stream, AsyncIterator), "full_import must stream, not return a list"
        records = [record async for record in stream]
        for record in records:
            check_record(record, schema)
        assert by_anchor(records) == objects

    async def test_import_size_counts_what_the_import_yields(
        self, connector: Connector, seed: Seed
    ) -> None:
        require(connector, Capability.IMPORT)
        schema = await connector.schema()
        objects = keyed(self.objects(schema, range(7)), schema)
        await seed([Record(anchor, values) for anchor, values in objects.items()])
        size = await connector.import_size()
        if size is not None:  # a target that cannot tell cheaply says None
            assert size == len([record async for record in connector.full_import()]) == 7

    async def test_abandoned_import_leaves_the_connector_usable(
        self, connector: Connector, seed: Seed
    ) -> None:
        require(connector, Capability.IMPORT)
        schema = await connector.schema()
        objects = self.objects(schema, range(3))
        await seed([Record(anchor_of(o, schema), o) for o in objects])
        stream = connector.full_import()
        first = await anext(stream)
        check_record(first, schema)
        if isinstance(stream, AsyncGenerator):
            await stream.aclose()
        assert len(await import_all(connector)) == 3

    # -- export round trips ----------------------------------------------------

    async def test_add_round_trips(self, connector: Connector, target_reader: TargetReader) -> None:
        require(connector, Capability.EXPORT)
        schema = await connector.schema()
        objects = self.objects(schema, range(3))
        await export_ok(connector, [add_object(o, schema) for o in objects])
        await assert_holds(connector, target_reader, keyed(objects, schema))

    async def test_replace_round_trips_the_whole_object(
        self, connector: Connector, target_reader: TargetReader
    ) -> None:
        require(connector, Capability.EXPORT)
        schema = await connector.schema()
        first, second = self.objects(schema, range(2))
        await export_ok(connector, [add_object(first, schema), add_object(second, schema)])
        changed = {**self.valid_object(schema, 7), schema.anchor.name: anchor_of(first, schema)}
        dropped = optional_attribute(schema)
        del changed[dropped.name]  # absent from the whole object: cleared in the target
        await export_ok(connector, [replace(anchor_of(first, schema), changed, schema)])
        await assert_holds(connector, target_reader, keyed([changed, second], schema))

    async def test_delete_round_trips(
        self, connector: Connector, target_reader: TargetReader
    ) -> None:
        require(connector, Capability.EXPORT)
        schema = await connector.schema()
        first, second = self.objects(schema, range(2))
        await export_ok(connector, [add_object(first, schema), add_object(second, schema)])
        await export_ok(connector, [delete(anchor_of(first, schema))])
        await assert_holds(connector, target_reader, keyed([second], schema))

    async def test_disable_writes_the_boolean_false(
        self, connector: Connector, target_reader: TargetReader
    ) -> None:
        require(connector, Capability.EXPORT)
        schema = await connector.schema()
        flag = next((a for a in schema.attributes if a.data_type is DataType.BOOLEAN), None)
        if flag is None:
            pytest.skip("the schema has no Boolean attribute to disable with")
        user = {**self.valid_object(schema, 1), flag.name: True}
        anchor = anchor_of(user, schema)
        await export_ok(connector, [add_object(user, schema)])
        disabled = {**user, flag.name: False}
        await export_ok(connector, [replace(anchor, disabled, schema)])
        await assert_holds(connector, target_reader, {anchor: disabled})
        await export_ok(connector, [replace(anchor, user, schema)])
        await assert_holds(connector, target_reader, {anchor: user})

    async def test_rename_moves_the_object_to_its_new_anchor(
        self, connector: Connector, target_reader: TargetReader
    ) -> None:
        require(connector, Capability.RENAME)
        schema = await connector.schema()
        first, second = self.objects(schema, range(2))
        await export_ok(connector, [add_object(first, schema), add_object(second, schema)])
        renamed = {**first, schema.anchor.name: "00000000-0000-4000-8000-00000000aaaa"}
        change = Change(
            ChangeKind.REPLACE, anchor_of(renamed, schema), renamed, anchor_of(first, schema)
        )
        await export_ok(connector, [change])
        await export_ok(connector, [change])  # retried after a lost outcome: no harm
        await assert_holds(connector, target_reader, keyed([renamed, second], schema))

    # -- idempotence -----------------------------------------------------------

    async def test_add_of_an_existing_anchor_replaces_it(
        self, connector: Connector, target_reader: TargetReader
    ) -> None:
        require(connector, Capability.EXPORT)
        schema = await connector.schema()
        old = self.valid_object(schema, 1)
        new = {**self.valid_object(schema, 2), schema.anchor.name: anchor_of(old, schema)}
        await export_ok(connector, [add_object(old, schema)])
        await export_ok(connector, [add_object(new, schema)])
        await assert_holds(connector, target_reader, keyed([new], schema))

    async def test_replace_of_a_missing_anchor_adds_it(
        self, connector: Connector, target_reader: TargetReader
    ) -> None:
        require(connector, Capability.EXPORT)
        schema = await connector.schema()
        user = self.valid_object(schema, 1)
        await export_ok(connector, [replace(anchor_of(user, schema), user, schema)])
        await assert_holds(connector, target_reader, keyed([user], schema))

    async def test_delete_of_a_missing_anchor_succeeds(
        self, connector: Connector, target_reader: TargetReader
    ) -> None:
        require(connector, Capability.EXPORT)
        schema = await connector.schema()
        user = self.valid_object(schema, 1)
        await export_ok(connector, [add_object(user, schema)])
        await export_ok(connector, [delete("00000000-0000-4000-8000-999999999999")])
        await assert_holds(connector, target_reader, keyed([user], schema))

    async def test_a_retried_batch_does_not_duplicate(
        self, connector: Connector, target_reader: TargetReader
    ) -> None:
        require(connector, Capability.EXPORT)
        schema = await connector.schema()
        objects = self.objects(schema, range(4))
        batch = [add_object(o, schema) for o in objects[:3]]
        batch.append(replace(anchor_of(objects[3], schema), objects[3], schema))
        batch.append(delete("00000000-0000-4000-8000-999999999999"))
        await export_ok(connector, batch)
        await export_ok(connector, batch)  # as after a crash before the outcome was saved
        await assert_holds(connector, target_reader, keyed(objects, schema))

    # -- hostile values --------------------------------------------------------

    @pytest.mark.parametrize("value", HOSTILE_VALUES.values(), ids=HOSTILE_VALUES.keys())
    async def test_hostile_value_round_trips(
        self, connector: Connector, target_reader: TargetReader, value: str
    ) -> None:
        require(connector, Capability.EXPORT)
        schema = await connector.schema()
        text = text_attribute(schema)
        user = {**self.valid_object(schema, 1), text.name: value}
        change = add_object(user, schema)
        if value in self.unsupported_values:
            await assert_refused(connector, target_reader, change)
            return
        await export_ok(connector, [change])
        await assert_holds(connector, target_reader, keyed([user], schema))

    @pytest.mark.parametrize("value", HOSTILE_VALUES.values(), ids=HOSTILE_VALUES.keys())
    async def test_hostile_anchor_round_trips(
        self, connector: Connector, target_reader: TargetReader, value: str
    ) -> None:
        require(connector, Capability.EXPORT)
        schema = await connector.schema()
        user = {**self.valid_object(schema, 1), schema.anchor.name: value}
        if value in self.unsupported_values:
            await assert_refused(connector, target_reader, add_object(user, schema))
            return
        await export_ok(connector, [add_object(user, schema)])
        await assert_holds(connector, target_reader, {value: user})
        changed = {**self.valid_object(schema, 2), schema.anchor.name: value}
        await export_ok(connector, [replace(value, changed, schema)])
        await assert_holds(connector, target_reader, {value: changed})
        await export_ok(connector, [delete(value)])
        await assert_holds(connector, target_reader, {})

    # -- batches and per-change failures ---------------------------------------

    async def test_a_batch_returns_one_result_per_change_in_order(
        self, connector: Connector, target_reader: TargetReader
    ) -> None:
        require(connector, Capability.EXPORT)
        schema = await connector.schema()
        objects = self.objects(schema, range(5))
        await export_ok(connector, [add_object(objects[0], schema)])
        batch = [
            add_object(objects[3], schema),
            delete(anchor_of(objects[0], schema)),
            replace(anchor_of(objects[1], schema), objects[1], schema),
            delete("00000000-0000-4000-8000-999999999999"),
            add_object(objects[2], schema),
        ]
        await export_ok(connector, batch)  # asserts the results' anchors and order
        await assert_holds(connector, target_reader, keyed(objects[1:4], schema))

    async def test_a_refused_change_fails_alone(
        self, connector: Connector, target_reader: TargetReader
    ) -> None:
        require(connector, Capability.EXPORT)
        schema = await connector.schema()
        kept, before, after = self.objects(schema, range(3))
        await export_ok(connector, [add_object(kept, schema)])
        bad = await self.wrong_type_change(connector, schema, anchor_of(kept, schema))
        results = await connector.export(
            [add_object(before, schema), bad, add_object(after, schema)]
        )
        assert [r.anchor for r in results] == [
            anchor_of(before, schema),
            bad.anchor,
            anchor_of(after, schema),
        ]
        assert results[0].ok and results[2].ok, [r.error for r in results]
        assert isinstance(results[1].error, PermanentError), results[1].error
        assert str(results[1].error), "the error must say what is wrong"
        await assert_holds(connector, target_reader, keyed([kept, before, after], schema))

    # -- helpers ---------------------------------------------------------------

    def objects(self, schema: Schema, numbers: range) -> list[dict[str, Value]]:
        return [self.valid_object(schema, n) for n in numbers]
