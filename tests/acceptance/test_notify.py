"""Alerts to a webhook: a real host subprocess posts to a local receiver."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.conftest import Server, wait_until
from tests.acceptance.monitoring import (
    ADMIN,
    REJECTED,
    connectors_toml,
    create,
    log_entries,
    post,
    root,
)

QUERY_SECRET = "hook-key-0123456789abcdef"


@dataclass
class Receiver:
    """A webhook on loopback that answers 500 to its first ``fail_first`` posts."""

    fail_first: int = 0
    received: list[dict[str, Any]] = field(default_factory=list)
    attempts: int = 0
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_port}/hook?key={QUERY_SECRET}"

    def events(self, event: str) -> list[dict[str, Any]]:
        return [r for r in list(self.received) if r["event"] == event]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state.attempts += 1
            failing = state.attempts <= state.fail_first
            if not failing:
                state.received.append(body)
            self.send_response(500 if failing else 204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    state.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=state.server.serve_forever, daemon=True)
    thread.start()
    yield state
    state.server.shutdown()
    state.server.server_close()


def _host_toml(receiver: Receiver) -> str:
    os.environ["ECMAHOST_TEST_NOTIFY_URL"] = receiver.url
    return f'admin_token = "{ADMIN}"\nnotify_url = "env:ECMAHOST_TEST_NOTIFY_URL"'


def test_an_export_that_fails_for_good_is_posted_after_a_retry(
    write_config: Callable[..., Path], server_factory: Callable[..., Server], receiver: Receiver
) -> None:
    receiver.fail_first = 1
    server = server_factory(write_config(connectors_toml(), _host_toml(receiver)))
    rejected = create(server, display=REJECTED)
    assert rejected.status == 400

    [alert] = wait_until(lambda: receiver.events("export.failed"), timeout_s=15)
    assert receiver.attempts == 2  # the first post got a 500, the second went through
    assert (alert["connector"], alert["detail"]["scim_id"]) == ("Mem", rejected_id(server))
    assert alert["detail"]["operation"] == "add" and REJECTED in alert["detail"]["error"]
    assert alert["at"].endswith("Z") and alert["host"]
    [start] = [e for e in log_entries(server) if e["action"] == "notify.start"]
    assert start["msg"].endswith("/hook")  # where alerts go, without the key in the query
    assert QUERY_SECRET not in "".join(server.stderr_lines)


def rejected_id(server: Server) -> str:
    """The SCIM id of the one failed event, read from the admin API's list."""
    listed = server.request(
        "GET", "", base=root(server) + "/admin/exports?status=failed", token=ADMIN
    )
    [event] = listed.body["exports"]
    return str(event["object_id"])


def test_a_degraded_connector_and_its_recovery_are_posted(
    write_config: Callable[..., Path], server_factory: Callable[..., Server], receiver: Receiver
) -> None:
    config = write_config(connectors_toml(), _host_toml(receiver))
    server = server_factory(config)
    assert create(server).status == 201
    # The memory target forgets everything on restart: the start-up import finds it
    # empty while the space holds a user, refuses, and the connector is degraded.
    server.restart()
    [degraded] = wait_until(lambda: receiver.events("connector.degraded"), timeout_s=15)
    assert degraded["connector"] == "Mem" and "empty" in degraded["detail"]["reason"]

    assert post(root(server) + "/admin/imports/Mem?allow_removals=1", ADMIN) == 202
    [recovered] = wait_until(lambda: receiver.events("connector.recovered"), timeout_s=15)
    assert recovered["connector"] == "Mem" and recovered["detail"]["state"] == "serving"


def test_a_receiver_that_is_down_does_not_hold_exports(
    write_config: Callable[..., Path], server_factory: Callable[..., Server], receiver: Receiver
) -> None:
    receiver.fail_first = 1000
    server = server_factory(write_config(connectors_toml(), _host_toml(receiver)))
    started = time.monotonic()
    assert [create(server, display=REJECTED).status for _ in range(3)] == [400] * 3
    assert [create(server).status for _ in range(3)] == [201] * 3
    assert time.monotonic() - started < 5  # alerts are retried in the background
    wait_until(lambda: receiver.attempts >= 2, timeout_s=10)
