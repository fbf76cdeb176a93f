"""The host's log for operators, read from a real host's stderr: timestamps, the
two formats, audit and deprovisioning lines, refused tokens, redaction."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from tests.acceptance.conftest import Server, wait_until
from tests.acceptance.monitoring import REJECTED, connectors_toml, create, log_entries

UTC_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
SECRET = "a-secret-value-0123456789"


def _with_secret_rejected(toml: str) -> str:
    """The memory connector rejects a value that is a registered secret (its own
    token), so the failure message carries it."""
    return toml.replace(f'reject_values = ["{REJECTED}"]', f'reject_values = ["{SECRET}"]')


def test_json_lines_carry_utc_millisecond_timestamps_and_audit_lines(
    write_config: Callable[..., Path], server_factory: Callable[..., Server]
) -> None:
    toml = connectors_toml(SECRET)
    server = server_factory(write_config(_with_secret_rejected(toml)))
    user = create(server, name="Mem", token=SECRET)
    assert user.status == 201
    assert (
        server.request("DELETE", f"/Users/{user.body['id']}", name="Mem", token=SECRET).status
        == 204
    )
    rejected = create(server, name="Mem", display=SECRET, token=SECRET)
    assert rejected.status == 400

    def audits() -> list[dict]:
        found = [e for e in log_entries(server) if e.get("action") == "export.audit"]
        return found if len(found) >= 3 else []

    done, deleted, failed = wait_until(audits)
    anchor = user.body["urn:ietf:params:scim:schemas:extension:ECMA2Host:2.0:User"]["AzureObjectID"]
    assert {k: done[k] for k in ("connector", "scim_id", "anchor", "operation", "result")} == {
        "connector": "Mem",
        "scim_id": user.body["id"],
        "anchor": anchor,
        "operation": "add",
        "result": "done",
    }
    assert (deleted["operation"], deleted["result"], deleted["scim_id"]) == (
        "delete",
        "done",
        user.body["id"],
    )
    assert (failed["operation"], failed["result"]) == ("add", "failed")
    [deprovision] = [e for e in log_entries(server) if e["action"].startswith("deprovision.")]
    assert (deprovision["action"], deprovision["scim_id"]) == (
        "deprovision.delete.delete",
        user.body["id"],
    )

    entries = log_entries(server)
    assert len(entries) == len(server.stderr_lines)  # every line is one JSON object
    assert all(UTC_MS.match(e["ts"]) for e in entries)
    text = "".join(server.stderr_lines)
    assert SECRET not in text and "***" in failed["error"]


def test_the_text_format_is_one_readable_line_and_still_redacts(
    write_config: Callable[..., Path], server_factory: Callable[..., Server]
) -> None:
    toml = connectors_toml(SECRET)
    server = server_factory(write_config(_with_secret_rejected(toml), 'log_format = "text"'))
    assert create(server, name="Mem", display=SECRET, token=SECRET).status == 400
    line = wait_until(
        lambda: next((x for x in server.stderr_lines if "action=export.audit" in x), None)
    )
    stamp, level, logger, *_ = line.split()
    assert UTC_MS.match(stamp) and (level, logger) == ("INFO", "ecmahost.engine.workers.exporter:")
    assert "connector=Mem" in line and "operation=add" in line and "result=failed" in line
    assert not any(x.startswith("{") for x in server.stderr_lines)
    assert SECRET not in "".join(server.stderr_lines)


def test_refused_tokens_are_warned_once_per_address_in_a_flood(
    write_config: Callable[..., Path], server_factory: Callable[..., Server]
) -> None:
    server = server_factory(write_config(connectors_toml()))
    for _ in range(25):
        assert server.request("GET", "/Users", token="not-the-token-at-all").status == 401
    assert server.request("GET", "/Users").status == 200  # the request line logs after it

    def warned() -> list[dict]:
        done = any(
            e["action"] == "scim.request" and e["status"] == 200 for e in log_entries(server)
        )
        return (
            [e for e in log_entries(server) if e["action"] == "scim.unauthorized"] if done else []
        )

    [warning] = wait_until(warned)
    assert warning["level"] == "warning" and warning["client"] == "127.0.0.1"
    assert warning["route"] == "/ecma2host_{connector}/scim/Users"
