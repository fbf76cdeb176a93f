"""The `memory` connector type."""

from ecmahost.connectors.memory.connector import MemoryConnector

__all__ = ["MemoryConnector"]
