"""Between directory entries and the connector's objects: the record an entry
imports as, and the add or the minimal modify that makes an entry hold a change."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ecmahost.connectors.base import Change, DataType, Direction, Record, Value, value_set
from ecmahost.connectors.ldap.dn import DnRefusedError, child_dn, parse_dn
from ecmahost.connectors.ldap.driver import MODIFY_REPLACE
from ecmahost.connectors.ldap.escape import escape_dn_value
from ecmahost.connectors.ldap.schema import DisableFlag, Layout, LdapAttribute
from ecmahost.connectors.ldap.settings import DN_PSEUDO_ATTRIBUTE

__all__ = [
    "Entry",
    "Plan",
    "desired_values",
    "entry_values",
    "given_dn",
    "new_entry",
    "plan_modify",
    "record",
]

Modifications = dict[str, list[tuple[str, list[str]]]]
"""ldap3's shape: LDAP attribute → [(operation, values)]."""


@dataclass(frozen=True, slots=True)
class Entry:
    """A directory entry as read: its DN and values by lower-cased LDAP name."""

    dn: str
    values: Mapping[str, Sequence[str]]

    def first(self, ldap_name: str) -> str | None:
        found = self.values.get(ldap_name.lower())
        return found[0] if found else None


@dataclass(frozen=True, slots=True)
class Plan:
    """What turns an entry into the change's state: an optional new RDN, then a modify."""

    new_rdn: str | None
    modifications: Modifications


def entry_values(raw: Mapping[str, Sequence[bytes]]) -> dict[str, list[str]]:
    """ldap3's raw attributes as text, by lower-cased name (``;binary`` and other
    options stripped)."""
    values: dict[str, list[str]] = {}
    for name, items in raw.items():
        if items:
            text = [item.decode("utf-8", errors="replace") for item in items]
            values.setdefault(name.split(";", 1)[0].lower(), []).extend(text)
    return values


def record(layout: Layout, entry: Entry) -> Record | None:
    """The entry as the connector serves it; None when it has no anchor value."""
    anchor = entry.dn if layout.dn_anchor else entry.first(layout.anchor.ldap_name)
    if anchor is None:
        return None
    attributes: dict[str, Value] = {}
    for attribute in layout.attributes:
        value = _imported(attribute, entry)
        if value is not None:
            attributes[attribute.name] = value
    if layout.serve_dn:
        attributes[DN_PSEUDO_ATTRIBUTE] = entry.dn
    flag = layout.flag
    if flag is not None and (enabled := _is_enabled(flag, entry)) is not None:
        attributes[flag.name] = enabled
    return Record(anchor, attributes)


def desired_values(layout: Layout, change: Change) -> dict[str, list[str]]:
    """The LDAP values (empty: absent) the change asks for, by LDAP name; ValueError
    for an attribute the layout does not serve or an anchor that disagrees.

    Import-only attributes are never asked for; an export-only one only when the
    change carries it (absent, the directory keeps what it holds)."""
    by_name = {a.name.lower(): a for a in layout.attributes}
    wanted: dict[str, list[str]] = {
        a.ldap_name: [] for a in layout.attributes if a.direction is Direction.IMPORT_EXPORT
    }
    flag = layout.flag
    for name, value in change.attributes.items():
        lower = name.lower()
        attribute = by_name.get(lower)
        if attribute is not None and attribute.direction is Direction.IMPORT_ONLY:
            continue
        if attribute is not None:
            wanted[attribute.ldap_name] = _to_ldap(value, attribute)
        elif not (lower == DN_PSEUDO_ATTRIBUTE and layout.serve_dn) and (
            flag is None or lower != flag.name.lower()
        ):
            raise ValueError(f"attribute {name!r} is not in the schema")
    if flag is not None:
        enabled = _flag_value(flag, change)
        wanted[flag.ldap_name] = [] if enabled is None else [enabled]
    for name in wanted:
        if name.lower() == "objectclass":  # served as a set: the entry keeps its classes
            wanted[name] = value_set([*layout.object_classes, *wanted[name]])
    if layout.anchor_assigned:
        wanted.pop(layout.anchor.ldap_name, None)  # the server's: never written
        return wanted
    anchor = wanted[layout.anchor.ldap_name]
    if anchor and anchor != [change.anchor]:
        raise ValueError(f"attribute {layout.anchor.name!r} is {anchor[0]!r}, not the anchor")
    wanted[layout.anchor.ldap_name] = [change.anchor]
    return wanted


def new_entry(
    layout: Layout, change: Change, container: str, base_dn: str
) -> tuple[str, dict[str, list[str]]]:
    """The DN and attributes of the entry an add creates: ``-dn-`` when the change
    carries one, else ``rdn=value`` under ``container``.

    A ``-dn-`` is the client's text: it is parsed, must name an entry strictly below
    ``base_dn`` (else no import would see it, and it could land anywhere the bind
    account may write), and is written as rebuilt from its parsed RDNs, so what the
    server reads is what was checked. ``DnRefusedError`` names the broken rule."""
    wanted = desired_values(layout, change)
    attributes: dict[str, list[str]] = {"objectClass": list(layout.object_classes)}
    attributes |= {name: values for name, values in wanted.items() if values}
    given = given_dn(change) if layout.serve_dn else None
    dn = None
    if given is not None:
        try:
            dn = child_dn(given, base_dn)
        except DnRefusedError as exc:
            raise DnRefusedError(f"{DN_PSEUDO_ATTRIBUTE} {exc}") from None
    if dn is None:
        rdn_value = wanted[layout.rdn.ldap_name]
        if not rdn_value:
            raise ValueError(f"attribute {layout.rdn.name!r}, which names the entry, is empty")
        dn = f"{layout.rdn.ldap_name}={escape_dn_value(rdn_value[0])},{container}"
    return dn, attributes


def plan_modify(layout: Layout, change: Change, entry: Entry) -> Plan:
    """The smallest modify that gives ``entry`` the change's values: an attribute is
    replaced only when its first value (all its values, for a set) differs, removed
    only when present. A set is replaced whole: one operation, whatever it held."""
    sets = {a.ldap_name: a for a in layout.attributes if a.as_set}
    modifications: Modifications = {}
    for name, values in desired_values(layout, change).items():
        if name.lower() == layout.anchor.ldap_name.lower():
            continue  # the anchor never changes; the entry was found by it
        held = _held(entry, name, sets.get(name))
        if held == values:
            continue
        modifications[name] = [(MODIFY_REPLACE, values)]
    return Plan(_new_rdn(layout, entry, modifications), modifications)


def _held(entry: Entry, ldap_name: str, as_set: LdapAttribute | None) -> list[str]:
    """What ``entry`` holds, in the form ``desired_values`` gives."""
    if as_set is None:
        first = entry.first(ldap_name)
        return [] if first is None else [first]
    held = entry.values.get(ldap_name.lower(), ())
    return value_set(held, case_exact=as_set.case_exact)


def _new_rdn(layout: Layout, entry: Entry, modifications: Modifications) -> str | None:
    """The new RDN when the attribute naming the entry changes (a rename), else None.

    An entry named by another attribute (created by someone else) is not renamed; the
    server then refuses a change of its naming value, with its own message.
    """
    rdn = layout.rdn
    change = modifications.get(rdn.ldap_name)
    if change is None or rdn is layout.anchor:
        return None
    values = change[0][1]
    named_by = parse_dn(entry.dn)[0]
    if not values or len(named_by) != 1 or named_by[0].type.lower() != rdn.ldap_name.lower():
        return None
    return f"{rdn.ldap_name}={escape_dn_value(values[0])}"


def given_dn(change: Change) -> str | None:
    """The ``-dn-`` the change carries, if any (the client's text, unchecked)."""
    for name, value in change.attributes.items():
        if name.lower() == DN_PSEUDO_ATTRIBUTE and isinstance(value, str) and value:
            return value
    return None


def _imported(attribute: LdapAttribute, entry: Entry) -> Value | None:
    if attribute.as_set:
        held = entry.values.get(attribute.ldap_name.lower(), ())
        return value_set(held, case_exact=attribute.case_exact) or None
    text = entry.first(attribute.ldap_name)
    return None if text is None else _from_ldap(text, attribute.data_type)


def _to_ldap(value: Value, attribute: LdapAttribute) -> list[str]:
    if isinstance(value, list):
        if not attribute.as_set:
            raise ValueError(f"attribute {attribute.name!r} holds one value, not a set")
        return value_set(value, case_exact=attribute.case_exact)
    if isinstance(value, bool):
        text = "TRUE" if value else "FALSE"
        boolean = attribute.data_type is DataType.BOOLEAN
        return [text if boolean else ("True" if value else "False")]
    return [str(value)]


def _from_ldap(text: str, data_type: DataType) -> Value | None:
    if data_type is DataType.BOOLEAN:
        upper = text.strip().upper()
        return True if upper == "TRUE" else False if upper == "FALSE" else None
    if data_type is DataType.INTEGER:
        try:
            return int(text.strip())
        except ValueError:
            return None
    return text


def _is_enabled(flag: DisableFlag, entry: Entry) -> bool | None:
    """False when disabled, True when enabled, None when the entry does not say."""
    held = {v.casefold() for v in entry.values.get(flag.ldap_name.lower(), ())}
    if flag.disabled_value.casefold() in held:
        return False
    if flag.enabled_value is None or flag.enabled_value.casefold() in held:
        return True
    return None


def _flag_value(flag: DisableFlag, change: Change) -> str | None:
    """The LDAP value for the change's Boolean; None (remove) when it has none."""
    name = flag.name.lower()
    enabled = next((v for k, v in change.attributes.items() if k.lower() == name), None)
    if enabled is None:
        return None
    if not isinstance(enabled, bool):
        raise ValueError(f"attribute {flag.name!r} must be a Boolean, got {enabled!r}")
    return flag.enabled_value if enabled else flag.disabled_value
