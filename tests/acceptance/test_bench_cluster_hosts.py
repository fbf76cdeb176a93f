"""``bench.cluster_hosts`` must not rot: at a tiny size its last line carries every
configuration's every phase, with every request counted, and every ratio. Not a
timing test."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO
from tests.connectors.sql.postgres import PostgresServer, postgres_fixture

__all__ = ["postgres_fixture"]

USERS = 100
CONFIGURATIONS = ["sqlite-1", "postgresql-1", "postgresql-2", "postgresql-3"]
REQUESTS = {"create": 2 * USERS, "patch": USERS, "filter": USERS}
"""A create is the user's match, then its POST."""


def test_bench_cluster_hosts_reports_every_figure(postgres: PostgresServer) -> None:
    """``postgres`` only makes the test skip (or fail in CI) where PostgreSQL is missing;
    the benchmark starts a cluster of its own."""
    command = [sys.executable, "-m", "bench.cluster_hosts", f"--users={USERS}", "--concurrency=3"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["benchmark"] == "cluster_hosts" and result["users"] == USERS
    measured = [(p["configuration"], p["phase"]) for p in result["phases"]]
    assert measured == [(c, phase) for c in CONFIGURATIONS for phase in REQUESTS]
    for phase in result["phases"]:
        assert phase["requests"] == REQUESTS[phase["phase"]]
        for figure in ("req_per_s", "p50_ms", "p99_ms", "hosts_cpu_ms", "cores_busy"):
            assert phase[figure] > 0, (phase["configuration"], phase["phase"], figure)
    assert set(result["ratios"]) == set(REQUESTS)
    for ratios in result["ratios"].values():
        assert len(ratios) == 3 and all(value > 0 for value in ratios.values())
