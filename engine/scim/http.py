"""SCIM over HTTP: the plumbing every handler shares (responses, errors, the
connector a request is for and its token, request bodies and query values)."""

from __future__ import annotations

import hmac
import json
from typing import Any, Final

import orjson
from aiohttp import web
from ecmahost.engine.exceptions import ScimError
from ecmahost.engine.host import ConnectorRuntime, Host
from ecmahost.engine.space.store import ConnectorSpace

__all__ = [
    "ERROR_SCHEMA",
    "HOST_KEY",
    "SCIM_JSON",
    "base_url",
    "bearer_matches",
    "error_response",
    "json_body",
    "query_int",
    "require_bearer",
    "runtime_for",
    "scim_response",
    "space_of",
]

HOST_KEY: Final = web.AppKey("host", Host)
SCIM_JSON: Final = "application/scim+json"
ERROR_SCHEMA: Final = "urn:ietf:params:scim:api:messages:2.0:Error"
_JSON_TYPES: Final = frozenset({"application/json", SCIM_JSON})


def scim_response(
    data: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=_json_bytes(data),
        status=status,
        headers=headers,
        content_type=SCIM_JSON,
        charset="utf-8",
    )


def _json_bytes(data: dict[str, Any]) -> bytes:
    """UTF-8 JSON; orjson writes a page of 100 users several times faster than the
    standard library, which still takes what orjson refuses (integers beyond 64
    bits, strings that are not valid Unicode)."""
    try:
        return orjson.dumps(data)
    except orjson.JSONEncodeError:
        return json.dumps(data, ensure_ascii=False).encode("utf-8")


def error_response(
    status: int, detail: str, scim_type: str | None = None, headers: dict[str, str] | None = None
) -> web.Response:
    body: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(status), "detail": detail}
    if scim_type:
        body["scimType"] = scim_type
    return scim_response(body, status, headers)


def runtime_for(request: web.Request) -> ConnectorRuntime:
    """The connector the URL names, once the request's bearer token is its own
    (compared in constant time; another connector's token is refused)."""
    name = request.match_info["connector"]
    runtime = request.app[HOST_KEY].runtimes.get(name)
    if runtime is None:
        raise ScimError(404, f"no connector named {name!r} on this host")
    require_bearer(request, runtime.config.token.get_secret_value(), "bearer token")
    return runtime


def bearer_matches(request: web.Request, expected: str) -> bool:
    """Whether the request's bearer token is ``expected``, compared in constant time."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        token.strip().encode(), expected.encode()
    )


def require_bearer(request: web.Request, expected: str, what: str) -> None:
    """401 (``missing or invalid {what}``) unless the bearer token is ``expected``."""
    if not bearer_matches(request, expected):
        raise ScimError(401, f"missing or invalid {what}", headers={"WWW-Authenticate": "Bearer"})


async def json_body(request: web.Request) -> Any:
    """The request's JSON body; 415 for a body that says it is something else."""
    declared = request.headers.get("Content-Type")
    if declared is not None and request.content_type not in _JSON_TYPES:
        raise ScimError(415, f"expected {SCIM_JSON} or application/json, got {declared}")
    try:
        return json.loads(await request.read())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ScimError(400, f"the body is not valid JSON: {exc}", "invalidSyntax") from None


def base_url(request: web.Request, runtime: ConnectorRuntime) -> str:
    # scheme and host, not request.url.origin(): building the whole URL costs more.
    return f"{request.scheme}://{request.host}/ecma2host_{runtime.name}/scim"


def query_int(value: Any, name: str, default: int) -> int:
    """An integer request parameter (query string or .search body)."""
    if value is None or value == "":
        return default
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ScimError(400, f"{name} must be an integer", "invalidValue") from None


def space_of(request: web.Request) -> ConnectorSpace:
    space = request.app[HOST_KEY].space
    assert space is not None, "the host is open while the app serves"
    return space
