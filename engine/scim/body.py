"""Request bodies: JSON parsed and checked before any handler sees it.

A client's mistake must be a 400, never a 500 from deep in the stack, so every body
is refused up front when it nests deeper than :data:`MAX_DEPTH`, holds an integer
outside 64 bits, a number that is not finite or a string that is not valid Unicode.
The check walks the parsed value with an explicit stack: a recursive walk would
itself fail on the deep bodies it is there to refuse.
"""

from __future__ import annotations

import json
from typing import Any, Final

import orjson
from ecmahost.engine.exceptions import ScimError

__all__ = ["INT64_MAX", "INT64_MIN", "MAX_DEPTH", "json_path", "parse_body"]

MAX_DEPTH: Final = 64
"""Deepest nesting of arrays and objects taken; a SCIM body needs 4."""
INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
"""What the connector space (SQLite INTEGER) and the targets hold exactly."""

_Path = tuple[str | int, ...]


def parse_body(raw: bytes) -> Any:
    """The JSON value of ``raw``; 400 ``invalidSyntax`` for text that is not JSON
    (NaN, Infinity and lone surrogates included: orjson refuses them), 400
    ``invalidValue`` naming the JSON path of a value outside the limits."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ScimError(400, f"the body is not valid JSON: {exc}", "invalidSyntax") from None
    if _walk(value):
        # orjson reads an integer beyond 64 bits as a float, silently rounded; only
        # then is the text read again with its integers exact, to refuse them.
        _walk(json.loads(raw, parse_int=int))
    return value


def _walk(value: Any) -> bool:
    """Check every value in ``value``; whether any is a float."""
    stack: list[tuple[Any, _Path]] = [(value, ())]
    saw_float = False
    while stack:
        item, path = stack.pop()
        if isinstance(item, dict | list):
            if len(path) >= MAX_DEPTH:
                raise _refused(path, f"nests deeper than {MAX_DEPTH} levels")
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            stack.extend((child, (*path, key)) for key, child in pairs)
        elif isinstance(item, bool):
            continue
        elif isinstance(item, int):
            if not INT64_MIN <= item <= INT64_MAX:
                raise _refused(path, "is an integer outside 64 bits")
        elif isinstance(item, float):
            saw_float = True
    return saw_float


def _refused(path: _Path, why: str) -> ScimError:
    return ScimError(400, f"the value at {json_path(path)} {why}", "invalidValue")


def json_path(path: _Path) -> str:
    """``$.name.0`` style, with keys cut short: the path names, it does not echo."""
    parts = ["$", *(str(part)[:40] for part in path[:8])]
    return ".".join(parts) + (".…" if len(path) > 8 else "")
