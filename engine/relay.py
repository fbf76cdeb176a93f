"""What a host on a shared space tells the other hosts, and what it does with what
they tell it (``space.cluster`` carries the messages).

* ``outcomes CONNECTOR ID…``: those events have an outcome recorded; a sync-mode
  write waiting here for one of them reads it and answers.
* ``wake``: queued events changed elsewhere (a replay, a discard): exporters look now.
* ``import CONNECTOR full|delta allow|keep``: an import asked of a host that does not
  lead the connector; the leading host runs it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from ecmahost.engine import queue
from ecmahost.engine.space.cluster import Cluster

if TYPE_CHECKING:
    from ecmahost.engine.host import Host

__all__ = ["Relay"]

log = logging.getLogger(__name__)


class Relay:
    """The host's side of the cluster; on SQLite its messages go nowhere."""

    def __init__(self, host: Host) -> None:
        self._host = host
        config = host.config
        url = config.database_url if config.shared_database else None
        self.cluster = Cluster(url, config.connectors, self.heard)
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- Leadership (workers.importer) ---------------------------------------------

    def leads(self, connector: str) -> bool:
        return self.cluster.leads(connector)

    def pass_on(self, connector: str, *, delta: bool, allow_removals: bool) -> None:
        kind = "delta" if delta else "full"
        self._send("import", connector, kind, "allow" if allow_removals else "keep")

    # -- messages out ------------------------------------------------------------------

    def announce(self, connector: str, event_ids: list[int]) -> None:
        self._send("outcomes", connector, *map(str, event_ids))

    def wake_all(self) -> None:
        self._send("wake")

    def _send(self, kind: str, *words: str) -> None:
        if not self.cluster.shared:
            return
        self._spawn(self.cluster.tell(kind, *words))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)  # kept until done: the loop holds tasks only weakly
        task.add_done_callback(self._tasks.discard)

    # -- messages in ---------------------------------------------------------------------

    def heard(self, kind: str, words: list[str]) -> None:
        if kind == "wake":
            self._host.wake_here()
        elif kind == "outcomes" and words:
            self._outcomes(words[0], [int(word) for word in words[1:]])
        elif kind == "import" and len(words) == 3:
            runtime = self._host.runtimes.get(words[0])
            if runtime is not None and self.cluster.leads(runtime.name):
                runtime.importer.request(
                    delta=words[1] == "delta", allow_removals=words[2] == "allow"
                )
        else:
            log.debug("unknown cluster message %s %s", kind, words)

    def _outcomes(self, connector: str, event_ids: list[int]) -> None:
        runtime = self._host.runtimes.get(connector)
        space = self._host.space
        if runtime is None or space is None:
            return
        waited = [i for i in event_ids if runtime.outcomes.waiting(i)]
        if not waited:
            return

        async def deliver() -> None:
            for event_id in waited:
                outcome = await queue.outcome(space, event_id)
                if outcome is not None:
                    runtime.outcomes.publish(event_id, outcome)

        self._spawn(deliver())
