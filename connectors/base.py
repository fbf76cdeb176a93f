"""The connector contract: value objects and the async ABC every connector implements.

A connector is the only code that talks to a target system. The engine hands it
batches of whole-object changes (ECMA2Host's ``ObjectReplace`` export type) and
streams records out of it during a full import; everything else (queueing,
retries, the SCIM view) lives in the engine.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ecmahost.connectors.exceptions import TransientError
from pydantic import BaseModel, ConfigDict

__all__ = [
    "Attribute",
    "Capability",
    "Change",
    "ChangeKind",
    "Connector",
    "ConnectorSettings",
    "DataType",
    "Delta",
    "Direction",
    "Record",
    "Result",
    "Schema",
    "TargetMissingError",
    "Value",
    "value_set",
]

Value = str | int | bool | list[str]
"""An attribute's value. Absent values are left out of the mapping, never None. A
multi-valued attribute holds a list of distinct strings in sorted order (a set: the
order carries no meaning, and one order keeps equal sets equal), never empty."""


def value_set(texts: Iterable[str], *, case_exact: bool = False) -> list[str]:
    """``texts`` as a multi-valued attribute's ``Value``: distinct, non-empty, sorted
    without case first. Texts differing only in case are one value (the first
    spelling is kept) unless ``case_exact``, as a directory's matching rules see them.
    Every connector and the engine build sets with it, so that one set of values has
    one form wherever it was read."""
    kept: dict[str, str] = {}
    for text in texts:
        if text:
            kept.setdefault(text if case_exact else text.casefold(), text)
    return sorted(kept.values(), key=lambda t: (t.casefold(), t))


class Capability(enum.Enum):
    """What a connector can do; flows read these instead of probing methods."""

    IMPORT = "import"
    EXPORT = "export"
    RENAME = "rename"
    ASSIGNS_ANCHOR = "assigns_anchor"
    """When the schema's anchor is ``assigned``, the target chooses it: an ADD comes
    with an empty anchor, and each successful result names the anchor the target
    holds the object under afterwards (a new one when a change moved it)."""
    DELTA_IMPORT = "delta_import"
    """The target can list what changed since a watermark (``watermark``, ``delta_import``)."""


class DataType(enum.Enum):
    """ECMA2Host's attribute data types (Schema.xml ``DataType``)."""

    STRING = "String"
    INTEGER = "Integer"
    BOOLEAN = "Boolean"


class Direction(enum.Enum):
    """Which way an attribute flows (Schema.xml ``AllowedAttributeOperation``).

    An import-only attribute is read from the target and shown to Entra but never
    written (a server-assigned timestamp, a generated column); an export-only one is
    written but never read back nor shown (an initial password). A connector leaves
    either untouched in the target when a change does not carry it."""

    IMPORT_EXPORT = "ImportExport"
    IMPORT_ONLY = "ImportOnly"
    EXPORT_ONLY = "ExportOnly"


@dataclass(frozen=True, slots=True)
class Attribute:
    """One attribute of the connector's object type."""

    name: str
    data_type: DataType = DataType.STRING
    is_anchor: bool = False
    case_exact: bool = False
    multi_valued: bool = False
    """Holds a set of strings (a list, see ``Value``); only String attributes may."""
    direction: Direction = Direction.IMPORT_EXPORT
    assigned: bool = False
    """The target assigns the values (an LDAP DN or entryUUID, a database-generated
    column); clients never write them. Only an anchor of a connector declaring
    ``Capability.ASSIGNS_ANCHOR`` may be assigned."""

    @property
    def imported(self) -> bool:
        """Whether imports read it and SCIM shows it."""
        return self.direction is not Direction.EXPORT_ONLY

    @property
    def exported(self) -> bool:
        """Whether SCIM writes reach the target."""
        return self.direction is not Direction.IMPORT_ONLY


@dataclass(frozen=True, slots=True)
class Schema:
    """The object type a connector serves and its attributes (anchor first)."""

    object_type: str
    attributes: tuple[Attribute, ...]
    _by_lower: Mapping[str, Attribute] = field(init=False, repr=False, compare=False)
    _anchor: Attribute = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        anchors = [a for a in self.attributes if a.is_anchor]
        if len(anchors) != 1:
            raise ValueError(
                f"object type {self.object_type!r} needs exactly one anchor attribute, "
                f"found {len(anchors)}"
            )
        object.__setattr__(self, "_by_lower", {a.name.lower(): a for a in self.attributes})
        object.__setattr__(self, "_anchor", anchors[0])

    @property
    def anchor(self) -> Attribute:
        return self._anchor

    def get(self, name: str) -> Attribute | None:
        """The attribute called ``name``, compared case-insensitively."""
        return self._by_lower.get(name.lower())


@dataclass(frozen=True, slots=True)
class Record:
    """One object as the target holds it: every present attribute, anchor included."""

    anchor: str
    attributes: Mapping[str, Value]
    source: str | None = field(default=None, compare=False)
    """Where the record was read (``people.csv line 7``), for warnings; optional.
    A second record with an anchor already seen in the same import is skipped with
    a warning naming both: the first one is kept."""


@dataclass(frozen=True, slots=True)
class Delta:
    """One change read by a delta import: ``record`` is the object as the target holds
    it now, or None when the target deleted the object with this ``anchor``.
    ``watermark`` is the position reached once this change and every one before it are
    applied; the engine stores the last one it committed."""

    anchor: str
    record: Record | None
    watermark: str


class ChangeKind(enum.Enum):
    ADD = "add"
    REPLACE = "replace"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class Change:
    """One object's change. ``attributes`` is the whole new object (empty for a delete).

    ``previous_anchor`` is set on a REPLACE that renames: the target holds the object
    under that anchor and must hold it under ``anchor`` afterwards. Only connectors
    declaring ``Capability.RENAME`` are given one."""

    kind: ChangeKind
    anchor: str
    attributes: Mapping[str, Value] = field(default_factory=dict)
    previous_anchor: str | None = None


@dataclass(frozen=True, slots=True)
class Result:
    """The outcome of one change. ``error`` is None on success.

    ``anchor`` is the change's anchor, except for a connector that assigns anchors:
    there, on success, it is the anchor the target holds the object under now (the
    one it chose for an ADD, the new DN after a move), and the host binds the
    object's SCIM id to it."""

    anchor: str
    error: Exception | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class TargetMissingError(TransientError):
    """The target itself is gone (a deleted file, a dropped table), not merely empty.

    ``full_import`` raises it, rather than yield nothing, when ``first_start`` is
    False: the engine then refuses the import and keeps the view it has."""


class ConnectorSettings(BaseModel):
    """Base of each connector type's own settings (the ``settings`` table in TOML).

    ``base_dir`` is the configuration file's folder; relative paths resolve against it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    def resolve(self, path: Path, base_dir: Path) -> Path:
        return path if path.is_absolute() else (base_dir / path).resolve()


class Connector(abc.ABC):
    """A target system, seen through a handful of async methods.

    Errors: every method translates its driver's errors, at this boundary, into
    ``TransientError`` (retry later) or ``PermanentError`` (this change cannot be
    applied); ``ConfigError`` when the settings cannot work at all.
    """

    type_name: ClassVar[str]
    settings_model: ClassVar[type[ConnectorSettings]]
    capabilities: ClassVar[frozenset[Capability]]
    export_batch_size: ClassVar[int] = 500
    """Changes per ``export`` call unless the configuration says otherwise. A target
    whose every batch costs a full pass over it (a file rewrite) wants large ones."""

    first_start: bool = True
    """Set by the engine before ``open``: True only when the connector space has never
    held this connector (no successful import, no object). A connector that creates
    or seeds a missing target does so only then; later, a missing target is a
    ``TargetMissingError`` of ``full_import``, never silently re-created."""

    def __init__(self, name: str, settings: Any, base_dir: Path) -> None:
        self.name = name
        self.settings = settings
        self.base_dir = base_dir

    async def open(self) -> None:  # noqa: B027 - optional hook, empty by default
        """Acquire resources (connections, files). Called once before any other call."""

    async def close(self) -> None:  # noqa: B027 - optional hook, empty by default
        """Release what ``open`` acquired. Safe to call after a failed ``open``."""

    async def validate(self) -> None:  # noqa: B027 - optional hook, empty by default
        """Check that the target is reachable and usable; raise if it is not."""

    async def import_size(self) -> int | None:
        """About how many records ``full_import`` will yield, when the target tells
        cheaply (a row count, a file's lines); None when it cannot. Only shown as
        progress, so it may be a little off. Called while open."""
        return None

    @abc.abstractmethod
    async def schema(self) -> Schema:
        """The object type and attributes this connector serves; stable while open."""

    @abc.abstractmethod
    def full_import(self) -> AsyncIterator[Record]:
        """Stream every object of the target, in any order, holding only a bounded
        number in memory. Each record carries the anchor and every present attribute."""

    @abc.abstractmethod
    async def export(self, changes: Sequence[Change]) -> Sequence[Result]:
        """Apply a batch of changes, at most one per anchor, and return one result per
        change in the same order. Idempotent: an ADD of an existing anchor replaces it,
        a REPLACE of a missing anchor adds it, a DELETE of a missing anchor succeeds.
        A failure of the whole batch may be raised instead of returned per change."""

    async def watermark(self) -> str:
        """The target's current change position (a timestamp, a change number, a USN,
        an accesslog reqStart), read by the engine just BEFORE a full import streams: a
        later delta reads every change made from that point on, so a change made during
        the full import is read again (applying it twice is harmless). Only called on
        connectors declaring Capability.DELTA_IMPORT."""
        raise NotImplementedError

    def delta_import(self, watermark: str) -> AsyncIterator[Delta]:
        """Stream the changes made since ``watermark`` in the order they were made,
        holding a bounded number in memory. Raises ``WatermarkExpiredError`` when the
        target no longer holds the changes since then (a purged accesslog or changelog,
        a watermark newer than the target's); the engine then runs a full import."""
        raise NotImplementedError
