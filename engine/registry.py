"""Connector types: the built-in ones and third-party ones from the entry-point group
``ecmahost.connectors``. A plugin that fails to load is reported and skipped."""

from __future__ import annotations

import importlib
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


_BUILTIN: dict[str, str] = {
    "csv": "connectors.csvfile:CsvConnector",
    "ldap": "connectors.ldap:LdapConnector",
    "memory": "connectors.memory:MemoryConnector",
    "script": "connectors.script:ScriptConnector",
    "sql": "connectors.sql:SqlConnector",
}
"""Built-in types, imported only when configured (each pulls in its own driver)."""


def _load(type_name: str, target: str) -> type[Connector] | None:
    module_name, _, class_name = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except Exception as exc:  # a broken plugin must not stop the host
        log.error(
            "connector type %r failed to load: %s",
            type_name,
            exc,
            extra={"action": "plugin.broken"},
        )
        return None
    if isinstance(cls, type) and issubclass(cls, Connector):
        return cls
    log.error(
        "connector type %r is not a Connector subclass",
        type_name,
        extra={"action": "plugin.broken"},
    )
    return None


def connector_types() -> dict[str, str]:
    """Every connector type name and where its class lives; built-in names cannot be
    taken over by plugins."""
    types = dict(_BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        types.setdefault(ep.name, ep.value)
    return types


def build_connector(config: ConnectorConfig, base_dir: Path) -> Connector:
    """A connector of the configured type with its validated settings (not yet open)."""
    types = connector_types()
    cls = _load(config.type, types[config.type]) if config.type in types else None
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
