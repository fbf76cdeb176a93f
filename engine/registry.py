"""Connector types: the built-in ones and third-party ones from the entry-point group
``ecmahost.connectors``. A plugin that fails to load is reported and skipped."""

from __future__ import annotations

import logging
from importlib.metadata import entry_points
from pathlib import Path

from pydantic import ValidationError

from connectors.base import Connector
from engine.config import ConnectorConfig
from engine.exceptions import ConfigError

__all__ = ["ENTRY_POINT_GROUP", "build_connector", "connector_types"]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "ecmahost.connectors"


def _builtin() -> dict[str, type[Connector]]:
    from connectors.csvfile import CsvConnector
    from connectors.memory import MemoryConnector

    return {cls.type_name: cls for cls in (CsvConnector, MemoryConnector)}


def connector_types() -> dict[str, type[Connector]]:
    """Every connector type by name; built-in names cannot be taken over by plugins."""
    types = _builtin()
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in types:
            continue
        try:
            cls = ep.load()
        except Exception as exc:  # a broken plugin must not stop the host
            log.error(
                "connector plugin %r failed to load: %s",
                ep.name,
                exc,
                extra={"action": "plugin.broken"},
            )
            continue
        if isinstance(cls, type) and issubclass(cls, Connector):
            types[ep.name] = cls
        else:
            log.error(
                "connector plugin %r is not a Connector subclass",
                ep.name,
                extra={"action": "plugin.broken"},
            )
    return types


def build_connector(config: ConnectorConfig, base_dir: Path) -> Connector:
    """A connector of the configured type with its validated settings (not yet open)."""
    types = connector_types()
    cls = types.get(config.type)
    if cls is None:
        known = ", ".join(sorted(types))
        raise ConfigError(
            f"unknown connector type {config.type!r} (known: {known})",
            f"connectors.{config.name}.type",
        )
    try:
        settings = cls.settings_model.model_validate(config.settings)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        message = "unknown key" if first["type"] == "extra_forbidden" else first["msg"]
        raise ConfigError(message, f"connectors.{config.name}.settings.{where}") from None
    return cls(config.name, settings, base_dir)
