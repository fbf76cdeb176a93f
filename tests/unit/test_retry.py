"""RetryPolicy.decide as a table: exponential back-off, the cap, jitter, giving up."""

from __future__ import annotations

import random

import pytest
from ecmahost.engine.queue.retry import Decision, RetryPolicy

EXACT = RetryPolicy(base_s=2.0, cap_s=30.0, max_attempts=7, jitter=False)


@pytest.mark.parametrize(
    ("attempts", "expected"),
    [
        (1, Decision(retry=True, delay_s=2.0)),
        (2, Decision(retry=True, delay_s=4.0)),
        (3, Decision(retry=True, delay_s=8.0)),
        (4, Decision(retry=True, delay_s=16.0)),
        (5, Decision(retry=True, delay_s=30.0)),  # 32 s capped
        (6, Decision(retry=True, delay_s=30.0)),
        (7, Decision(retry=False)),  # max_attempts failures: give up
        (8, Decision(retry=False)),
        (100, Decision(retry=False)),
    ],
)
def test_decide_without_jitter(attempts: int, expected: Decision) -> None:
    assert EXACT.decide(attempts) == expected


@pytest.mark.parametrize(
    ("policy", "attempts", "expected"),
    [
        (RetryPolicy(base_s=0.05, cap_s=300, max_attempts=8, jitter=False), 4, 0.4),
        (RetryPolicy(base_s=1, cap_s=1, max_attempts=8, jitter=False), 1, 1.0),
        (RetryPolicy(base_s=1, cap_s=1, max_attempts=8, jitter=False), 7, 1.0),
        (RetryPolicy(base_s=5, cap_s=3, max_attempts=8, jitter=False), 1, 3.0),
        (RetryPolicy(base_s=2, cap_s=300, max_attempts=30, jitter=False), 29, 300.0),
    ],
)
def test_delay_table(policy: RetryPolicy, attempts: int, expected: float) -> None:
    decision = policy.decide(attempts)

    assert decision.retry
    assert decision.delay_s == pytest.approx(expected)


def test_a_single_allowed_attempt_never_retries() -> None:
    assert RetryPolicy(max_attempts=1, jitter=False).decide(1) == Decision(retry=False)


def test_the_defaults() -> None:
    policy = RetryPolicy(jitter=False)

    assert [policy.decide(n).delay_s for n in range(1, 8)] == [2, 4, 8, 16, 32, 64, 128]
    assert policy.decide(8) == Decision(retry=False)


@pytest.mark.parametrize(
    ("attempts", "full_delay_s"),
    [(1, 2.0), (2, 4.0), (3, 8.0), (4, 16.0), (5, 30.0), (6, 30.0)],
)
def test_jitter_stays_within_half_to_full_delay(attempts: int, full_delay_s: float) -> None:
    policy = RetryPolicy(base_s=2.0, cap_s=30.0, max_attempts=7, jitter=True)
    rng = random.Random(attempts)

    delays = [policy.decide(attempts, rng).delay_s for _ in range(500)]

    assert all(full_delay_s / 2 <= d <= full_delay_s for d in delays)
    # Spread over the interval, not pinned to one end of it.
    assert min(delays) < full_delay_s * 0.6
    assert max(delays) > full_delay_s * 0.9


def test_jitter_is_reproducible_with_a_seeded_random() -> None:
    policy = RetryPolicy(base_s=2.0, cap_s=30.0, jitter=True)

    first = [policy.decide(3, random.Random(7)).delay_s for _ in range(3)]
    second = [policy.decide(3, random.Random(7)).delay_s for _ in range(3)]

    assert first == second
    assert policy.decide(3, random.Random(8)).delay_s != first[0]


def test_jitter_still_gives_up_at_max_attempts() -> None:
    policy = RetryPolicy(base_s=2.0, cap_s=30.0, max_attempts=3, jitter=True)

    assert policy.decide(2, random.Random(1)).retry
    assert policy.decide(3, random.Random(1)) == Decision(retry=False)
