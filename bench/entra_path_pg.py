"""Entra's path into PostgreSQL: users created through SCIM and then patched, in sync
mode, by a host whose SQL connector writes each change to a PostgreSQL table before
it answers.

PostgreSQL is started as the tests start it (a throwaway cluster on a free loopback
port, durability settings off). Each phase prints req/s, p50, p99 and the host's CPU
per request (user + system time from /proc, PostgreSQL's own not included) beside
its target. The last line is the whole result as JSON.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
from rich.table import Table

from bench.entra_path import Target, cpu_s
from bench.loadgen import PhaseResult, Request, run_phase
from bench.phases import HEADERS
from bench.processes import ecmahost, free_port, start, stop
from bench.report import Sizes, emit, ratio
from bench.target import COLUMNS, EXT, TOKEN, TOKEN_VARIABLE, anchor, user
from tests.connectors.sql.postgres import PostgresServer

NAME = "SQL"
URL_VARIABLE = "ECMAHOST_BENCH_SQL_URL"
TARGETS = {"create": Target(min_req_per_s=1_000), "patch": Target(min_req_per_s=1_000)}
"""The issue's targets, sync mode, concurrency 16."""
TABLE = (
    'CREATE TABLE users ("AzureObjectID" text PRIMARY KEY, "IsActive" boolean, '
    + ", ".join(f'"{c}" text' for c in COLUMNS if c not in ("AzureObjectID", "IsActive"))
    + ")"
)
CONFIG = f"""[host]
tls = "off"
state_dir = "state"
log_level = "warning"
synchronous = "FULL"
max_page_size = 1000

[connectors.{NAME}]
type = "sql"
token = "env:{TOKEN_VARIABLE}"
autosync_minutes = 0
export_mode = "sync"

[connectors.{NAME}.deprovision]
disable = "set_attribute"
disable_attribute = "IsActive"

[connectors.{NAME}.settings]
url = "env:{URL_VARIABLE}"
table = "users"
anchor = "AzureObjectID"
"""


@contextmanager
def postgresql() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL cluster, as the tests run one; removed afterwards."""
    on_path = shutil.which("pg_ctl")
    found = [Path(on_path).resolve().parent] if on_path else []
    found += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: p.parent.name)[::-1]
    bin_dir = next((d for d in found if (d / "initdb").exists()), None)
    if bin_dir is None:
        raise SystemExit("PostgreSQL is not installed (no initdb/pg_ctl found)")
    server = PostgresServer(bin_dir)
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.destroy()


async def create_table(dsn: str) -> None:
    db = await asyncpg.connect(dsn)
    try:
        await db.execute(TABLE)
    finally:
        await db.close()


@contextmanager
def serving(folder: Path, url: str) -> Iterator[tuple[str, int]]:
    """``ecmahost serve`` on the SQL connector; yields its SCIM base URL and pid."""
    config = folder / "ecmahost.toml"
    config.write_text(CONFIG, encoding="utf-8")
    (folder / "state").mkdir()
    os.environ[URL_VARIABLE] = url  # the host's environment is this process's
    with serve(config) as served:
        yield served


@contextmanager
def serve(config: Path) -> Iterator[tuple[str, int]]:
    """``ecmahost serve`` over ``config`` (its folder the working one) until the SQL
    connector answers; yields its SCIM base URL and pid."""
    port = free_port()
    command = ecmahost(config, "serve", "--listen", f"127.0.0.1:{port}", "--tls", "off")
    process = start(command, port, config.parent)
    base = f"http://127.0.0.1:{port}/ecma2host_{NAME}/scim"
    try:
        _wait_ready(base)
        yield base, process.pid
    finally:
        stop(process)


def _wait_ready(base: str) -> None:
    """Until the start-up import of the (empty) table ends, the connector answers 503."""
    request = urllib.request.Request(base + "/Users?count=0", headers=HEADERS)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise SystemExit(f"the connector at {base} did not become ready")


async def _phases(base: str, users: int, concurrency: int, pid: int) -> list[dict[str, Any]]:
    ids: dict[str, str] = {}

    def remember(request: Request, body: bytes) -> None:
        if request.method == "POST":
            resource = json.loads(body)
            ids[resource[EXT]["AzureObjectID"]] = resource["id"]

    def create() -> Iterator[Request]:
        for i in range(users):
            yield Request("POST", f"{base}/Users", {EXT: user(i)}, (201,))

    def patch() -> Iterator[Request]:
        body = {"Operations": [{"op": "Replace", "path": f"{EXT}:Title", "value": "Lead"}]}
        for i in range(users):
            yield Request("PATCH", f"{base}/Users/{ids[anchor(i)]}", body, (200, 204))

    rows = []
    for name, requests in (("create", create), ("patch", patch)):
        before = cpu_s(pid)
        result = await run_phase(name, requests(), concurrency, HEADERS, remember)
        rows.append(_row(result, cpu_s(pid) - before))
    return rows


def _row(result: PhaseResult, server_cpu_s: float) -> dict[str, Any]:
    target = TARGETS[result.name]
    cpu_ms = 1000 * ratio(server_cpu_s, result.requests)
    return {
        "mode": "sync",
        "phase": result.name,
        "requests": result.requests,
        "req_per_s": round(result.rate, 1),
        "p50_ms": round(result.p50_ms, 2),
        "p99_ms": round(result.percentile_ms(0.99), 2),
        "server_cpu_ms": round(cpu_ms, 3),
        "generator_cpu_share": round(result.generator_cpu_share, 3),
        "target": target.text(),
        "met": target.met(cpu_ms, 1.0, result.rate),
    }


async def _measure(users: int, concurrency: int) -> tuple[list[dict[str, Any]], int]:
    with postgresql() as server, tempfile.TemporaryDirectory(prefix="ecmahost-bench-") as tmp:
        url = server.create_database("bench")
        await create_table(server.dsn("bench"))
        with serving(Path(tmp), url) as (base, pid):
            rows = await _phases(base, users, concurrency, pid)
        db = await asyncpg.connect(server.dsn("bench"))
        try:
            stored = int(await db.fetchval("SELECT count(*) FROM users WHERE \"Title\" = 'Lead'"))
        finally:
            await db.close()
    return rows, stored


def _table(title: str, rows: list[dict[str, Any]]) -> Table:
    table = Table(title=title)
    for column in ("phase", "req/s", "p50 ms", "p99 ms", "server CPU ms", "gen. CPU"):
        table.add_column(column, justify="left" if column == "phase" else "right")
    table.add_column("target")
    table.add_column("met")
    for f in rows:
        table.add_row(
            f["phase"],
            f"{f['req_per_s']:,.0f}",
            f"{f['p50_ms']:.1f}",
            f"{f['p99_ms']:.1f}",
            f"{f['server_cpu_ms']:.3f}",
            f"{f['generator_cpu_share']:.0%}",
            f["target"],
            "yes" if f["met"] else "NO",
        )
    return table


def main() -> None:
    sizes = Sizes(__doc__.splitlines()[0], "2,000 users: well under a minute")
    sizes.add("--users", 20_000, 2_000, "users created and then patched")
    sizes.parser.add_argument("--concurrency", type=int, default=16)
    args = sizes.parse()
    os.environ[TOKEN_VARIABLE] = TOKEN
    rows, stored = asyncio.run(_measure(args.users, args.concurrency))
    if stored != args.users:
        raise SystemExit(f"the table holds {stored:,} patched users, not {args.users:,}")
    title = f"Entra's path into PostgreSQL: {args.users:,} users, concurrency {args.concurrency}"
    emit(
        _table(title, rows),
        {
            "benchmark": "entra_path_pg",
            "users": args.users,
            "concurrency": args.concurrency,
            "patched_rows": stored,
            "phases": rows,
        },
        [
            "sync mode: each answer waits for the row written to PostgreSQL",
            "server CPU: the host process's user + system time per request (/proc)",
        ],
    )


if __name__ == "__main__":
    main()
