"""SCIM load: ecmahost serving the demo CSV connector (sync mode, synchronous=FULL)
against a bare aiohttp app, both driven by the same load generator in one run.

Phases over ``--users`` users preloaded into the connector space (through the CSV
file and the start-up import) plus ``--api-users`` created through the API: create,
filter by anchor, filter by UserName, get by id, patch, list a page of 100, delete.
Each prints req/s, p50, p99, the ratio to the bare app's req/s, and the generator's
own CPU share; the last line is the whole result as JSON.
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
from bench.processes import bare_app, serving
from bench.report import Sizes, emit
from bench.target import EXT, anchor, user, write_target


class _Phases:
    """The request streams of each phase, over users ``0 .. preloaded + api_users``."""

    def __init__(self, base: str, preloaded: int, api_users: int, ids: dict[str, str]) -> None:
        self.base, self.ids = base, ids
        self.fresh = range(preloaded, preloaded + api_users)
        self.total = preloaded + api_users
        self.rng = random.Random(7)
        self.sample = [self.rng.randrange(self.total) for _ in range(api_users)]

    def all(self) -> list[tuple[str, Any]]:
        return [
            ("create", self.create),
            ("filter-by-anchor", self.by_anchor),
            ("filter-by-UserName", self.by_user_name),
            ("get-by-id", self.by_id),
            ("patch", self.patch),
            ("list-page", self.list_page),
            ("delete", self.delete),
        ]

    def _user_url(self, i: int) -> str:
        return f"{self.base}/Users/{self.ids[anchor(i)]}"

    def create(self) -> Iterator[Request]:
        for i in self.fresh:
            yield Request("POST", f"{self.base}/Users", {EXT: user(i)}, (201,))

    def by_anchor(self) -> Iterator[Request]:
        for i in self.sample:
            yield Request("GET", f'{self.base}/Users?filter=AzureObjectID+eq+"{anchor(i)}"')

    def by_user_name(self) -> Iterator[Request]:
        for i in self.sample:
            yield by_user_name(self.base, i)

    def by_id(self) -> Iterator[Request]:
        for i in self.fresh:
            yield Request("GET", self._user_url(i))

    def patch(self) -> Iterator[Request]:
        body = {"Operations": [{"op": "Replace", "path": f"{EXT}:Title", "value": "Lead"}]}
        for i in self.fresh:
            yield Request("PATCH", self._user_url(i), body)

    def list_page(self) -> Iterator[Request]:
        for _ in range(max(100, len(self.fresh) // 10)):
            start = self.rng.randrange(1, self.total - 100)
            yield Request("GET", f"{self.base}/Users?startIndex={start}&count=100")

    def delete(self) -> Iterator[Request]:
        for i in self.fresh:
            yield Request("DELETE", self._user_url(i), expect=(204,))


async def _measure(args: argparse.Namespace, config: Path) -> None:
    ids: dict[str, str] = {}

    def remember(request: Request, body: bytes) -> None:
        if request.method == "POST":
            resource = json.loads(body)
            ids[resource[EXT]["AzureObjectID"]] = resource["id"]

    with bare_app() as bare_url, serving(config) as host:
        phases = _Phases(host.base_url, args.users, args.api_users, ids).all()
        bare_rate, results = await against_bare(
            bare_url,
            args.api_users,
            ((name, requests()) for name, requests in phases),
            args.concurrency,
            remember,
        )
    _report(args, bare_rate, results, host.startup_s)


def _report(
    args: argparse.Namespace, bare_rate: float, results: list[PhaseResult], startup_s: float
) -> None:
    title = f"SCIM load: {args.users:,} preloaded + {args.api_users:,} through the API"
    emit(
        phases_table(f"{title}, concurrency {args.concurrency}", results, bare_rate),
        {
            "benchmark": "scim_load",
            "users": args.users,
            "api_users": args.api_users,
            "concurrency": args.concurrency,
            "bare_req_per_s": round(bare_rate, 1),
            "startup_s": round(startup_s, 1),
            "phases": phases_json(results, bare_rate),
        },
        [f"host start-up with the import of {args.users:,} users: {startup_s:.1f} s"],
    )


def main() -> None:
    sizes = Sizes(__doc__.splitlines()[0], "5,000 + 1,000 users: about a minute")
    sizes.add("--users", 100_000, 5_000, "users preloaded through the CSV file")
    sizes.add("--api-users", 10_000, 1_000, "users created through the API")
    sizes.parser.add_argument("--concurrency", type=int, default=16)
    args = sizes.parse()
    with tempfile.TemporaryDirectory(prefix="ecmahost-bench-") as tmp:
        asyncio.run(_measure(args, write_target(Path(tmp), args.users)))


if __name__ == "__main__":
    main()
