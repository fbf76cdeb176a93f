"""The notifier between the export worker and the writes waiting for its outcomes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from ecmahost.engine.queue.notifier import Notifier


async def subscribed(notifier: Notifier[int, str], key: int, count: int = 1) -> None:
    """Let the event loop run until ``count`` tasks wait for ``key``."""
    for _ in range(100):
        if notifier.waiting(key) == count:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"{notifier.waiting(key)} waiters for {key}, expected {count}")


async def test_a_value_published_while_waiting_is_returned() -> None:
    notifier: Notifier[int, str] = Notifier()
    waiter = asyncio.create_task(notifier.wait(7, 5.0))
    await subscribed(notifier, 7)

    notifier.publish(7, "done")

    assert await waiter == "done"
    assert notifier.waiting(7) == 0


async def test_a_value_published_before_waiting_is_not_kept() -> None:
    notifier: Notifier[int, str] = Notifier()
    notifier.publish(7, "done")

    assert await notifier.wait(7, 0.01) is None


async def test_current_finds_a_value_published_before_the_wait() -> None:
    notifier: Notifier[int, str] = Notifier()
    asked: list[int] = []

    async def current() -> str | None:
        asked.append(1)
        return "recorded"

    assert await notifier.wait(7, 5.0, current) == "recorded"
    assert asked == [1]
    assert notifier.waiting(7) == 0


async def test_a_value_published_while_current_runs_is_not_lost() -> None:
    notifier: Notifier[int, str] = Notifier()

    async def current() -> str | None:
        notifier.publish(7, "published meanwhile")  # the worker records it right now
        return None  # ... after this read of the database

    assert await notifier.wait(7, 5.0, current) == "published meanwhile"


def _asked(answer_on: int | None = None) -> tuple[list[float], Callable[[], Awaitable[str | None]]]:
    """A ``current`` that notes when it is asked (seconds since this call) and finds
    "recorded elsewhere" at its ``answer_on``-th ask (never without one)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    asked: list[float] = []

    async def current() -> str | None:
        asked.append(loop.time() - started)
        return "recorded elsewhere" if len(asked) == answer_on else None

    return asked, current


async def test_the_wait_ends_with_none_after_the_timeout() -> None:
    notifier: Notifier[int, str] = Notifier()
    loop = asyncio.get_running_loop()
    started = loop.time()
    asked, current = _asked()

    assert await notifier.wait(7, 0.05, current) is None

    assert loop.time() - started >= 0.04
    assert len(asked) == 1  # without recheck_s, asked once
    assert notifier.waiting(7) == 0


async def test_a_value_recorded_where_no_publish_reaches_is_found_by_the_recheck() -> None:
    """Another host recorded the outcome and died before telling this one."""
    notifier: Notifier[int, str] = Notifier()
    asked, current = _asked(answer_on=3)

    assert await notifier.wait(7, 5.0, current, recheck_s=0.05) == "recorded elsewhere"
    assert asked[2] < 1.0  # found at the third ask: not after the whole timeout
    assert asked[1] >= 0.04 and asked[2] - asked[1] >= 0.04  # at the interval, no faster
    assert notifier.waiting(7) == 0


async def test_every_waiter_of_a_key_gets_the_value_and_only_that_key_is_served() -> None:
    notifier: Notifier[int, str] = Notifier()
    first = asyncio.create_task(notifier.wait(7, 5.0))
    second = asyncio.create_task(notifier.wait(7, 5.0))
    other = asyncio.create_task(notifier.wait(8, 5.0))
    await subscribed(notifier, 7, 2)
    await subscribed(notifier, 8)

    notifier.publish(7, "done")

    assert await asyncio.gather(first, second) == ["done", "done"]
    assert not other.done()
    assert notifier.waiting(8) == 1
    notifier.publish(8, "failed")
    assert await other == "failed"


async def test_a_cancelled_waiter_is_removed_and_the_others_still_served() -> None:
    notifier: Notifier[int, str] = Notifier()
    cancelled = asyncio.create_task(notifier.wait(7, 5.0))
    kept = asyncio.create_task(notifier.wait(7, 5.0))
    await subscribed(notifier, 7, 2)

    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled

    assert notifier.waiting(7) == 1
    notifier.publish(7, "done")
    assert await kept == "done"
    assert notifier.waiting(7) == 0


async def test_cancelling_the_only_waiter_leaves_nobody_waiting() -> None:
    notifier: Notifier[int, str] = Notifier()
    waiter = asyncio.create_task(notifier.wait(7, 5.0))
    await subscribed(notifier, 7)

    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter

    assert notifier.waiting(7) == 0
    notifier.publish(7, "done")  # nobody waits: nothing happens
    assert notifier.waiting(7) == 0
