"""The values of a multi-valued attribute as a set: what a request's array becomes,
and the union and difference a PATCH ``add`` and ``remove`` make of two sets.

A set is kept as a sorted list of distinct strings (the ``Value`` a connector and
the connector space see), so two requests naming the same values in another order
store, index and export the same thing. Values differing only in case are one
value unless the attribute is case-exact, as in an LDAP directory's matching rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ecmahost.connectors.base import Attribute, value_set
from ecmahost.engine.exceptions import ScimError

__all__ = ["as_set", "difference", "items_of", "union"]


def items_of(value: Any) -> list[Any]:
    """A request value as a list of items: an array as is, anything else as one item;
    null and ``""`` items are left out (RFC 7643 §2.5: they are no value)."""
    items = value if isinstance(value, list) else [value]
    return [item for item in items if item is not None and item != ""]


def as_set(attribute: Attribute, value: Any) -> list[str] | None:
    """The set ``value`` (an array, or one value) gives the multi-valued ``attribute``;
    None (absent) when it holds no value. 400 naming the attribute for an item that
    is not a string, number, boolean or ``{"value": …}`` object."""
    texts = [_text(attribute, item) for item in items_of(value)]
    return _canonical(attribute, [t for t in texts if t]) or None


def union(attribute: Attribute, current: Any, added: Iterable[str]) -> list[str]:
    return _canonical(attribute, [*_held(current), *added])


def difference(attribute: Attribute, current: Any, removed: Iterable[str]) -> list[str] | None:
    """``current`` without ``removed``; None once nothing is left."""
    gone = {_key(attribute, v) for v in removed}
    kept = [v for v in _held(current) if _key(attribute, v) not in gone]
    return _canonical(attribute, kept) or None


def _held(current: Any) -> list[str]:
    if current is None:
        return []
    return [str(v) for v in current] if isinstance(current, list) else [str(current)]


def _text(attribute: Attribute, item: Any) -> str:
    if isinstance(item, Mapping):  # SCIM's complex form of a multi-valued item
        item = next((v for k, v in item.items() if str(k).lower() == "value"), None)
    if isinstance(item, bool):
        return "True" if item else "False"
    if isinstance(item, int | float | str):
        return str(item)
    if item is None:
        return ""
    raise ScimError(400, f"{attribute.name}: expected strings", "invalidValue")


def _key(attribute: Attribute, text: str) -> str:
    return text if attribute.case_exact else text.casefold()


def _canonical(attribute: Attribute, texts: Iterable[str]) -> list[str]:
    return value_set(texts, case_exact=attribute.case_exact)
