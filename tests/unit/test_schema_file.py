"""The kept schema keeps each attribute's flow direction, and a file kept before
directions existed still loads, every attribute flowing both ways."""

from __future__ import annotations

import json
from pathlib import Path

from ecmahost.connectors.base import Attribute, DataType, Direction, Schema
from ecmahost.engine.schema_file import load_schema, save_schema

SCHEMA = Schema(
    "Person",
    (
        Attribute("Id", is_anchor=True),
        Attribute("Created", direction=Direction.IMPORT_ONLY),
        Attribute("Secret", direction=Direction.EXPORT_ONLY),
        Attribute("Active", DataType.BOOLEAN),
    ),
)


def test_directions_survive_a_restart(tmp_path: Path) -> None:
    save_schema(tmp_path, "C", SCHEMA)
    loaded = load_schema(tmp_path, "C")
    assert loaded is not None
    assert [a.direction for a in loaded.attributes] == [a.direction for a in SCHEMA.attributes]
    assert loaded == SCHEMA


def test_a_schema_kept_without_directions_flows_both_ways(tmp_path: Path) -> None:
    save_schema(tmp_path, "C", SCHEMA)
    path = tmp_path / "schemas" / "C.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    for attribute in document["attributes"]:
        del attribute["direction"]
    path.write_text(json.dumps(document), encoding="utf-8")
    loaded = load_schema(tmp_path, "C")
    assert loaded is not None
    assert {a.direction for a in loaded.attributes} == {Direction.IMPORT_EXPORT}
