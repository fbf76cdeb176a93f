"""What MariaDB and MySQL need beyond portable SQL: session settings, the upsert, the
boolean columns they do not have, and the anchor's collation.

* **Session**: utf8mb4 unless the URL names a character set (MySQL's ``utf8`` holds no
  4-byte characters such as emoji); strict mode for every table, so that a value too
  long for its column fails instead of being cut short; both lock waits (row locks and
  table/metadata locks) bounded by ``timeout_s`` rather than the servers' 50 s and one
  day.
* **Upsert**: ``INSERT … ON DUPLICATE KEY UPDATE`` fires on *any* unique key, so where
  the table has another one (a unique user name), a new anchor whose user name is taken
  would overwrite the other object's row. Such tables get the portable update-or-insert
  instead, which fails that change on the other key.
* **Booleans**: ``BOOLEAN`` is ``TINYINT(1)`` on these servers, and reflects as such;
  ``TINYINT(1)`` is read as Boolean, the convention of MySQL's own connectors.
* **Collation**: the default collations compare text without case (and, for
  ``utf8mb4_uca1400_ai_ci``, accents) and ignore trailing spaces, so anchors that differ
  only so are one row. The connector warns when the anchor column compares that way.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

from ecmahost.connectors.sql.mapping import TableMapping
from sqlalchemy import Column, Executable, Table, UniqueConstraint, text, types
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import URL, Inspector
from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = [
    "DIALECTS",
    "connect_args",
    "read_tinyint1_as_boolean",
    "upsert_statement",
    "warn_of_inexact_anchor",
]

log = logging.getLogger(__name__)

DIALECTS = frozenset({"mysql", "mariadb"})
"""SQLAlchemy's names for these servers' dialects (``mysql+…://``, ``mariadb+…://``)."""


def connect_args(url: URL, timeout_s: float) -> dict[str, Any]:
    """The driver's connect arguments (aiomysql and asyncmy take the same ones)."""
    lock_wait_s = max(1, math.ceil(timeout_s))
    args: dict[str, Any] = {
        "connect_timeout": timeout_s,
        "init_command": (
            "SET SESSION sql_mode = CONCAT_WS(',', NULLIF(@@SESSION.sql_mode, ''), "
            f"'STRICT_ALL_TABLES'), SESSION innodb_lock_wait_timeout = {lock_wait_s}, "
            f"SESSION lock_wait_timeout = {lock_wait_s}"
        ),
    }
    if "charset" not in url.query:
        args["charset"] = "utf8mb4"
    return args


def read_tinyint1_as_boolean(inspector: Inspector, _table: Table, column: dict[str, Any]) -> None:
    """A ``column_reflect`` listener: ``TINYINT(1)`` (what ``BOOLEAN`` becomes) as Boolean."""
    if inspector.dialect.name not in DIALECTS:
        return
    column_type = column["type"]
    if isinstance(column_type, mysql.TINYINT) and column_type.display_width == 1:
        column["type"] = types.Boolean(create_constraint=False)


def upsert_statement(mapping: TableMapping, values: Mapping[Column[Any], Any]) -> Executable | None:
    """``INSERT … ON DUPLICATE KEY UPDATE`` replacing the mapped columns, its values bound
    by column key, or None when the table has a unique key besides the anchor (see the
    module's docstring)."""
    if _other_unique_keys(mapping.table, mapping.anchor.column):
        return None
    statement = mysql.insert(mapping.table)
    replaced: dict[str, Any] = {
        f.column.name: statement.inserted[f.column.name] if f.column in values else None
        for f in mapping.replaced(values)
    }
    if not replaced:  # the table maps nothing but the anchor: set it to itself, a no-op
        replaced = {mapping.anchor.column.name: mapping.anchor.column}
    return statement.on_duplicate_key_update(replaced)


async def warn_of_inexact_anchor(conn: AsyncConnection, mapping: TableMapping) -> None:
    """Log a warning when the anchor column's collation takes different anchors for one."""
    collation = await _anchor_collation(conn, mapping)
    if _is_exact(collation):
        return
    log.warning(
        "%s: the anchor column %s has collation %s, which compares text without case or "
        "accents: anchors that differ only so would be one row (a _bin collation keeps "
        "them apart)",
        mapping.table.fullname,
        mapping.anchor.column.name,
        collation,
        extra={"action": "sql.anchor_collation"},
    )


async def _anchor_collation(conn: AsyncConnection, mapping: TableMapping) -> str | None:
    query = text(
        "SELECT collation_name FROM information_schema.columns "
        "WHERE table_schema = COALESCE(:schema, DATABASE()) "
        "AND table_name = :table AND column_name = :column"
    )
    table = mapping.table
    found = await conn.scalar(
        query, {"schema": table.schema, "table": table.name, "column": mapping.anchor.column.name}
    )
    return str(found) if found is not None else None


def _is_exact(collation: str | None) -> bool:
    """Whether the collation tells apart every two different anchors by case and
    accents (binary ones, and ``_cs`` ones); trailing spaces are another matter."""
    return collation is None or collation.endswith(("_bin", "_cs"))


def _other_unique_keys(table: Table, anchor: Column[Any]) -> bool:
    keys = [frozenset(table.primary_key.columns)]
    keys += [frozenset(i.columns) for i in table.indexes if i.unique]
    keys += [frozenset(c.columns) for c in table.constraints if isinstance(c, UniqueConstraint)]
    return any(key and key != {anchor} for key in keys)
