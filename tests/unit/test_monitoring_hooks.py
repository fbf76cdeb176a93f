"""Small parts behind the monitoring: when a connector's state change is an alert,
and how refused tokens are rate-limited in the log."""

from __future__ import annotations

import logging
import time

import pytest
from ecmahost.engine.scim.metrics import _UnauthorizedLog
from ecmahost.engine.workers.state import ConnectorState, Phase


def _moves(*steps: str) -> list[tuple[Phase, Phase]]:
    seen: list[tuple[Phase, Phase]] = []
    state = ConnectorState("CSV", on_change=lambda s, before: seen.append((before, s.phase)))
    for step in steps:
        if step == "degraded":
            state.mark_degraded("down")
        else:
            getattr(state, step)()
    return seen


@pytest.mark.parametrize(
    ("steps", "alerts"),
    [
        (("serving", "importing", "serving"), []),
        (("degraded",), [(Phase.IMPORTING, Phase.DEGRADED)]),
        (("degraded", "degraded", "importing"), [(Phase.IMPORTING, Phase.DEGRADED)]),
        (
            ("serving", "degraded", "serving"),
            [(Phase.SERVING, Phase.DEGRADED), (Phase.DEGRADED, Phase.SERVING)],
        ),
        (
            ("degraded", "connected"),
            [(Phase.IMPORTING, Phase.DEGRADED), (Phase.DEGRADED, Phase.IMPORTING)],
        ),
    ],
)
def test_only_entering_and_leaving_degraded_is_an_alert(
    steps: tuple[str, ...], alerts: list[tuple[Phase, Phase]]
) -> None:
    assert _moves(*steps) == alerts


def test_refused_tokens_are_logged_once_per_period_per_address(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="ecmahost.engine.scim.metrics")
    limiter = _UnauthorizedLog(every_s=0.2)
    for _ in range(5):
        limiter.refused("10.0.0.1", "/r")
    limiter.refused("10.0.0.2", "/r")
    time.sleep(0.25)
    limiter.refused("10.0.0.1", "/r")
    logged = [(r.client, r.not_logged) for r in caplog.records]  # type: ignore[attr-defined]
    assert logged == [("10.0.0.1", 0), ("10.0.0.2", 0), ("10.0.0.1", 4)]
