"""SCIM PATCH (RFC 7644 §3.5.2) in Entra's dialects, on a flat attribute mapping.

Hand-written rather than taken from scim2-models: the extension schema is
different for every connector and only known at run time, and Entra's dialect
(capitalised ops, booleans as strings, path-less ops whose keys are URN paths)
must be accepted where a strict model rejects it. The resource is flat
(single-valued attributes), which keeps this small.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ecmahost.connectors.base import Value
from ecmahost.engine.exceptions import ScimError
from ecmahost.engine.scim.resource import EXTENSION, ResourceMapper

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
        mapper.assign(attributes, path, None)
    elif path:
        mapper.assign(attributes, path, value)
    else:
        _apply_pathless(mapper, attributes, index, value)


def _apply_pathless(
    mapper: ResourceMapper, attributes: dict[str, Value], index: int, value: Any
) -> None:
    """A path-less add/replace: each key is an attribute path, or the extension URN
    holding an object of attributes."""
    if not isinstance(value, Mapping):
        raise ScimError(400, f"Operations[{index}].value must be an object", "invalidValue")
    for key, item in value.items():
        if key in ("schemas", "meta", "id"):
            continue
        if key.lower() == EXTENSION.lower() and isinstance(item, Mapping):
            for name, sub_value in item.items():
                if name not in ("schemas", "meta", "id"):
                    mapper.assign(attributes, f"{EXTENSION}:{name}", sub_value)
        else:
            mapper.assign(attributes, key, item)
