"""Import script: every row of the delimited file, one JSON object per line.

Values are typed as the schema in the header says (Boolean cells are True/False,
Integer cells decimal). Empty cells are left out. A row without an anchor, or a
value that is not valid for its type or its file's encoding, is skipped with a
warning on stderr rather than failing the whole import.
"""

from __future__ import annotations

import re
from typing import Any

from csvtarget import Target, columns, emit, fail, read_header, warn

_INTEGER = re.compile(r"[+-]?[0-9]+")
_UNDECODABLE = re.compile("[\udc80-\udcff]")  # how a bad byte reads under KEEP_BYTES


def typed(text: str, data_type: str) -> Any:
    """The cell's value, or None when it is not one of ``data_type``."""
    if data_type == "Boolean":
        return {"true": True, "false": False}.get(text.lower())
    if data_type == "Integer":
        return int(text) if _INTEGER.fullmatch(text) else None
    return text


def main() -> None:
    header = read_header()
    target = Target(header["parameters"])
    attributes = header["attributes"]
    anchor = header["anchor"]
    rows = iter(target.rows())
    found = columns(next(rows, []), attributes)
    if anchor not in found:
        fail(f"{target.path}: the header row has no {anchor} column")
    for line, cells in enumerate(rows, start=2):
        record = _record(cells, found, attributes, anchor)
        if record is None:
            warn(f"{target.path} row {line}: no readable anchor, skipped")
        else:
            emit(record)


def _record(
    cells: list[str], found: dict[str, int], attributes: list[dict[str, Any]], anchor: str
) -> dict[str, Any] | None:
    values: dict[str, Any] = {}
    for attribute in attributes:
        column = found.get(attribute["name"])
        text = cells[column] if column is not None and column < len(cells) else ""
        if not text:
            continue
        value = None if _UNDECODABLE.search(text) else typed(text, attribute["type"])
        if value is None:
            warn(f"attribute {attribute['name']}: {text!r} is not a valid {attribute['type']}")
            continue
        values[attribute["name"]] = value
    if not values.get(anchor):
        return None
    return {"anchor": values[anchor], "attributes": values}


if __name__ == "__main__":
    main()
