"""Hosts whose connector space is a PostgreSQL database (``host.database_url``)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
from ecmahost.engine.space.point_reads import asyncpg_dsn

from tests.acceptance.conftest import ecmahost
from tests.conftest import csv_connector_toml
from tests.connectors.sql.postgres import PostgresServer

__all__ = ["DATABASE_VARIABLE", "postgresql_csv_config", "query_database"]

DATABASE_VARIABLE = "ECMAHOST_TEST_DATABASE_URL"
"""The variable ``host.database_url`` names: the URL holds the password."""

_databases = itertools.count(1)


def postgresql_csv_config(
    write_config: Callable[..., Path], postgres: PostgresServer, *, migrate: bool = True
) -> tuple[Path, dict[str, str]]:
    """The demo CSV connector with its space in a new PostgreSQL database, migrated
    by ``ecmahost migrate`` unless ``migrate`` is false; returns the configuration
    and the environment every command needs."""
    url = postgres.create_database(f"host_space_{next(_databases)}")
    env = {DATABASE_VARIABLE: url}
    config = write_config(csv_connector_toml(), f'database_url = "env:{DATABASE_VARIABLE}"')
    if migrate:
        migrated = ecmahost(config, "migrate", env=env)
        assert migrated.returncode == 0, migrated.stderr
    return config, env


def query_database(url: str, sql: str) -> list[Any]:
    """The rows ``sql`` gives on the space at ``url`` (a host's database URL)."""

    async def fetch() -> list[Any]:
        connection = await asyncpg.connect(asyncpg_dsn(url))
        try:
            return list(await connection.fetch(sql))
        finally:
            await connection.close()

    return asyncio.run(fetch())
