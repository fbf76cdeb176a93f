"""The CSV connector passes the conformance suite, over a temporary file described by
the demo's Schema.xml."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from ecmahost.connectors.csv.connector import CsvConnector, CsvSettings

from tests.connectors.conformance import ConnectorConformance
from tests.connectors.csv.csv_target import DEMO_SCHEMA, CsvFileTarget


class TestCsvConformance(CsvFileTarget, ConnectorConformance):
    @pytest.fixture
    def path(self, tmp_path: Path) -> Path:
        return tmp_path / "users.csv"

    @pytest.fixture
    async def connector(self, path: Path, tmp_path: Path) -> AsyncIterator[CsvConnector]:
        settings = CsvSettings(path=path, schema_file=DEMO_SCHEMA)
        connector = CsvConnector("CSV", settings, tmp_path)
        await connector.open()
        yield connector
        await connector.close()
