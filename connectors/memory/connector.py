"""The in-memory twin of a target: the default connector of unit tests.

It keeps its objects in a dict, records every batch it was given, and fails as a
script says (from its settings, or set on the instance by a test): the next N
exports, every export for T seconds, any change carrying a rejected value, so
flows and the queue can be tested without files or servers.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import ClassVar

from ecmahost.connectors.base import (
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
from ecmahost.connectors.exceptions import PermanentError, TransientError
from pydantic import Field

__all__ = ["MemoryConnector", "MemorySettings"]


class MemorySettings(ConnectorSettings):
    """``attributes`` maps attribute name to data type; ``anchor`` names the anchor.
    The fault script: ``fail_times`` exports fail transiently, then every export
    within ``fail_for_s`` of the first one does; a change carrying a value in
    ``reject_values`` is rejected for good."""

    fail_times: int = Field(0, ge=0)
    fail_for_s: float = Field(0.0, ge=0)
    reject_values: list[str] = Field(default_factory=list)

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
        self.fail_times = settings.fail_times
        self.fail_until: float | None = None
        """A ``time.monotonic()`` until which every export fails transiently."""
        self.reject_values = set(settings.reject_values)

    def fail_for(self, seconds: float) -> None:
        """Every export fails transiently for the next ``seconds`` (an outage)."""
        self.fail_until = time.monotonic() + seconds

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
        self._scripted_outage()
        if self.fail_with is not None:
            raise self.fail_with
        return [self._apply(change) for change in changes]

    def _scripted_outage(self) -> None:
        if self.fail_until is None and self.settings.fail_for_s:
            self.fail_for(self.settings.fail_for_s)
        if self.fail_times > 0:
            self.fail_times -= 1
            raise TransientError("the target is unavailable (scripted failure)")
        if self.fail_until is not None and time.monotonic() < self.fail_until:
            raise TransientError("the target is unavailable (scripted outage)")

    def _apply(self, change: Change) -> Result:
        error = self.reject.get(change.anchor)
        rejected = self.reject_values.intersection(map(str, change.attributes.values()))
        if error is None and rejected:
            error = PermanentError(f"the target rejects the value {sorted(rejected)[0]!r}")
        if error is not None:
            return Result(change.anchor, error)
        if change.kind is ChangeKind.DELETE:
            self.objects.pop(change.anchor, None)
        else:
            self.objects[change.anchor] = dict(change.attributes)
        return Result(change.anchor)
