"""A CSV file in the demo's format as a conformance target: the CSV connector and the
script connector running the Python CSV examples both write one."""

from __future__ import annotations

import csv
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import pytest
from ecmahost.connectors.base import DataType, Record, Value

from tests.connectors.conformance import DEMO_ATTRIBUTES, Objects

DEMO_SCHEMA = Path(__file__).resolve().parents[3] / "config" / "Schema.xml"
FORMAT = {"delimiter": ";", "quoting": csv.QUOTE_ALL, "lineterminator": "\n"}


def _typed(text: str, data_type: DataType) -> Value:
    """A cell as the file's documented format defines it."""
    if data_type is DataType.BOOLEAN:
        assert text in ("True", "False"), f"not a Boolean cell: {text!r}"
        return text == "True"
    return int(text) if data_type is DataType.INTEGER else text


def _cell(value: Value) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


def write_demo_csv(path: Path, records: Sequence[Record]) -> None:
    """The file holding ``records`` (the header alone for none)."""
    with path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file, **FORMAT)  # type: ignore[arg-type]
        writer.writerow(DEMO_ATTRIBUTES)
        for record in records:
            writer.writerow(_cell(record.attributes.get(n, "")) for n in DEMO_ATTRIBUTES)


class CsvFileTarget:
    """The ``target_reader`` and ``seed`` fixtures over the file at fixture ``path``."""

    @pytest.fixture
    def target_reader(self, path: Path) -> Callable[[], Awaitable[Objects]]:
        async def read() -> Objects:
            with path.open(encoding="utf-8", newline="") as file:
                rows = list(csv.DictReader(file, delimiter=";"))
            found = {
                row["AzureObjectID"]: {
                    name: _typed(text, DEMO_ATTRIBUTES[name]) for name, text in row.items() if text
                }
                for row in rows
            }
            assert len(found) == len(rows), "the file holds an anchor twice"
            return found

        return read

    @pytest.fixture
    def seed(self, path: Path) -> Callable[[Sequence[Record]], Awaitable[None]]:
        async def write(records: Sequence[Record]) -> None:
            write_demo_csv(path, records)

        return write
