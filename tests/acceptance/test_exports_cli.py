"""Failed exports: listed, shown and replayed with the ``ecmahost exports`` commands."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path

from tests.acceptance.conftest import Server, ecmahost, filter_query, read_csv, wait_until
from tests.conftest import EXT, csv_connector_toml


def test_rejected_export_is_listed_then_replayed(
    write_config: Callable[..., Path], server_factory: Callable[..., Server], config_dir: Path
) -> None:
    # An ASCII-only target cannot hold "Zoë": the connector rejects the change for good.
    ascii_toml = csv_connector_toml().replace(
        'seed = "InputFile.txt"', 'seed = "InputFile.txt"\nencoding = "ascii"'
    )
    config = write_config(ascii_toml)
    server = server_factory(config)
    anchor = str(uuid.uuid4())

    rejected = server.request(
        "POST", "/Users", {EXT: {"AzureObjectID": anchor, "DisplayName": "Zoë"}}
    )
    assert rejected.status == 400
    assert "ascii" in rejected.body["detail"]
    assert (
        server.request("GET", "/Users" + filter_query(f'AzureObjectID eq "{anchor}"')).body[
            "totalResults"
        ]
        == 0
    )

    listed = ecmahost(config, "exports", "list", "--failed", "--json")
    [event] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (event["anchor"], event["status"], event["op"]) == (anchor, "failed", "upsert")
    assert "ascii" in event["last_error"]
    shown = json.loads(ecmahost(config, "exports", "show", str(event["id"])).stdout)
    assert shown["payload"] == {"AzureObjectID": anchor, "DisplayName": "Zoë"}

    # The admin fixes the target's encoding, replays, and the change lands.
    server.stop()
    write_config(csv_connector_toml())
    replayed = ecmahost(config, "exports", "replay", "--all")
    assert replayed.stdout.startswith("queued again: 1 event(s)")
    server.start()
    wait_until(lambda: anchor in read_csv(config_dir / "state" / "InputFile.txt"))
    found = server.request("GET", "/Users" + filter_query(f'AzureObjectID eq "{anchor}"'))
    assert found.body["Resources"][0][EXT]["DisplayName"] == "Zoë"
    assert ecmahost(config, "exports", "list", "--failed", "--json").stdout == ""
