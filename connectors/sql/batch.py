"""An export batch as few statements as the database allows: one upsert run for every
object of the batch holding the same columns, one delete run for every deletion, all
in one transaction without savepoints.

A savepoint per change (see ``SqlConnector._apply``) lets a refused value fail only
its change, but costs two round trips per change, more than the change itself. So a
batch goes this way first; when the database refuses any of it, nothing was written
(the transaction is rolled back) and the connector sends it again change by change.
Changes that need statements of their own (a rename, an anchor the database
generates, the rows of multi-valued attributes) and batches holding an anchor twice
(whose order would matter) always go change by change, as do batches for MariaDB and
MySQL (see ``statements``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ecmahost.connectors.base import Change
from ecmahost.connectors.exceptions import PermanentError
from ecmahost.connectors.sql.mapping import TableMapping
from ecmahost.connectors.sql.upsert import (
    NATIVE_UPSERT,
    anchor_parameter,
    delete_statement,
    native_upsert,
    parameters,
)
from sqlalchemy import Column, Executable

__all__ = ["Plan", "Statement", "statements"]


@dataclass(frozen=True, slots=True)
class Plan:
    """A change made ready before the transaction: its column values (None: delete),
    the anchor's column value, or why it cannot be written."""

    change: Change
    values: dict[Any, Any] | None = None
    anchor: Any = None
    error: PermanentError | None = None
    previous: Any = None
    """The anchor's column value the row has now, for a rename."""
    sets: Sequence[Sequence[str]] = ()
    """The values of each of the mapping's ``sets``, in its order."""

    @property
    def writes(self) -> bool:
        """Whether the change sends anything (a delete of a row never inserted does not)."""
        return self.error is None and (self.values is not None or self.anchor is not None)


@dataclass(frozen=True, slots=True)
class Statement:
    """A statement and the parameters of each row it runs for."""

    executable: Executable
    rows: list[dict[str, Any]]


def statements(
    dialect: str, mapping: TableMapping, plans: Sequence[Plan]
) -> list[Statement] | None:
    """The batch's statements, or None when it must go change by change (see above)."""
    make_insert = NATIVE_UPSERT.get(dialect)
    if make_insert is None:
        # aiomysql runs an upsert for many rows as one multi-row INSERT, and garbles
        # the ON DUPLICATE KEY clause doing so.
        return None
    sent = [plan for plan in plans if plan.writes]
    if mapping.sets or mapping.anchor_generated or any(p.previous is not None for p in sent):
        return None
    anchors = [p.anchor if p.values is None else p.values[mapping.anchor.column] for p in sent]
    if len(set(anchors)) < len(anchors):
        return None
    upserts: dict[frozenset[Column[Any]], list[dict[Any, Any]]] = {}
    deletes: list[dict[str, Any]] = []
    for plan, anchor in zip(sent, anchors, strict=True):
        if plan.values is None:
            deletes.append(anchor_parameter(anchor))
        else:
            upserts.setdefault(frozenset(plan.values), []).append(plan.values)
    found = [
        Statement(native_upsert(make_insert, mapping, group[0]), [parameters(v) for v in group])
        for group in upserts.values()
    ]
    if deletes:
        found.append(Statement(delete_statement(mapping), deletes))
    return found
