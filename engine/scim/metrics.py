"""Metrics and watch lines of the HTTP front-end: the middleware that counts and
times every request (by route template, never the raw path), the warning for a
refused token (rate-limited per client address), and ``GET /metrics``.

``/metrics`` on the SCIM port takes the admin token (Prometheus' ``authorization``
or ``bearer_token_file``); without an admin token it does not exist (404).
``host.metrics_listen`` opens a second address that serves only ``/metrics``,
without a token, for a scraper on a trusted network."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final

from aiohttp import web
from ecmahost.engine.config import Listen
from ecmahost.engine.exceptions import ScimError
from ecmahost.engine.host import Host
from ecmahost.engine.metrics import CONTENT_TYPE
from ecmahost.engine.scim.http import HOST_KEY, require_bearer
from ecmahost.engine.space.models import utcnow
from ecmahost.engine.workers.state import Phase

__all__ = ["metrics", "metrics_listener", "metrics_middleware"]

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

UNAUTHORIZED_LOG_EVERY_S: Final = 60.0
"""One warning per client address this often at most: a flood of bad tokens must not
flood the log; the next warning says how many were not logged."""

_MAX_TRACKED_ADDRESSES: Final = 10_000
_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""Methods counted by name; any other a client makes up counts as ``other``."""
_PHASES: Final = tuple(p.value for p in Phase)


class _UnauthorizedLog:
    """Warns of 401s per client address, at most once per period."""

    def __init__(self, every_s: float = UNAUTHORIZED_LOG_EVERY_S) -> None:
        self._every_s = every_s
        self._last: dict[str, tuple[float, int]] = {}
        """Per address: when it was last logged, how many since were not."""

    def refused(self, address: str, route: str) -> None:
        now = time.monotonic()
        logged_at, quiet = self._last.get(address, (float("-inf"), 0))
        if now - logged_at < self._every_s:
            self._last[address] = (logged_at, quiet + 1)
            return
        if len(self._last) >= _MAX_TRACKED_ADDRESSES:
            self._last.clear()  # a scan from many addresses: start afresh, stay bounded
        self._last[address] = (now, 0)
        log.warning(
            "refused a request without a valid token from %s (%d more not logged)",
            address,
            quiet,
            extra={
                "action": "scim.unauthorized",
                "client": address,
                "route": route,
                "not_logged": quiet,
            },
        )


_UNAUTHORIZED_KEY: Final = web.AppKey("unauthorized_log", _UnauthorizedLog)

_MAX_SERIES: Final = 4096
"""Most label combinations whose counter and histogram are kept at hand; the labels
are bounded already (known connectors, methods, route templates, statuses)."""


class _Series:
    """Each label combination's counter and histogram, looked up once: prometheus'
    ``labels()`` costs more than the count itself on a read."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, str, str, int], tuple[Any, Any]] = {}

    def of(
        self, host: Host, connector: str, method: str, route: str, status: int
    ) -> tuple[Any, Any]:
        key = (connector, method, route, status)
        found = self._known.get(key)
        if found is None:
            if len(self._known) >= _MAX_SERIES:
                self._known.clear()
            found = (
                host.metrics.scim_requests.labels(connector, method, route, str(status)),
                host.metrics.scim_seconds.labels(connector, method, route),
            )
            self._known[key] = found
        return found


_SERIES_KEY: Final = web.AppKey("metric_series", _Series)


def metrics_middleware(app: web.Application) -> Callable[..., Awaitable[web.StreamResponse]]:
    """The middleware for ``app``: outermost, so it sees the status the error
    middleware settled on."""
    app[_UNAUTHORIZED_KEY] = _UnauthorizedLog()
    app[_SERIES_KEY] = _Series()

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            _observe(request, status, time.perf_counter() - started)

    return middleware


def _observe(request: web.Request, status: int, duration_s: float) -> None:
    host = request.app[HOST_KEY]
    route = _route(request)
    named = request.match_info.get("connector", "")
    connector = named if named in host.config.connectors else ""  # never a stranger's word
    method = request.method if request.method in _METHODS else "other"
    requests, seconds = request.app[_SERIES_KEY].of(host, connector, method, route, status)
    requests.inc()
    seconds.observe(duration_s)
    if status == 401:
        request.app[_UNAUTHORIZED_KEY].refused(request.remote or "unknown", route)


def _route(request: web.Request) -> str:
    """The matched route's template (``/ecma2host_{connector}/scim/Users/{id}``);
    ``unmatched`` for a path no route serves, so scans do not grow the label set."""
    resource = request.match_info.route.resource
    if resource is None:
        return "unmatched"
    return resource.canonical


async def metrics(request: web.Request) -> web.Response:
    """``GET /metrics`` on the SCIM port: the admin token's."""
    host = request.app[HOST_KEY]
    expected = host.config.host.admin_token
    if expected is None:
        raise ScimError(404, "metrics are off: set host.admin_token or host.metrics_listen")
    require_bearer(request, expected.get_secret_value(), "admin token")
    return await _exposition(host)


async def _exposition(host: Host) -> web.Response:
    """The gauges read now (one indexed query per connector, the served certificate's
    expiry), then every metric."""
    if host.space is not None:
        now = utcnow()
        for name, state in host.states.items():
            host.metrics.set_queue(name, await host.space.queue_summary(name), now)
            host.metrics.set_state(name, state.phase.value, _PHASES)
    if host.certificate is not None:
        host.metrics.set_certificate_expiry(host.certificate.not_after)
    return web.Response(body=host.metrics.render(), headers={"Content-Type": CONTENT_TYPE})


async def metrics_listener(app: web.Application) -> AsyncIterator[None]:
    """The scrape-only address (``host.metrics_listen``), opened with the app."""
    host = app[HOST_KEY]
    assert host.config.host.metrics_listen is not None
    at = Listen.parse(host.config.host.metrics_listen)
    scrape = web.Application()

    async def handler(_: web.Request) -> web.Response:
        return await _exposition(host)

    scrape.router.add_get("/metrics", handler)
    runner = web.AppRunner(scrape, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, at.host, at.port).start()
    log.info(
        "metrics served without a token at http://%s/metrics",
        at,
        extra={"action": "metrics.listen"},
    )
    try:
        yield
    finally:
        await runner.cleanup()
