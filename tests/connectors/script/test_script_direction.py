"""Attribute flow direction in the script connector: the schema script names each
attribute's ``direction`` (as Schema.xml's AllowedAttributeOperation), the settings may
override it, and an export-only attribute an import script prints is never read back."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from ecmahost.connectors.base import Direction
from ecmahost.connectors.exceptions import ConfigError
from ecmahost.connectors.script.connector import ScriptConnector, ScriptSettings

SCHEMA = """
print('{"object_type": "Person"}')
print('{"name": "Id", "anchor": true}')
print('{"name": "Name"}')
print('{"name": "Created", "direction": "importonly"}')
print('{"name": "Secret", "direction": "ExportOnly"}')
"""
IMPORT = """
print('{"anchor": "u1", "attributes": {"Name": "Ann", "Created": "c1", "Secret": "leak"}}')
"""


def script(folder: Path, name: str, body: str) -> str:
    path = folder / name
    path.write_text(f"#!{sys.executable}\n{body}", encoding="utf-8")
    path.chmod(0o755)
    return str(path)


async def opened(folder: Path, schema: str = SCHEMA, **settings: object) -> ScriptConnector:
    scripts = {
        "schema": script(folder, "schema.py", schema),
        "import": script(folder, "import.py", IMPORT),
        "export": script(folder, "export.py", "import sys; sys.stdin.read()"),
    }
    body = {"scripts": scripts, **settings}
    connector = ScriptConnector("Script", ScriptSettings.model_validate(body), folder)
    await connector.open()
    return connector


async def test_directions_come_from_the_schema_script(tmp_path: Path) -> None:
    connector = await opened(tmp_path)
    try:
        schema = await connector.schema()
        directions = {a.name: a.direction for a in schema.attributes}
        assert directions == {
            "Id": Direction.IMPORT_EXPORT,
            "Name": Direction.IMPORT_EXPORT,
            "Created": Direction.IMPORT_ONLY,
            "Secret": Direction.EXPORT_ONLY,
        }
        (record,) = [r async for r in connector.full_import()]
        assert record.attributes == {"Id": "u1", "Name": "Ann", "Created": "c1"}
    finally:
        await connector.close()


async def test_settings_override_the_schema_script(tmp_path: Path) -> None:
    connector = await opened(tmp_path, import_only=["name"], export_only=["Created"])
    try:
        schema = await connector.schema()
        assert schema.get("Name").direction is Direction.IMPORT_ONLY  # type: ignore[union-attr]
        assert schema.get("Created").direction is Direction.EXPORT_ONLY  # type: ignore[union-attr]
    finally:
        await connector.close()


async def test_an_unknown_direction_is_refused(tmp_path: Path) -> None:
    bad = SCHEMA.replace('"ExportOnly"', '"Sideways"')
    with pytest.raises(ConfigError, match="direction 'Sideways'"):
        await opened(tmp_path, schema=bad)
