"""The load generator: ``concurrency`` clients over one aiohttp session, each taking
the next request of a phase until none is left. It reports its own CPU share, so a
result limited by the generator rather than the server shows as such."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp

__all__ = ["PhaseResult", "Request", "run_phase"]


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    url: str
    json: Any = None
    expect: tuple[int, ...] = (200,)


@dataclass(frozen=True, slots=True)
class PhaseResult:
    name: str
    requests: int
    wall_s: float
    latencies_s: tuple[float, ...]
    generator_cpu_share: float
    """CPU seconds the generator spent per wall second (1.0 = one core)."""

    @property
    def rate(self) -> float:
        return self.requests / self.wall_s if self.wall_s else 0.0

    def percentile_ms(self, q: float) -> float:
        ordered = sorted(self.latencies_s)
        return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    @property
    def p50_ms(self) -> float:
        return 1000 * statistics.median(self.latencies_s)


async def run_phase(
    name: str,
    requests: Iterator[Request],
    concurrency: int,
    headers: dict[str, str] | None = None,
    on_response: Callable[[Request, Any], None] | None = None,
) -> PhaseResult:
    """Send every request of ``requests`` with ``concurrency`` clients; a status other
    than the request's ``expect`` stops the phase with an error."""
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def client() -> None:
            for request in requests:
                started = time.perf_counter()
                async with session.request(
                    request.method, request.url, json=request.json
                ) as response:
                    body = await response.read()
                    if response.status not in request.expect:
                        raise RuntimeError(
                            f"{request.method} {request.url}: {response.status} {body[:300]!r}"
                        )
                latencies.append(time.perf_counter() - started)
                if on_response is not None:
                    on_response(request, body)

        cpu_before, wall_before = time.process_time(), time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        wall_s = time.perf_counter() - wall_before
        cpu_s = time.process_time() - cpu_before
    return PhaseResult(
        name, len(latencies), wall_s, tuple(latencies), cpu_s / wall_s if wall_s else 0.0
    )
