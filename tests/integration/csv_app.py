"""An in-process host over the demo CSV connector (a real file, a real SQLite space),
reached through real HTTP on loopback, with the admin API on. ``EmployeeId`` is an
Integer here, so integer limits can be seen end to end."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from ecmahost.engine.config import load_config
from ecmahost.engine.host import Host
from ecmahost.engine.scim.app import create_app

from tests.conftest import EXT, TOKEN, csv_connector_toml

ADMIN_TOKEN = "admin-token-0123456789abcdef"
ANCHOR = "de4841f1-cb92-48e5-9056-29a36a0653c2"
"""A user the seed file holds."""


@dataclass
class CsvApp:
    client: TestClient[Any, Any]
    host: Host
    target: Path
    user_id: str
    """The SCIM id of the seeded user ``ANCHOR``."""

    base: str = "/ecma2host_CSV/scim"

    def headers(self, token: str = TOKEN) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}

    async def send(
        self, method: str, path: str, raw: bytes | None = None, token: str = TOKEN
    ) -> tuple[int, Any]:
        """``path`` is absolute (``/admin/...``) or relative to the SCIM base."""
        url = path if path.startswith("/admin") or path.startswith("/health") else self.base + path
        response = await self.client.request(method, url, data=raw, headers=self.headers(token))
        text = await response.text()
        return response.status, text


def user_body(anchor: str, **extension: Any) -> dict[str, Any]:
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", EXT],
        "userName": f"{anchor}@example.org",
        EXT: {"AzureObjectID": anchor, **extension},
    }


@pytest.fixture
async def csv_app(write_config: Callable[..., Path], config_dir: Path) -> AsyncIterator[CsvApp]:
    schema = config_dir / "Schema.xml"
    text = schema.read_text(encoding="utf-8-sig")
    employee = "<Name>EmployeeId</Name>\n          <DataType>String</DataType>"
    assert employee in text
    schema.write_text(text.replace(employee, employee.replace("String", "Integer")))
    config = write_config(csv_connector_toml(), f'admin_token = "{ADMIN_TOKEN}"')
    host = Host(load_config(config))
    client = TestClient(TestServer(create_app(host)))
    await client.start_server()
    await host.started()
    try:
        user_id = await _id_of(client, ANCHOR)
        yield CsvApp(client, host, config_dir / "state" / "InputFile.txt", user_id)
    finally:
        await client.close()


async def _id_of(client: TestClient[Any, Any], anchor: str) -> str:
    response = await client.get(
        f'/ecma2host_CSV/scim/Users?filter=AzureObjectID eq "{anchor}"',
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    found = await response.json(content_type=None)
    return str(found["Resources"][0]["id"])
