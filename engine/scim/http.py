"""SCIM over HTTP: the plumbing every handler shares (responses, errors, the
connector a request is for and its token, request bodies and query values)."""

from __future__ import annotations

import hmac
import json
import re
import secrets
from typing import Any, Final

import orjson
from aiohttp import web
from ecmahost.engine.exceptions import ScimError
from ecmahost.engine.host import ConnectorRuntime, Host
from ecmahost.engine.scim.body import INT64_MAX, INT64_MIN, parse_body
from ecmahost.engine.space.store import ConnectorSpace

__all__ = [
    "ERROR_SCHEMA",
    "HOST_KEY",
    "SCIM_JSON",
    "base_url",
    "bearer_matches",
    "clamp_detail",
    "error_response",
    "json_body",
    "origin",
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

MAX_DETAIL_CHARS: Final = 1000
MAX_VALUE_CHARS: Final = 200
"""An error detail and any one value in it are cut to these lengths: an answer does
not echo a client's megabyte back, nor a target's whole record."""
_ABSOLUTE_PATH: Final = re.compile(
    r"""(?<![\w.:/~-])(?:/|[A-Za-z]:\\)(?:[^\s'"/\\]+[/\\])+(?P<name>[^\s'"/\\]+)"""
)
_LONG: Final = MAX_VALUE_CHARS
_LONG_QUOTED: Final = re.compile(rf"""'[^']{{{_LONG},}}'|"[^"]{{{_LONG},}}"|\S{{{_LONG},}}""")
_CHALLENGE: Final = {"WWW-Authenticate": "Bearer"}
_DUMMY_TOKEN: Final = secrets.token_urlsafe(32)
"""What an unknown connector's token is compared with: as long as a real check, so
neither the answer nor its timing tells which connector names exist."""


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
    body: dict[str, Any] = {
        "schemas": [ERROR_SCHEMA],
        "status": str(status),
        "detail": clamp_detail(detail),
    }
    if scim_type:
        body["scimType"] = scim_type
    return scim_response(body, status, headers)


def clamp_detail(detail: str) -> str:
    """``detail`` without absolute paths (the file name stays), each value cut to
    :data:`MAX_VALUE_CHARS` and the whole to :data:`MAX_DETAIL_CHARS`; characters
    that cannot be sent as UTF-8 (lone surrogates) are replaced."""
    detail = detail.encode("utf-8", "replace").decode("utf-8")
    detail = _ABSOLUTE_PATH.sub(lambda m: m["name"], detail)
    detail = _LONG_QUOTED.sub(lambda m: m[0][:MAX_VALUE_CHARS] + "…", detail)
    return detail if len(detail) <= MAX_DETAIL_CHARS else detail[:MAX_DETAIL_CHARS] + "…"


def runtime_for(request: web.Request) -> ConnectorRuntime:
    """The connector the URL names, once the request's bearer token is its own
    (compared in constant time; another connector's token is refused). An unknown
    connector gets the same 401 as a wrong token, after as long a comparison."""
    runtime = request.app[HOST_KEY].runtimes.get(request.match_info["connector"])
    expected = runtime.config.token.get_secret_value() if runtime else _DUMMY_TOKEN
    require_bearer(request, expected, "bearer token")
    if runtime is None:  # the dummy token matched: it cannot, but never serve on it
        raise ScimError(401, "missing or invalid bearer token", headers=_CHALLENGE)
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
        raise ScimError(401, f"missing or invalid {what}", headers=_CHALLENGE)


async def json_body(request: web.Request) -> Any:
    """The request's JSON body; 415 for a body that says it is something else."""
    declared = request.headers.get("Content-Type")
    if declared is not None and request.content_type not in _JSON_TYPES:
        raise ScimError(415, f"expected {SCIM_JSON} or application/json, got {declared}")
    return parse_body(await request.read())


def base_url(request: web.Request, runtime: ConnectorRuntime) -> str:
    """The connector's SCIM base URL as clients reach it: ``host.public_url`` when
    set, else the address the host listens at (the socket this request came in on,
    https over TLS). Never the request's ``Host`` header, which the client writes."""
    return f"{origin(request)}/ecma2host_{runtime.name}/scim"


def origin(request: web.Request) -> str:
    public_url = request.app[HOST_KEY].config.host.public_url
    if public_url:
        return public_url.rstrip("/")
    # request.scheme comes from the transport (TLS or not), not from a header.
    address, port = _local_address(request)
    host = f"[{address}]" if ":" in address else address
    return f"{request.scheme}://{host}:{port}"


def _local_address(request: web.Request) -> tuple[str, int]:
    """The listening socket's address and actually bound port (with ``:0`` in the
    configuration only the socket knows it)."""
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    if isinstance(sockname, tuple) and len(sockname) >= 2:
        return str(sockname[0]), int(sockname[1])
    listen = request.app[HOST_KEY].config.host.listen_at
    return listen.host, listen.port


def query_int(value: Any, name: str, default: int) -> int:
    """An integer request parameter: a decimal string from the query string, a JSON
    integer (not a boolean) from a .search body; 400 naming ``name`` for anything
    else or a value outside 64 bits."""
    if value is None or value == "":
        return default
    if isinstance(value, str) and value.strip().lstrip("+-").isdecimal() and len(value) <= 40:
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ScimError(400, f"{name} must be an integer", "invalidValue")
    if not INT64_MIN <= value <= INT64_MAX:
        raise ScimError(400, f"{name} must be between {INT64_MIN} and {INT64_MAX}", "invalidValue")
    return value


def space_of(request: web.Request) -> ConnectorSpace:
    space = request.app[HOST_KEY].space
    assert space is not None, "the host is open while the app serves"
    return space
