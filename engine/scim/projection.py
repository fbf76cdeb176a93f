"""``attributes`` and ``excludedAttributes`` (RFC 7644 §3.4.2.5) on rendered Users."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from ecmahost.engine.exceptions import ScimError
from ecmahost.engine.scim.resource import CORE_USER, EXTENSION, ResourceMapper, split_urn

__all__ = ["parse_attribute_list", "project"]

_ALWAYS = ("schemas", "id")
"""Returned whatever the request asks (``returned: always``)."""

MAX_NAMES: Final = 100
"""Most attribute names one request lists; a User has far fewer."""


def parse_attribute_list(value: Any, name: str = "attributes") -> list[str]:
    """A comma-separated query value, or a JSON list of strings from a .search body;
    400 naming the parameter ``name`` for anything else or more than :data:`MAX_NAMES`."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise ScimError(400, f"{name} must be a list of attribute names", "invalidValue")
    names = [item.strip() for item in items if item.strip()]
    if len(names) > MAX_NAMES:
        raise ScimError(400, f"{name} lists more than {MAX_NAMES} names", "invalidValue")
    return names


def project(
    resource: dict[str, Any],
    mapper: ResourceMapper,
    attributes: Sequence[str] = (),
    excluded: Sequence[str] = (),
) -> dict[str, Any]:
    """Only the named attributes (plus id and schemas), or all but the excluded ones."""
    if attributes:
        kept = {key: resource[key] for key in _ALWAYS if key in resource}
        for path in attributes:
            _copy(resource, kept, _locate(resource, mapper, path))
        return kept
    if excluded:
        trimmed = {k: dict(v) if isinstance(v, dict) else v for k, v in resource.items()}
        for path in excluded:
            _drop(trimmed, _locate(resource, mapper, path))
        return trimmed
    return resource


def _locate(
    resource: dict[str, Any], mapper: ResourceMapper, path: str
) -> tuple[str, str | None] | None:
    """(top-level key, sub-key) of ``path`` in ``resource``; None if it has none."""
    urn, name = split_urn(path)
    if urn is not None and urn.lower() == EXTENSION.lower():
        attribute = mapper.schema.get(name)
        return (EXTENSION, attribute.name) if attribute else None
    if urn is not None and urn.lower() != CORE_USER.lower():
        return None
    top, _, sub = name.partition(".")
    for key in resource:
        if key.lower() == top.lower():
            return key, _sub_key(resource[key], sub)
    attribute = mapper.schema.get(name)  # a bare extension attribute name
    return (EXTENSION, attribute.name) if attribute else None


def _sub_key(value: Any, sub: str) -> str | None:
    if not sub or not isinstance(value, dict):
        return None
    return next((k for k in value if k.lower() == sub.lower()), sub)


def _copy(
    source: dict[str, Any], target: dict[str, Any], where: tuple[str, str | None] | None
) -> None:
    if where is None or where[0] not in source:
        return
    top, sub = where
    if sub is None:
        target[top] = source[top]
    elif sub in source[top]:
        target.setdefault(top, {})[sub] = source[top][sub]


def _drop(resource: dict[str, Any], where: tuple[str, str | None] | None) -> None:
    if where is None or where[0] in _ALWAYS:
        return
    top, sub = where
    if sub is None:
        resource.pop(top, None)
    elif isinstance(resource.get(top), dict):
        resource[top].pop(sub, None)
