"""The script connector, running the Python CSV example scripts, passes the
conformance suite over a temporary file described by the demo's Schema.xml."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from ecmahost.connectors.script.connector import ScriptConnector, ScriptSettings

from tests.connectors.conformance import ConnectorConformance
from tests.connectors.csv.csv_target import DEMO_SCHEMA, CsvFileTarget, write_demo_csv

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "connectors" / "script" / "examples" / "csv-scripts"


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


class TestScriptConformance(CsvFileTarget, ConnectorConformance):
    @pytest.fixture
    def path(self, tmp_path: Path) -> Path:
        path = tmp_path / "users.csv"
        write_demo_csv(path, [])  # a fresh target: the header, no objects
        return path

    @pytest.fixture
    async def connector(self, path: Path, tmp_path: Path) -> AsyncIterator[ScriptConnector]:
        settings = example_settings(path.name, rename=True)
        connector = ScriptConnector("Script", settings, tmp_path)
        await connector.open()
        yield connector
        await connector.close()
