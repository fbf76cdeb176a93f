"""``make bench`` must not rot: each benchmark runs at a tiny size and its final JSON
line must carry every figure, the counts asked for, and positive rates and ratios.

Not a timing test: no figure is compared with a target. The five run at once, in
processes of their own, so the file takes about as long as the slowest of them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import REPO

RUN_TIMEOUT_S = 100

SIZES: dict[str, dict[str, int]] = {
    "scim_load": {"users": 200, "api_users": 50},
    "full_import": {"rows": 500},
    "export_drain": {"rows": 500, "changes": 200},
    "filter_scale": {"rows": 500, "queries": 200},
    "entra_path": {"users": 200, "sync_changes": 50},
}

KEYS: dict[str, set[str]] = {
    "scim_load": {"concurrency", "bare_req_per_s", "startup_s", "phases"},
    "full_import": {
        "ecmahost_s",
        "ecmahost_rows_per_s",
        "reference_s",
        "reference_rows_per_s",
        "ratio",
        "ecmahost_peak_rss_mb",
        "reference_peak_rss_mb",
    },
    "export_drain": {
        "adds",
        "replaces",
        "deletes",
        "drain_s",
        "changes_per_s",
        "rewrite_s",
        "drain_in_rewrites",
        "batches",
        "largest_batch",
    },
    "filter_scale": {
        "concurrency",
        "req_per_s",
        "p50_ms",
        "p99_ms",
        "bare_req_per_s",
        "ratio_to_bare",
        "generator_cpu_share",
        "phases",
    },
    "entra_path": {"concurrency", "bare_req_per_s", "phases"},
}

PHASE_KEYS = {
    "phase",
    "requests",
    "req_per_s",
    "p50_ms",
    "p99_ms",
    "ratio_to_bare",
    "generator_cpu_share",
}
ENTRA_PHASE_KEYS = PHASE_KEYS | {"mode", "server_cpu_ms", "target", "met"}
"""Entra's path also reports the server's CPU per request, beside each target."""


def _command(name: str) -> list[str]:
    options = [f"--{key.replace('_', '-')}={value}" for key, value in SIZES[name].items()]
    return [sys.executable, "-m", f"bench.{name}", *options]


class Runs:
    """Every benchmark started at once; ``result`` waits for one and reads its last line."""

    def __init__(self) -> None:
        self._processes = {
            name: subprocess.Popen(
                _command(name), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            for name in SIZES
        }
        self._results: dict[str, dict[str, Any]] = {}

    def result(self, name: str) -> dict[str, Any]:
        if name not in self._results:
            process = self._processes[name]
            stdout, stderr = process.communicate(timeout=RUN_TIMEOUT_S)
            assert process.returncode == 0, stdout + stderr
            self._results[name] = json.loads(stdout.strip().splitlines()[-1])
        return self._results[name]

    def stop(self) -> None:
        for process in self._processes.values():
            if process.poll() is None:
                process.kill()
            process.communicate()


@pytest.fixture(scope="module")
def runs() -> Iterator[Runs]:
    started = Runs()
    yield started
    started.stop()


def _rates_and_ratios(result: dict[str, Any]) -> dict[str, Any]:
    """Every rate (``*_per_s``) and ratio of a result, its phases' included."""
    named = [("", result)] + [(f"{p['phase']}.", p) for p in result.get("phases", [])]
    return {
        prefix + key: value
        for prefix, figures in named
        for key, value in figures.items()
        if key.endswith(("_per_s", "_in_rewrites")) or "ratio" in key
    }


@pytest.mark.parametrize("name", list(SIZES))
def test_benchmark_reports_every_figure(runs: Runs, name: str) -> None:
    result = runs.result(name)

    assert result["benchmark"] == name
    assert set(result) >= {"benchmark", *SIZES[name], *KEYS[name]}
    assert {key: result[key] for key in SIZES[name]} == SIZES[name]
    for phase in result.get("phases", []):
        assert set(phase) == (ENTRA_PHASE_KEYS if name == "entra_path" else PHASE_KEYS)
        assert phase["requests"] > 0
    rates = _rates_and_ratios(result)
    assert rates
    assert {key: value for key, value in rates.items() if not value > 0} == {}


def test_export_drain_counts_add_up(runs: Runs) -> None:
    result = runs.result("export_drain")

    assert result["adds"] + result["replaces"] + result["deletes"] == result["changes"]
    assert min(result["adds"], result["replaces"], result["deletes"]) > 0
    assert 1 <= result["batches"] <= result["changes"]
    assert 1 <= result["largest_batch"] <= result["changes"]


def test_load_phases_send_what_was_asked(runs: Runs) -> None:
    load = {p["phase"]: p["requests"] for p in runs.result("scim_load")["phases"]}
    lookups = {p["phase"]: p["requests"] for p in runs.result("filter_scale")["phases"]}
    entra = {(p["mode"], p["phase"]): p["requests"] for p in runs.result("entra_path")["phases"]}

    assert load["create"] == load["delete"] == SIZES["scim_load"]["api_users"]
    assert lookups["filter-by-UserName"] == SIZES["filter_scale"]["queries"]
    phases = ("create", "match", "get-by-id", "patch", "delete")
    users, sync_changes = SIZES["entra_path"]["users"], SIZES["entra_path"]["sync_changes"]
    asked = {(mode, phase): users for mode in ("sync", "queued") for phase in phases}
    asked |= {("sync", "patch"): sync_changes, ("sync", "delete"): sync_changes}
    assert entra == asked
