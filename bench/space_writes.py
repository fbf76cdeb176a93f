"""SCIM writes through the connector space's API, in process: the statements a
create, a replace and a delete run and the CPU each costs, without HTTP around it.

    python -m bench.space_writes [--n 2000] [--concurrency 16] [--no-count]

Writes go in waves of ``concurrency`` (as concurrent SCIM requests would, so the
group writer commits a wave in one transaction); CPU is ``time.process_time`` (the
process's user + system time, the worker thread's included). A last phase,
``create, exported``, adds what ``sync`` mode does besides: each wave of creates is
claimed as one batch and its outcome recorded, as the export worker would (the
target itself left out)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, cast

from ecmahost.engine.space import ConnectorSpace, Staging
from ecmahost.engine.space.database import sqlite_url
from ecmahost.engine.space.records import Delivered
from ecmahost.engine.space.states import Op

CONNECTOR = "bench"
EXPORTED = "bench-exported"
"""The last phase's connector: the earlier phases' events, never exported, are not
its queue's."""


def _person(i: int) -> dict[str, Any]:
    return {
        "UserName": f"user{i}@example.com",
        "AzureObjectID": f"00000000-0000-0000-0000-{i:012d}",
        "DisplayName": f"User {i}",
        "Mail": f"user{i}@example.com",
        "Department": "Bench",
        "AccountEnabled": True,
    }


class _Counter:
    """Statements the group writer's connection runs (sqlite3's trace callback: the
    writes go to the driver, past the engine's events); the rows of one
    executemany of index rows count once. (The callback costs some CPU itself:
    ``--no-count`` leaves it out.)"""

    def __init__(self) -> None:
        self.statements = 0
        self._last = ""

    def __call__(self, statement: str) -> None:
        words = " ".join(statement.split()[:3])
        if not words == self._last == "INSERT INTO object_values":
            self.statements += 1
        self._last = words


async def _phase(
    name: str,
    n: int,
    concurrency: int,
    counter: _Counter,
    write: Callable[[int], Awaitable[Any]],
    after_wave: Callable[[], Awaitable[Any]] | None = None,
) -> dict[str, Any]:
    """``write(i)`` for i in 0..n-1, ``concurrency`` at a time (then ``after_wave``)."""
    before = counter.statements
    start_cpu, start_wall = time.process_time(), time.perf_counter()
    for first in range(0, n, concurrency):
        await asyncio.gather(*(write(i) for i in range(first, min(n, first + concurrency))))
        if after_wave is not None:
            await after_wave()
    cpu_s, wall_s = time.process_time() - start_cpu, time.perf_counter() - start_wall
    return {
        "phase": name,
        "n": n,
        "cpu_ms": round(cpu_s * 1000 / n, 3),
        "wall_ms": round(wall_s * 1000 / n, 3),
        "statements": round((counter.statements - before) / n, 2),
    }


async def _run(n: int, concurrency: int, count: bool = True) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        space = await ConnectorSpace.open(sqlite_url(Path(tmp)))
        counter = _Counter()
        if count:
            raw = space.group_engine.raw_connection()  # the pool's one connection
            cast(sqlite3.Connection, raw.driver_connection).set_trace_callback(counter)
            raw.close()
        ids: dict[int, str] = {}

        async def create(i: int, connector: str = CONNECTOR) -> None:
            person = _person(i)
            staging = Staging(person, visible=True, export=Op.UPSERT)
            stored, _ = await space.create(connector, person["UserName"], staging)
            ids[i] = stored.id

        async def replace(i: int) -> None:
            changed = {**_person(i), "Department": "Elsewhere"}
            await space.update(
                CONNECTOR, ids[i], lambda _: Staging(changed, visible=True, export=Op.UPSERT)
            )

        async def delete(i: int) -> None:
            await space.update(
                CONNECTOR,
                ids[i],
                lambda before: Staging(before.attributes, visible=False, export=Op.DELETE),
            )

        async def export() -> None:
            claimed = await space.events.claim(EXPORTED, concurrency, 60.0)
            done = [
                Delivered(
                    due.object_id,
                    tuple(e.id for e in due.events),
                    due.events[-1].anchor,
                    due.events[-1].payload,
                )
                for due in claimed
            ]
            await space.events.record(done, [], [])

        async def create_another(i: int) -> None:
            await create(n + i, EXPORTED)

        try:
            return [
                await _phase("create", n, concurrency, counter, create),
                await _phase("replace", n, concurrency, counter, replace),
                await _phase("delete", n, concurrency, counter, delete),
                await _phase("create, exported", n, concurrency, counter, create_another, export),
            ]
        finally:
            await space.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--no-count", action="store_true", help="count no statements")
    args = parser.parse_args()
    for phase in asyncio.run(_run(args.n, args.concurrency, not args.no_count)):
        print(json.dumps(phase))


if __name__ == "__main__":
    main()
