"""The in-memory twin passes the conformance suite."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

import pytest
from ecmahost.connectors.base import Change, Connector, Record, Schema
from ecmahost.connectors.exceptions import PermanentError
from ecmahost.connectors.memory.connector import MemoryConnector, MemorySettings

from tests.connectors.conformance import ConnectorConformance, Objects, replace


class TestMemoryConformance(ConnectorConformance):
    @pytest.fixture
    async def connector(self, tmp_path: Path) -> AsyncIterator[MemoryConnector]:
        connector = MemoryConnector("Mem", MemorySettings(), tmp_path)
        await connector.open()
        yield connector
        await connector.close()

    @pytest.fixture
    def target_reader(self, connector: MemoryConnector) -> Callable[[], Awaitable[Objects]]:
        async def read() -> Objects:
            return {anchor: dict(values) for anchor, values in connector.objects.items()}

        return read

    @pytest.fixture
    def seed(self, connector: MemoryConnector) -> Callable[[Sequence[Record]], Awaitable[None]]:
        async def write(records: Sequence[Record]) -> None:
            connector.objects.update({r.anchor: dict(r.attributes) for r in records})

        return write

    async def wrong_type_change(self, connector: Connector, schema: Schema, anchor: str) -> Change:
        # The twin stores any value it is given; it refuses what it is told to refuse.
        assert isinstance(connector, MemoryConnector)
        connector.reject[anchor] = PermanentError("IsActive: expected a Boolean")
        return replace(anchor, self.valid_object(schema, 99), schema)
