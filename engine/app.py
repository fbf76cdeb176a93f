"""The SCIM front-end: an aiohttp application serving every connector under
``/ecma2host_{Name}/scim``."""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final

from aiohttp import web

from engine import discovery
from engine.admin import create_admin_app
from engine.config import DeleteAction, DisableAction, ExportMode
from engine.exceptions import ScimError
from engine.host import ConnectorRuntime, Host
from engine.patch import apply_patch
from engine.resource import etag
from engine.scim_filter import parse_filter
from engine.search import filter_clause
from engine.space import Staging, StoredObject

__all__ = ["HOST_KEY", "create_app"]

log = logging.getLogger(__name__)

HOST_KEY: Final = web.AppKey("host", Host)
SCIM_JSON: Final = "application/scim+json"
ERROR_SCHEMA: Final = "urn:ietf:params:scim:api:messages:2.0:Error"
DEFAULT_PAGE_SIZE: Final = 100
MAX_BODY_BYTES: Final = 1024 * 1024
RETRY_AFTER_S: Final = 30

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def create_app(host: Host, *, open_host: bool = True) -> web.Application:
    """The application; with ``open_host`` it opens the host (serving) on start-up
    and closes it on shutdown."""
    app = web.Application(middlewares=[_error_middleware], client_max_size=MAX_BODY_BYTES)
    app[HOST_KEY] = host
    if open_host:
        app.cleanup_ctx.append(_host_lifecycle)
    app.add_subapp("/admin", create_admin_app(host))
    scim = "/ecma2host_{connector}/scim"
    app.router.add_routes(
        [
            web.get("/health", _health),
            web.get(scim + "/Users", _list_users),
            web.post(scim + "/Users", _create_user),
            web.get(scim + "/Users/{id}", _get_user),
            web.patch(scim + "/Users/{id}", _patch_user),
            web.put(scim + "/Users/{id}", _put_user),
            web.delete(scim + "/Users/{id}", _delete_user),
            web.get(scim + "/Schemas", _schemas),
            web.get(scim + "/ServiceProviderConfig", _service_provider_config),
            web.get(scim + "/ResourceTypes", _resource_types),
            web.get(scim + "/Groups", _groups),
        ]
    )
    return app


async def _host_lifecycle(app: web.Application) -> AsyncIterator[None]:
    host = app[HOST_KEY]
    await host.open(serve=True)
    try:
        yield
    finally:
        await host.close()


# -- plumbing -------------------------------------------------------------------


def scim_response(
    data: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        text=json.dumps(data, ensure_ascii=False),
        status=status,
        headers=headers,
        content_type=SCIM_JSON,
        charset="utf-8",
    )


def error_response(
    status: int, detail: str, scim_type: str | None = None, headers: dict[str, str] | None = None
) -> web.Response:
    body: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(status), "detail": detail}
    if scim_type:
        body["scimType"] = scim_type
    return scim_response(body, status, headers)


@web.middleware
async def _error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure becomes a SCIM Error body; tracebacks go to the log only.
    Also writes the one log line per request."""
    started = time.perf_counter()
    try:
        response = await handler(request)
    except ScimError as exc:
        response = error_response(exc.status, exc.detail, exc.scim_type, exc.headers)
    except web.HTTPException as exc:
        response = error_response(exc.status, exc.reason, None, _allow_header(exc))
    except Exception:
        log.exception("request failed", extra={"action": "scim.error", "path": request.path})
        response = error_response(500, "internal error; the host's log has the details")
    log.info(
        "%s %s %d",
        request.method,
        request.path,
        response.status,
        extra={
            "action": "scim.request",
            "connector": request.match_info.get("connector"),
            "status": response.status,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
        },
    )
    return response


def _allow_header(exc: web.HTTPException) -> dict[str, str] | None:
    allow = exc.headers.get("Allow")
    return {"Allow": allow} if allow else None


def _runtime(request: web.Request) -> ConnectorRuntime:
    """The connector the URL names, once the request's bearer token is its own."""
    name = request.match_info["connector"]
    runtime = request.app[HOST_KEY].runtimes.get(name)
    if runtime is None:
        raise ScimError(404, f"no connector named {name!r} on this host")
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    expected = runtime.config.token.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected):
        raise ScimError(
            401, "missing or invalid bearer token", headers={"WWW-Authenticate": "Bearer"}
        )
    return runtime


async def _body(request: web.Request) -> Any:
    try:
        return json.loads(await request.read())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ScimError(400, f"the body is not valid JSON: {exc}", "invalidSyntax") from None


def _base_url(request: web.Request, runtime: ConnectorRuntime) -> str:
    return f"{request.url.origin()}/ecma2host_{runtime.name}/scim"


def _user_response(
    request: web.Request, runtime: ConnectorRuntime, obj: StoredObject, status: int = 200
) -> web.Response:
    location = f"{_base_url(request, runtime)}/Users/{obj.id}"
    headers = {"ETag": etag(obj)}
    if status == 201:
        headers["Location"] = location
    return scim_response(runtime.mapper.render(obj, location), status, headers)


def _query_int(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ScimError(400, f"{name} must be an integer", "invalidValue") from None


def _space(request: web.Request) -> Any:
    space = request.app[HOST_KEY].space
    assert space is not None, "the host is open while the app serves"
    return space


# -- export outcome ---------------------------------------------------------------


async def _await_export(runtime: ConnectorRuntime, event_id: int | None) -> None:
    """In sync mode, answer only once the target took the change (ECMA2Host's
    behaviour); raise the SCIM error Entra should log when it did not."""
    if event_id is None:
        return
    runtime.exporter.wake()
    if runtime.config.export_mode is ExportMode.QUEUED:
        return
    outcome = await runtime.exporter.wait_for(event_id, runtime.config.export_wait_s)
    retry = {"Retry-After": str(RETRY_AFTER_S)}
    if outcome is None:
        raise ScimError(
            503,
            f"the target did not confirm the change within {runtime.config.export_wait_s:g} s; "
            "it stays queued and will be exported",
            headers=retry,
        )
    if outcome.status == "done":
        return
    if outcome.error_kind == "transient":
        queued = " it stays queued and will be retried" if outcome.status == "retrying" else ""
        raise ScimError(503, f"the target is unavailable: {outcome.error};{queued}", headers=retry)
    if outcome.error_kind == "conflict":
        raise ScimError(409, outcome.error or "conflict in the target", "uniqueness")
    raise ScimError(400, outcome.error or "the target rejected the change", "invalidValue")


def _write_staging(
    runtime: ConnectorRuntime, before: StoredObject | None, attributes: dict[str, Any]
) -> Staging:
    """Store and export a write; a disable follows the connector's deprovisioning."""
    mapper = runtime.mapper
    disabling = (before is None or mapper.is_active(before.attributes)) and not mapper.is_active(
        attributes
    )
    if not disabling or before is None:
        return Staging(attributes, visible=True, export="upsert")
    action = runtime.config.deprovision.disable
    if action is DisableAction.NONE:
        log.info(
            "disable stored only", extra={"action": "deprovision.none", "connector": runtime.name}
        )
        assert mapper.active is not None  # a disable needs the disable attribute
        return _store_only_disable(before, attributes, mapper.active.name)
    if action is DisableAction.DELETE:
        log.info(
            "disable exported as delete",
            extra={"action": "deprovision.delete", "connector": runtime.name},
        )
        return Staging(attributes, visible=False, export="delete")
    log.info(
        "disable exported as attribute",
        extra={"action": "deprovision.set_attribute", "connector": runtime.name},
    )
    return Staging(attributes, visible=True, export="upsert")


def _store_only_disable(before: StoredObject, attributes: dict[str, Any], flag: str) -> Staging:
    """Keep the disable in the connector space only; the request's other changes are
    still exported, with the flag as the target had it."""
    exported = {k: v for k, v in attributes.items() if k != flag}
    if flag in before.attributes:
        exported[flag] = before.attributes[flag]
    if exported == dict(before.attributes):
        return Staging(attributes, visible=True, export=None)
    return Staging(attributes, visible=True, export="upsert", exported=exported)


def _same_anchor(runtime: ConnectorRuntime, before: StoredObject, after: dict[str, Any]) -> None:
    anchor = runtime.schema.anchor.name
    if after.get(anchor) != before.attributes.get(anchor, before.anchor):
        raise ScimError(400, f"the anchor attribute {anchor} cannot change", "mutability")


# -- handlers ---------------------------------------------------------------------


async def _health(request: web.Request) -> web.Response:
    return scim_response({"status": "ok"})


async def _list_users(request: web.Request) -> web.Response:
    runtime = _runtime(request)
    start_index = max(1, _query_int(request, "startIndex", 1))
    count = min(max(0, _query_int(request, "count", DEFAULT_PAGE_SIZE)), discovery.MAX_PAGE_SIZE)
    text = request.query.get("filter")
    where = None
    if text:
        where = filter_clause(runtime.mapper, runtime.name, parse_filter(text))
    total, objects = await _space(request).query(runtime.name, where, start_index, count)
    base = _base_url(request, runtime)
    resources = [runtime.mapper.render(o, f"{base}/Users/{o.id}") for o in objects]
    return scim_response(discovery.list_response(resources, total, start_index))


async def _create_user(request: web.Request) -> web.Response:
    runtime = _runtime(request)
    attributes = runtime.mapper.attributes_from(await _body(request))
    anchor = str(attributes[runtime.schema.anchor.name])
    staging = _write_staging(runtime, None, attributes)
    obj, event_id = await _space(request).create(runtime.name, anchor, staging)
    await _await_export(runtime, event_id)
    return _user_response(request, runtime, obj, 201)


async def _get_user(request: web.Request) -> web.Response:
    runtime = _runtime(request)
    obj = await _space(request).get(runtime.name, request.match_info["id"])
    if obj is None:
        raise ScimError(404, f"resource {request.match_info['id']} not found")
    return _user_response(request, runtime, obj)


async def _patch_user(request: web.Request) -> web.Response:
    runtime = _runtime(request)
    body = await _body(request)

    def decide(before: StoredObject) -> Staging:
        after = apply_patch(runtime.mapper, before.attributes, body)
        _same_anchor(runtime, before, after)
        return _write_staging(runtime, before, after)

    obj, event_id = await _space(request).update(runtime.name, request.match_info["id"], decide)
    await _await_export(runtime, event_id)
    return _user_response(request, runtime, obj)


async def _put_user(request: web.Request) -> web.Response:
    runtime = _runtime(request)
    attributes = runtime.mapper.attributes_from(await _body(request))

    def decide(before: StoredObject) -> Staging:
        _same_anchor(runtime, before, attributes)
        return _write_staging(runtime, before, attributes)

    obj, event_id = await _space(request).update(runtime.name, request.match_info["id"], decide)
    await _await_export(runtime, event_id)
    return _user_response(request, runtime, obj)


async def _delete_user(request: web.Request) -> web.Response:
    runtime = _runtime(request)

    def decide(before: StoredObject) -> Staging:
        if runtime.config.deprovision.delete is DeleteAction.DISABLE and runtime.mapper.active:
            disabled = {**before.attributes, runtime.mapper.active.name: False}
            staging = _write_staging(runtime, before, disabled)
            return Staging(staging.attributes, visible=False, export=staging.export)
        return Staging(before.attributes, visible=False, export="delete")

    _, event_id = await _space(request).update(runtime.name, request.match_info["id"], decide)
    await _await_export(runtime, event_id)
    return web.Response(status=204)


async def _schemas(request: web.Request) -> web.Response:
    runtime = _runtime(request)
    found = discovery.schemas(runtime.schema, _base_url(request, runtime))
    return scim_response(discovery.list_response(found, len(found), 1))


async def _service_provider_config(request: web.Request) -> web.Response:
    runtime = _runtime(request)
    return scim_response(discovery.service_provider_config(_base_url(request, runtime)))


async def _resource_types(request: web.Request) -> web.Response:
    runtime = _runtime(request)
    found = discovery.resource_types(_base_url(request, runtime))
    return scim_response(discovery.list_response(found, len(found), 1))


async def _groups(request: web.Request) -> web.Response:
    _runtime(request)
    return scim_response(discovery.list_response([], 0, 1))
