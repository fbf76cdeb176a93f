"""Retention: finished export events older than ``host.retention_days`` lose their
payloads and history (``ConnectorSpace.prune_finished``). The host asks at start-up,
the scheduler every hour; a request made while a pass runs is served by one more."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from ecmahost.engine.space.contract import Store
from ecmahost.engine.space.models import utcnow

__all__ = ["Retention"]

log = logging.getLogger(__name__)


class Retention:
    """The pruning task of a space; ``run`` it, then ``request`` passes."""

    name = "retention"

    def __init__(self, space: Store, days: float) -> None:
        self._space = space
        self._keep = timedelta(days=days)
        self._requested = asyncio.Event()

    def request(self) -> None:
        """Ask for a pass; asking again before it starts is the same request."""
        self._requested.set()

    async def run(self) -> None:
        while True:
            await self._requested.wait()
            self._requested.clear()
            await self.prune()

    async def prune(self) -> int:
        """One pass: prune what finished before the retention period; returns how
        many events were pruned."""
        try:
            pruned = await self._space.prune_finished(utcnow() - self._keep)
        except Exception as exc:  # a busy or full disk: the next hour's pass tries again
            log.error(
                "pruning finished export events failed: %s",
                exc,
                extra={"action": "retention.failed"},
            )
            return 0
        if pruned:
            log.info(
                "%d finished export events older than %g days pruned",
                pruned,
                self._keep / timedelta(days=1),
                extra={"action": "retention.pruned", "count": pruned},
            )
        return pruned
