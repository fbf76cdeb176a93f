"""Filter at scale: ``--queries`` ``eq`` lookups by UserName (not the anchor) over
``--rows`` objects in the connector space, against the bare aiohttp app driven by
the same load generator in the same run.

The objects are loaded by the real command line (``ecmahost import CSV``) and served
by ``ecmahost serve``, whose start-up import finds them all unchanged; neither is
timed. Every response must hold exactly the one user asked for. The last line is the
whole result as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.loadgen import PhaseResult, Request
from bench.phases import against_bare, by_user_name, phases_json, phases_table
from bench.processes import bare_app, cli_import, serving
from bench.report import Sizes, emit, ratio
from bench.target import EXT, write_target

TARGET_P99_MS = 25.0
PHASE = "filter-by-UserName"


def _lookups(base_url: str, rows: int, queries: int) -> Iterator[Request]:
    rng = random.Random(13)
    for _ in range(queries):
        yield by_user_name(base_url, rng.randrange(rows))


def _check_one_match(request: Request, body: bytes) -> None:
    """Exactly one resource, the user the filter names; RuntimeError stops the phase."""
    found = json.loads(body)
    resources = found.get("Resources", [])
    if found.get("totalResults") != 1 or len(resources) != 1:
        raise RuntimeError(f"{request.url}: {found.get('totalResults')} results, not 1")
    if f'"{resources[0][EXT]["UserName"]}"' not in request.url:
        raise RuntimeError(f"{request.url}: found {resources[0][EXT]['UserName']}")


async def _measure(args: argparse.Namespace, config: Path) -> tuple[float, list[PhaseResult]]:
    with bare_app() as bare_url, serving(config) as host:
        print(
            f"host start-up with the import of {args.rows:,} unchanged objects: "
            f"{host.startup_s:.1f} s (untimed)"
        )
        return await against_bare(
            bare_url,
            args.queries,
            [(PHASE, _lookups(host.base_url, args.rows, args.queries))],
            args.concurrency,
            _check_one_match,
        )


def _report(args: argparse.Namespace, bare_rate: float, results: list[PhaseResult]) -> None:
    [lookups] = [r for r in results if r.name == PHASE]
    p99_ms = lookups.percentile_ms(0.99)
    title = f"Filter at scale: {args.queries:,} UserName lookups over {args.rows:,} objects"
    result: dict[str, Any] = {
        "benchmark": "filter_scale",
        "rows": args.rows,
        "queries": lookups.requests,
        "concurrency": args.concurrency,
        "req_per_s": round(lookups.rate, 1),
        "p50_ms": round(lookups.p50_ms, 2),
        "p99_ms": round(p99_ms, 2),
        "bare_req_per_s": round(bare_rate, 1),
        "ratio_to_bare": round(ratio(lookups.rate, bare_rate), 3),
        "generator_cpu_share": round(lookups.generator_cpu_share, 3),
        "phases": phases_json(results, bare_rate),
    }
    emit(
        phases_table(f"{title}, concurrency {args.concurrency}", results, bare_rate),
        result,
        [f"p99 of the lookups: {p99_ms:.1f} ms (target ≤ {TARGET_P99_MS:.0f} ms)"],
    )


def main() -> None:
    sizes = Sizes(__doc__.splitlines()[0], "100,000 objects and 2,000 lookups")
    sizes.add("--rows", 1_000_000, 100_000, "objects in the connector space")
    sizes.add("--queries", 20_000, 2_000, "lookups sent")
    sizes.parser.add_argument("--concurrency", type=int, default=16)
    args = sizes.parse()
    with tempfile.TemporaryDirectory(prefix="ecmahost-bench-") as tmp:
        config = write_target(Path(tmp), args.rows)
        imported = cli_import(config, args.rows)
        print(f"ecmahost import of {args.rows:,} rows: {imported.wall_s:.1f} s (untimed)")
        _report(args, *asyncio.run(_measure(args, config)))


if __name__ == "__main__":
    main()
