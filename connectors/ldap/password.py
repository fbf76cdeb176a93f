"""Initial passwords in a directory: which LDAP attributes take one, and in what form.

Entra sends an account's first password as an export-only attribute; the LDAP
connector writes it and never reads it back. Two attributes take it:

- ``userPassword`` (RFC 4519; OpenLDAP, 389 DS, and AD LDS with its
  ``dSHeuristics`` allowing it): the password as UTF-8 text, which the server may
  hash on its own.
- ``unicodePwd`` (AD LDS, Active Directory): the password in double quotes, encoded
  as UTF-16LE. The server accepts it only over an encrypted connection, so the
  connector refuses to start with it unless the URL is ``ldaps://`` or ``start_tls``
  is set.

Both have a binary syntax that the connector otherwise never serves; a password is
served as a write-only String.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ecmahost.connectors.base import DataType, Direction
from ecmahost.connectors.exceptions import ConfigError
from ecmahost.connectors.ldap.settings import LdapSettings

__all__ = [
    "PASSWORD_TYPES",
    "check_password",
    "encoded_add",
    "encoded_modify",
    "is_password",
    "password_fields",
    "unicode_pwd",
]

PASSWORD_TYPES: Final = frozenset({"userpassword", "unicodepwd"})
_UNICODE_PWD: Final = "unicodepwd"


def is_password(ldap_name: str) -> bool:
    return ldap_name.lower() in PASSWORD_TYPES


def check_password(
    name: str,
    ldap_name: str,
    direction: Direction | None,
    encrypted: bool,
    key: str,
) -> None:
    """ConfigError unless a password attribute is export-only (never read, never
    shown) and, for ``unicodePwd``, the connection is encrypted."""
    if direction is not Direction.EXPORT_ONLY:
        raise ConfigError(f"{ldap_name!r} holds a password: list {name!r} in export_only", key)
    if ldap_name.lower() == _UNICODE_PWD and not encrypted:
        raise ConfigError(
            "unicodePwd is written only over an encrypted connection: "
            "use an ldaps:// URL or start_tls = true",
            key,
        )


def password_fields(
    settings: LdapSettings, name: str, ldap_name: str, allowed: Mapping[str, str], key: str
) -> dict[str, Any]:
    """The fields of the LdapAttribute the password attribute ``ldap_name`` (its
    primary name) is served as; ConfigError when the settings do not allow it."""
    if ldap_name.lower() not in allowed:
        raise ConfigError(f"{ldap_name!r} is not allowed by the object classes", key)
    encrypted = settings.start_tls or settings.url.lower().startswith("ldaps:")
    check_password(name, ldap_name, settings.direction_of(name), encrypted, key)
    return {
        "name": name,
        "ldap_name": ldap_name,
        "data_type": DataType.STRING,
        "multi_valued": False,
        "case_exact": True,
        "direction": Direction.EXPORT_ONLY,
    }


def unicode_pwd(password: str) -> bytes:
    """AD's form: the password in double quotes, UTF-16LE."""
    return f'"{password}"'.encode("utf-16-le")


def _encoded(ldap_name: str, values: list[Any]) -> list[Any]:
    if ldap_name.lower() != _UNICODE_PWD:
        return values
    return [unicode_pwd(v) if isinstance(v, str) else v for v in values]


def encoded_add(attributes: Mapping[str, list[Any]]) -> dict[str, list[Any]]:
    """An add's attributes with a ``unicodePwd`` value in AD's form."""
    return {name: _encoded(name, values) for name, values in attributes.items()}


def encoded_modify(
    modifications: Mapping[str, list[tuple[str, list[Any]]]],
) -> dict[str, list[tuple[str, list[Any]]]]:
    """A modify's changes with a ``unicodePwd`` value in AD's form."""
    return {
        name: [(operation, _encoded(name, values)) for operation, values in changes]
        for name, changes in modifications.items()
    }
