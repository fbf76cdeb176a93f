"""The status page's browser sessions, kept in the host's memory.

The browser holds only a random session id (in an HttpOnly cookie), never the admin
token: a stolen cookie dies with its session (logout, expiry or a restart), and the
token never sits in a browser's cookie store. Each session carries its own CSRF
token, which every form of the page sends back."""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Final

__all__ = ["SESSION_TTL_S", "BrowserSession", "SessionStore"]

SESSION_TTL_S: Final = 8 * 3600.0
"""A session ends this long after its login, used or not: a working day."""

MAX_SESSIONS: Final = 1000
"""Logins beyond this push out the oldest session: memory stays bounded even if
someone who holds the token logs in in a loop."""


@dataclass(frozen=True, slots=True)
class BrowserSession:
    """``id`` is the cookie's value, ``csrf`` the token the page's forms carry;
    ``notice`` is a one-time message for the next page view (what a form did)."""

    id: str
    csrf: str
    expires_at: float
    """On the store's clock (monotonic seconds)."""
    notice: str | None = None

    def csrf_matches(self, sent: str | None) -> bool:
        """Whether a form's CSRF token is this session's, compared in constant time."""
        return sent is not None and hmac.compare_digest(sent.encode(), self.csrf.encode())


class SessionStore:
    """The live sessions by id; expired ones are dropped as they are met."""

    def __init__(
        self, ttl_s: float = SESSION_TTL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._sessions: dict[str, BrowserSession] = {}

    def open(self) -> BrowserSession:
        """A new session for a browser that just gave the right token."""
        self._prune()
        session = BrowserSession(
            secrets.token_urlsafe(32), secrets.token_urlsafe(32), self._clock() + self._ttl_s
        )
        self._sessions[session.id] = session
        return session

    def get(self, session_id: str | None) -> BrowserSession | None:
        """The live session of this id; None for an unknown or expired one."""
        session = self._sessions.get(session_id or "")
        if session is not None and session.expires_at <= self._clock():
            del self._sessions[session.id]
            return None
        return session

    def close(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)

    def set_notice(self, session: BrowserSession, notice: str) -> None:
        if session.id in self._sessions:
            self._sessions[session.id] = replace(session, notice=notice)

    def take_notice(self, session: BrowserSession) -> str | None:
        """The session's notice, shown once: it is cleared as it is read."""
        if session.notice is not None and session.id in self._sessions:
            self._sessions[session.id] = replace(session, notice=None)
        return session.notice

    def _prune(self) -> None:
        now = self._clock()
        for expired in [s.id for s in self._sessions.values() if s.expires_at <= now]:
            del self._sessions[expired]
        # Dicts keep insertion order: the first ones are the oldest logins.
        while len(self._sessions) >= MAX_SESSIONS:
            del self._sessions[next(iter(self._sessions))]
