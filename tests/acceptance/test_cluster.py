"""Three hosts on one PostgreSQL connector space, one CSV file: 8 clients spread over
the hosts create, patch and delete users while hosts are killed with SIGKILL five
times (and restarted). No acknowledged write is lost or duplicated, each user's
writes land in order, and each scheduled import runs once per interval, not once per
host.

The kills are triggered by progress (acknowledged writes), not by a timer."""

from __future__ import annotations

import contextlib
import random
import signal
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from ecmahost.engine.workers.scheduler import ALIGNED_TO

from tests.acceptance import test_crash as crash
from tests.acceptance.conftest import Server, ecmahost, read_csv, wait_until
from tests.acceptance.postgresql_space import DATABASE_VARIABLE, query_database
from tests.conftest import csv_connector_toml
from tests.connectors.sql.postgres import PostgresServer, free_port, postgres_fixture

__all__ = ["postgres_fixture"]  # the session's PostgreSQL server, as fixture `postgres`

HOSTS = 3
USERS = 300
IMPORT_EVERY_S = 3.0
WRITES = USERS * 3 + USERS // 3


@dataclass
class ClusterClient(crash.Client):
    """``crash.Client``, sending each request to the next host in turn; a host that
    is down (being killed, restarting) passes the request on to the next."""

    hosts: tuple[Server, ...] = ()
    turn: int = 0
    cancelled: threading.Event = field(default_factory=threading.Event)

    def run_until_cancelled(self, anchors: list[str]) -> None:
        """``run``; a test that failed cancels it, so that its thread ends with the
        test instead of failing a later one."""
        with contextlib.suppress(_Cancelled):
            self.run(anchors)

    def _next_host(self) -> tuple[Server, str]:
        if self.cancelled.is_set():
            raise _Cancelled
        host = self.hosts[self.turn % len(self.hosts)]
        self.turn += 1
        return host, host.base  # type: ignore[attr-defined]


class _Cancelled(Exception):
    pass


def _kill_five_times(
    hosts: list[Server], progress: crash.Progress, restarts: dict[int, threading.Thread]
) -> None:
    """SIGKILL a host each time the load passed a threshold, and restart it beside
    the load (the other hosts serve meanwhile). The thresholds leave the last part of
    the load after the last kill; a host still restarting is passed over rather than
    waited for, so the kills keep up with the load."""
    rng = random.Random()
    step = WRITES // (crash.KILLS + 2)
    for kill in range(crash.KILLS):
        threshold = kill * step + rng.randint(step // 2, step)
        assert progress.wait_for(threshold, timeout_s=120), f"stuck before {threshold} writes"
        up = [n for n in range(HOSTS) if n not in restarts or not restarts[n].is_alive()]
        victim = up[kill % len(up)] if up else kill % HOSTS
        if victim in restarts:
            restarts[victim].join()
        hosts[victim].stop(signal.SIGKILL)
        restarts[victim] = threading.Thread(target=hosts[victim].start, daemon=True)
        restarts[victim].start()


def _configs(config_dir: Path, mode: str) -> list[Path]:
    """One configuration per host: its own state folder and port, one shared CSV
    file and one database."""
    connector = csv_connector_toml(
        export_mode=f'"{mode}"',
        retry_base_s="0.2",
        export_lease_s="3",  # a killed host's claims return to the others soon
        autosync_minutes=str(IMPORT_EVERY_S / 60),
    ).replace('path = "state/InputFile.txt"', 'path = "shared/InputFile.txt"')
    (config_dir / "shared").mkdir()
    configs = []
    for n in range(1, HOSTS + 1):
        path = config_dir / f"host{n}.toml"
        host = f'[host]\ntls = "off"\nstate_dir = "state{n}"\n'
        database = f'database_url = "env:{DATABASE_VARIABLE}"\n'
        path.write_text(host + database + connector, encoding="utf-8")
        configs.append(path)
    return configs


def _import_runs(url: str) -> list[tuple[datetime, str, str | None]]:
    """Each import run's start, status and error, in order."""
    rows = query_database(
        url,
        "SELECT started_at, status, error FROM runs "
        "WHERE connector = 'CSV' AND kind = 'import' ORDER BY id",
    )
    return [(r["started_at"].replace(tzinfo=UTC), r["status"], r["error"]) for r in rows]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["sync", "queued"])
def test_three_hosts_survive_five_kills_without_losing_a_write(
    mode: str,
    postgres: PostgresServer,
    server_factory: Callable[..., Server],
    config_dir: Path,
) -> None:
    url = postgres.create_database(f"cluster_{mode}")
    env = {DATABASE_VARIABLE: url}
    configs = _configs(config_dir, mode)
    assert ecmahost(configs[0], "migrate", env=env).returncode == 0
    hosts = []
    for config in configs:  # fixed ports: a restarted host is found where it was
        host = server_factory(config, "--listen", f"127.0.0.1:{free_port()}", env=env)
        host.base = host.url()  # type: ignore[attr-defined]
        hosts.append(host)

    anchors = [str(uuid.uuid4()) for _ in range(USERS)]
    progress = crash.Progress()
    clients = [
        ClusterClient(hosts[0], "", progress, hosts=tuple(hosts), turn=i)
        for i in range(crash.CLIENTS)
    ]
    threads = [
        threading.Thread(
            target=c.run_until_cancelled, args=(anchors[i :: crash.CLIENTS],), daemon=True
        )
        for i, c in enumerate(clients)
    ]
    for thread in threads:
        thread.start()
    restarts: dict[int, threading.Thread] = {}
    try:
        _kill_five_times(hosts, progress, restarts)
        assert all(t.is_alive() for t in threads), "the load ended before the last kill"
    except BaseException:  # nothing of this test runs on into the next one
        for client in clients:
            client.cancelled.set()
        raise
    finally:
        for restart in restarts.values():
            restart.join()
    for thread in threads:
        thread.join(timeout=180)
        assert not thread.is_alive()

    csv_path = config_dir / "shared" / "InputFile.txt"
    assert sum(c.interrupted for c in clients) >= crash.KILLS  # kills hit requests in flight
    expected = crash.wait_for_acknowledged(list(clients), csv_path)
    assert len(read_csv(csv_path)) == len(crash.SAMPLE) + len(expected)  # no duplicates

    # Every host ticks at the same moments; only the one holding the lock imports.
    # The new space's first import ran at start; then at least three on the schedule.
    wait_until(lambda: len(_import_runs(url)) >= 4, timeout_s=4 * IMPORT_EVERY_S)
    runs = _import_runs(url)  # a run that failed and was tried again shows as such
    first, *scheduled = [started for started, _, _ in runs]
    windows = Counter(int((s - ALIGNED_TO).total_seconds() // IMPORT_EVERY_S) for s in scheduled)
    assert first < min(scheduled), scheduled
    assert max(windows.values()) == 1, f"two imports in one interval: {runs}"
