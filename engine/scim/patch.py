"""SCIM PATCH (RFC 7644 §3.5.2) in Entra's dialects, on a flat attribute mapping.

Hand-written rather than taken from scim2-models: the extension schema is
different for every connector and only known at run time, and Entra's dialect
(capitalised ops, booleans as strings, path-less ops whose keys are URN paths)
must be accepted where a strict model rejects it. The resource is flat: an
attribute holds one value, or a set of strings when multi-valued. On a set, ``add``
adds values, ``remove`` with a value (or the path ``mail[value eq "x"]``) takes
those values out, and ``replace`` or ``remove`` without one act on the whole set.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ecmahost.connectors.base import Attribute, Value
from ecmahost.engine.exceptions import ScimError
from ecmahost.engine.scim.filter import Compare, ValuePath, parse_filter
from ecmahost.engine.scim.resource import EXTENSION, ResourceMapper
from ecmahost.engine.scim.value_set import as_set, difference, union

__all__ = ["apply_patch"]

_OPS = frozenset({"add", "replace", "remove"})


def apply_patch(
    mapper: ResourceMapper, current: Mapping[str, Value], body: Any
) -> dict[str, Value]:
    """The attributes after every operation of ``body``, applied in order. All or
    nothing: any bad operation raises ScimError and nothing is applied."""
    operations = _operations(body)
    attributes = dict(current)
    for index, operation in enumerate(operations):
        _apply_one(mapper, attributes, index, operation)
    return attributes


def _operations(body: Any) -> list[Any]:
    if not isinstance(body, Mapping):
        raise ScimError(400, "the body must be a JSON object", "invalidSyntax")
    operations = next((v for k, v in body.items() if k.lower() == "operations"), None)
    if not isinstance(operations, list) or not operations:
        raise ScimError(400, "Operations must be a non-empty list", "invalidSyntax")
    return operations


def _apply_one(
    mapper: ResourceMapper, attributes: dict[str, Value], index: int, operation: Any
) -> None:
    if not isinstance(operation, Mapping):
        raise ScimError(400, f"Operations[{index}] must be an object", "invalidSyntax")
    fields = {str(k).lower(): v for k, v in operation.items()}
    op = fields.get("op")
    if not isinstance(op, str) or op.lower() not in _OPS:
        raise ScimError(
            400, f"Operations[{index}].op must be add, replace or remove", "invalidSyntax"
        )
    path, value = fields.get("path"), fields.get("value")
    if path is not None and not isinstance(path, str):
        raise ScimError(400, f"Operations[{index}].path must be a string", "invalidPath")
    if path and path.lower() == EXTENSION.lower():  # the whole extension object
        path, value = None, {EXTENSION: value if op.lower() != "remove" else {}}
        if op.lower() == "remove":
            raise ScimError(
                400, f"{EXTENSION} holds the anchor: it cannot be removed", "mutability"
            )
    if op.lower() == "remove":
        if not path:
            raise ScimError(400, f"Operations[{index}]: remove needs a path", "noTarget")
        _remove(mapper, attributes, path, value)
    elif path and "[" in path:
        # Sets hold plain strings: a filter names values to remove, nothing to change.
        raise ScimError(
            400, f"Operations[{index}]: a value filter in the path is for remove", "invalidPath"
        )
    elif path and op.lower() == "add":
        _add(mapper, attributes, path, value)
    elif path:
        mapper.assign(attributes, path, value)
    else:
        _apply_pathless(mapper, attributes, index, value, adds=op.lower() == "add")


def _apply_pathless(
    mapper: ResourceMapper, attributes: dict[str, Value], index: int, value: Any, *, adds: bool
) -> None:
    """A path-less add/replace: each key is an attribute path, or the extension URN
    holding an object of attributes. ``adds``: values join a set rather than replace it."""
    if not isinstance(value, Mapping):
        raise ScimError(400, f"Operations[{index}].value must be an object", "invalidValue")
    put = _add if adds else _replace
    for key, item in value.items():
        if key in ("schemas", "meta", "id"):
            continue
        if key.lower() == EXTENSION.lower() and isinstance(item, Mapping):
            for name, sub_value in item.items():
                if name not in ("schemas", "meta", "id"):
                    put(mapper, attributes, f"{EXTENSION}:{name}", sub_value)
        else:
            put(mapper, attributes, key, item)


def _replace(mapper: ResourceMapper, attributes: dict[str, Value], path: str, value: Any) -> None:
    mapper.assign(attributes, path, value)


def _multi_valued(mapper: ResourceMapper, path: str) -> Attribute | None:
    target = mapper.resolve(path)
    return target if isinstance(target, Attribute) and target.multi_valued else None


def _add(mapper: ResourceMapper, attributes: dict[str, Value], path: str, value: Any) -> None:
    """``add`` sets a single value, and adds to a set (RFC 7644 §3.5.2.1)."""
    target = _multi_valued(mapper, path)
    if target is None:
        mapper.assign(attributes, path, value)
        return
    added = as_set(target, value) or []
    combined = union(target, attributes.get(target.name), added)
    if combined:
        attributes[target.name] = combined


def _remove(mapper: ResourceMapper, attributes: dict[str, Value], path: str, value: Any) -> None:
    """``remove`` clears an attribute; on a set, given values (in ``value`` or a
    ``[value eq "x"]`` filter) leave the others in place."""
    attribute_path, chosen = _value_filter(path)
    target = _multi_valued(mapper, attribute_path)
    if target is None:
        if chosen is not None:
            raise ScimError(400, f"{attribute_path} is not multi-valued", "invalidPath")
        mapper.assign(attributes, attribute_path, None)
        return
    if chosen is None and value not in (None, "", []):
        chosen = as_set(target, value) or []
    left = None if chosen is None else difference(target, attributes.get(target.name), chosen)
    if left is None:
        attributes.pop(target.name, None)
    else:
        attributes[target.name] = left


def _value_filter(path: str) -> tuple[str, list[str] | None]:
    """(attribute path, values named) of ``attr[value eq "x"]``; (path, None) for a
    path without a filter. Only ``value eq`` names values: a set holds strings."""
    if "[" not in path:
        return path, None
    node = parse_filter(path)
    if (
        isinstance(node, ValuePath)
        and isinstance(node.filter, Compare)
        and node.filter.attr.name.lower() == "value"
        and node.filter.op == "eq"
        and node.filter.value is not None
    ):
        return str(node.attr), [str(node.filter.value)]
    raise ScimError(400, f"unsupported value filter in path {path!r}", "invalidPath")
