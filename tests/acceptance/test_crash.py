"""No acknowledged write is lost: load from 8 clients, kill -9 the host 5 times.

The kills are triggered by progress (after every sixth of the writes is acknowledged),
not by a timer, so the load is still running at the last kill however fast the machine."""

from __future__ import annotations

import json
import random
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.conftest import Server, ecmahost, filter_query, read_csv, wait_until
from tests.conftest import EXT, csv_connector_toml

USERS = 300
CLIENTS = 8
KILLS = 5
WRITES = USERS * 3 + USERS // 3  # a create and two patches each, a third deleted (about)


class Progress:
    """Acknowledged writes of every client, for the killer to wait on."""

    def __init__(self) -> None:
        self._count = 0
        self._changed = threading.Condition()

    def add(self) -> None:
        with self._changed:
            self._count += 1
            self._changed.notify_all()

    def wait_for(self, count: int, timeout_s: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self._count >= count, timeout_s)


@dataclass
class Client:
    """Sends one user's operations in order, each until it is acknowledged."""

    server: Server
    base: str
    progress: Progress
    interrupted: int = 0
    acknowledged: dict[str, dict[str, str] | None] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)

    def run(self, anchors: list[str]) -> None:
        steps = [self._create, self._retitle(1), self._retitle(2), self._finish]
        for step in steps:  # every user's step n before any user's step n+1: interleaving
            for anchor in anchors:
                step(anchor)

    def _create(self, anchor: str) -> None:
        values = {"AzureObjectID": anchor, "UserName": f"{anchor[:8]}@x.example", "Title": "t0"}
        status, body = self._send("POST", "/Users", {EXT: values}, ok=(201, 409))
        self.ids[anchor] = body["id"] if status == 201 else self._lookup(anchor)
        self.acknowledged[anchor] = values

    def _retitle(self, n: int) -> Callable[[str], None]:
        def step(anchor: str) -> None:
            operation = {"op": "Replace", "path": f"{EXT}:Title", "value": f"t{n}"}
            self._send("PATCH", f"/Users/{self.ids[anchor]}", {"Operations": [operation]})
            self.acknowledged[anchor] = {**self.acknowledged[anchor], "Title": f"t{n}"}  # type: ignore[dict-item]

        return step

    def _finish(self, anchor: str) -> None:
        if int(anchor[-4:], 16) % 3 == 0:  # a third of the users end deleted
            self._send("DELETE", f"/Users/{self.ids[anchor]}", ok=(204, 404))
            self.acknowledged[anchor] = None

    def _lookup(self, anchor: str) -> str:
        _, body = self._send("GET", "/Users" + filter_query(f'AzureObjectID eq "{anchor}"'))
        return str(body["Resources"][0]["id"])

    def _send(
        self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (200,)
    ) -> tuple[int, Any]:
        """Retry until the host answers one of ``ok``: a retry after a lost answer may
        see the first attempt's effect (409 for a create, 404 for a delete)."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            server, base = self._next_host()
            try:
                response = server.request(method, path, body, base=base)
            except OSError:  # the host is down: it is being killed and restarted
                self.interrupted += 1
                time.sleep(0.05)
                continue
            if response.status in ok:
                if method != "GET":
                    self.progress.add()
                return response.status, response.body
            assert response.status == 503, (method, path, response.status, response.body)
            time.sleep(0.05)
        raise AssertionError(f"{method} {path} never acknowledged")

    def _next_host(self) -> tuple[Server, str]:
        """The host the next attempt goes to, and its connector's base URL."""
        return self.server, self.base


SAMPLE = set(read_csv(Path(__file__).parents[2] / "config" / "InputFile.txt"))
"""The sample file's users, there before any client writes."""


def wait_for_acknowledged(clients: list[Client], csv_path: Path) -> dict[str, dict[str, str]]:
    """Wait until the file holds exactly the users the clients' acknowledged writes
    left, each with its last acknowledged values (or fail); returns them."""
    expected = {a: v for c in clients for a, v in c.acknowledged.items() if v is not None}

    def drained() -> bool:
        rows = {a: r for a, r in read_csv(csv_path).items() if a not in SAMPLE}
        return set(rows) == set(expected) and all(
            {k: rows[a][k] for k in v} == v for a, v in expected.items()
        )

    wait_until(drained, timeout_s=60)
    return expected


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["sync", "queued"])
def test_kill_9_loses_no_acknowledged_write(
    mode: str,
    write_config: Callable[..., Path],
    server_factory: Callable[..., Server],
    config_dir: Path,
) -> None:
    config = write_config(csv_connector_toml(export_mode=f'"{mode}"', retry_base_s="0.2"))
    port = _free_port()
    server = server_factory(config, "--listen", f"127.0.0.1:{port}")
    anchors = [str(uuid.uuid4()) for _ in range(USERS)]
    progress = Progress()
    clients = [Client(server, server.url(), progress) for _ in range(CLIENTS)]
    threads = [
        threading.Thread(target=c.run, args=(anchors[i::CLIENTS],), daemon=True)
        for i, c in enumerate(clients)
    ]
    for thread in threads:
        thread.start()

    rng = random.Random()
    step = WRITES // (KILLS + 1)
    for kill in range(1, KILLS + 1):
        # Somewhere in each sixth of the load: never after it has ended.
        threshold = (kill - 1) * step + rng.randint(step // 2, step)
        assert progress.wait_for(threshold, timeout_s=120), f"stuck before {threshold} writes"
        server.stop(signal.SIGKILL)
        server.start()
    assert all(t.is_alive() for t in threads), "the load ended before the last kill"
    for thread in threads:
        thread.join(timeout=180)
        assert not thread.is_alive()

    csv_path = config_dir / "state" / "InputFile.txt"
    assert sum(c.interrupted for c in clients) >= KILLS  # kills hit requests in flight
    expected = wait_for_acknowledged(clients, csv_path)
    open_events = [
        e
        for e in map(json.loads, ecmahost(config, "exports", "list", "--json").stdout.splitlines())
        if e["status"] != "done"
    ]
    assert open_events == []
    assert len(read_csv(csv_path)) == len(SAMPLE) + len(expected)  # read_csv: no duplicates
