"""Shared fixtures: configuration files in a temporary folder, and an in-process
SCIM app over the in-memory connector (real HTTP on loopback)."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from ecmahost.connectors.memory.connector import MemoryConnector
from ecmahost.engine.config import load_config
from ecmahost.engine.host import Host
from ecmahost.engine.scim.app import create_app

REPO = Path(__file__).resolve().parent.parent
DEMO_CONFIG_DIR = REPO / "config"
TOKEN = "test-token-0123456789"
EXT = "urn:ietf:params:scim:schemas:extension:ECMA2Host:2.0:User"
CORE = "urn:ietf:params:scim:schemas:core:2.0:User"


def csv_connector_toml(name: str = "CSV", token: str = TOKEN, **extra: str) -> str:
    """The demo CSV connector's TOML, with the target file in the state folder. The
    token is passed by reference, through a variable of this process's environment
    (which subprocesses inherit)."""
    variable = f"ECMAHOST_TEST_TOKEN_{name.upper()}"
    os.environ[variable] = token
    lines = "\n".join(f"{k} = {v}" for k, v in extra.items())
    return f"""
[connectors.{name}]
type = "csv"
token = "env:{variable}"
{lines}

[connectors.{name}.deprovision]
disable = "set_attribute"
disable_attribute = "IsActive"

[connectors.{name}.settings]
schema_file = "Schema.xml"
path = "state/InputFile.txt"
seed = "InputFile.txt"
"""


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """A folder holding the demo's Schema.xml and InputFile.txt, for a config file."""
    folder = tmp_path / "config"
    folder.mkdir()
    for name in ("Schema.xml", "InputFile.txt"):
        shutil.copy(DEMO_CONFIG_DIR / name, folder / name)
    return folder


@pytest.fixture
def write_config(config_dir: Path) -> Callable[[str], Path]:
    """Write ``ecmahost.toml`` (plain HTTP, state in ``state/``) plus the given
    connector tables; returns the file's path."""

    def write(connectors: str, host: str = "") -> Path:
        path = config_dir / "ecmahost.toml"
        path.write_text(
            f'[host]\ntls = "off"\nstate_dir = "state"\n{host}\n{connectors}', encoding="utf-8"
        )
        return path

    return write


def memory_connector_toml(name: str = "Mem", token: str = TOKEN, **extra: Any) -> str:
    deprovision = extra.pop(
        "deprovision", 'disable = "set_attribute"\ndisable_attribute = "IsActive"'
    )
    lines = "\n".join(
        f"{k} = {v!r}" if isinstance(v, str) else f"{k} = {v}" for k, v in extra.items()
    )
    return f"""
[connectors.{name}]
type = "memory"
token = "{token}"
{lines}

[connectors.{name}.deprovision]
{deprovision}
"""


@dataclass
class Scim:
    """An in-process host over the memory connector, reached through real HTTP."""

    client: TestClient[Any, Any]
    host: Host
    memory: MemoryConnector
    name: str

    @property
    def base(self) -> str:
        return f"/ecma2host_{self.name}/scim"

    def headers(self, token: str = TOKEN) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    async def call(self, method: str, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        kw.setdefault("headers", self.headers())
        response = await self.client.request(method, self.base + path, json=body, **kw)
        data = await response.json(content_type=None) if response.status != 204 else None
        return response.status, data


@pytest.fixture
async def make_scim(
    write_config: Callable[[str], Path],
) -> AsyncIterator[Callable[..., Awaitable[Scim]]]:
    """Factory: ``await make_scim(export_mode="queued", ...)`` starts one host."""
    clients: list[TestClient[Any, Any]] = []

    async def make(
        seed: dict[str, dict[str, Any]] | None = None, host_toml: str = "", **connector: Any
    ) -> Scim:
        host = Host(load_config(write_config(memory_connector_toml(**connector), host_toml)))
        client = TestClient(TestServer(create_app(host)))
        await client.start_server()  # opens the host: migrations, start-up import, workers
        await host.started()  # the start-up import runs in the background
        clients.append(client)
        runtime = host.runtime("Mem")
        assert isinstance(runtime.connector, MemoryConnector)
        if seed:
            runtime.connector.objects.update(seed)
            await runtime.importer.full_import()
        return Scim(client, host, runtime.connector, "Mem")

    yield make
    for client in clients:
        await client.close()
