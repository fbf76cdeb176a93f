"""Connector types: the built-in ones and third-party ones from the entry-point group
``ecmahost.connectors``. A plugin that fails to load is reported and skipped."""

from __future__ import annotations

import importlib
import logging
from importlib.metadata import entry_points
from pathlib import Path

from ecmahost.connectors.base import Connector
from ecmahost.connectors.exceptions import ConfigError
from ecmahost.engine.config import ConnectorConfig
from pydantic import ValidationError

__all__ = ["ENTRY_POINT_GROUP", "build_connector", "connector_types", "report_broken_plugins"]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "ecmahost.connectors"


_BUILTIN: dict[str, str] = {
    "csv": "ecmahost.connectors.csv.connector:CsvConnector",
    "ldap": "ecmahost.connectors.ldap.connector:LdapConnector",
    "memory": "ecmahost.connectors.memory.connector:MemoryConnector",
    "script": "ecmahost.connectors.script.connector:ScriptConnector",
    "sql": "ecmahost.connectors.sql.connector:SqlConnector",
}
"""Built-in types, imported only when configured (each pulls in its own driver)."""


def _load(type_name: str, target: str) -> type[Connector]:
    """The connector class at ``module:Class``; LookupError saying why it is unusable
    (logged with the action ``plugin.broken``)."""
    module_name, _, class_name = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except Exception as exc:  # any failure of a plugin's code: report it, never crash
        reason = f"failed to load: {exc}"
    else:
        if isinstance(cls, type) and issubclass(cls, Connector):
            return cls
        reason = f"{target} is not a Connector subclass"
    log.error("connector type %r %s", type_name, reason, extra={"action": "plugin.broken"})
    raise LookupError(reason)


def report_broken_plugins() -> list[str]:
    """Load every third-party type once, so a broken one is reported at start-up even
    when no connector uses it; returns their names. The host goes on regardless."""
    broken = []
    for name, target in connector_types().items():
        if name not in _BUILTIN:
            try:
                _load(name, target)
            except LookupError:
                broken.append(name)
    return broken


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
    key = f"connectors.{config.name}.type"
    if config.type not in types:
        known = ", ".join(sorted(types))
        raise ConfigError(f"unknown connector type {config.type!r} (known: {known})", key)
    try:
        cls = _load(config.type, types[config.type])
    except LookupError as exc:
        raise ConfigError(f"connector type {config.type!r} {exc}", key) from None
    try:
        settings = cls.settings_model.model_validate(config.settings)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        message = "unknown key" if first["type"] == "extra_forbidden" else first["msg"]
        raise ConfigError(message, f"connectors.{config.name}.settings.{where}") from None
    return cls(config.name, settings, base_dir)
