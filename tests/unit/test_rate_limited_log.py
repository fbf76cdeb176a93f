"""A limit line is logged at most once per interval, and the next one counts the rest."""

from __future__ import annotations

import logging

import pytest
from ecmahost.engine.cli.limits import RateLimitedLog


class Clock:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


@pytest.mark.parametrize(
    ("calls_at_s", "logged"),
    [
        ([0.0], ["refused 1"]),
        ([0.0, 1.0, 9.9], ["refused 1"]),
        ([0.0, 1.0, 9.9, 10.0], ["refused 1", "refused 4 (2 more since the last such line)"]),
        ([0.0, 10.0, 25.0], ["refused 1", "refused 2", "refused 3"]),
    ],
)
def test_lines_within_the_interval_are_counted_not_logged(
    caplog: pytest.LogCaptureFixture, calls_at_s: list[float], logged: list[str]
) -> None:
    clock = Clock()
    line = RateLimitedLog(logging.WARNING, "http.refused", interval_s=10.0, clock=clock)
    start_s = clock.now_s
    with caplog.at_level(logging.WARNING):
        for number, at_s in enumerate(calls_at_s, start=1):
            clock.now_s = start_s + at_s
            line("refused %d", number)
    assert [record.getMessage() for record in caplog.records] == logged
    assert all(record.action == "http.refused" for record in caplog.records)
