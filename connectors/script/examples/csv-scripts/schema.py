"""Schema script: the object types and attributes described by an ECMA2Host Schema.xml.

Parameter SchemaFile (optional): the Schema.xml to read; by default Schema.xml in the
working directory (the ecmahost configuration's folder).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from csvtarget import emit, fail, read_header, warn

_TRUE = {"1", "true"}


def main() -> None:
    header = read_header()
    path = header["parameters"].get("SchemaFile") or "Schema.xml"
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        fail(f"cannot read the schema file {path}: {exc}")
    for schema_type in root.iterfind("Types/SchemaType"):
        emit({"object_type": schema_type.findtext("Name", "").strip()})
        for node in schema_type.iterfind("Attributes/SchemaAttribute"):
            name = node.findtext("Name", "").strip()
            if node.findtext("IsMultiValued", "0").strip().lower() in _TRUE:
                warn(f"attribute {name} is multi-valued: left out")
                continue
            emit(
                {
                    "name": name,
                    "type": node.findtext("DataType", "String").strip(),
                    "anchor": node.findtext("IsAnchor", "0").strip().lower() in _TRUE,
                }
            )


if __name__ == "__main__":
    main()
