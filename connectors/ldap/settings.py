"""The ``ldap`` connector's settings (the ``settings`` table of an ``ldap`` connector).

Only what can be checked without the server is checked here; the attributes are
checked against the server's schema when the connector opens.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from ecmahost.connectors.base import ConnectorSettings
from ecmahost.connectors.direction import DirectionSettings
from ecmahost.connectors.ldap.dn import is_within, parse_dn
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

__all__ = ["DN_PSEUDO_ATTRIBUTE", "LdapDelta", "LdapDisable", "LdapSettings", "dn_within"]

DN_PSEUDO_ATTRIBUTE = "-dn-"
"""The connector attribute holding an entry's distinguished name (ECMA2Host's name)."""


class LdapDisable(BaseModel):
    """How a Boolean connector attribute (``attribute``, which SCIM ``active`` is
    mapped to through ``deprovision.disable_attribute``) is stored in the directory.

    The LDAP attribute ``ldap_attribute`` holds ``disabled_value`` while the account
    is disabled, and ``enabled_value`` while it is enabled; without an
    ``enabled_value``, enabling removes the LDAP attribute, and every entry that does
    not hold ``disabled_value`` imports as enabled. With one, an entry holding neither
    value imports without the Boolean (which the host reads as enabled), and an
    object without the Boolean is exported by removing the LDAP attribute. Values
    are compared without case.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    attribute: str = "IsActive"
    ldap_attribute: str
    disabled_value: str = "TRUE"
    enabled_value: str | None = None

    @model_validator(mode="after")
    def _distinct(self) -> LdapDisable:
        if not self.disabled_value:
            raise ValueError("disabled_value cannot be empty")
        enabled = self.enabled_value
        if enabled is not None and enabled.casefold() == self.disabled_value.casefold():
            raise ValueError("enabled_value and disabled_value must differ")
        if enabled == "":
            raise ValueError("enabled_value cannot be empty; leave it out to remove the attribute")
        return self


class LdapDelta(BaseModel):
    """Where a delta import reads what changed (``[connectors.X.settings.delta]``).

    ``accesslog``: OpenLDAP's accesslog overlay, by ``reqStart``; ``changelog``: 389
    Directory Server's retro changelog, by ``changeNumber``; ``usn``: Active Directory
    LDS, by ``uSNChanged``. ``log_base`` is the log's DN (``cn=accesslog``,
    ``cn=changelog`` unless given; a USN needs none)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Literal["accesslog", "changelog", "usn"]
    log_base: str | None = None

    @field_validator("log_base")
    @classmethod
    def _log_dn(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                if not parse_dn(value):
                    raise ValueError("empty")
            except ValueError as exc:
                raise ValueError(f"not a distinguished name: {value!r} ({exc})") from None
        return value

    @model_validator(mode="after")
    def _log_used(self) -> LdapDelta:
        if self.source == "usn" and self.log_base is not None:
            raise ValueError('log_base is unused with source = "usn": leave it out')
        return self

    @property
    def base(self) -> str:
        """The log's DN; empty for ``usn``."""
        defaults = {"accesslog": "cn=accesslog", "changelog": "cn=changelog", "usn": ""}
        return self.log_base if self.log_base is not None else defaults[self.source]


class LdapSettings(ConnectorSettings, DirectionSettings):
    """Where the directory is, how to bind, and which entries and attributes to serve.

    ``password`` may be ``env:NAME`` or ``file:PATH`` (resolved against the
    configuration file's folder). ``attributes`` maps connector attribute names to
    LDAP attribute names; without it every attribute the object classes allow is
    served under its own name. ``anchor`` and ``rdn_attribute`` are LDAP names.
    ``serve_dn`` adds the ``-dn-`` attribute (the entry's DN) to the schema.
    ``multi_valued`` names the connector attributes served as sets (SCIM arrays):
    each must be multi-valued in the server's schema (no SINGLE-VALUE); the name
    ``objectClass`` serves the entry's object classes as one.
    ``import_only``/``export_only`` name connector attributes that flow one way; an
    import-only one may be assigned by the server (``createTimestamp``).
    ``delta`` turns delta imports on (see ``LdapDelta``).
    """

    url: str
    start_tls: bool = False
    ca_file: Path | None = None
    bind_dn: str
    password: SecretStr
    base_dn: str
    container: str | None = None
    object_classes: tuple[str, ...] = ("inetOrgPerson",)
    rdn_attribute: str = "uid"
    anchor: str = "uid"
    attributes: dict[str, str] | None = None
    disable: LdapDisable | None = None
    serve_dn: bool = True
    multi_valued: tuple[str, ...] = ()
    object_type: str = Field("Person", min_length=1)
    page_size: int = Field(500, ge=1, le=100_000)
    timeout_s: float = Field(30.0, gt=0, le=600)
    delta: LdapDelta | None = None

    @field_validator("url")
    @classmethod
    def _ldap_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme.lower() not in ("ldap", "ldaps") or not parts.hostname:
            raise ValueError(f"expected ldap://HOST[:PORT] or ldaps://HOST[:PORT], got {value!r}")
        if parts.path not in ("", "/") or parts.query:
            raise ValueError("give the base DN in base_dn, not in the URL")
        try:
            parts.port  # noqa: B018 - raises ValueError for a bad port
        except ValueError as exc:
            raise ValueError(f"bad port in {value!r}: {exc}") from None
        return value

    @field_validator("bind_dn", "base_dn", "container")
    @classmethod
    def _dn(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_dn(value)
            except ValueError as exc:
                raise ValueError(f"not a distinguished name: {value!r} ({exc})") from None
        return value

    @field_validator("object_classes")
    @classmethod
    def _some_classes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("name at least one object class")
        return value

    @field_validator("attributes")
    @classmethod
    def _names(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("map at least one attribute, or leave attributes out")
        if not all(name and ldap_name for name, ldap_name in value.items()):
            raise ValueError("attribute names cannot be empty")
        if any(name.lower() == DN_PSEUDO_ATTRIBUTE for name in value):
            raise ValueError(f"{DN_PSEUDO_ATTRIBUTE} is always served; do not map it")
        return value

    @field_validator("multi_valued")
    @classmethod
    def _distinct_sets(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        lowered = [name.lower() for name in value]
        if "" in lowered or len(set(lowered)) != len(lowered):
            raise ValueError("name each multi-valued attribute once")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> LdapSettings:
        if self.start_tls and self.url.lower().startswith("ldaps:"):
            raise ValueError("start_tls is for ldap:// URLs; ldaps:// is already encrypted")
        if self.container is not None and not dn_within(self.container, self.base_dn):
            raise ValueError(f"container {self.container!r} is not under base_dn {self.base_dn!r}")
        return self

    @property
    def new_entries_under(self) -> str:
        return self.container if self.container is not None else self.base_dn


def dn_within(dn: str, base: str) -> bool:
    """Whether ``dn`` is ``base`` or below it, RDN by RDN (types and values compared
    without case, values unescaped)."""
    return is_within(parse_dn(dn), parse_dn(base))
