"""``bench.entra_path_pg`` must not rot: at a tiny size its last line carries every
figure, every user created and patched in the PostgreSQL table. Not a timing test."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO
from tests.connectors.sql.postgres import PostgresServer, postgres_fixture

__all__ = ["postgres_fixture"]


def test_bench_entra_path_pg_reports_every_figure(postgres: PostgresServer) -> None:
    """``postgres`` only makes the test skip (or fail in CI) where PostgreSQL is missing;
    the benchmark starts a cluster of its own."""
    command = [sys.executable, "-m", "bench.entra_path_pg", "--users=100", "--concurrency=4"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["benchmark"] == "entra_path_pg" and result["patched_rows"] == 100
    assert [p["phase"] for p in result["phases"]] == ["create", "patch"]
    for phase in result["phases"]:
        assert phase["requests"] == 100 and phase["req_per_s"] > 0
        assert phase["server_cpu_ms"] > 0 and phase["target"] == "≥ 1,000 req/s"
