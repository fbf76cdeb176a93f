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
import csv
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.loadgen import PhaseResult, Request, run_phase

REPO = Path(__file__).resolve().parents[1]
EXT = "urn:ietf:params:scim:schemas:extension:ECMA2Host:2.0:User"
TOKEN = "bench-token-" + uuid.uuid4().hex
COLUMNS = ["AzureObjectID", "IsActive", "DisplayName", "EmployeeId", "Title", "UserName", "Email"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _anchor(i: int) -> str:
    return str(uuid.UUID(int=(0xBE0C << 112) + i))


def _user(i: int) -> dict[str, Any]:
    return {
        "AzureObjectID": _anchor(i),
        "IsActive": True,
        "DisplayName": f"User {i}",
        "Title": "Engineer",
        "UserName": f"user{i}@contoso.example",
        "Email": f"user{i}@contoso.example",
    }


def _write_target(folder: Path, users: int) -> None:
    shutil.copy(REPO / "config" / "Schema.xml", folder / "Schema.xml")
    with (folder / "InputFile.txt").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter=";", quoting=csv.QUOTE_ALL, lineterminator="\n")
        writer.writerow(COLUMNS)
        for i in range(users):
            user = _user(i)
            writer.writerow(["True" if c == "IsActive" else user.get(c, "") for c in COLUMNS])
    (folder / "ecmahost.toml").write_text(
        """[host]
tls = "off"
state_dir = "state"
log_level = "warning"
synchronous = "FULL"
max_page_size = 1000

[connectors.CSV]
type = "csv"
token = "env:ECMAHOST_BENCH_TOKEN"
autosync_minutes = 0
export_mode = "sync"

[connectors.CSV.deprovision]
disable = "set_attribute"
disable_attribute = "IsActive"

[connectors.CSV.settings]
schema_file = "Schema.xml"
path = "InputFile.txt"
""",
        encoding="utf-8",
    )


def _start(command: list[str], port: int, cwd: Path, ready_path: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "ECMAHOST_BENCH_TOKEN": TOKEN}
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{command[0]} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return process
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{' '.join(command)} did not listen on {port} ({ready_path})")


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
        return f"{self.base}/Users/{self.ids[_anchor(i)]}"

    def create(self) -> Iterator[Request]:
        for i in self.fresh:
            yield Request("POST", f"{self.base}/Users", {EXT: _user(i)}, (201,))

    def by_anchor(self) -> Iterator[Request]:
        for i in self.sample:
            yield Request("GET", f'{self.base}/Users?filter=AzureObjectID+eq+"{_anchor(i)}"')

    def by_user_name(self) -> Iterator[Request]:
        for i in self.sample:
            query = f'filter={EXT}:UserName+eq+"user{i}@contoso.example"'
            yield Request("GET", f"{self.base}/Users?{query}")

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


async def _measure(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    bare_port, host_port = _free_port(), _free_port()
    bare = _start([sys.executable, "-m", "bench.bare_app", str(bare_port)], bare_port, REPO, "/")
    started = time.perf_counter()
    host = _start(
        [
            sys.executable,
            "-m",
            "engine.cli",
            "--config",
            str(folder / "ecmahost.toml"),
            "serve",
            "--listen",
            f"127.0.0.1:{host_port}",
            "--tls",
            "off",
        ],
        host_port,
        folder,
        "/ecma2host_CSV/scim",
    )
    startup_s = time.perf_counter() - started
    try:
        bare_url = f"http://127.0.0.1:{bare_port}/Users"
        reference = await run_phase(
            "bare aiohttp", iter([Request("GET", bare_url)] * args.api_users), args.concurrency
        )
        ids: dict[str, str] = {}

        def remember(request: Request, body: bytes) -> None:
            if request.method == "POST":
                resource = json.loads(body)
                ids[resource[EXT]["AzureObjectID"]] = resource["id"]

        base = f"http://127.0.0.1:{host_port}/ecma2host_CSV/scim"
        headers = {"Authorization": f"Bearer {TOKEN}"}
        results: list[PhaseResult] = []
        for name, requests in _Phases(base, args.users, args.api_users, ids).all():
            results.append(await run_phase(name, requests(), args.concurrency, headers, remember))
        reference_after = await run_phase(
            "bare aiohttp", iter([Request("GET", bare_url)] * args.api_users), args.concurrency
        )
    finally:
        for process in (host, bare):
            process.terminate()
            process.wait(timeout=60)
    bare_rate = (reference.rate + reference_after.rate) / 2
    return _report(args, bare_rate, [reference, *results, reference_after], startup_s)


def _report(
    args: argparse.Namespace, bare_rate: float, results: list[PhaseResult], startup_s: float
) -> dict[str, Any]:
    title = f"SCIM load: {args.users:,} preloaded + {args.api_users:,} through the API"
    table = Table(title=f"{title}, concurrency {args.concurrency}")
    for column in ("phase", "requests", "req/s", "p50 ms", "p99 ms", "ratio to bare", "gen. CPU"):
        table.add_column(column, justify="left" if column == "phase" else "right")
    phases = []
    for r in results:
        ratio = r.rate / bare_rate if bare_rate else 0.0
        table.add_row(
            r.name,
            f"{r.requests:,}",
            f"{r.rate:,.0f}",
            f"{r.p50_ms:.1f}",
            f"{r.percentile_ms(0.99):.1f}",
            f"{ratio:.2f}",
            f"{r.generator_cpu_share:.0%}",
        )
        phases.append(
            {
                "phase": r.name,
                "requests": r.requests,
                "req_per_s": round(r.rate, 1),
                "p50_ms": round(r.p50_ms, 2),
                "p99_ms": round(r.percentile_ms(0.99), 2),
                "ratio_to_bare": round(ratio, 3),
                "generator_cpu_share": round(r.generator_cpu_share, 3),
            }
        )
    Console().print(table)
    print(f"host start-up with the import of {args.users:,} users: {startup_s:.1f} s")
    return {
        "benchmark": "scim_load",
        "users": args.users,
        "api_users": args.api_users,
        "concurrency": args.concurrency,
        "bare_req_per_s": round(bare_rate, 1),
        "startup_s": round(startup_s, 1),
        "phases": phases,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000, help="preloaded users")
    parser.add_argument(
        "--api-users", type=int, default=10_000, help="users created through the API"
    )
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--quick", action="store_true", help="5,000 + 1,000 users: about a minute")
    args = parser.parse_args()
    if args.quick:
        args.users, args.api_users = 5_000, 1_000
    with tempfile.TemporaryDirectory(prefix="ecmahost-bench-") as tmp:
        folder = Path(tmp)
        _write_target(folder, args.users)
        print(json.dumps(asyncio.run(_measure(args, folder))))


if __name__ == "__main__":
    main()
