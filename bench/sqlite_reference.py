"""The full import's physical reference: the same CSV file into one SQLite table with
Python's sqlite3 module and nothing else (no ORM, no index of values, no JSON), on
the same durability terms as the connector space (WAL, ``synchronous=FULL``).

Run as ``python -m bench.sqlite_reference CSV DATABASE`` in a process of its own, so
its wall time and peak RSS are its own; prints the number of rows loaded.
"""

from __future__ import annotations

import csv
import sqlite3
import sys
from pathlib import Path

from bench.target import CSV_FORMAT

ANCHOR = "AzureObjectID"


def load(source: Path, database: Path) -> int:
    """Stream ``source`` into a new table of ``database`` in ONE transaction."""
    connection = sqlite3.connect(database, isolation_level=None)  # we say BEGIN ourselves
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        with source.open(encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle, **CSV_FORMAT)
            header = next(reader)
            connection.execute(_create_table(header))
            connection.execute("BEGIN")
            cursor = connection.executemany(_insert(header), reader)
            connection.execute("COMMIT")
        return cursor.rowcount
    finally:
        connection.close()


def _create_table(header: list[str]) -> str:
    columns = ", ".join(
        f'"{name}" TEXT PRIMARY KEY' if name == ANCHOR else f'"{name}" TEXT' for name in header
    )
    return f"CREATE TABLE users ({columns})"


def _insert(header: list[str]) -> str:
    names = ", ".join(f'"{name}"' for name in header)
    return f"INSERT INTO users ({names}) VALUES ({', '.join('?' * len(header))})"


def main() -> None:
    source, database = map(Path, sys.argv[1:3])
    print(load(source, database))


if __name__ == "__main__":
    main()
