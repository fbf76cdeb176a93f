"""An object of the connector space as reads hand it out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime

from ecmahost.connectors.base import Value
from ecmahost.engine.space.models import ObjectRow
from ecmahost.engine.space.states import ObjectState

__all__ = ["READ_COLUMNS", "StoredObject"]


@dataclass(frozen=True, slots=True)
class StoredObject:
    id: str
    connector: str
    anchor: str
    attributes: Mapping[str, Value]
    visible: bool
    version: int
    created_at: datetime
    updated_at: datetime
    external_id: str | None = None

    @classmethod
    def from_row(cls, row: ObjectRow) -> StoredObject:
        return cls(
            row.id,
            row.connector,
            row.anchor,
            dict(row.attributes),
            row.state == ObjectState.PRESENT,
            row.version,
            row.created_at,
            row.updated_at,
            row.external_id,
        )


READ_COLUMNS = tuple(
    ObjectRow.__table__.c[f.name] for f in fields(StoredObject) if f.name != "visible"
)
"""The object columns a read takes, in ``StoredObject``'s order (``visible`` is the
state, which reads test rather than take)."""
