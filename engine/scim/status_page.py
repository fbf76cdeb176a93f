"""The status page under ``/admin/``: server-rendered HTML for an operator's browser.

Per connector it shows its state, its last and next import, its export queue, the
failed events (each with a Replay and a Discard button) and the last export outcomes,
plus an "Import now" button. There is no JavaScript: plain forms, each POST answered
with a redirect to the page (post-redirect-get).

It shares the admin API's token (``host.admin_token``) and is off (404) without one.
The token is typed once into the login form; the browser then holds a session cookie
(``browser_sessions``). Every POST must come from the page itself: the browser's
``Sec-Fetch-Site`` / ``Origin`` must say same-origin, and the form must carry the
session's CSRF token."""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from aiohttp import web
from ecmahost.connectors.base import Capability
from ecmahost.engine import queue
from ecmahost.engine.exceptions import ScimError
from ecmahost.engine.host import Host
from ecmahost.engine.scim.browser_sessions import SESSION_TTL_S, BrowserSession, SessionStore
from ecmahost.engine.scim.http import HOST_KEY, clamp_detail
from ecmahost.engine.space import ConnectorSpace
from ecmahost.engine.space.health import ImportSummary, QueueSummary
from jinja2 import Environment, FileSystemLoader, StrictUndefined

__all__ = ["COOKIE", "add_status_page"]

log = logging.getLogger(__name__)

COOKIE: Final = "ecmahost_admin"
FAILED_SHOWN: Final = 100
"""Failed events listed per connector; the queue's count tells how many there are."""
OUTCOMES_SHOWN: Final = 50
WARN_EVERY_S: Final = 10.0
"""At most one warning per this many seconds for refused logins: someone guessing
tokens must not flood the log (the count of the others is in the next one)."""

_HEADERS: Final = {
    # No script may run, whatever a value shown on the page holds.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    # same-origin, not no-referrer: with no-referrer the browser sends "Origin: null"
    # on the page's own POSTs, which the same-origin check would refuse.
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


@dataclass
class _WarningThrottle:
    """Lets a warning through at most once per ``every_s``, counting the others."""

    every_s: float
    _next_at: float = 0.0
    _held: int = 0

    def allow(self) -> int | None:
        """None: stay quiet; else how many were held back since the last one."""
        now = time.monotonic()
        if now < self._next_at:
            self._held += 1
            return None
        held, self._held, self._next_at = self._held, 0, now + self.every_s
        return held


@dataclass
class _PageState:
    sessions: SessionStore = field(default_factory=SessionStore)
    refusals: _WarningThrottle = field(default_factory=lambda: _WarningThrottle(WARN_EVERY_S))


_STATE_KEY: Final = web.AppKey("status_page", _PageState)


@dataclass(frozen=True, slots=True)
class _ConnectorStatus:
    """What the page shows of one connector."""

    name: str
    state: str
    reason: str | None
    can_import: bool
    last_import: ImportSummary | None
    next_import_at: datetime | None
    exports: QueueSummary
    failed: list[queue.EventView]
    outcomes: list[queue.OutcomeView]


def add_status_page(app: web.Application) -> None:
    """Register the page's routes on the main application; before the admin API's
    sub-application, whose prefix (``/admin``) they share and would otherwise lose."""
    app[_STATE_KEY] = _PageState()
    app.router.add_routes(
        [
            web.get("/admin", _to_page),
            web.get("/admin/", _page),
            web.get("/admin/login", _login_form),
            web.post("/admin/login", _login),
            web.post("/admin/logout", _logout),
            # At most 18 digits: an id beyond 64 bits is no event (404), not a 500.
            web.post("/admin/events/{id:\\d{1,18}}/replay", _replay),
            web.post("/admin/events/{id:\\d{1,18}}/discard", _discard),
            web.post("/admin/connectors/{connector}/import", _import),
        ]
    )


# -- pages ---------------------------------------------------------------------------


async def _to_page(request: web.Request) -> web.Response:
    _host(request)
    return _redirect("/admin/")


async def _page(request: web.Request) -> web.Response:
    host = _host(request)
    session = _session(request)
    if session is None:
        return _redirect("/admin/login")
    connectors = [await _connector_status(host, name) for name in host.states]
    notice = request.app[_STATE_KEY].sessions.take_notice(session)
    return _render(
        "status.html", csrf=session.csrf, notice=notice, connectors=connectors, now=_now()
    )


async def _login_form(request: web.Request) -> web.Response:
    _host(request)
    if _session(request) is not None:
        return _redirect("/admin/")
    return _render("login.html", error=None)


async def _login(request: web.Request) -> web.Response:
    expected = _host(request).config.host.admin_token
    assert expected is not None, "checked by _host"
    if (why := _cross_site(request)) is not None:
        return _refusal(why)
    sent = (_text((await request.post()).get("token")) or "").strip()
    if not hmac.compare_digest(sent.encode(), expected.get_secret_value().encode()):
        _warn_refused(request)
        return _render("login.html", status=401, error="That is not the admin token.")
    session = request.app[_STATE_KEY].sessions.open()
    response = _redirect("/admin/")
    response.set_cookie(
        COOKIE,
        session.id,
        max_age=int(SESSION_TTL_S),
        path="/admin",
        httponly=True,
        samesite="Strict",
        secure=_is_https(request),
    )
    return response


async def _logout(request: web.Request) -> web.Response:
    session = await _form_session(request)
    if isinstance(session, web.Response):
        return session
    request.app[_STATE_KEY].sessions.close(session.id)
    response = _redirect("/admin/login")
    response.del_cookie(COOKIE, path="/admin")
    return response


# -- actions -------------------------------------------------------------------------


async def _replay(request: web.Request) -> web.Response:
    return await _act(request, _replay_event)


async def _discard(request: web.Request) -> web.Response:
    return await _act(request, _discard_event)


async def _import(request: web.Request) -> web.Response:
    return await _act(request, _request_import)


async def _act(
    request: web.Request, action: Callable[[web.Request], Awaitable[str]]
) -> web.Response:
    """A form's action: checked, done, its outcome kept for the page, then back to it."""
    session = await _form_session(request)
    if isinstance(session, web.Response):
        return session
    notice = await action(request)
    request.app[_STATE_KEY].sessions.set_notice(session, notice)
    return _redirect("/admin/")


async def _replay_event(request: web.Request) -> str:
    event_id = int(request.match_info["id"])
    moved = await queue.replay(_space(request), [event_id])
    _host(request).wake()
    if not moved:
        return f"Event {event_id} was not failed any more: nothing replayed."
    return f"Event {event_id} is queued again."


async def _discard_event(request: web.Request) -> str:
    event_id = int(request.match_info["id"])
    moved = await queue.discard(_space(request), [event_id])
    _host(request).wake()  # a failed event older than superseding may hold later ones
    if not moved:
        return f"Event {event_id} was not failed any more: nothing discarded."
    return f"Event {event_id} is discarded."


async def _request_import(request: web.Request) -> str:
    name = request.match_info["connector"]
    host = _host(request)
    if name not in host.states:
        return f"There is no connector named {name!r}."
    runtime = host.runtimes.get(name)
    if runtime is None:
        return f"Connector {name} is not open: its import starts once it opens."
    if Capability.IMPORT not in runtime.connector.capabilities:
        return f"Connector {name} cannot import."
    runtime.importer.request()
    return f"A full import of {name} is asked for."


# -- checks --------------------------------------------------------------------------


def _host(request: web.Request) -> Host:
    """The host, once the page is on: without an admin token it does not exist."""
    host = request.app[HOST_KEY]
    if host.config.host.admin_token is None:
        raise ScimError(404, "the status page is off: set host.admin_token to use it")
    return host


def _session(request: web.Request) -> BrowserSession | None:
    return request.app[_STATE_KEY].sessions.get(request.cookies.get(COOKIE))


async def _form_session(request: web.Request) -> BrowserSession | web.Response:
    """The session a form was posted in, once the post is shown to come from the
    page; a response (the login page, or a refusal) otherwise."""
    _host(request)
    if (why := _cross_site(request)) is not None:
        return _refusal(why)
    session = _session(request)
    if session is None:
        return _redirect("/admin/login")
    if not session.csrf_matches(_text((await request.post()).get("csrf"))):
        return _refusal("The form's CSRF token is missing or wrong: reload the page.")
    return session


def _cross_site(request: web.Request) -> str | None:
    """Why a POST looks sent by another site's page (it is refused, 403); None when
    it comes from the page. Browsers say where a request comes from in
    ``Sec-Fetch-Site``, or at least in ``Origin``; a client that sends neither is no
    browser, and the CSRF token still guards the forms."""
    site = request.headers.get("Sec-Fetch-Site")
    origin = request.headers.get("Origin")
    if site is not None and site != "same-origin":
        return f"The form was sent from another site ({site})."
    if origin is not None and origin not in _own_origins(request):
        return f"The form was sent from {origin}, not from this page."
    return None


def _own_origins(request: web.Request) -> set[str]:
    origins = {f"{request.scheme}://{request.host}"}
    public = _host(request).config.host.public_url
    if public:
        scheme, _, rest = public.partition("://")
        origins.add(f"{scheme}://{rest.split('/')[0]}")
    return origins


def _is_https(request: web.Request) -> bool:
    public = _host(request).config.host.public_url or ""
    return request.secure or public.startswith("https://")


def _warn_refused(request: web.Request) -> None:
    held = request.app[_STATE_KEY].refusals.allow()
    if held is not None:
        log.warning(
            "status page: wrong admin token from %s (%d more refused since the last warning)",
            request.remote,
            held,
            extra={"action": "admin.login_refused", "held_back": held},
        )


# -- rendering -----------------------------------------------------------------------


async def _connector_status(host: Host, name: str) -> _ConnectorStatus:
    space = host.space
    assert space is not None, "the host is open while the app serves"
    state = host.states[name]
    runtime = host.runtimes.get(name)
    return _ConnectorStatus(
        name=name,
        state=state.phase.value,
        reason=state.reason,
        can_import=runtime is not None and Capability.IMPORT in runtime.connector.capabilities,
        last_import=await space.last_import(name),
        next_import_at=host.next_import_at(name),
        exports=await space.queue_summary(name),
        failed=await queue.list_events(
            space, status=queue.EventStatus.FAILED, connector=name, limit=FAILED_SHOWN
        ),
        outcomes=await queue.recent_outcomes(space, name, OUTCOMES_SHOWN),
    )


def _environment() -> Environment:
    # Autoescaping on every template: values shown come from SCIM clients and targets.
    environment = Environment(
        loader=FileSystemLoader(Path(__file__).with_name("templates")),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # As in SCIM answers: a file's name, not where the host keeps it.
    environment.filters["detail"] = clamp_detail
    environment.filters["when"] = _when
    environment.filters["iso"] = _iso
    return environment


def _utc(moment: datetime) -> datetime:
    """The space keeps naive UTC times; the scheduler gives aware ones."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _when(moment: datetime | None) -> str:
    return "never" if moment is None else _utc(moment).strftime("%Y-%m-%d %H:%M:%S UTC")


def _iso(moment: datetime) -> str:
    return _utc(moment).isoformat(timespec="microseconds")


def _render(template: str, status: int = 200, **values: Any) -> web.Response:
    html = _TEMPLATES.get_template(template).render(**values)
    return web.Response(
        text=html, status=status, content_type="text/html", charset="utf-8", headers=_HEADERS
    )


def _refusal(detail: str) -> web.Response:
    return _render("refused.html", status=403, detail=detail)


def _redirect(location: str) -> web.Response:
    # Returned, not raised: the front-end's error middleware turns raised HTTP
    # exceptions into SCIM error bodies.
    return web.Response(status=303, headers={**_HEADERS, "Location": location})


def _space(request: web.Request) -> ConnectorSpace:
    space = _host(request).space
    assert space is not None, "the host is open while the app serves"
    return space


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _now() -> datetime:
    return datetime.now(UTC)


_TEMPLATES: Final = _environment()
