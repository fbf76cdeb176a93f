"""Third-party connector types from the ``ecmahost.connectors`` entry-point group.

The plugins here are a real installed distribution: a ``.dist-info`` folder with its
``entry_points.txt``, next to the plugin modules, in a folder put on ``sys.path``
(what ``pip install`` leaves in site-packages).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from ecmahost.connectors.exceptions import ConfigError
from ecmahost.engine.config import ConnectorConfig, load_config
from ecmahost.engine.host import Host
from ecmahost.engine.registry import ENTRY_POINT_GROUP, build_connector, connector_types
from ecmahost.engine.scim.app import create_app

from tests.conftest import TOKEN, memory_connector_toml

PLUGIN = '''
from ecmahost.connectors.memory.connector import MemoryConnector


class EchoConnector(MemoryConnector):
    """A third-party connector: the in-memory twin under another name."""

    type_name = "echo"


NOT_A_CONNECTOR = "just a string"
'''
BROKEN = 'raise ImportError("the echo driver library is missing")\n'
ENTRY_POINTS = f"""[{ENTRY_POINT_GROUP}]
echo = ecmahost_test_echo:EchoConnector
broken = ecmahost_test_broken:BrokenConnector
odd = ecmahost_test_echo:NOT_A_CONNECTOR
csv = ecmahost_test_echo:EchoConnector
"""
MODULES = ("ecmahost_test_echo", "ecmahost_test_broken")


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The test plugin distribution, installed in a folder on ``sys.path``."""
    site = tmp_path / "site-packages"
    dist_info = site / "ecmahost_test_plugins-1.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: ecmahost-test-plugins\nVersion: 1.0\n", encoding="utf-8"
    )
    (dist_info / "entry_points.txt").write_text(ENTRY_POINTS, encoding="utf-8")
    (site / "ecmahost_test_echo.py").write_text(PLUGIN, encoding="utf-8")
    (site / "ecmahost_test_broken.py").write_text(BROKEN, encoding="utf-8")
    monkeypatch.syspath_prepend(str(site))
    yield site
    for module in MODULES:
        sys.modules.pop(module, None)


def _config(type_name: str) -> ConnectorConfig:
    return ConnectorConfig.model_validate({"name": "P", "type": type_name, "token": TOKEN})


@pytest.mark.usefixtures("installed")
def test_plugins_are_listed_but_cannot_take_a_builtin_name() -> None:
    types = connector_types()
    assert types["echo"] == "ecmahost_test_echo:EchoConnector"
    assert {"broken", "odd"} <= set(types)
    assert types["csv"] == "ecmahost.connectors.csv.connector:CsvConnector"
    assert type(build_connector(_config("echo"), Path("."))).__name__ == "EchoConnector"


@pytest.mark.usefixtures("installed")
@pytest.mark.parametrize(
    ("type_name", "logged"),
    [("broken", "the echo driver library is missing"), ("odd", "is not a Connector subclass")],
)
def test_a_broken_plugin_is_reported_and_refused(
    caplog: pytest.LogCaptureFixture, type_name: str, logged: str
) -> None:
    with (
        caplog.at_level(logging.ERROR, logger="ecmahost.engine.registry"),
        pytest.raises(ConfigError, match=rf"connectors\.P\.type: .*{type_name}"),
    ):
        build_connector(_config(type_name), Path("."))
    [record] = [r for r in caplog.records if getattr(r, "action", None) == "plugin.broken"]
    assert logged in record.getMessage()


@pytest.mark.usefixtures("installed")
async def test_a_working_plugin_serves_beside_a_broken_one(
    write_config: Callable[[str], Path],
) -> None:
    echo = memory_connector_toml("Echo").replace('type = "memory"', 'type = "echo"')
    host = Host(load_config(write_config(echo + memory_connector_toml("Mem"))))
    client = TestClient(TestServer(create_app(host)))
    await client.start_server()  # the broken plugin is installed too: the host starts
    await host.started()  # the start-up import runs in the background
    try:
        runtime = host.runtime("Echo")
        assert type(runtime.connector).__name__ == "EchoConnector"
        response = await client.post(
            "/ecma2host_Echo/scim/Users",
            json={
                "urn:ietf:params:scim:schemas:extension:ECMA2Host:2.0:User": {
                    "AzureObjectID": "plugin-user-1",
                    "DisplayName": "From a plugin",
                }
            },
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert response.status == 201, await response.text()
        assert "plugin-user-1" in runtime.connector.objects  # type: ignore[attr-defined]
    finally:
        await client.close()
