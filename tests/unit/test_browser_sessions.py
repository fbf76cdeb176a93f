"""The status page's sessions: random ids, their own CSRF token, expiry, a bound."""

from __future__ import annotations

from ecmahost.engine.scim import browser_sessions
from ecmahost.engine.scim.browser_sessions import SessionStore


class _Clock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


def test_a_session_lives_until_its_time_is_up_then_is_gone() -> None:
    clock = _Clock()
    store = SessionStore(ttl_s=60, clock=clock)
    session = store.open()
    clock.now_s += 59
    assert store.get(session.id) == session
    clock.now_s += 1
    assert store.get(session.id) is None
    assert store.get(None) is None and store.get("") is None


def test_ids_and_csrf_tokens_are_random_and_checked_exactly() -> None:
    store = SessionStore()
    one, two = store.open(), store.open()
    assert len({one.id, one.csrf, two.id, two.csrf}) == 4 and len(one.id) >= 40
    assert one.csrf_matches(one.csrf)
    assert not one.csrf_matches(two.csrf)
    assert not one.csrf_matches(None) and not one.csrf_matches("")


def test_a_notice_is_shown_once_and_logout_closes_the_session() -> None:
    store = SessionStore()
    session = store.open()
    store.set_notice(session, "Event 3 is queued again.")
    noted = store.get(session.id)
    assert noted is not None and store.take_notice(noted) == "Event 3 is queued again."
    again = store.get(session.id)
    assert again is not None and store.take_notice(again) is None
    store.close(session.id)
    assert store.get(session.id) is None


def test_logins_beyond_the_bound_push_out_the_oldest(monkeypatch) -> None:
    monkeypatch.setattr(browser_sessions, "MAX_SESSIONS", 3)
    store = SessionStore()
    first, *rest = [store.open() for _ in range(4)]
    assert store.get(first.id) is None
    assert all(store.get(s.id) == s for s in rest)
