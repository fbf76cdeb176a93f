"""SCIM request phases against a serving host, each measured beside the bare aiohttp
app: the app's rate is taken before and after the phases and averaged, so a machine
that got busier meanwhile shows in both."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from rich.table import Table

from bench.loadgen import PhaseResult, Request, run_phase
from bench.report import ratio
from bench.target import EXT, TOKEN, user_name

HEADERS = {"Authorization": f"Bearer {TOKEN}"}
OnResponse = Callable[[Request, Any], None]


def by_user_name(base_url: str, i: int) -> Request:
    """An ``eq`` filter on UserName, the lookup Entra makes by a non-anchor attribute."""
    query = f'filter={EXT}:UserName+eq+"{user_name(i)}"'
    return Request("GET", f"{base_url}/Users?{query}")


async def bare_phase(url: str, requests: int, concurrency: int) -> PhaseResult:
    return await run_phase("bare aiohttp", iter([Request("GET", url)] * requests), concurrency)


async def against_bare(
    bare_url: str,
    bare_requests: int,
    phases: Iterable[tuple[str, Iterator[Request]]],
    concurrency: int,
    on_response: OnResponse | None = None,
) -> tuple[float, list[PhaseResult]]:
    """The bare app's mean rate and every result: bare, the phases, bare again."""
    before = await bare_phase(bare_url, bare_requests, concurrency)
    results = [
        await run_phase(name, requests, concurrency, HEADERS, on_response)
        for name, requests in phases
    ]
    after = await bare_phase(bare_url, bare_requests, concurrency)
    return (before.rate + after.rate) / 2, [before, *results, after]


def phases_table(title: str, results: Iterable[PhaseResult], bare_rate: float) -> Table:
    table = Table(title=title)
    for column in ("phase", "requests", "req/s", "p50 ms", "p99 ms", "ratio to bare", "gen. CPU"):
        table.add_column(column, justify="left" if column == "phase" else "right")
    for figures in phases_json(results, bare_rate):
        table.add_row(
            figures["phase"],
            f"{figures['requests']:,}",
            f"{figures['req_per_s']:,.0f}",
            f"{figures['p50_ms']:.1f}",
            f"{figures['p99_ms']:.1f}",
            f"{figures['ratio_to_bare']:.2f}",
            f"{figures['generator_cpu_share']:.0%}",
        )
    return table


def phases_json(results: Iterable[PhaseResult], bare_rate: float) -> list[dict[str, Any]]:
    return [
        {
            "phase": r.name,
            "requests": r.requests,
            "req_per_s": round(r.rate, 1),
            "p50_ms": round(r.p50_ms, 2),
            "p99_ms": round(r.percentile_ms(0.99), 2),
            "ratio_to_bare": round(ratio(r.rate, bare_rate), 3),
            "generator_cpu_share": round(r.generator_cpu_share, 3),
        }
        for r in results
    ]
