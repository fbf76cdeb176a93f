"""Retention through the running host: at start-up it prunes the finished exports
older than ``host.retention_days``, and ``ecmahost exports`` still shows them."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.acceptance.conftest import Server, ecmahost, wait_until
from tests.conftest import EXT, csv_connector_toml

RETENTION_S = 1.0
ADMIN_TOKEN = "admin-token-for-retention"


def test_the_host_prunes_old_finished_exports_at_start_up(
    write_config: Callable[..., Path], server_factory: Callable[..., Server]
) -> None:
    host = f'retention_days = {RETENTION_S / 86400}\nadmin_token = "{ADMIN_TOKEN}"'
    config = write_config(csv_connector_toml(), host)
    server = server_factory(config)
    anchor = str(uuid.uuid4())
    created = server.request(
        "POST", "/Users", {EXT: {"AzureObjectID": anchor, "DisplayName": "Zoe"}}
    )
    assert created.status == 201  # sync mode: exported before the answer
    assert server.request("DELETE", f"/Users/{created.body['id']}").status == 204

    time.sleep(RETENTION_S + 0.5)  # both finished longer ago than the retention period
    server.restart()

    def listed() -> list[dict[str, Any]]:
        out = ecmahost(config, "exports", "list", "--json").stdout
        return [json.loads(line) for line in out.splitlines()]

    # The start-up pass runs beside the start-up import: wait for it, not for a guess.
    wait_until(lambda: listed()[0]["payload"] is None, timeout_s=15)
    events = listed()
    assert [(e["anchor"], e["op"], e["status"]) for e in events] == [
        (anchor, "upsert", "done"),
        (anchor, "delete", "done"),
    ]
    assert [e["payload"] for e in events] == [None, None]
    shown = json.loads(ecmahost(config, "exports", "show", str(events[0]["id"])).stdout)
    assert shown["payload"] is None and shown["status"] == "done"
    assert [step["status"] for step in shown["history"]] == ["pruned"]
    root = server.url().split("/ecma2host_")[0]
    api = server.request("GET", f"/admin/exports/{events[1]['id']}", base=root, token=ADMIN_TOKEN)
    assert api.status == 200
    assert (api.body["op"], api.body["payload"]) == ("delete", None)
    assert [step["status"] for step in api.body["history"]] == ["pruned"]
