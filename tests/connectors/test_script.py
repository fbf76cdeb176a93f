"""The script connector, running the Python CSV example scripts, passes the
conformance suite over a temporary file described by the demo's Schema.xml."""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

import pytest

from connectors.base import DataType, Record, Value
from connectors.script import ScriptConnector, ScriptSettings
from tests.connectors.conformance import DEMO_ATTRIBUTES, ConnectorConformance, Objects

REPO = Path(__file__).resolve().parents[2]
DEMO_SCHEMA = REPO / "config" / "Schema.xml"
EXAMPLES = REPO / "examples" / "csv-scripts"
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


def _write(path: Path, records: Sequence[Record]) -> None:
    with path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file, **FORMAT)  # type: ignore[arg-type]
        writer.writerow(DEMO_ATTRIBUTES)
        for record in records:
            writer.writerow(_cell(record.attributes.get(n, "")) for n in DEMO_ATTRIBUTES)


def example_settings(file_name: str = "users.csv", **extra: object) -> ScriptSettings:
    """The Python CSV examples over ``file_name`` (relative to the connector's folder)."""
    return ScriptSettings.model_validate(
        {
            "scripts": {
                role: str(EXAMPLES / f"{role}.py") for role in ("schema", "import", "export")
            },
            "parameters": {
                "FileName_Global": file_name,
                "Delimiter_Global": ";",
                "Encoding_Global": "",
                "SchemaFile": str(DEMO_SCHEMA),
            },
            **extra,
        }
    )


class TestScriptConformance(ConnectorConformance):
    @pytest.fixture
    def path(self, tmp_path: Path) -> Path:
        path = tmp_path / "users.csv"
        _write(path, [])  # a fresh target: the header, no objects
        return path

    @pytest.fixture
    async def connector(self, path: Path, tmp_path: Path) -> AsyncIterator[ScriptConnector]:
        settings = example_settings(path.name, rename=True)
        connector = ScriptConnector("Script", settings, tmp_path)
        await connector.open()
        yield connector
        await connector.close()

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
            _write(path, records)

        return write
