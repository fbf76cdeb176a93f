"""What the LDAP connector serves, worked out from the server's subschema.

The object classes (with their superclasses) say which attributes an entry may
hold; each attribute type's syntax (inherited from its supertype when it has none)
gives the connector's data type: Boolean, Integer, or String for every other
textual syntax. Binary syntaxes (photos, certificates, passwords) are never served.

Every attribute is served as a single value, as in ECMA2Host. Attributes the
schema declares multi-valued (``cn``, ``mail``, ``uid`` in the standard schemas)
are served too: an import shows the first value the server returns, and an export
writes the attribute only when that first value differs, and then leaves it with
exactly the one value.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from ecmahost.connectors.base import Attribute, DataType, Schema
from ecmahost.connectors.exceptions import ConfigError
from ecmahost.connectors.ldap.driver import SchemaInfo
from ecmahost.connectors.ldap.settings import DN_PSEUDO_ATTRIBUTE, LdapSettings

__all__ = ["DisableFlag", "Layout", "LdapAttribute", "discover"]

_SYNTAX = "1.3.6.1.4.1.1466.115.121.1."
_BOOLEAN_SYNTAX = _SYNTAX + "7"
_INTEGER_SYNTAX = _SYNTAX + "27"
_BINARY_SYNTAXES = frozenset(
    _SYNTAX + number
    for number in (
        "4",  # Audio
        "5",  # Binary
        "8",  # Certificate
        "9",  # Certificate List
        "10",  # Certificate Pair
        "23",  # Fax
        "28",  # JPEG
        "40",  # Octet String (userPassword among others)
        "49",  # Supported Algorithm
    )
)
_NEVER_SERVED = frozenset({"objectclass"})
"""Written by the connector itself from ``object_classes``."""


@dataclass(frozen=True, slots=True)
class LdapAttribute:
    """A connector attribute stored in the LDAP attribute ``ldap_name``."""

    name: str
    ldap_name: str
    data_type: DataType
    multi_valued: bool
    case_exact: bool


@dataclass(frozen=True, slots=True)
class DisableFlag:
    """The Boolean connector attribute ``name``, stored as values of ``ldap_name``."""

    name: str
    ldap_name: str
    disabled_value: str
    enabled_value: str | None


@dataclass(frozen=True, slots=True)
class Layout:
    """The served schema and where each of its attributes lives in an entry."""

    schema: Schema
    attributes: tuple[LdapAttribute, ...]
    """The LDAP-backed attributes, the anchor first; ``-dn-`` and the flag aside."""
    anchor: LdapAttribute
    rdn: LdapAttribute
    flag: DisableFlag | None
    object_classes: tuple[str, ...]
    serve_dn: bool

    @property
    def requested(self) -> list[str]:
        """The LDAP attributes a search must return (an operational anchor such as
        entryUUID is among them: servers return those only when asked by name)."""
        names = [a.ldap_name for a in self.attributes]
        return names + ([self.flag.ldap_name] if self.flag else [])

    @property
    def dn_anchor(self) -> bool:
        """The entry's DN is the anchor (``anchor = "-dn-"``, ECMA2Host's IsDNAsAnchor)."""
        return self.anchor.ldap_name == DN_PSEUDO_ATTRIBUTE

    @property
    def anchor_assigned(self) -> bool:
        """The server assigns the anchor: the DN, or an attribute such as entryUUID."""
        return self.schema.anchor.assigned

    @property
    def class_filter(self) -> str:
        """The filter every served entry matches."""
        return "(&" + "".join(f"(objectClass={name})" for name in self.object_classes) + ")"


_DN_ANCHOR = LdapAttribute(DN_PSEUDO_ATTRIBUTE, DN_PSEUDO_ATTRIBUTE, DataType.STRING, False, False)
"""The anchor of ``anchor = "-dn-"``: the entry's DN, which no attribute holds."""


def discover(info: SchemaInfo | None, settings: LdapSettings, key: str) -> Layout:
    """The layout ``settings`` ask for, checked against the subschema ``info``;
    ``key`` is the settings' dotted path, for ConfigError messages."""
    if info is None or not info.attribute_types or not info.object_classes:
        raise ConfigError("the server did not publish its schema (subschemaSubentry)", key)
    types = _Types(info)
    allowed = _allowed(info, settings.object_classes, f"{key}.object_classes")
    flag = _flag(settings, types, allowed, key)
    if flag is not None and types.same(flag.ldap_name, settings.anchor):
        raise ConfigError("the anchor cannot also be the disable flag", f"{key}.anchor")
    mapped = _mapped(settings, types, allowed, {flag.ldap_name.lower()} if flag else set(), key)
    if settings.anchor.lower() == DN_PSEUDO_ATTRIBUTE:
        anchor = _DN_ANCHOR
        attributes = tuple(mapped)
    else:
        found = _anchor(settings, types, allowed, mapped, key)
        # Anchors are text to the host, whatever the attribute's syntax.
        anchor = replace(found, data_type=DataType.STRING)
        attributes = (anchor, *(a for a in mapped if a is not found))
    assigned = anchor is _DN_ANCHOR or types.get(anchor.ldap_name, key).no_user_modification
    serve_dn = settings.serve_dn or anchor is _DN_ANCHOR
    rdn = _rdn(settings, types, attributes, key)
    schema = _schema(settings.object_type, anchor, attributes, flag, serve_dn, key, assigned)
    return Layout(schema, attributes, anchor, rdn, flag, tuple(settings.object_classes), serve_dn)


class _Types:
    """The subschema's attribute types, by any of their names."""

    def __init__(self, info: SchemaInfo) -> None:
        self._types: Mapping[str, Any] = info.attribute_types

    def same(self, one: str, other: str) -> bool:
        """Whether two names (aliases included) name the same attribute type."""
        first = self._types.get(one) if one in self._types else None
        second = self._types.get(other) if other in self._types else None
        return first is not None and first is second

    def get(self, name: str, key: str) -> Any:
        found = self._types.get(name) if name in self._types else None
        if found is None:
            raise ConfigError(f"the server's schema has no attribute type {name!r}", key)
        return found

    def syntax(self, attribute_type: Any) -> str | None:
        seen: set[str] = set()
        while attribute_type is not None:
            if attribute_type.syntax:
                return str(attribute_type.syntax)
            superior = (attribute_type.superior or [None])[0]
            if superior is None or superior.lower() in seen:
                return None
            seen.add(superior.lower())
            attribute_type = self._types.get(superior) if superior in self._types else None
        return None

    def describe(self, name: str, connector_name: str, key: str) -> LdapAttribute | None:
        """The attribute, or None when its syntax is binary."""
        attribute_type = self.get(name, key)
        if attribute_type.no_user_modification:
            raise ConfigError(
                f"{primary(attribute_type)!r} is assigned by the server and cannot be written",
                key,
            )
        syntax = self.syntax(attribute_type)
        if syntax in _BINARY_SYNTAXES:
            return None
        data_type = {_BOOLEAN_SYNTAX: DataType.BOOLEAN, _INTEGER_SYNTAX: DataType.INTEGER}.get(
            syntax or "", DataType.STRING
        )
        rules = " ".join(attribute_type.equality or []).lower()
        return LdapAttribute(
            connector_name,
            primary(attribute_type),
            data_type,
            not attribute_type.single_value,
            "caseexact" in rules or "octetstring" in rules,
        )


def _operational(attribute_type: Any) -> bool:
    return attribute_type.usage not in (None, "USER_APPLICATIONS")


def primary(attribute_type: Any) -> str:
    """An attribute type's first name, which servers return in results."""
    return str(attribute_type.name[0])


def _allowed(info: SchemaInfo, classes: tuple[str, ...], key: str) -> dict[str, str]:
    """Lower-cased names (every alias) → the primary name, MUST before MAY."""
    must: list[str] = []
    may: list[str] = []
    for object_class in _with_superiors(info, classes, key):
        must.extend(object_class.must_contain or [])
        may.extend(object_class.may_contain or [])
    allowed: dict[str, str] = {}
    for name in must + may:
        attribute_type = info.attribute_types.get(name) if name in info.attribute_types else None
        names = attribute_type.name if attribute_type is not None else [name]
        for alias in names:
            allowed.setdefault(alias.lower(), names[0])
    return allowed


def _with_superiors(info: SchemaInfo, classes: tuple[str, ...], key: str) -> Iterator[Any]:
    pending, seen = list(classes), set()
    while pending:
        name = pending.pop(0)
        if name.lower() in seen:
            continue
        seen.add(name.lower())
        object_class = info.object_classes.get(name) if name in info.object_classes else None
        if object_class is None:
            raise ConfigError(f"the server's schema has no object class {name!r}", key)
        yield object_class
        pending.extend(object_class.superior or [])


def _mapped(
    settings: LdapSettings,
    types: _Types,
    allowed: Mapping[str, str],
    taken: set[str],
    key: str,
) -> list[LdapAttribute]:
    if settings.attributes is None:
        primaries = dict.fromkeys(allowed.values())  # ordered, without aliases
        described = (
            types.describe(name, name, key)
            for name in primaries
            if name.lower() not in _NEVER_SERVED | taken
            and not types.get(name, key).no_user_modification
        )
        return [a for a in described if a is not None]
    mapped: list[LdapAttribute] = []
    for name, ldap_name in settings.attributes.items():
        where = f"{key}.attributes.{name}"
        attribute = _explicit(types, allowed, name, ldap_name, where, taken)
        taken.add(attribute.ldap_name.lower())
        mapped.append(attribute)
    return mapped


def _explicit(
    types: _Types,
    allowed: Mapping[str, str],
    name: str,
    ldap_name: str,
    key: str,
    taken: set[str],
) -> LdapAttribute:
    attribute_type = types.get(ldap_name, key)
    if primary(attribute_type).lower() not in allowed:
        raise ConfigError(f"{ldap_name!r} is not allowed by the object classes", key)
    if ldap_name.lower() in _NEVER_SERVED:
        raise ConfigError(f"{ldap_name!r} is written from object_classes", key)
    attribute = types.describe(ldap_name, name, key)
    if attribute is None:
        raise ConfigError(f"{ldap_name!r} has a binary syntax, which is not served", key)
    if attribute.ldap_name.lower() in taken:
        raise ConfigError(f"{attribute.ldap_name!r} is already mapped or the disable flag", key)
    return attribute


def _anchor(
    settings: LdapSettings,
    types: _Types,
    allowed: Mapping[str, str],
    mapped: list[LdapAttribute],
    key: str,
) -> LdapAttribute:
    where = f"{key}.anchor"
    attribute_type = types.get(settings.anchor, where)
    ldap_name = primary(attribute_type)
    if attribute_type.no_user_modification:
        # Assigned by the server (entryUUID, nsUniqueId, objectGUID): read, never
        # written; served under its LDAP name.
        return LdapAttribute(ldap_name, ldap_name, DataType.STRING, False, False)
    for attribute in mapped:
        if attribute.ldap_name.lower() == ldap_name.lower():
            return attribute
    if settings.attributes is None or ldap_name.lower() not in allowed:
        raise ConfigError(f"{ldap_name!r} is not allowed by the object classes", where)
    anchor = types.describe(ldap_name, ldap_name, where)
    if anchor is None:
        raise ConfigError(f"{ldap_name!r} has a binary syntax", where)
    return anchor  # served under its LDAP name, since no connector name was mapped to it


def _rdn(
    settings: LdapSettings, types: _Types, attributes: tuple[LdapAttribute, ...], key: str
) -> LdapAttribute:
    where = f"{key}.rdn_attribute"
    ldap_name = primary(types.get(settings.rdn_attribute, where))
    for attribute in attributes:
        if attribute.ldap_name.lower() == ldap_name.lower():
            return attribute
    raise ConfigError(
        f"{ldap_name!r} names new entries, so it must be a served attribute: map it", where
    )


def _flag(
    settings: LdapSettings, types: _Types, allowed: Mapping[str, str], key: str
) -> DisableFlag | None:
    disable = settings.disable
    if disable is None:
        return None
    where = f"{key}.disable.ldap_attribute"
    attribute_type = types.get(disable.ldap_attribute, where)
    ldap_name = primary(attribute_type)
    if attribute_type.no_user_modification:
        raise ConfigError(f"{ldap_name!r} is assigned by the server", where)
    # An operational attribute an administrator may set, such as OpenLDAP's
    # pwdAccountLockedTime, belongs to no object class but can hold the flag.
    if ldap_name.lower() not in allowed and not _operational(attribute_type):
        raise ConfigError(f"{ldap_name!r} is not allowed by the object classes", where)
    names = [*(settings.attributes or {}), DN_PSEUDO_ATTRIBUTE]
    if any(name.lower() == disable.attribute.lower() for name in names):
        raise ConfigError(f"{disable.attribute!r} is also a mapped attribute", f"{key}.disable")
    return DisableFlag(disable.attribute, ldap_name, disable.disabled_value, disable.enabled_value)


def _schema(
    object_type: str,
    anchor: LdapAttribute,
    attributes: tuple[LdapAttribute, ...],
    flag: DisableFlag | None,
    serve_dn: bool,
    key: str,
    assigned: bool = False,
) -> Schema:
    served = [
        Attribute(
            a.name,
            a.data_type,
            is_anchor=a is anchor,
            case_exact=a.case_exact,
            assigned=assigned and a is anchor,
        )
        for a in attributes
    ]
    if serve_dn:
        dn_anchor = anchor is _DN_ANCHOR
        served.append(Attribute(DN_PSEUDO_ATTRIBUTE, is_anchor=dn_anchor, assigned=dn_anchor))
    if flag is not None:
        served.append(Attribute(flag.name, DataType.BOOLEAN))
    lowered = [a.name.lower() for a in served]
    duplicate = next((n for n in lowered if lowered.count(n) > 1), None)
    if duplicate is not None:
        raise ConfigError(f"two attributes are named {duplicate!r} (names ignore case)", key)
    return Schema(object_type, tuple(served))
