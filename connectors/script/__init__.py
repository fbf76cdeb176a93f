"""The `script` connector type."""

from ecmahost.connectors.script.connector import ScriptConnector

__all__ = ["ScriptConnector"]
