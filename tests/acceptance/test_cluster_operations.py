"""Two hosts on one PostgreSQL space, as an operator sees them: ``ecmahost status`` and
``/health?detail=1`` list both and the one running the imports; when it dies the
other takes over; an import asked of either host, or of the command line, runs once,
on the host that runs the imports."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.conftest import Server, ecmahost, wait_until
from tests.acceptance.postgresql_space import DATABASE_VARIABLE, query_database
from tests.conftest import csv_connector_toml
from tests.connectors.sql.postgres import PostgresServer, postgres_fixture

__all__ = ["postgres_fixture"]  # the session's PostgreSQL server, as fixture `postgres`

ADMIN = "an-admin-token-for-the-cluster"


class Cluster:
    def __init__(self, configs: list[Path], env: dict[str, str], hosts: list[Server]) -> None:
        self.configs, self.env, self.hosts = configs, env, hosts

    def health(self, host: Server) -> dict[str, Any]:
        answer = host.request("GET", "/health?detail=1", base=_root(host), token=ADMIN)
        assert answer.status == 200, answer.body
        return dict(answer.body["cluster"])

    def leader(self, host: Server) -> str | None:
        """The id of the host running CSV's imports, as ``host`` sees the cluster."""
        leading = [h["id"] for h in self.health(host)["hosts"] if h["alive"] and h["imports"]]
        assert len(leading) <= 1, leading
        return leading[0] if leading else None

    def imports(self) -> int:
        sql = "SELECT count(*) FROM runs WHERE connector = 'CSV' AND kind = 'import'"
        return int(query_database(self.env[DATABASE_VARIABLE], sql)[0][0])


@pytest.fixture
def cluster(
    postgres: PostgresServer, server_factory: Callable[..., Server], config_dir: Path
) -> Iterator[Cluster]:
    env = {DATABASE_VARIABLE: postgres.create_database(f"ops_{os.getpid()}_{time.monotonic_ns()}")}
    env["CLUSTER_ADMIN_TOKEN"] = ADMIN
    connector = csv_connector_toml(autosync_minutes="0").replace(
        'path = "state/InputFile.txt"', 'path = "shared/InputFile.txt"'
    )
    (config_dir / "shared").mkdir()
    configs = []
    for n in (1, 2):
        path = config_dir / f"host{n}.toml"
        host = (
            f'[host]\ntls = "off"\nstate_dir = "state{n}"\n'
            f'database_url = "env:{DATABASE_VARIABLE}"\nadmin_token = "env:CLUSTER_ADMIN_TOKEN"\n'
        )
        path.write_text(host + connector, encoding="utf-8")
        configs.append(path)
    assert ecmahost(configs[0], "migrate", env=env).returncode == 0
    hosts = [server_factory(config, env=env) for config in configs]
    yield Cluster(configs, env, hosts)


def test_status_lists_the_hosts_and_another_host_takes_over_the_imports(
    cluster: Cluster,
) -> None:
    first, second = cluster.hosts
    seen = cluster.health(second)
    assert len(seen["hosts"]) == 2 and all(h["alive"] for h in seen["hosts"])
    leader = wait_until(lambda: cluster.leader(second))
    assert cluster.leader(first) == leader  # every host sees the same cluster

    status = ecmahost(cluster.configs[0], "status", env=cluster.env)
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    assert sum(": up, heartbeat" in line for line in lines) == 2, status.stdout
    assert sum(line.endswith("runs the imports of: CSV") for line in lines) == 1, status.stdout
    assert f"id {leader})" in next(line for line in lines if line.endswith("of: CSV"))

    by_id = {cluster.health(h)["this_host"]: h for h in cluster.hosts}
    dead, survivor = by_id[leader], next(h for i, h in by_id.items() if i != leader)
    dead.stop(signal.SIGKILL)  # its session ends, and its lock with it
    started = time.monotonic()
    survivor_id = cluster.health(survivor)["this_host"]
    wait_until(lambda: cluster.leader(survivor) == survivor_id, timeout_s=10)
    assert time.monotonic() - started < 6  # the next heartbeat takes the lock


def test_an_import_asked_anywhere_runs_once_on_the_host_running_the_imports(
    cluster: Cluster,
) -> None:
    leader = wait_until(lambda: cluster.leader(cluster.hosts[0]))
    other = next(h for h in cluster.hosts if cluster.health(h)["this_host"] != leader)
    before = cluster.imports()

    asked = other.request("POST", "/admin/imports/CSV", base=_root(other), token=ADMIN)
    assert asked.status == 202, asked.body
    wait_until(lambda: cluster.imports() == before + 1)

    command = ecmahost(cluster.configs[0], "import", "CSV", env=cluster.env)
    assert command.returncode == 0, command.stderr
    assert "asked the host running the imports of CSV" in command.stdout
    wait_until(lambda: cluster.imports() == before + 2)
    time.sleep(1.0)  # nothing more comes: each request ran once
    assert cluster.imports() == before + 2

    for host in cluster.hosts:
        host.stop()
    alone = ecmahost(cluster.configs[1], "import", "CSV", env=cluster.env)
    assert alone.returncode == 0, alone.stderr
    assert "import of CSV: 4 records" in alone.stdout  # no host runs them: it ran here
    assert cluster.imports() == before + 3


def _root(host: Server) -> str:
    return host.url().split("/ecma2host_")[0]
