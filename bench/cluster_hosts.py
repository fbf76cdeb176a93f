"""Entra's path through 1, 2 and 3 hosts sharing a PostgreSQL space, beside 1 on SQLite.

Each user is matched by an ``eq`` filter, then created; then patched; then found by the
filter: through one, two and three hosts sharing one space, and through one host on its
own SQLite file, side by side in one run.

Every configuration exports through the SQL connector, in sync mode, into a fresh table
in a second database on the same PostgreSQL server: one kind of target for all, shared
by every host. PostgreSQL runs as the tests run it (durability off); the SQLite space
runs with ``synchronous = "NORMAL"``, which does not sync each commit either, so the
two spaces compare on their work rather than on the disk.

The load is spread over a configuration's hosts as one load generator per host, all
running at once: each host gets an even share of the clients (8 over 3 hosts: 3, 3, 2),
and every client takes the next user from one queue, so no host idles while another
still has users. The hosts' results are summed; every configuration sees the same total
concurrency.

On the 2-core machine this was written on, the hosts, PostgreSQL and the load generator
share both cores: a second or third host adds processes, not cores, and that is what
limits the scaling there. The figures say how much: per configuration and phase, req/s,
p50, p99, the CPU per request of all host processes summed and of PostgreSQL (from
/proc), the generator's CPU share, and the cores all of them kept busy. The last line
is the whole result as JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import asyncpg
from rich.table import Table

from bench.entra_path import cpu_s
from bench.entra_path_pg import CONFIG, URL_VARIABLE, create_table, postgresql, serve
from bench.loadgen import PhaseResult, Request, run_phase
from bench.phases import HEADERS
from bench.processes import ecmahost, run_measured
from bench.report import Sizes, emit, ratio
from bench.target import EXT, anchor, user
from tests.connectors.sql.postgres import PostgresServer

DATABASE_VARIABLE = "ECMAHOST_BENCH_DATABASE_URL"
CONFIGURATIONS = (("sqlite", 1), ("postgresql", 1), ("postgresql", 2), ("postgresql", 3))
PHASES = ("create", "patch", "filter")
COMPARED = (
    ("postgresql-2", "postgresql-1"),
    ("postgresql-3", "postgresql-1"),
    ("postgresql-1", "sqlite-1"),
)
"""Each pair's req/s ratio is printed per phase: what a second and a third host add,
and what the shared space costs one host."""
PATCH = {"Operations": [{"op": "Replace", "path": f"{EXT}:Title", "value": "Lead"}]}
OnResponse = Callable[[Request, Any], None]


def _configs(folder: Path, space: str, hosts: int) -> list[Path]:
    """One folder per host, each with its own state folder and the same configuration."""
    text = CONFIG.replace('synchronous = "FULL"', 'synchronous = "NORMAL"')
    if space == "postgresql":
        text = text.replace("[host]\n", f'[host]\ndatabase_url = "env:{DATABASE_VARIABLE}"\n')
    configs = []
    for n in range(1, hosts + 1):
        (folder / f"host{n}" / "state").mkdir(parents=True)
        config = folder / f"host{n}" / "ecmahost.toml"
        config.write_text(text, encoding="utf-8")
        configs.append(config)
    return configs


def _postgres_cpu_s(postmaster: int) -> float:
    """PostgreSQL's CPU seconds so far: the postmaster's, its living children's, and
    (cutime, cstime) those of children that already exited."""
    with open(f"/proc/{postmaster}/stat", encoding="ascii") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    total = cpu_s(postmaster) + (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")
    for child in Path(f"/proc/{postmaster}/task/{postmaster}/children").read_text().split():
        with contextlib.suppress(FileNotFoundError):  # exited: its time is in cutime next read
            total += cpu_s(int(child))
    return total


def _requests(
    phase: str, base: str, users: Iterator[int], ids: dict[str, str]
) -> Iterator[Request]:
    """``phase``'s requests to the host at ``base`` for the users it takes from the queue."""
    for i in users:
        match = Request("GET", f'{base}/Users?filter=AzureObjectID+eq+"{anchor(i)}"')
        if phase == "create":  # Entra matches before it creates: both requests count
            yield match
            yield Request("POST", f"{base}/Users", {EXT: user(i)}, (201,))
        elif phase == "patch":
            yield Request("PATCH", f"{base}/Users/{ids[anchor(i)]}", PATCH, (200, 204))
        else:
            yield match


async def _phase(
    phase: str,
    bases: list[str],
    users: int,
    concurrency: int,
    ids: dict[str, str],
    on: OnResponse | None,
) -> PhaseResult:
    """One phase through every host at once, summed as one result."""
    queue = iter(range(users))
    shares = [concurrency // len(bases) + (k < concurrency % len(bases)) for k in range(len(bases))]
    results = await asyncio.gather(
        *(
            run_phase(phase, _requests(phase, base, queue, ids), share, HEADERS, on)
            for base, share in zip(bases, shares, strict=True)
        )
    )
    return PhaseResult(
        phase,
        sum(r.requests for r in results),
        max(r.wall_s for r in results),  # they start together
        tuple(latency for r in results for latency in r.latencies_s),
        # Each reads the CPU of the one generator process over nearly the same window.
        max(r.generator_cpu_share for r in results),
    )


async def _analyze(dsn: str) -> None:
    """Refresh the planner's statistics of a PostgreSQL space, as autovacuum keeps them
    on a space in service. A space made empty for the run has none, and PostgreSQL then
    plans an ``eq`` filter as a loop over every object: without this the filter's rate
    swung 2.5 times from run to run, with whether autovacuum's minute came mid-run."""
    db = await asyncpg.connect(dsn)
    try:
        await db.execute("ANALYZE")
    finally:
        await db.close()


async def _phases(
    name: str,
    hosts: list[tuple[str, int]],
    postmaster: int,
    space: str | None,
    users: int,
    concurrency: int,
) -> list[dict[str, Any]]:
    """Every phase through ``hosts``, the PostgreSQL ``space`` (a DSN) analyzed after each;
    exits unless each filter found its one user."""
    ids: dict[str, str] = {}
    found = 0

    def remember(request: Request, body: bytes) -> None:
        if request.method == "POST":
            resource = json.loads(body)
            ids[resource[EXT]["AzureObjectID"]] = resource["id"]

    def count(request: Request, body: bytes) -> None:
        nonlocal found
        if json.loads(body)["totalResults"] == 1:
            found += 1

    bases, pids = [base for base, _ in hosts], [pid for _, pid in hosts]
    rows = []
    for phase, on in (("create", remember), ("patch", None), ("filter", count)):
        hosts_before, pg_before = sum(map(cpu_s, pids)), _postgres_cpu_s(postmaster)
        result = await _phase(phase, bases, users, concurrency, ids, on)
        hosts_s = sum(map(cpu_s, pids)) - hosts_before
        rows.append(_row(name, result, hosts_s, _postgres_cpu_s(postmaster) - pg_before))
        if space is not None:
            await _analyze(space)
    if found != users:
        raise SystemExit(f"{name}: the filter found {found:,} of {users:,} users")
    return rows


def _row(name: str, result: PhaseResult, hosts_s: float, pg_s: float) -> dict[str, Any]:
    busy = ratio(hosts_s + pg_s, result.wall_s) + result.generator_cpu_share
    return {
        "configuration": name,
        "phase": result.name,
        "requests": result.requests,
        "req_per_s": round(result.rate, 1),
        "p50_ms": round(result.p50_ms, 2),
        "p99_ms": round(result.percentile_ms(0.99), 2),
        "hosts_cpu_ms": round(1000 * ratio(hosts_s, result.requests), 3),
        "postgres_cpu_ms": round(1000 * ratio(pg_s, result.requests), 3),
        "generator_cpu_share": round(result.generator_cpu_share, 3),
        "cores_busy": round(busy, 2),
    }


async def _configuration(
    server: PostgresServer, folder: Path, space: str, hosts: int, users: int, concurrency: int
) -> list[dict[str, Any]]:
    """Every phase through a configuration, over a fresh target table and space."""
    name = f"{space}-{hosts}"
    target = f"target_{space}_{hosts}"
    os.environ[URL_VARIABLE] = server.create_database(target)  # the hosts' environment
    await create_table(server.dsn(target))
    configs = _configs(folder / name, space, hosts)
    space_dsn = None
    if space == "postgresql":
        os.environ[DATABASE_VARIABLE] = server.create_database(f"space_{hosts}")
        space_dsn = server.dsn(f"space_{hosts}")
        run_measured(ecmahost(configs[0], "migrate"), configs[0].parent).check()
    postmaster = int((server.data / "postmaster.pid").read_text().split()[0])
    with ExitStack() as stack:
        served = [stack.enter_context(serve(config)) for config in configs]
        rows = await _phases(name, served, postmaster, space_dsn, users, concurrency)
    db = await asyncpg.connect(server.dsn(target))
    try:
        patched = int(await db.fetchval("SELECT count(*) FROM users WHERE \"Title\" = 'Lead'"))
    finally:
        await db.close()
    if patched != users:
        raise SystemExit(f"{name}: the table holds {patched:,} patched users, not {users:,}")
    return rows


async def _measure(users: int, concurrency: int) -> list[dict[str, Any]]:
    with postgresql() as server, tempfile.TemporaryDirectory(prefix="ecmahost-bench-") as tmp:
        return [
            row
            for space, hosts in CONFIGURATIONS
            for row in await _configuration(server, Path(tmp), space, hosts, users, concurrency)
        ]


def _ratios(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per phase, the req/s of each configuration in ``COMPARED`` to its reference's."""
    rates = {(r["configuration"], r["phase"]): r["req_per_s"] for r in rows}
    return {
        phase: {f"{a}/{b}": round(ratio(rates[a, phase], rates[b, phase]), 3) for a, b in COMPARED}
        for phase in PHASES
    }


def _table(title: str, rows: list[dict[str, Any]]) -> Table:
    table = Table(title=title)
    table.add_column("configuration")
    table.add_column("phase")
    for column in ("req/s", "p50 ms", "p99 ms", "hosts CPU ms", "PG CPU ms", "gen. CPU"):
        table.add_column(column, justify="right")
    table.add_column("cores busy", justify="right")
    for f in rows:
        table.add_row(
            f["configuration"],
            f["phase"],
            f"{f['req_per_s']:,.0f}",
            f"{f['p50_ms']:.1f}",
            f"{f['p99_ms']:.1f}",
            f"{f['hosts_cpu_ms']:.3f}",
            f"{f['postgres_cpu_ms']:.3f}",
            f"{f['generator_cpu_share']:.0%}",
            f"{f['cores_busy']:.2f}",
        )
    return table


def main() -> None:
    sizes = Sizes(__doc__.splitlines()[0], "1,000 users at concurrency 8: about two minutes")
    sizes.add("--users", 5_000, 1_000, "users matched and created, patched, then filtered")
    sizes.add("--concurrency", 12, 8, "clients over all of a configuration's hosts")
    args = sizes.parse()
    if args.concurrency < max(hosts for _, hosts in CONFIGURATIONS):
        sizes.parser.error("--concurrency must give every host at least one client")
    rows = asyncio.run(_measure(args.users, args.concurrency))
    ratios = _ratios(rows)
    title = (
        f"Entra's path through 1-3 hosts on one space: {args.users:,} users, "
        f"concurrency {args.concurrency}, {os.cpu_count()} cores"
    )
    emit(
        _table(title, rows),
        {
            "benchmark": "cluster_hosts",
            "users": args.users,
            "concurrency": args.concurrency,
            "cores": os.cpu_count(),
            "phases": rows,
            "ratios": ratios,
        },
        [
            "create: each user's match (a miss) and its POST, both counted as requests",
            "CPU ms: per request, all host processes summed, and PostgreSQL's (/proc)",
            "cores busy: hosts + PostgreSQL + load generator CPU per wall second",
            *(
                f"req/s ratios, {phase}: "
                + ", ".join(f"{pair} {value:.2f}" for pair, value in ratios[phase].items())
                for phase in PHASES
            ),
        ],
    )


if __name__ == "__main__":
    main()
