"""Replays and discards from the command line wake the running host at once."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from tests.acceptance.conftest import Server, ecmahost, wait_until
from tests.conftest import EXT, csv_connector_toml

# Far below the host's 30 s idle poll: only a wake-up makes it.
WAKE_BOUND_S = 1.0


def steps(config_dir: Path, event_id: int) -> list[str]:
    """The event's logged steps, read from the database as another process would."""
    with sqlite3.connect(config_dir / "state" / "ecmahost.db", timeout=5) as db:
        rows = db.execute(
            "SELECT status FROM event_log WHERE event_id = ? ORDER BY id", (event_id,)
        )
        return [status for (status,) in rows]


def test_a_cli_replay_and_discard_wake_the_running_host(
    write_config: Callable[..., Path], server_factory: Callable[..., Server], config_dir: Path
) -> None:
    # An ASCII-only target rejects "Zoë" every time: each export attempt is logged.
    config = write_config(
        csv_connector_toml().replace(
            'seed = "InputFile.txt"', 'seed = "InputFile.txt"\nencoding = "ascii"'
        )
    )
    server = server_factory(config)
    anchor = str(uuid.uuid4())
    body = {EXT: {"AzureObjectID": anchor, "DisplayName": "Zoë"}}
    assert server.request("POST", "/Users", body).status == 400
    listed = ecmahost(config, "exports", "list", "--failed", "--json")
    [event] = [json.loads(line) for line in listed.stdout.splitlines()]

    replayed = ecmahost(config, "exports", "replay", str(event["id"]))
    assert replayed.returncode == 0, replayed.stderr
    called = time.monotonic()
    wait_until(lambda: steps(config_dir, event["id"])[-2:] == ["replayed", "failed"])
    assert time.monotonic() - called < WAKE_BOUND_S  # tried again: the host woke

    woken = sum("export.wake" in line for line in server.stderr_lines)
    discarded = ecmahost(config, "exports", "discard", str(event["id"]))
    assert discarded.stdout.startswith("discarded: 1 event(s)"), discarded.stderr
    called = time.monotonic()
    wait_until(lambda: sum("export.wake" in line for line in server.stderr_lines) > woken)
    assert time.monotonic() - called < WAKE_BOUND_S
    assert steps(config_dir, event["id"])[-1] == "discarded"
