"""An object of the connector space as reads hand it out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from ecmahost.connectors.base import Value
from ecmahost.engine.space.models import ObjectRow

__all__ = ["StoredObject"]


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
            row.state == "present",
            row.version,
            row.created_at,
            row.updated_at,
            row.external_id,
        )
