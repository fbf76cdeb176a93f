"""The `csv` connector type."""

from ecmahost.connectors.csv.connector import CsvConnector

__all__ = ["CsvConnector"]
