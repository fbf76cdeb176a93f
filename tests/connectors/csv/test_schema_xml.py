"""parse_schema_xml: the sample parses, and every broken file is a one-line ConfigError."""

from __future__ import annotations

from pathlib import Path

import pytest
from ecmahost.connectors.base import DataType
from ecmahost.connectors.csv.schema_xml import parse_schema_xml
from ecmahost.connectors.exceptions import ConfigError

SAMPLE = Path(__file__).resolve().parents[3] / "config" / "Schema.xml"


def _attribute(
    name: str,
    data_type: str = "String",
    anchor: str = "0",
    multi: str = "0",
) -> str:
    return (
        f"<SchemaAttribute><Name>{name}</Name><DataType>{data_type}</DataType>"
        f"<IsAnchor>{anchor}</IsAnchor><IsMultiValued>{multi}</IsMultiValued>"
        "</SchemaAttribute>"
    )


def _schema(*attributes: str, name: str = "Person") -> str:
    body = "".join(attributes)
    return (
        f"<Schema><Types><SchemaType><Name>{name}</Name>"
        f"<Attributes>{body}</Attributes></SchemaType></Types></Schema>"
    )


ID = _attribute("Id", anchor="1")


def test_sample_parses_to_seven_attributes_anchor_first() -> None:
    assert SAMPLE.read_bytes().startswith(b"\xef\xbb\xbf")  # the sample's BOM is exercised

    schema = parse_schema_xml(SAMPLE)

    assert schema.object_type == "Person"
    assert [a.name for a in schema.attributes] == [
        "AzureObjectID",
        "DisplayName",
        "UserName",
        "Title",
        "EmployeeId",
        "Email",
        "IsActive",
    ]
    assert schema.anchor.name == "AzureObjectID"
    assert schema.attributes[0].is_anchor
    assert schema.get("isactive") is not None
    assert schema.get("IsActive").data_type is DataType.BOOLEAN  # type: ignore[union-attr]
    assert all(a.data_type is DataType.STRING for a in schema.attributes[:6])


def test_anchor_moves_first_and_the_rest_keep_file_order(tmp_path: Path) -> None:
    path = tmp_path / "Schema.xml"
    path.write_text(
        _schema(
            _attribute("Age", "Integer"),
            _attribute("Id", anchor="1"),
            _attribute("Active", "boolean"),
            _attribute("Name"),
        ),
        encoding="utf-8",
    )

    schema = parse_schema_xml(path)

    assert [(a.name, a.data_type, a.is_anchor) for a in schema.attributes] == [
        ("Id", DataType.STRING, True),
        ("Age", DataType.INTEGER, False),
        ("Active", DataType.BOOLEAN, False),
        ("Name", DataType.STRING, False),
    ]


def test_missing_optional_flags_default_to_zero(tmp_path: Path) -> None:
    path = tmp_path / "Schema.xml"
    plain = "<SchemaAttribute><Name>Mail</Name><DataType>String</DataType></SchemaAttribute>"
    path.write_text(_schema(ID, plain), encoding="utf-8")

    schema = parse_schema_xml(path)

    assert [(a.name, a.is_anchor) for a in schema.attributes] == [("Id", True), ("Mail", False)]


BROKEN = {
    "not xml": ("this is not <xml", "not well-formed XML"),
    "empty file": ("", "not well-formed XML"),
    "wrong root": ("<Types/>", "root element is <Types>, expected <Schema>"),
    "no schema type": ("<Schema><Types/></Schema>", "expected exactly one"),
    "two schema types": (
        _schema(ID).replace("</Types>", "<SchemaType><Name>Group</Name></SchemaType></Types>"),
        "found 2",
    ),
    "type without name": (_schema(ID, name=""), "the SchemaType has no Name"),
    "no attributes": (_schema(), "SchemaType 'Person' has no attributes"),
    "attribute without name": (_schema(ID, _attribute("")), "SchemaAttribute #2 has no Name"),
    "no anchor": (_schema(_attribute("Id")), "no anchor attribute (IsAnchor=1)"),
    "two anchors": (
        _schema(ID, _attribute("Mail", anchor="1")),
        "2 anchor attributes (Id, Mail), expected one",
    ),
    "unknown data type": (
        _schema(ID, _attribute("Age", "Reference")),
        "attribute 'Age' has unsupported DataType 'Reference' (String, Integer, Boolean)",
    ),
    "binary data type": (
        _schema(ID, _attribute("Photo", "Binary")),
        "unsupported DataType 'Binary'",
    ),
    "no data type": (_schema(ID, _attribute("Age", "")), "attribute 'Age' has no DataType"),
    "multi-valued": (
        _schema(ID, _attribute("Groups", multi="1")),
        "attribute 'Groups' is multi-valued (IsMultiValued=1)",
    ),
    "bad flag": (
        _schema(ID, _attribute("Mail", anchor="yes")),
        "attribute 'Mail' has IsAnchor 'yes', expected 0 or 1",
    ),
    "duplicate attribute": (
        _schema(ID, _attribute("Mail"), _attribute("mail")),
        "attribute 'mail' is defined twice",
    ),
    "integer anchor": (
        _schema(_attribute("Id", "Integer", anchor="1")),
        "anchor attribute 'Id' has DataType 'Integer', expected String",
    ),
}


@pytest.mark.parametrize("text, problem", BROKEN.values(), ids=BROKEN.keys())
def test_broken_schema_is_a_one_line_config_error(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "Schema.xml"
    path.write_text(text, encoding="utf-8")

    with pytest.raises(ConfigError) as caught:
        parse_schema_xml(path)

    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert problem in message
    assert "\n" not in message


def test_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "Schema.xml"

    with pytest.raises(ConfigError, match=r"^Schema\.xml not found: ") as caught:
        parse_schema_xml(path)

    assert str(caught.value) == f"Schema.xml not found: {path}"


def test_unreadable_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "Schema.xml"
    path.mkdir()  # a folder where the file should be: reading it fails for real

    with pytest.raises(ConfigError) as caught:
        parse_schema_xml(path)

    assert str(caught.value).startswith(f"cannot read Schema.xml {path}: ")
    assert isinstance(caught.value.__cause__, OSError)
