"""Entra's path: users created through SCIM into an empty space (no import), then each
matched by its matching attribute, read by id, patched and deleted, in sync mode and
again in queued mode, each mode on a host of its own.

In sync mode a patch or a delete waits for its export, and each batch of them
rewrites the whole CSV file (~44 changes a second at 100,000 rows, batches of 16):
those two phases take the first ``--sync-changes`` users only. Their figures per
request settle long before that, and all 100,000 would take over an hour.

Each phase prints req/s, p50, p99, the ratio to the bare aiohttp app, and the server's
CPU per request (the host process's user + system time, read from /proc before and
after the phase), beside its target. The last line is the whole result as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.table import Table

from bench.loadgen import PhaseResult, Request, run_phase
from bench.phases import HEADERS, bare_phase
from bench.processes import bare_app, serving
from bench.report import Sizes, emit, ratio
from bench.target import EXT, anchor, user, write_target

MODES = ("sync", "queued")


@dataclass(frozen=True, slots=True)
class Target:
    """A phase's targets; None where the phase has none of that kind."""

    max_cpu_ms: float | None = None
    min_ratio: float | None = None
    min_req_per_s: float | None = None

    def text(self) -> str:
        parts = []
        if self.max_cpu_ms is not None:
            parts.append(f"CPU ≤ {self.max_cpu_ms} ms")
        if self.min_ratio is not None:
            parts.append(f"ratio ≥ {self.min_ratio}")
        if self.min_req_per_s is not None:
            parts.append(f"≥ {self.min_req_per_s:,.0f} req/s")
        return ", ".join(parts) or "-"

    def met(self, cpu_ms: float, ratio_to_bare: float, req_per_s: float) -> bool:
        return (
            (self.max_cpu_ms is None or cpu_ms <= self.max_cpu_ms)
            and (self.min_ratio is None or ratio_to_bare >= self.min_ratio)
            and (self.min_req_per_s is None or req_per_s >= self.min_req_per_s)
        )


TARGETS: dict[tuple[str, str], Target] = {
    ("sync", "create"): Target(min_req_per_s=1_500),
    **{(mode, "match"): Target(max_cpu_ms=0.15, min_ratio=0.4) for mode in MODES},
    **{(mode, "get-by-id"): Target(min_ratio=0.5) for mode in MODES},
    **{("queued", name): Target(max_cpu_ms=0.5) for name in ("create", "patch", "delete")},
}
"""The issue's targets, at concurrency 16."""


@dataclass(frozen=True, slots=True)
class Measured:
    mode: str
    result: PhaseResult
    server_cpu_s: float

    @property
    def cpu_ms(self) -> float:
        return 1000 * ratio(self.server_cpu_s, self.result.requests)


def cpu_s(pid: int) -> float:
    """A process's user + system CPU seconds so far, its threads' included."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _Phases:
    """The request streams over users ``0 .. users``, in the order Entra sends them."""

    def __init__(self, base: str, users: int, changed: int, ids: dict[str, str]) -> None:
        """``changed``: how many of the users the patch and delete phases take."""
        self.base, self.users, self.changed, self.ids = base, range(users), range(changed), ids

    def all(self) -> list[tuple[str, Callable[[], Iterator[Request]]]]:
        return [
            ("create", self.create),
            ("match", self.match),
            ("get-by-id", self.by_id),
            ("patch", self.patch),
            ("delete", self.delete),
        ]

    def _url(self, i: int) -> str:
        return f"{self.base}/Users/{self.ids[anchor(i)]}"

    def create(self) -> Iterator[Request]:
        for i in self.users:
            yield Request("POST", f"{self.base}/Users", {EXT: user(i)}, (201,))

    def match(self) -> Iterator[Request]:
        for i in self.users:
            yield Request("GET", f'{self.base}/Users?filter=AzureObjectID+eq+"{anchor(i)}"')

    def by_id(self) -> Iterator[Request]:
        for i in self.users:
            yield Request("GET", self._url(i))

    def patch(self) -> Iterator[Request]:
        body = {"Operations": [{"op": "Replace", "path": f"{EXT}:Title", "value": "Lead"}]}
        for i in self.changed:
            yield Request("PATCH", self._url(i), body, (200, 204))

    def delete(self) -> Iterator[Request]:
        for i in self.changed:
            yield Request("DELETE", self._url(i), expect=(204,))


async def _mode(mode: str, args: argparse.Namespace) -> list[Measured]:
    """Every phase on a fresh host over an empty target in ``mode``."""
    changed = min(args.users, args.sync_changes) if mode == "sync" else args.users
    ids: dict[str, str] = {}

    def remember(request: Request, body: bytes) -> None:
        if request.method == "POST":
            resource = json.loads(body)
            ids[resource[EXT]["AzureObjectID"]] = resource["id"]

    with tempfile.TemporaryDirectory(prefix="ecmahost-bench-") as tmp:
        config = write_target(Path(tmp), 0)
        text = config.read_text(encoding="utf-8")
        config.write_text(text.replace('"sync"', f'"{mode}"'), encoding="utf-8")
        with serving(config) as host:
            measured = []
            for name, requests in _Phases(host.base_url, args.users, changed, ids).all():
                # A full run lasts a while: say which phase it is in.
                print(f"{mode} {name}…", file=sys.stderr, flush=True)
                before = cpu_s(host.pid)
                result = await run_phase(name, requests(), args.concurrency, HEADERS, remember)
                measured.append(Measured(mode, result, cpu_s(host.pid) - before))
    return measured


async def _measure(args: argparse.Namespace) -> None:
    bare_requests = max(200, min(args.users, 10_000))
    with bare_app() as bare_url:
        before = await bare_phase(bare_url, bare_requests, args.concurrency)
        measured = [m for mode in MODES for m in await _mode(mode, args)]
        after = await bare_phase(bare_url, bare_requests, args.concurrency)
    _report(args, (before.rate + after.rate) / 2, measured)


def figures(measured: list[Measured], bare_rate: float) -> list[dict[str, Any]]:
    rows = []
    for m in measured:
        r = m.result
        target = TARGETS.get((m.mode, r.name), Target())
        to_bare = ratio(r.rate, bare_rate)
        rows.append(
            {
                "mode": m.mode,
                "phase": r.name,
                "requests": r.requests,
                "req_per_s": round(r.rate, 1),
                "p50_ms": round(r.p50_ms, 2),
                "p99_ms": round(r.percentile_ms(0.99), 2),
                "ratio_to_bare": round(to_bare, 3),
                "server_cpu_ms": round(m.cpu_ms, 3),
                "generator_cpu_share": round(r.generator_cpu_share, 3),
                "target": target.text(),
                "met": target.met(m.cpu_ms, to_bare, r.rate),
            }
        )
    return rows


def _table(title: str, rows: list[dict[str, Any]]) -> Table:
    table = Table(title=title)
    columns = ("mode", "phase", "req/s", "p50 ms", "p99 ms", "ratio to bare", "server CPU ms")
    for column in (*columns, "gen. CPU", "target", "met"):
        table.add_column(column, justify="left" if column in ("mode", "phase") else "right")
    for f in rows:
        table.add_row(
            f["mode"],
            f["phase"],
            f"{f['req_per_s']:,.0f}",
            f"{f['p50_ms']:.1f}",
            f"{f['p99_ms']:.1f}",
            f"{f['ratio_to_bare']:.2f}",
            f"{f['server_cpu_ms']:.3f}",
            f"{f['generator_cpu_share']:.0%}",
            f["target"],
            "yes" if f["met"] else "NO",
        )
    return table


def _report(args: argparse.Namespace, bare_rate: float, measured: list[Measured]) -> None:
    rows = figures(measured, bare_rate)
    title = (
        f"Entra's path: {args.users:,} users through SCIM (sync patches and deletes: "
        f"{min(args.users, args.sync_changes):,}), concurrency {args.concurrency}"
    )
    emit(
        _table(title, rows),
        {
            "benchmark": "entra_path",
            "users": args.users,
            "sync_changes": args.sync_changes,
            "concurrency": args.concurrency,
            "bare_req_per_s": round(bare_rate, 1),
            "phases": rows,
        },
        [
            f"bare aiohttp app: {bare_rate:,.0f} req/s",
            "server CPU: the host process's user + system time per request (/proc)",
        ],
    )


def main() -> None:
    sizes = Sizes(__doc__.splitlines()[0], "10,000 users: a few minutes")
    sizes.add("--users", 100_000, 10_000, "users created, matched, patched and deleted")
    sizes.add("--sync-changes", 5_000, 5_000, "users patched and deleted in sync mode")
    sizes.parser.add_argument("--concurrency", type=int, default=16)
    asyncio.run(_measure(sizes.parse()))


if __name__ == "__main__":
    main()
