"""The `sql` connector type."""

from ecmahost.connectors.sql.connector import SqlConnector

__all__ = ["SqlConnector"]
