"""What the LDAP connector serves, worked out from the server's subschema.

The object classes (with their superclasses) say which attributes an entry may
hold; each attribute type's syntax (inherited from its supertype when it has none)
gives the connector's data type: Boolean, Integer, or String for every other
textual syntax. Binary syntaxes (photos, certificates) are never served; a password
(``userPassword``, ``unicodePwd``) is, write-only, when it is export-only (see
``password``).

An attribute is served as a single value, as in ECMA2Host, unless the settings'
``multi_valued`` names it: it is then a set of strings (a SCIM array) that an import
reads whole and an export writes whole. Only attributes the schema declares
multi-valued (no SINGLE-VALUE) may be named. Others the schema declares multi-valued
(``cn``, ``sn``, ``uid`` in the standard schemas) hold one value in nearly every
directory and in Entra's mappings, so they stay single unless named: an import shows
the first value the server returns, and an export writes the attribute only when
that first value differs, and then leaves it with exactly the one value.
``objectClass`` named there is served as a set too; an export writes it with the
configured ``object_classes`` always included, so the entry stays a served one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from ecmahost.connectors.base import Attribute, DataType, Direction, Schema
from ecmahost.connectors.direction import with_directions
from ecmahost.connectors.exceptions import ConfigError
from ecmahost.connectors.ldap.driver import SchemaInfo
from ecmahost.connectors.ldap.password import is_password, password_fields
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
    """What the server's schema says (no SINGLE-VALUE)."""
    case_exact: bool
    as_set: bool = False
    """Served as a set of values, because the settings' ``multi_valued`` names it."""
    direction: Direction = Direction.IMPORT_EXPORT


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
        entryUUID is among them: servers return those only when asked by name;
        export-only ones are never read)."""
        names = [a.ldap_name for a in self.attributes if a.direction is not Direction.EXPORT_ONLY]
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
    attributes = _sets(settings, types, attributes, key)
    assigned = anchor is _DN_ANCHOR or types.get(anchor.ldap_name, key).no_user_modification
    serve_dn = settings.serve_dn or anchor is _DN_ANCHOR
    schema = _schema(settings.object_type, anchor, attributes, flag, serve_dn, key, assigned)
    schema = with_directions(schema, settings, key)
    attributes = tuple(_directed(a, schema) for a in attributes)
    if anchor is not _DN_ANCHOR:
        anchor = attributes[0]
    rdn = _rdn(settings, types, attributes, key)
    return Layout(schema, attributes, anchor, rdn, flag, tuple(settings.object_classes), serve_dn)


def _directed(attribute: LdapAttribute, schema: Schema) -> LdapAttribute:
    served = schema.get(attribute.name)
    if served is None or served.direction is attribute.direction:
        return attribute
    return replace(attribute, direction=served.direction)


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

    def describe(
        self, name: str, connector_name: str, key: str, *, read_only: bool = False
    ) -> LdapAttribute | None:
        """The attribute, or None when its syntax is binary. One the server assigns
        is refused unless ``read_only`` (import-only) says it is never written."""
        attribute_type = self.get(name, key)
        if attribute_type.no_user_modification and not read_only:
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
        read_only = settings.direction_of(name) is Direction.IMPORT_ONLY
        found = primary(types.get(ldap_name, where))
        if is_password(found):  # a binary syntax, yet served: written only
            attribute = LdapAttribute(**password_fields(settings, name, found, allowed, where))
        else:
            attribute = _explicit(types, allowed, name, ldap_name, where, taken, read_only)
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
    read_only: bool = False,
) -> LdapAttribute:
    attribute_type = types.get(ldap_name, key)
    # An import-only operational attribute (createTimestamp, entryUUID) belongs to no
    # object class, yet every entry has it.
    if attribute_type.no_user_modification and not read_only:
        raise ConfigError(
            f"{ldap_name!r} is assigned by the server: list {name!r} in import_only", key
        )
    operational = read_only and _operational(attribute_type)
    if primary(attribute_type).lower() not in allowed and not operational:
        raise ConfigError(f"{ldap_name!r} is not allowed by the object classes", key)
    if ldap_name.lower() in _NEVER_SERVED:
        raise ConfigError(f"{ldap_name!r} is written from object_classes", key)
    attribute = types.describe(ldap_name, name, key, read_only=read_only)
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


def _sets(
    settings: LdapSettings, types: _Types, attributes: tuple[LdapAttribute, ...], key: str
) -> tuple[LdapAttribute, ...]:
    """The attributes with those ``multi_valued`` names served as sets, and
    ``objectClass`` added when it is named."""
    named = {name.lower(): name for name in settings.multi_valued}
    where = f"{key}.multi_valued"
    served = list(attributes)
    object_class = None
    if named.pop("objectclass", None) is not None:
        object_class = types.describe("objectClass", "objectClass", where)
        if object_class is None:
            raise ConfigError("the server's objectClass has a binary syntax", where)
        served.append(object_class)
    for index, attribute in enumerate(served):
        if attribute is object_class or attribute.name.lower() in named:
            served[index] = _as_set(settings, types, attribute, where)
            named.pop(attribute.name.lower(), None)
    if named:
        raise ConfigError(f"{sorted(named.values())} are not served attributes", where)
    return tuple(served)


def _as_set(
    settings: LdapSettings, types: _Types, attribute: LdapAttribute, key: str
) -> LdapAttribute:
    if not attribute.multi_valued:
        raise ConfigError(f"{attribute.ldap_name!r} is SINGLE-VALUE in the server's schema", key)
    if attribute.data_type is not DataType.STRING:
        raise ConfigError(f"{attribute.ldap_name!r}: only String attributes hold sets", key)
    name = attribute.ldap_name
    if types.same(name, settings.anchor) or types.same(name, settings.rdn_attribute):
        raise ConfigError(f"{attribute.ldap_name!r} names the entry: it holds one value", key)
    return replace(attribute, as_set=True)


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
            multi_valued=a.as_set,
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
