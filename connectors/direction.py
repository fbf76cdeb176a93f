"""Attribute flow direction declared in a connector's settings: ``import_only`` and
``export_only`` name connector attributes (as the schema serves them).

Shared by the connector types that honour directions (csv, sql, ldap); each mixes
``DirectionSettings`` into its settings model and passes its schema through
``with_directions`` once it knows it."""

from __future__ import annotations

import dataclasses

from ecmahost.connectors.base import Attribute, Direction, Schema
from ecmahost.connectors.exceptions import ConfigError
from pydantic import BaseModel, model_validator

__all__ = ["DirectionSettings", "with_directions"]


class DirectionSettings(BaseModel):
    """``import_only``: read, shown, never written; ``export_only``: written, never
    read back nor shown. Names compare without case."""

    import_only: tuple[str, ...] = ()
    export_only: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _disjoint(self) -> DirectionSettings:
        both = {n.lower() for n in self.import_only} & {n.lower() for n in self.export_only}
        if both:
            raise ValueError(f"{', '.join(sorted(both))} cannot be import_only and export_only")
        return self

    def direction_of(self, name: str) -> Direction | None:
        """The direction the settings give ``name``; None when they name it nowhere."""
        lower = name.lower()
        if any(n.lower() == lower for n in self.import_only):
            return Direction.IMPORT_ONLY
        if any(n.lower() == lower for n in self.export_only):
            return Direction.EXPORT_ONLY
        return None


def with_directions(schema: Schema, settings: DirectionSettings, key: str) -> Schema:
    """``schema`` with the directions ``settings`` declare (they win over the
    schema's own); ``ConfigError`` under ``key`` for a name the schema lacks or for
    the anchor, which Entra writes and imports must read."""
    for setting in ("import_only", "export_only"):
        for name in getattr(settings, setting):
            attribute = schema.get(name)
            if attribute is None:
                known = ", ".join(a.name for a in schema.attributes)
                raise ConfigError(
                    f"no attribute {name!r} (attributes: {known})", f"{key}.{setting}"
                )
            if attribute.is_anchor:
                raise ConfigError(
                    f"the anchor {attribute.name!r} flows both ways", f"{key}.{setting}"
                )
    return Schema(schema.object_type, tuple(_directed(a, settings) for a in schema.attributes))


def _directed(attribute: Attribute, settings: DirectionSettings) -> Attribute:
    direction = settings.direction_of(attribute.name)
    if direction is None or direction is attribute.direction:
        return attribute
    return dataclasses.replace(attribute, direction=direction)
