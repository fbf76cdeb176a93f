"""The in-memory twin of a target: the default connector of unit tests.

It keeps its objects in a dict, records every batch it was given, and can be told
to fail, so flows can be tested without files or servers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import ClassVar

from pydantic import Field

from connectors.base import (
    Attribute,
    Capability,
    Change,
    ChangeKind,
    Connector,
    ConnectorSettings,
    DataType,
    Record,
    Result,
    Schema,
    Value,
)

__all__ = ["MemoryConnector", "MemorySettings"]


class MemorySettings(ConnectorSettings):
    """``attributes`` maps attribute name to data type; ``anchor`` names the anchor."""

    object_type: str = "Person"
    anchor: str = "AzureObjectID"
    attributes: dict[str, DataType] = Field(
        default_factory=lambda: {
            "AzureObjectID": DataType.STRING,
            "DisplayName": DataType.STRING,
            "UserName": DataType.STRING,
            "Title": DataType.STRING,
            "EmployeeId": DataType.STRING,
            "Email": DataType.STRING,
            "IsActive": DataType.BOOLEAN,
        }
    )


class MemoryConnector(Connector):
    type_name: ClassVar[str] = "memory"
    settings_model: ClassVar[type[ConnectorSettings]] = MemorySettings
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.IMPORT, Capability.EXPORT}
    )

    def __init__(self, name: str, settings: MemorySettings, base_dir: Path) -> None:
        super().__init__(name, settings, base_dir)
        self.objects: dict[str, dict[str, Value]] = {}
        self.batches: list[list[Change]] = []
        self.fail_with: Exception | None = None
        """When set, every export raises it (a whole-batch failure)."""
        self.reject: dict[str, Exception] = {}
        """Per-anchor errors returned as that change's result."""

    async def schema(self) -> Schema:
        s: MemorySettings = self.settings
        return Schema(
            s.object_type,
            tuple(
                Attribute(name, data_type, is_anchor=name == s.anchor)
                for name, data_type in s.attributes.items()
            ),
        )

    async def full_import(self) -> AsyncIterator[Record]:
        for anchor, attributes in list(self.objects.items()):
            yield Record(anchor, dict(attributes))

    async def export(self, changes: Sequence[Change]) -> Sequence[Result]:
        self.batches.append(list(changes))
        if self.fail_with is not None:
            raise self.fail_with
        return [self._apply(change) for change in changes]

    def _apply(self, change: Change) -> Result:
        error = self.reject.get(change.anchor)
        if error is not None:
            return Result(change.anchor, error)
        if change.kind is ChangeKind.DELETE:
            self.objects.pop(change.anchor, None)
        else:
            self.objects[change.anchor] = dict(change.attributes)
        return Result(change.anchor)
