"""The ``/Users`` endpoints: reads from the connector space, writes staged with their
export event and, in sync mode, answered once the target took them."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Final

from aiohttp import web
from ecmahost.connectors.base import Capability
from ecmahost.engine.config import DeleteAction, DisableAction, ExportMode
from ecmahost.engine.exceptions import ScimError
from ecmahost.engine.host import ConnectorRuntime
from ecmahost.engine.queue import ErrorKind, OutcomeStatus
from ecmahost.engine.scim import discovery
from ecmahost.engine.scim.filter import parse_filter
from ecmahost.engine.scim.http import (
    HOST_KEY,
    base_url,
    json_body,
    query_int,
    runtime_for,
    scim_response,
    space_of,
)
from ecmahost.engine.scim.patch import apply_patch
from ecmahost.engine.scim.projection import parse_attribute_list, project
from ecmahost.engine.scim.resource import EXTERNAL_ID, etag
from ecmahost.engine.space.search import eq_lookup, filter_clause
from ecmahost.engine.space.states import Op
from ecmahost.engine.space.store import Staging
from ecmahost.engine.space.stored import StoredObject
from sqlalchemy import ColumnElement

__all__ = ["routes"]

log = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE: Final = 100
RETRY_AFTER_S: Final = 30
SEARCH_REQUEST: Final = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"


def routes(scim: str) -> list[web.RouteDef]:
    """The routes under a connector's SCIM base path ``scim``."""
    return [
        web.get(scim + "/Users", _list_users),
        web.post(scim + "/Users", _create_user),
        web.post(scim + "/Users/.search", _search_users),
        web.post(scim + "/.search", _search_users),
        web.get(scim + "/Users/{id}", _get_user),
        web.patch(scim + "/Users/{id}", _patch_user),
        web.put(scim + "/Users/{id}", _put_user),
        web.delete(scim + "/Users/{id}", _delete_user),
    ]


# -- reads ------------------------------------------------------------------------


async def _list_users(request: web.Request) -> web.Response:
    return await _search(request, runtime_for(request), dict(request.query))


async def _search_users(request: web.Request) -> web.Response:
    runtime = runtime_for(request)
    body = await json_body(request)
    if not isinstance(body, dict):
        raise ScimError(400, "the body must be a SearchRequest object", "invalidSyntax")
    return await _search(request, runtime, body)


async def _search(
    request: web.Request, runtime: ConnectorRuntime, params: dict[str, Any]
) -> web.Response:
    """A page of the users a filter selects (RFC 7644 §3.4.2, §3.4.3)."""
    max_page = request.app[HOST_KEY].config.host.max_page_size
    start_index = max(1, query_int(params.get("startIndex"), "startIndex", 1))
    count = min(max(0, query_int(params.get("count"), "count", DEFAULT_PAGE_SIZE)), max_page)
    text = params.get("filter")
    if text is not None and not isinstance(text, str):
        raise ScimError(400, "filter must be a string", "invalidFilter")
    node = parse_filter(text) if text else None
    eq = eq_lookup(runtime.mapper, node) if node else None

    def where() -> ColumnElement[bool] | None:
        return filter_clause(runtime.mapper, runtime.name, node) if node else None

    total, objects = await space_of(request).query(runtime.name, where, start_index, count, eq)
    shape = _projection(runtime, params)
    base = base_url(request, runtime)
    resources = [shape(runtime.mapper.render(o, f"{base}/Users/{o.id}")) for o in objects]
    return scim_response(discovery.list_response(resources, total, start_index))


async def _get_user(request: web.Request) -> web.StreamResponse:
    runtime = runtime_for(request)
    obj = await space_of(request).get(runtime.name, request.match_info["id"])
    if obj is None:
        raise ScimError(404, f"resource {request.match_info['id']} not found")
    if etag(obj) in _etags(request.headers.get("If-None-Match")):
        return web.Response(status=304, headers={"ETag": etag(obj)})
    return _user_response(request, runtime, obj)


def _projection(
    runtime: ConnectorRuntime, params: Any
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    attributes = parse_attribute_list(params.get("attributes"))
    excluded = parse_attribute_list(params.get("excludedAttributes"))
    return lambda resource: project(resource, runtime.mapper, attributes, excluded)


def _user_response(
    request: web.Request, runtime: ConnectorRuntime, obj: StoredObject, status: int = 200
) -> web.Response:
    location = f"{base_url(request, runtime)}/Users/{obj.id}"
    headers = {"ETag": etag(obj)}
    if status == 201:
        headers["Location"] = location
    resource = _projection(runtime, request.query)(runtime.mapper.render(obj, location))
    return scim_response(resource, status, headers)


# -- writes -----------------------------------------------------------------------


async def _create_user(request: web.Request) -> web.Response:
    runtime = runtime_for(request)
    working = runtime.mapper.attributes_from(await json_body(request))
    anchor = str(working[runtime.schema.anchor.name])
    staging = _write_staging(runtime, None, working)
    obj, event_id = await space_of(request).create(runtime.name, anchor, staging)
    await _await_export(runtime, event_id)
    return _user_response(request, runtime, obj, 201)


async def _patch_user(request: web.Request) -> web.Response:
    runtime = runtime_for(request)
    body = await json_body(request)

    def decide(before: StoredObject) -> Staging:
        _check_if_match(request, before)
        after = apply_patch(runtime.mapper, runtime.mapper.working(before), body)
        return _write_staging(runtime, before, after)

    return await _update(request, runtime, decide)


async def _put_user(request: web.Request) -> web.Response:
    runtime = runtime_for(request)
    working = runtime.mapper.attributes_from(await json_body(request))

    def decide(before: StoredObject) -> Staging:
        _check_if_match(request, before)
        return _write_staging(runtime, before, dict(working))

    return await _update(request, runtime, decide)


async def _update(
    request: web.Request, runtime: ConnectorRuntime, decide: Callable[[StoredObject], Staging]
) -> web.Response:
    obj, event_id = await space_of(request).update(runtime.name, request.match_info["id"], decide)
    await _await_export(runtime, event_id)
    return _user_response(request, runtime, obj)


async def _delete_user(request: web.Request) -> web.Response:
    runtime = runtime_for(request)

    def decide(before: StoredObject) -> Staging:
        _check_if_match(request, before)
        if runtime.config.deprovision.delete is DeleteAction.DISABLE and runtime.mapper.active:
            disabled = {**runtime.mapper.working(before), runtime.mapper.active.name: False}
            staging = _write_staging(runtime, before, disabled)
            return Staging(
                staging.attributes,
                visible=False,
                export=staging.export,
                exported=staging.exported,
                external_id=before.external_id,
            )
        return Staging(
            before.attributes, visible=False, export=Op.DELETE, external_id=before.external_id
        )

    _, event_id = await space_of(request).update(runtime.name, request.match_info["id"], decide)
    await _await_export(runtime, event_id)
    return web.Response(status=204)


def _etags(header: str | None) -> set[str]:
    return {tag.strip() for tag in (header or "").split(",") if tag.strip()}


def _check_if_match(request: web.Request, before: StoredObject) -> None:
    """RFC 7644 §3.14: a write that names versions applies only to one of them."""
    wanted = _etags(request.headers.get("If-Match"))
    if wanted and "*" not in wanted and etag(before) not in wanted:
        raise ScimError(
            412, f"the resource is at version {etag(before)}, not {', '.join(sorted(wanted))}"
        )


def _write_staging(
    runtime: ConnectorRuntime, before: StoredObject | None, working: dict[str, Any]
) -> Staging:
    """Store and export a write: renames need the capability, and a disable follows
    the connector's deprovisioning choice."""
    external_id = working.pop(EXTERNAL_ID, None)
    anchor = _new_anchor(runtime, before, working)
    mapper = runtime.mapper
    was_active = before is None or mapper.is_active(before.attributes)
    if before is None or not was_active or mapper.is_active(working):
        return Staging(working, True, Op.UPSERT, anchor=anchor, external_id=external_id)
    action = runtime.config.deprovision.disable
    extra = {"connector": runtime.name, "action": f"deprovision.{action.value}"}
    log.info("disable: %s", action.value, extra=extra)
    if action is DisableAction.NONE:
        assert mapper.active is not None  # a disable needs the disable attribute
        staged = _store_only_disable(before, working, mapper.active.name)
        return Staging(
            working, True, staged.export, staged.exported, anchor=anchor, external_id=external_id
        )
    if action is DisableAction.DELETE:
        return Staging(working, False, Op.DELETE, anchor=anchor, external_id=external_id)
    return Staging(working, True, Op.UPSERT, anchor=anchor, external_id=external_id)


def _store_only_disable(before: StoredObject, attributes: dict[str, Any], flag: str) -> Staging:
    """Keep the disable in the connector space only; the request's other changes are
    still exported, with the flag as the target had it."""
    exported = {k: v for k, v in attributes.items() if k != flag}
    if flag in before.attributes:
        exported[flag] = before.attributes[flag]
    if exported == dict(before.attributes):
        return Staging(attributes, visible=True, export=None)
    return Staging(attributes, visible=True, export=Op.UPSERT, exported=exported)


def _new_anchor(
    runtime: ConnectorRuntime, before: StoredObject | None, after: dict[str, Any]
) -> str | None:
    """The new anchor of a write that renames, None for one that does not."""
    name = runtime.schema.anchor.name
    if not after.get(name) and before is not None:
        raise ScimError(400, f"the anchor attribute {name} cannot be removed", "mutability")
    if not after.get(name):
        raise ScimError(400, f"the anchor attribute {name} is required", "invalidValue")
    if before is None or after[name] == before.anchor:
        return None
    if Capability.RENAME not in runtime.connector.capabilities:
        raise ScimError(400, f"the anchor attribute {name} cannot change", "mutability")
    return str(after[name])


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
    if outcome.status == OutcomeStatus.DONE:
        return
    if outcome.error_kind == ErrorKind.TRANSIENT:
        retrying = outcome.status == OutcomeStatus.RETRYING
        queued = " it stays queued and will be retried" if retrying else ""
        raise ScimError(503, f"the target is unavailable: {outcome.error};{queued}", headers=retry)
    if outcome.error_kind == ErrorKind.CONFLICT:
        raise ScimError(409, outcome.error or "conflict in the target", "uniqueness")
    raise ScimError(400, outcome.error or "the target rejected the change", "invalidValue")
