"""The host configuration: one TOML file, validated by pydantic.

This is the only module that reads the environment (for ``env:`` secrets and
``ECMAHOST_CONFIG``). Errors name the key that is wrong.
"""

from __future__ import annotations

import enum
import logging
import os
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from ecmahost.connectors.exceptions import ConfigError
from ecmahost.connectors.secrets import is_reference, redact, resolve_secret
from ecmahost.engine.space.database import sqlite_url
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError

__all__ = [
    "DEFAULT_CONFIG",
    "ConnectorConfig",
    "DeleteAction",
    "Deprovision",
    "DisableAction",
    "ExportMode",
    "HostConfig",
    "HostSettings",
    "Listen",
    "config_path",
    "load_config",
]

log = logging.getLogger(__name__)

DEFAULT_CONFIG = Path("config/ecmahost.toml")
MIN_TOKEN_CHARS = 12


class ExportMode(enum.Enum):
    SYNC = "sync"
    QUEUED = "queued"


class DisableAction(enum.Enum):
    """What a disable (``active``/``IsActive`` set false) exports."""

    NONE = "none"
    DELETE = "delete"
    SET_ATTRIBUTE = "set_attribute"


class DeleteAction(enum.Enum):
    """What a SCIM DELETE exports; ``none`` removes the object from the connector
    space only (the target keeps it, and the next full import shows it again)."""

    DELETE = "delete"
    DISABLE = "disable"
    NONE = "none"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True, slots=True)
class Listen:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Listen:
        host, sep, port = text.rpartition(":")
        if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"expected HOST:PORT, got {text!r}")
        return cls(host.strip("[]") or "127.0.0.1", int(port))

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


class HostSettings(_Strict):
    listen: str = "127.0.0.1:8585"
    tls: Literal["self-signed", "off", "files"] = "self-signed"
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_host_name: str | None = None
    """Deprecated: one name; it is added to ``tls_host_names``."""
    tls_host_names: list[str] = Field(default_factory=list)
    """Names the self-signed certificate covers besides ``hostname``, ``hostname -f``,
    ``public_url``'s host and the loopback names: every name in a Tenant URL."""
    state_dir: Path = Path("state")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    synchronous: Literal["FULL", "NORMAL"] = "FULL"
    startup_wait_s: float = Field(default=60.0, ge=0)
    """How long a one-shot command (``ecmahost import``, ...) waits for a connector
    whose target is down. ``serve`` never waits: it serves and keeps trying."""
    reconnect_max_s: float = Field(default=60.0, gt=0)
    """Longest pause between two attempts to reach a target that is down (the pause
    starts at 0.5 s and doubles)."""
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_page_size: int = Field(default=1000, ge=1, le=100_000)
    admin_token: SecretStr | None = None
    """Opens the admin API under /admin; without one the API is off."""
    public_url: str | None = None
    """The URL clients reach this host at (``https://scim.example.org:8585``), for
    ``meta.location``; without it the configured ``listen`` address is used, never the
    request's ``Host`` header."""
    header_timeout_s: float = Field(default=10.0, gt=0)
    """Longest wait for a request's headers once its first byte (or the connection)
    arrived: a client that sends them slowly or never is disconnected."""
    body_timeout_s: float = Field(default=30.0, gt=0)
    """Longest wait for a request's body once its headers are in."""
    keepalive_timeout_s: float = Field(default=15.0, gt=0)
    """How long an idle keep-alive connection stays open."""
    max_connections: int = Field(default=512, ge=1)
    """Most connections open at once; beyond it new ones are refused (closed at once).
    Keep it well below the open-files limit (``LimitNOFILE``/``ulimit -n``)."""
    retention_days: float = Field(default=30.0, gt=0)
    """Finished export events (done, superseded, discarded) older than this lose their
    payloads and history rows: personal data is not kept forever."""
    metrics_listen: str | None = None
    """A second ``HOST:PORT`` that serves only ``GET /metrics``, without a token, for a
    scraper on a trusted network; on the SCIM port ``/metrics`` needs the admin token."""
    log_format: Literal["json", "text"] = "json"
    """``json``: one JSON object per line, for a log shipper; ``text``: one readable line."""
    notify_url: SecretStr | None = None
    """A webhook that gets a JSON POST when an export fails for good and when a
    connector becomes degraded or recovers; may be ``env:NAME`` or ``file:PATH``."""
    database_url: SecretStr | None = None
    """Where the connector space and the export queue live: absent, the SQLite file
    in ``state_dir``; ``postgresql+asyncpg://USER:PASSWORD@HOST:PORT/DATABASE``, a
    PostgreSQL database that several hosts share. May be ``env:NAME`` or ``file:PATH``."""

    @model_validator(mode="before")
    @classmethod
    def _merge_tls_host_name(cls, data: Any) -> Any:
        if not isinstance(data, Mapping) or data.get("tls_host_name") is None:
            return data
        log.warning(
            "host.tls_host_name is deprecated; list the names in host.tls_host_names",
            extra={"action": "config.deprecated", "key": "host.tls_host_name"},
        )
        names = data.get("tls_host_names") or []
        if not isinstance(names, list):
            return data  # the field's own check names the key
        name = data["tls_host_name"]
        return {**data, "tls_host_names": names if name in names else [*names, name]}

    @field_validator("listen", "metrics_listen")
    @classmethod
    def _listen(cls, value: str | None) -> str | None:
        if value is not None:
            Listen.parse(value)
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        url = value.get_secret_value()
        scheme = url.partition("://")[0]
        if scheme in ("postgresql", "postgres"):  # the driver is ours to choose
            url = "postgresql+asyncpg://" + url.partition("://")[2]
        elif scheme != "postgresql+asyncpg":
            raise ValueError(
                f"must be a postgresql+asyncpg:// URL, got one starting {scheme + '://'!r};"
                " leave it out for the SQLite file in host.state_dir"
            )
        try:
            parsed = make_url(url)
        except (ArgumentError, ValueError):  # a bad port is a ValueError
            raise ValueError("is not a valid database URL") from None
        if not parsed.database:
            raise ValueError("names no database: add /DATABASE after the server")
        return SecretStr(url)

    @field_validator("admin_token")
    @classmethod
    def _admin_token_length(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_TOKEN_CHARS:
            raise ValueError(f"must be at least {MIN_TOKEN_CHARS} characters")
        return value

    @property
    def listen_at(self) -> Listen:
        return Listen.parse(self.listen)


class Deprovision(_Strict):
    """ECMA2Host's deprovisioning choices. ``disable_attribute`` is the Boolean that
    SCIM ``active`` maps to (e.g. ``IsActive``); without one, ``active`` is ignored."""

    disable: DisableAction = DisableAction.NONE
    disable_attribute: str | None = None
    delete: DeleteAction = DeleteAction.DELETE
    disabled_value: bool = False
    """What ``disable_attribute`` holds while the object is disabled: false for an
    attribute where true means enabled (``IsActive``), true for an inverted one where
    true means disabled (``msDS-UserAccountDisabled``, a ``disabled`` column)."""


class ConnectorConfig(_Strict):
    """One connector. ``settings`` is validated later by the connector type's model."""

    name: str
    type: str
    token: SecretStr
    autosync_minutes: float = Field(120, ge=0)  # fractions too: 0.5 is every 30 s
    delta_minutes: float = Field(0, ge=0)  # 0: no scheduled delta imports
    export_mode: ExportMode = ExportMode.SYNC
    export_wait_s: float = Field(30.0, gt=0, le=300)
    export_batch_size: int | None = Field(None, ge=1, le=100_000)  # None: the connector's
    export_workers: int = Field(1, ge=1, le=64)
    export_lease_s: float = Field(300.0, gt=0)
    export_linger_s: float = Field(0.2, ge=0, le=60)  # queued mode: see ``Exporter._linger``
    retry_base_s: float = Field(2.0, gt=0)
    retry_cap_s: float = Field(300.0, gt=0)
    retry_max_attempts: int = Field(8, ge=1)
    deprovision: Deprovision = Deprovision()
    import_max_removals: int | None = None  # None: 10 % of the objects, at least 10
    settings: dict[str, Any] = Field(default_factory=dict)

    @field_validator("token")
    @classmethod
    def _token_length(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < MIN_TOKEN_CHARS:
            raise ValueError(f"must be at least {MIN_TOKEN_CHARS} characters")
        return value

    @field_validator("import_max_removals", mode="before")
    @classmethod
    def _removal_count(cls, value: Any) -> Any:
        # A count of objects, nothing else: "10%" or 2.5 would read as a share to some.
        if value is not None and (type(value) is not int or value < 0):
            raise ValueError(
                f"must be a whole number of objects, 0 or more, got {value!r}; "
                "leave it out for 10 % of the objects, at least 10"
            )
        return value


class HostConfig(_Strict):
    """The whole file. ``base_dir`` is the file's folder; relative paths use it."""

    host: HostSettings = HostSettings()
    connectors: dict[str, ConnectorConfig] = Field(default_factory=dict)
    base_dir: Path = Path(".")

    @property
    def state_dir(self) -> Path:
        return self.resolve(self.host.state_dir)

    @property
    def database_url(self) -> str:
        """The connector space's database: ``host.database_url``, else the SQLite
        file in the state folder."""
        configured = self.host.database_url
        if configured is None:
            return sqlite_url(self.state_dir)
        return configured.get_secret_value()

    @property
    def shared_database(self) -> bool:
        """Whether the space is a database other hosts may share (PostgreSQL)."""
        return self.host.database_url is not None

    def resolve(self, path: Path) -> Path:
        return path if path.is_absolute() else (self.base_dir / path).resolve()

    def connector(self, name: str) -> ConnectorConfig:
        try:
            return self.connectors[name]
        except KeyError:
            known = ", ".join(sorted(self.connectors)) or "none"
            raise ConfigError(f"no connector named {name!r} (configured: {known})") from None


def config_path(explicit: str | None = None) -> Path:
    """``--config``, else ``$ECMAHOST_CONFIG``, else ``config/ecmahost.toml``."""
    return Path(explicit or os.environ.get("ECMAHOST_CONFIG") or DEFAULT_CONFIG)


def load_config(path: Path, *, resolve_secrets: bool = True) -> HostConfig:
    """Read, resolve secrets in and validate the TOML file at ``path``.

    ``resolve_secrets=False`` leaves each ``env:``/``file:`` secret unread (its value
    is a placeholder naming it), for commands that never use one: they run where the
    secrets are not at hand."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"configuration file not found: {path}") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    base_dir = path.resolve().parent
    connectors = raw.get("connectors", {})
    if not isinstance(connectors, Mapping):
        raise ConfigError("must be a table of connectors", "connectors")
    literal_keys: list[str] = []
    raw["connectors"] = {
        name: _connector_raw(name, body, base_dir, literal_keys, resolve_secrets)
        for name, body in connectors.items()
    }
    host = raw.get("host", {})
    if isinstance(host, Mapping):
        host = _with_secret(host, "admin_token", "host", base_dir, literal_keys, resolve_secrets)
        host = _with_secret(host, "notify_url", "host", base_dir, literal_keys, resolve_secrets)
        # Always read: every command that opens the connector space needs it.
        raw["host"] = _with_secret(host, "database_url", "host", base_dir, literal_keys)
    try:
        config = HostConfig.model_validate({**raw, "base_dir": base_dir})
    except ValidationError as exc:
        raise _config_error(exc) from None
    _register_secrets(config)
    for key in literal_keys:  # only once the file is valid: a refused file says one thing
        log.warning(
            "secret given literally in the configuration; use env:NAME or file:PATH",
            extra={"action": "config.literal_secret", "key": key},
        )
    return config


def _register_secrets(config: HostConfig) -> None:
    """Register for redaction every secret the file names, before anything can print
    one: the tokens, and in each connector's settings every value given by reference
    (``env:``/``file:``, resolved: an operator who keeps a value out of the file wants
    it out of the log too) and the password of every URL. A connector type registers
    its literal secrets itself when it opens: only its settings model knows them."""
    if config.host.admin_token is not None:
        redact(config.host.admin_token.get_secret_value(), "host.admin_token")
    if config.host.database_url is not None:
        url = config.host.database_url.get_secret_value()
        for secret in [url, *_secrets_in(url, "host.database_url", config.base_dir)]:
            redact(secret, "host.database_url")
    for name, connector in config.connectors.items():
        redact(connector.token.get_secret_value(), f"connectors.{name}.token")
        for key, value in _strings(connector.settings, f"connectors.{name}.settings"):
            for secret in _secrets_in(value, key, config.base_dir):
                redact(secret, key)


def _strings(value: Any, key: str) -> Iterator[tuple[str, str]]:
    """Every string in a settings tree, with its dotted key."""
    if isinstance(value, str):
        yield key, value
    elif isinstance(value, Mapping):
        for name, item in value.items():
            yield from _strings(item, f"{key}.{name}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{key}.{index}")


def _secrets_in(value: str, key: str, base_dir: Path) -> list[str]:
    found: list[str] = []
    if is_reference(value):
        try:
            value = resolve_secret(value, key, base_dir)
        except ConfigError:
            return found  # the connector names the missing variable or file when it opens
        found.append(value)
    try:
        password = urlsplit(value).password if "://" in value else None
    except ValueError:  # not a URL after all
        password = None
    if password:
        found += [password, unquote(password)]
    return found


def _connector_raw(
    name: str, body: Any, base_dir: Path, literal_keys: list[str], resolve: bool
) -> dict[str, Any]:
    if not isinstance(body, Mapping):
        raise ConfigError("must be a table", f"connectors.{name}")
    body = _with_secret(body, "token", f"connectors.{name}", base_dir, literal_keys, resolve)
    return {**body, "name": name}


def _with_secret(
    table: Mapping[str, Any],
    field: str,
    where: str,
    base_dir: Path,
    literal_keys: list[str],
    resolve: bool = True,
) -> dict[str, Any]:
    """``table`` with its secret ``field`` resolved (see ``resolve_secret``)."""
    value = table.get(field)
    if not isinstance(value, str):
        return dict(table)
    key = f"{where}.{field}"
    if not is_reference(value):
        literal_keys.append(key)
    elif not resolve:
        return {**table, field: f"(not resolved: {value})"}
    return {**table, field: resolve_secret(value, key, base_dir)}


def _config_error(exc: ValidationError) -> ConfigError:
    first = exc.errors()[0]
    key = ".".join(str(part) for part in first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown key"
    return ConfigError(message, key or None)
