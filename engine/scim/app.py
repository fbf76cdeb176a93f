"""The SCIM front-end: an aiohttp application serving every connector under
``/ecma2host_{Name}/scim``, plus ``/health``, the admin API and the status page."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Final

from aiohttp import web
from ecmahost.engine.exceptions import (
    AnchorImmutableError,
    AnchorRequiredError,
    AnchorTakenError,
    DomainError,
    ExportUnconfirmedError,
    NotFoundError,
    ScimError,
    SpaceUnavailableError,
    TargetConflictError,
    TargetRejectedError,
)
from ecmahost.engine.host import Host
from ecmahost.engine.scim import discovery, health, users
from ecmahost.engine.scim.admin import create_admin_app
from ecmahost.engine.scim.http import (
    HOST_KEY,
    base_url,
    bearer_matches,
    error_response,
    runtime_for,
    scim_response,
)
from ecmahost.engine.scim.metrics import metrics, metrics_listener, metrics_middleware
from ecmahost.engine.scim.status_page import add_status_page
from ecmahost.engine.space.database import unreachable
from ecmahost.engine.workers.state import Phase

__all__ = ["HOST_KEY", "create_app"]

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

RETRY_AFTER_S: Final = 30
"""What a 503 for an export the target has not confirmed tells Entra to wait."""

NOT_READY_RETRY_AFTER_S: Final = 10
"""What a 503 for a connector whose space is not filled yet tells Entra to wait."""

_DOMAIN_ERRORS: Final[tuple[tuple[type[DomainError], int, str | None, bool], ...]] = (
    (NotFoundError, 404, None, False),
    (AnchorTakenError, 409, "uniqueness", False),
    (AnchorRequiredError, 400, "invalidValue", False),
    (AnchorImmutableError, 400, "mutability", False),
    (ExportUnconfirmedError, 503, None, True),
    (SpaceUnavailableError, 503, None, True),
    (TargetConflictError, 409, "uniqueness", False),
    (TargetRejectedError, 400, "invalidValue", False),
)
"""Each domain error's SCIM status, scimType and whether the answer says when to try
again; the first entry the error is an instance of wins. Its message is the detail."""


def create_app(host: Host, *, open_host: bool = True) -> web.Application:
    """The application; with ``open_host`` it opens the host (serving) on start-up
    and closes it on shutdown."""
    app = web.Application(client_max_size=host.config.host.max_body_bytes)
    app.middlewares.extend([metrics_middleware(app), _error_middleware])
    app[HOST_KEY] = host
    if open_host:
        app.cleanup_ctx.append(_host_lifecycle)
    add_status_page(app)  # before the admin API: both live under /admin
    if host.config.host.metrics_listen is not None:
        app.cleanup_ctx.append(metrics_listener)
    app.add_subapp("/admin", create_admin_app(host))
    scim = "/ecma2host_{connector}/scim"
    app.router.add_routes(
        [
            web.get("/health", health.health),
            web.get("/ready", health.ready),
            web.get("/metrics", metrics),
            *users.routes(scim),
            web.get(scim + "/Schemas", _schemas),
            web.get(scim + "/Schemas/{id}", _schema),
            web.get(scim + "/ServiceProviderConfig", _service_provider_config),
            web.get(scim + "/ResourceTypes", _resource_types),
            web.get(scim + "/ResourceTypes/{id}", _resource_type),
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


@web.middleware
async def _error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure becomes a SCIM Error body; tracebacks go to the log only.
    Also writes the one log line per request."""
    started = time.perf_counter()
    try:
        response = _not_ready(request) or await handler(request)
    except ScimError as exc:
        response = error_response(exc.status, exc.detail, exc.scim_type, exc.headers)
    except DomainError as exc:
        response = _domain_error_response(exc, request)
    except web.HTTPException as exc:
        response = error_response(exc.status, exc.reason, None, _allow_header(exc))
    except Exception as exc:
        if not unreachable(exc):
            response = _internal_error_response(request)
        else:  # no bug of ours: the database is down or restarting
            log.warning(
                "%s %s: the database cannot be reached: %s",
                request.method,
                request.path,
                type(exc).__name__,
                extra={"action": "space.unreachable"},
            )
            response = _domain_error_response(SpaceUnavailableError(), request)
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


def _domain_error_response(exc: DomainError, request: web.Request) -> web.Response:
    for kind, status, scim_type, retry_later in _DOMAIN_ERRORS:
        if isinstance(exc, kind):
            headers = {"Retry-After": str(RETRY_AFTER_S)} if retry_later else None
            return error_response(status, str(exc), scim_type, headers)
    return _internal_error_response(request)  # a domain error nobody mapped: a bug


def _internal_error_response(request: web.Request) -> web.Response:
    """Logs the exception being handled, traceback included."""
    log.exception("request failed", extra={"action": "scim.error", "path": request.path})
    return error_response(500, "internal error; the host's log has the details")


def _allow_header(exc: web.HTTPException) -> dict[str, str] | None:
    allow = exc.headers.get("Allow")
    return {"Allow": allow} if allow else None


def _not_ready(request: web.Request) -> web.Response | None:
    """503 + ``Retry-After`` for a connector that cannot answer from its space yet:
    its connector has never opened, or no import has ever filled its space (as
    ECMA2Host answers "importing"). The caller must hold the connector's token."""
    name = request.match_info.get("connector")
    host = request.app[HOST_KEY]
    state = host.states.get(name) if name is not None else None
    # Only SCIM paths: the admin API names connectors too, with its own token.
    if state is None or state.answers_reads or not request.path.startswith("/ecma2host_"):
        return None
    expected = host.config.connectors[state.name].token.get_secret_value()
    if not bearer_matches(request, expected):
        if name in host.runtimes:
            return None  # the handler answers 401 as for any connector
        return error_response(
            401, "missing or invalid bearer token", None, {"WWW-Authenticate": "Bearer"}
        )
    doing = (
        "importing"
        if state.phase is Phase.IMPORTING
        else f"waiting for its target ({state.reason})"
    )
    return error_response(
        503,
        f"connector {name} is {doing}; its space is not filled yet",
        None,
        {"Retry-After": str(NOT_READY_RETRY_AFTER_S)},
    )


async def _schemas(request: web.Request) -> web.Response:
    runtime = runtime_for(request)
    found = discovery.schemas(runtime.schema, base_url(request, runtime))
    return scim_response(discovery.list_response(found, len(found), 1))


async def _schema(request: web.Request) -> web.Response:
    runtime = runtime_for(request)
    return scim_response(
        _one(discovery.schemas(runtime.schema, base_url(request, runtime)), request)
    )


async def _service_provider_config(request: web.Request) -> web.Response:
    runtime = runtime_for(request)
    max_page = request.app[HOST_KEY].config.host.max_page_size
    return scim_response(discovery.service_provider_config(base_url(request, runtime), max_page))


async def _resource_types(request: web.Request) -> web.Response:
    runtime = runtime_for(request)
    found = discovery.resource_types(base_url(request, runtime))
    return scim_response(discovery.list_response(found, len(found), 1))


async def _resource_type(request: web.Request) -> web.Response:
    runtime = runtime_for(request)
    return scim_response(_one(discovery.resource_types(base_url(request, runtime)), request))


def _one(documents: list[dict[str, object]], request: web.Request) -> dict[str, object]:
    wanted = request.match_info["id"]
    for document in documents:
        if str(document["id"]).lower() == wanted.lower():
            return document
    raise ScimError(404, f"{wanted} not found")


async def _groups(request: web.Request) -> web.Response:
    runtime_for(request)
    return scim_response(discovery.list_response([], 0, 1))
