"""Attribute flow direction in the CSV connector, on real files: read from a Schema.xml's
``AllowedAttributeOperation`` or declared in the settings; an import-only column is
never written, an export-only one is written and never read back, and neither is
cleared by a change that lacks it."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from ecmahost.connectors.base import Change, ChangeKind, Direction, Record
from ecmahost.connectors.csv.connector import CsvConnector
from ecmahost.connectors.csv.schema_xml import parse_schema_xml
from ecmahost.connectors.csv.settings import CsvSettings
from ecmahost.connectors.exceptions import ConfigError

ATTRIBUTES = [
    ("Id", "ImportExport"),
    ("Name", ""),  # no element: both ways, as ECMA2Host reads it
    ("Badge", "ImportOnly"),
    ("Secret", "exportonly"),  # .NET reads enum names without case
]


def schema_xml(path: Path, attributes: list[tuple[str, str]]) -> Path:
    rows = "".join(
        f"<SchemaAttribute><Name>{name}</Name><DataType>String</DataType>"
        f"<IsAnchor>{int(i == 0)}</IsAnchor><IsMultiValued>0</IsMultiValued>"
        + (f"<AllowedAttributeOperation>{flow}</AllowedAttributeOperation>" if flow else "")
        + "</SchemaAttribute>"
        for i, (name, flow) in enumerate(attributes)
    )
    path.write_text(
        "<Schema><Types><SchemaType><Name>Person</Name>"
        f"<Attributes>{rows}</Attributes></SchemaType></Types></Schema>",
        encoding="utf-8",
    )
    return path


def file_rows(path: Path) -> dict[str, dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as source:
        return {row["Id"]: row for row in csv.DictReader(source, delimiter=";")}


async def opened(tmp_path: Path, **settings: object) -> CsvConnector:
    schema = schema_xml(tmp_path / "Schema.xml", ATTRIBUTES)
    values = {"path": "users.csv", "schema_file": schema, **settings}
    connector = CsvConnector("csv", CsvSettings.model_validate(values), tmp_path)
    await connector.open()
    return connector


async def records(connector: CsvConnector) -> dict[str, Record]:
    return {r.anchor: r async for r in connector.full_import()}


def test_schema_xml_directions_are_read(tmp_path: Path) -> None:
    schema = parse_schema_xml(schema_xml(tmp_path / "Schema.xml", ATTRIBUTES))
    assert [a.direction for a in schema.attributes] == [
        Direction.IMPORT_EXPORT,
        Direction.IMPORT_EXPORT,
        Direction.IMPORT_ONLY,
        Direction.EXPORT_ONLY,
    ]


@pytest.mark.parametrize(
    ("attributes", "problem"),
    [
        ([("Id", "Sometimes")], "AllowedAttributeOperation 'Sometimes'"),
        ([("Id", "ImportOnly")], "the anchor 'Id' must be ImportExport"),
    ],
)
def test_schema_xml_bad_directions_are_refused(
    tmp_path: Path, attributes: list[tuple[str, str]], problem: str
) -> None:
    with pytest.raises(ConfigError, match=problem):
        parse_schema_xml(schema_xml(tmp_path / "Schema.xml", attributes))


async def test_one_way_columns_are_kept_by_changes_that_lack_them(tmp_path: Path) -> None:
    connector = await opened(tmp_path)
    change = {"Id": "u1", "Name": "Ann", "Badge": "forged", "Secret": "initial"}
    assert (await connector.export([Change(ChangeKind.ADD, "u1", change)]))[0].ok
    held = file_rows(tmp_path / "users.csv")["u1"]
    assert (held["Badge"], held["Secret"]) == ("", "initial")  # Badge is never written

    # Another program fills the import-only column; a later change keeps both.
    text = (tmp_path / "users.csv").read_text(encoding="utf-8").replace('""', '"B-7"', 1)
    (tmp_path / "users.csv").write_text(text, encoding="utf-8")
    replace = Change(ChangeKind.REPLACE, "u1", {"Id": "u1", "Name": "Bob"})
    assert (await connector.export([replace]))[0].ok
    held = file_rows(tmp_path / "users.csv")["u1"]
    assert (held["Name"], held["Badge"], held["Secret"]) == ("Bob", "B-7", "initial")
    assert (await records(connector))["u1"].attributes == {
        "Id": "u1",
        "Name": "Bob",
        "Badge": "B-7",
    }


async def test_settings_override_the_schema_xml(tmp_path: Path) -> None:
    connector = await opened(tmp_path, export_only=["Name"], import_only=["secret"])
    schema = await connector.schema()
    assert schema.get("Name").direction is Direction.EXPORT_ONLY  # type: ignore[union-attr]
    assert schema.get("Secret").direction is Direction.IMPORT_ONLY  # type: ignore[union-attr]


async def test_settings_naming_an_unknown_attribute_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        await opened(tmp_path, import_only=["Nope"])
    assert caught.value.key == "connectors.csv.settings.import_only"
