"""The ``/Users`` endpoints: reads from the connector space, writes staged with their
export event and, in sync mode, answered once the target took them.

HTTP only: what a write stages and what its export's outcome means are the
provisioning rules' (``ecmahost.engine.provisioning``)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Final

from aiohttp import web
from ecmahost.engine import queue
from ecmahost.engine.config import ExportMode
from ecmahost.engine.exceptions import ScimError
from ecmahost.engine.host import ConnectorRuntime
from ecmahost.engine.provisioning import confirm_export, create_anchor, stage_delete, stage_write
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
from ecmahost.engine.space.store import Staging
from ecmahost.engine.space.stored import StoredObject
from sqlalchemy import ColumnElement

__all__ = ["routes"]

DEFAULT_PAGE_SIZE: Final = 100
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

    shape = _projection(runtime, params)  # checked before the query: a 400 costs nothing
    total, objects = await space_of(request).query(runtime.name, where, start_index, count, eq)
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
    attributes = parse_attribute_list(params.get("attributes"), "attributes")
    excluded = parse_attribute_list(params.get("excludedAttributes"), "excludedAttributes")
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
    anchor = create_anchor(runtime.rules, working)
    staging = _stage(runtime, None, working)
    obj, event_id = await space_of(request).create(runtime.name, anchor, staging)
    await _await_export(request, runtime, event_id)
    if anchor is None and runtime.config.export_mode is not ExportMode.QUEUED:
        # The export bound the anchor the target assigned: show it.
        obj = await space_of(request).get(runtime.name, obj.id) or obj
    return _user_response(request, runtime, obj, 201)


async def _patch_user(request: web.Request) -> web.Response:
    runtime = runtime_for(request)
    body = await json_body(request)

    def decide(before: StoredObject) -> Staging:
        _check_if_match(request, before)
        after = apply_patch(runtime.mapper, runtime.mapper.working(before), body)
        return _stage(runtime, before, after)

    return await _update(request, runtime, decide)


async def _put_user(request: web.Request) -> web.Response:
    runtime = runtime_for(request)
    working = runtime.mapper.attributes_from(await json_body(request))

    def decide(before: StoredObject) -> Staging:
        _check_if_match(request, before)
        return _stage(runtime, before, dict(working))

    return await _update(request, runtime, decide)


def _stage(
    runtime: ConnectorRuntime, before: StoredObject | None, working: dict[str, Any]
) -> Staging:
    external_id = working.pop(EXTERNAL_ID, None)
    return stage_write(runtime.rules, before, working, external_id)


async def _update(
    request: web.Request, runtime: ConnectorRuntime, decide: Callable[[StoredObject], Staging]
) -> web.Response:
    obj, event_id = await space_of(request).update(runtime.name, request.match_info["id"], decide)
    await _await_export(request, runtime, event_id)
    return _user_response(request, runtime, obj)


async def _delete_user(request: web.Request) -> web.Response:
    runtime = runtime_for(request)

    def decide(before: StoredObject) -> Staging:
        _check_if_match(request, before)
        return stage_delete(runtime.rules, before)

    _, event_id = await space_of(request).update(runtime.name, request.match_info["id"], decide)
    await _await_export(request, runtime, event_id)
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


async def _await_export(
    request: web.Request, runtime: ConnectorRuntime, event_id: int | None
) -> None:
    """In sync mode, answer only once the target took the change (ECMA2Host's
    behaviour); ``confirm_export`` raises the domain error Entra should see when
    it did not."""
    if event_id is None:
        return
    runtime.wake_exporter()
    if runtime.config.export_mode is ExportMode.QUEUED:
        return
    space = space_of(request)
    recorded = functools.partial(queue.outcome, space)
    await confirm_export(runtime.outcomes, recorded, event_id, runtime.config.export_wait_s)
