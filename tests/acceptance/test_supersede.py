"""A rejected change does not freeze its user: the next changes reach the target."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.acceptance.conftest import Server, ecmahost, read_csv, wait_until
from tests.conftest import EXT, csv_connector_toml

# Far below export_wait_s (60 s here): a change held behind the rejected one would show.
BOUND_S = 5.0


def rename(display_name: str) -> dict[str, object]:
    return {"Operations": [{"op": "Replace", "path": f"{EXT}:DisplayName", "value": display_name}]}


@pytest.mark.parametrize("mode", ["sync", "queued"])
def test_a_rejected_user_is_updated_then_deleted_by_the_next_changes(
    write_config: Callable[..., Path],
    server_factory: Callable[..., Server],
    config_dir: Path,
    mode: str,
) -> None:
    # An ASCII-only target rejects "Zoë" for good.
    toml = csv_connector_toml(export_mode=f'"{mode}"', export_wait_s="60")
    config = write_config(
        toml.replace('seed = "InputFile.txt"', 'seed = "InputFile.txt"\nencoding = "ascii"')
    )
    server = server_factory(config)
    target = config_dir / "state" / "InputFile.txt"
    anchor = str(uuid.uuid4())
    created = server.request(
        "POST", "/Users", {EXT: {"AzureObjectID": anchor, "DisplayName": "Zoe"}}
    )
    assert created.status == 201, created.body
    user = f"/Users/{created.body['id']}"
    wait_until(lambda: anchor in read_csv(target))

    rejected = server.request("PATCH", user, rename("Zoë"))
    assert rejected.status == (400 if mode == "sync" else 200), rejected.body
    # Listed as failed before the next change comes (else the two would coalesce).
    wait_until(lambda: ecmahost(config, "exports", "list", "--failed", "--json").stdout)

    started = time.monotonic()
    updated = server.request("PATCH", user, rename("Zoe Two"))
    assert updated.status == 200, updated.body
    wait_until(lambda: read_csv(target).get(anchor, {}).get("DisplayName") == "Zoe Two")
    assert time.monotonic() - started < BOUND_S

    assert server.request("PATCH", user, rename("Zoë")).status == (400 if mode == "sync" else 200)
    wait_until(lambda: ecmahost(config, "exports", "list", "--failed", "--json").stdout)
    started = time.monotonic()
    assert server.request("DELETE", user).status == 204  # a delete always goes through
    wait_until(lambda: anchor not in read_csv(target))
    assert time.monotonic() - started < BOUND_S
