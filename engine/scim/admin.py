"""The admin API under ``/admin``: inspect, replay and discard exports, and ask for
imports. It has its own token (``host.admin_token``); without one it is off."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final

from aiohttp import web
from ecmahost.engine import queue
from ecmahost.engine.exceptions import ScimError
from ecmahost.engine.host import Host
from ecmahost.engine.scim.body import INT64_MAX, parse_body
from ecmahost.engine.scim.http import require_bearer
from ecmahost.engine.space import ConnectorSpace

__all__ = ["create_admin_app", "event_json"]

ADMIN_HOST_KEY: Final = web.AppKey("admin_host", Host)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

MAX_LIMIT: Final = 10_000
"""Most events one listing returns (``limit``)."""
MAX_IDS: Final = 1_000
"""Most event ids one replay or discard names."""


def create_admin_app(host: Host) -> web.Application:
    app = web.Application(middlewares=[_authenticate])
    app[ADMIN_HOST_KEY] = host
    app.router.add_routes(
        [
            web.get("/exports", _list),
            web.get("/exports/{id:\\d+}", _show),
            web.post("/exports/replay", _replay),
            web.post("/exports/discard", _discard),
            web.post("/imports/{connector}", _import),
        ]
    )
    return app


@web.middleware
async def _authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    expected = request.app[ADMIN_HOST_KEY].config.host.admin_token
    if expected is None:
        raise ScimError(404, "the admin API is off: set host.admin_token to use it")
    require_bearer(request, expected.get_secret_value(), "admin token")
    return await handler(request)


def event_json(event: queue.EventView) -> dict[str, Any]:
    return {
        "id": event.id,
        "connector": event.connector,
        "object_id": event.object_id,
        "anchor": event.anchor,
        "op": event.op,
        "status": event.status,
        "attempts": event.attempts,
        "last_error": event.last_error,
        "created_at": event.created_at.isoformat(),
        "updated_at": event.updated_at.isoformat(),
        "payload": event.payload,
    }


def _host(request: web.Request) -> Host:
    return request.app[ADMIN_HOST_KEY]


async def _list(request: web.Request) -> web.Response:
    status = _status(request.query.get("status") or None)
    connector = request.query.get("connector") or None
    limit = _int(request.query.get("limit", "1000"), "limit", MAX_LIMIT)
    events = await queue.list_events(
        _space(request), status=status, connector=connector, limit=limit
    )
    return web.json_response({"exports": [event_json(e) for e in events]})


async def _show(request: web.Request) -> web.Response:
    event_id = _int(request.match_info["id"], "the event id", INT64_MAX)
    events = await queue.list_events(_space(request), ids=[event_id])
    log = await queue.history(_space(request), event_id)
    if not events:
        raise ScimError(404, f"no export event {event_id}")
    return web.json_response({**event_json(events[0]), "history": log})


async def _replay(request: web.Request) -> web.Response:
    body = await _json(request)
    ids = None if body.get("all") is True else _ids(body)
    moved = await queue.replay(_space(request), ids)
    _host(request).wake()
    return web.json_response({"replayed": moved})


async def _discard(request: web.Request) -> web.Response:
    ids = _ids(await _json(request))
    moved = await queue.discard(_space(request), ids)
    _host(request).wake()  # a failed event older than superseding may hold later ones
    return web.json_response({"discarded": moved})


async def _import(request: web.Request) -> web.Response:
    name = request.match_info["connector"]
    runtime = _host(request).runtimes.get(name)
    if runtime is None:
        raise ScimError(404, f"no connector named {name!r} on this host")
    allow = request.query.get("allow_removals", "") in ("1", "true")
    delta = request.query.get("delta", "") in ("1", "true")
    if delta and runtime.importer.deltas is None:
        raise ScimError(409, f"connector {name!r} has no delta imports configured")
    runtime.importer.request(allow_removals=allow, delta=delta)
    body = {"requested": name, **({"allow_removals": True} if allow else {})}
    body |= {"delta": True} if delta else {}
    return web.json_response(body, status=202)


def _space(request: web.Request) -> ConnectorSpace:
    space = _host(request).space
    assert space is not None, "the host is open while the app serves"
    return space


async def _json(request: web.Request) -> dict[str, Any]:
    body = parse_body(await request.read())
    if not isinstance(body, dict):
        raise ScimError(400, "the body must be a JSON object", "invalidSyntax")
    return body


def _ids(body: dict[str, Any]) -> list[int]:
    ids = body.get("ids")
    if not isinstance(ids, list) or not 1 <= len(ids) <= MAX_IDS or not all(map(_is_id, ids)):
        raise ScimError(
            400,
            f'give "ids": [1 to {MAX_IDS} event ids] (or "all": true to replay)',
            "invalidValue",
        )
    return ids


def _is_id(value: Any) -> bool:
    # bool is an int to Python: without the check, true would be event 1.
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= INT64_MAX


def _status(text: str | None) -> queue.EventStatus | None:
    if text is None:
        return None
    try:
        return queue.EventStatus(text)
    except ValueError:
        known = ", ".join(queue.EventStatus)
        raise ScimError(400, f"status must be one of {known}", "invalidValue") from None


def _int(text: str, name: str, highest: int) -> int:
    """A decimal query or path value from 1 to ``highest``; 400 naming ``name``."""
    value = int(text) if text.isdecimal() and len(text) <= 20 else 0
    if not 1 <= value <= highest:
        raise ScimError(400, f"{name} must be an integer from 1 to {highest}", "invalidValue")
    return value
