"""Small test helpers shared across layers."""

from __future__ import annotations

import asyncio
import inspect
import os
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import pytest

__all__ = ["eventually", "unavailable"]

T = TypeVar("T")


async def eventually(
    predicate: Callable[[], T | Awaitable[T]],
    timeout_s: float = 5.0,
    interval_s: float = 0.01,
    message: str = "",
) -> T:
    """Poll ``predicate`` (sync or async) until it returns something truthy, and
    return that; fail the test once ``timeout_s`` has passed without it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        result: Any = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result  # type: ignore[no-any-return]
        if loop.time() >= deadline:
            raise AssertionError(
                f"condition not met within {timeout_s:g} s"
                + (f": {message}" if message else "")
                + f" (last value: {result!r})"
            )
        await asyncio.sleep(interval_s)


def unavailable(reason: str) -> NoReturn:
    """A server or tool the test needs is missing: skip the test, or fail it where
    CI promises every one of them (``ECMAHOST_REQUIRE_SERVERS=1``)."""
    if os.environ.get("ECMAHOST_REQUIRE_SERVERS") == "1":
        pytest.fail(f"{reason}; ECMAHOST_REQUIRE_SERVERS=1 makes this a failure", pytrace=False)
    pytest.skip(reason)
