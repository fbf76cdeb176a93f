"""A notifier: one side publishes a value under a key, the other awaits it.

Generic and free of any other ecmahost import, so that both the export worker,
which publishes outcomes, and the SCIM write path, which awaits them, can use it
without depending on each other."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["Notifier"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Notifier(Generic[K, V]):
    """Waiters for values keyed by ``K``, on one event loop.

    A value published while nobody waits for its key is not kept: a waiter that
    may come late passes ``current``, which reads the value already recorded
    elsewhere (e.g. in the database)."""

    def __init__(self) -> None:
        self._waiters: dict[K, list[asyncio.Future[V]]] = {}

    def publish(self, key: K, value: V) -> None:
        """Hand ``value`` to every task waiting for ``key`` now."""
        for future in self._waiters.pop(key, []):
            if not future.done():
                future.set_result(value)

    async def wait(
        self,
        key: K,
        timeout_s: float,
        current: Callable[[], Awaitable[V | None]] | None = None,
        recheck_s: float | None = None,
    ) -> V | None:
        """The value published for ``key``, or None if none comes within ``timeout_s``.

        ``current`` is asked after subscribing: a value it returns wins, and one
        published while it runs is not lost. With ``recheck_s`` it is asked again at
        that interval, for a value recorded where no publish reaches this notifier."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[V] = loop.create_future()
        self._waiters.setdefault(key, []).append(future)
        deadline = loop.time() + timeout_s
        try:
            while True:
                if current is not None:
                    known = await current()
                    if known is not None:
                        return known
                left = deadline - loop.time()
                last = recheck_s is None or left <= recheck_s
                done, _ = await asyncio.wait({future}, timeout=left if last else recheck_s)
                if done:
                    return future.result()
                if last:
                    return None
        finally:
            self._forget(key, future)

    def waiting(self, key: K) -> int:
        """How many tasks wait for ``key``."""
        return len(self._waiters.get(key, ()))

    def _forget(self, key: K, future: asyncio.Future[V]) -> None:
        waiters = self._waiters.get(key)
        if waiters is None:
            return
        if future in waiters:
            waiters.remove(future)
        if not waiters:
            del self._waiters[key]
