"""When to try a transiently failed export again: exponential back-off with jitter."""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["Decision", "RetryPolicy"]


@dataclass(frozen=True, slots=True)
class Decision:
    """``retry`` with a ``delay_s``, or give up (``retry`` False)."""

    retry: bool
    delay_s: float = 0.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``attempts`` counts failed attempts so far (1 after the first failure).

    The delay doubles from ``base_s`` up to ``cap_s``; "full jitter" spreads it over
    [delay/2, delay] so that objects failing together do not retry in lock-step.
    """

    base_s: float = 2.0
    cap_s: float = 300.0
    max_attempts: int = 8
    jitter: bool = True

    def decide(self, attempts: int, rng: random.Random | None = None) -> Decision:
        if attempts >= self.max_attempts:
            return Decision(retry=False)
        delay_s = min(self.cap_s, self.base_s * 2 ** (attempts - 1))
        if self.jitter:
            delay_s = (rng or random).uniform(delay_s / 2, delay_s)
        return Decision(retry=True, delay_s=delay_s)
