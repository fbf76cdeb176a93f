"""Serve first, connectors fail alone, health that tells the truth: real processes
over HTTP."""

from __future__ import annotations

import shutil
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.acceptance.conftest import Server, wait_until
from tests.conftest import TOKEN, csv_connector_toml

ADMIN = "admin-token-for-health"
HOST_TOML = f'admin_token = "{ADMIN}"'
HEADER = '"AzureObjectID";"IsActive";"DisplayName";"EmployeeId";"Title";"UserName";"Email"\n'


def _write_rows(path: Path, count: int) -> None:
    """A target file of ``count`` users, written in one go (about a second)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = (
        f'"00000000-0000-4000-8000-{i:012d}";"True";"User {i}";"{i}";"";"u{i}@x";"u{i}@x"\n'
        for i in range(count)
    )
    path.write_text(HEADER + "".join(rows), encoding="utf-8")


def _detail(server: Server, name: str = "CSV") -> dict:
    response = server.request("GET", "", base=_root(server, name) + "/health?detail=1", token=ADMIN)
    assert response.status == 200, response.body
    return response.body


def _root(server: Server, name: str) -> str:
    return server.url(name).rsplit("/ecma2host_", 1)[0]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_port_answers_during_a_start_up_import_of_300000_rows(
    write_config: Callable[..., Path], server_factory: Callable[..., Server], config_dir: Path
) -> None:
    config = write_config(csv_connector_toml(), HOST_TOML)
    _write_rows(config_dir / "state" / "InputFile.txt", 300_000)

    started = time.monotonic()
    server = server_factory(config, wait_ready=False)
    health = server.request("GET", "", base=_root(server, "CSV") + "/health", token=None)
    assert (health.status, health.body) == (200, {"status": "ok"})
    assert time.monotonic() - started < 10  # a Python start, not an import of 300,000 rows

    # Nothing was ever imported: reads wait for the first import, told when to retry.
    users = server.request("GET", "/Users?count=1")
    assert users.status == 503 and int(users.headers["retry-after"]) > 0
    detail = _detail(server)
    assert detail["status"] == "importing"
    assert detail["connectors"]["CSV"]["state"] == "importing"
    assert detail["connectors"]["CSV"]["last_import"] is None
    # Another caller's token still gets 401, not the state of the import.
    assert server.request("GET", "/Users", token="wrong-token-123").status == 401


def test_a_filled_space_answers_while_the_start_up_import_runs(
    write_config: Callable[..., Path], server_factory: Callable[..., Server], config_dir: Path
) -> None:
    config = write_config(csv_connector_toml(), HOST_TOML)
    server = server_factory(config)
    wait_until(lambda: server.request("GET", "/Users").status == 200)
    before = server.request("GET", "/Users").body["totalResults"]
    server.stop()
    _write_rows(config_dir / "state" / "InputFile.txt", 300_000)

    server.wait_ready = False
    server.start()
    # The durable space answers at once, as the last import left it.
    users = server.request("GET", "/Users")
    assert (users.status, users.body["totalResults"]) == (200, before)
    detail = _detail(server)["connectors"]["CSV"]
    assert detail["state"] == "importing"
    assert detail["last_import"]["result"] == "ok"
    assert detail["last_import"]["counts"]["seen"] == before


def _ldap_down(name: str) -> str:
    return f"""
[connectors.{name}]
type = "ldap"
token = "env:ECMAHOST_TEST_TOKEN_CSV"

[connectors.{name}.settings]
url = "ldap://127.0.0.1:{_closed_port()}"
bind_dn = "cn=admin,dc=example,dc=org"
password = "env:ECMAHOST_TEST_DOWN_SECRET"
base_dn = "ou=people,dc=example,dc=org"
anchor = "uid"
"""


def _postgres_down(name: str) -> str:
    return f"""
[connectors.{name}]
type = "sql"
token = "env:ECMAHOST_TEST_TOKEN_CSV"

[connectors.{name}.settings]
url = "env:ECMAHOST_TEST_DOWN_URL"
table = "users"
anchor = "AzureObjectID"
"""


@pytest.mark.parametrize("other", [_ldap_down, _postgres_down], ids=["ldap", "postgresql"])
def test_an_unreachable_target_leaves_the_csv_connector_served(
    write_config: Callable[..., Path],
    server_factory: Callable[..., Server],
    other: Callable[[str], str],
) -> None:
    env = {
        "ECMAHOST_TEST_DOWN_SECRET": "secret",
        "ECMAHOST_TEST_DOWN_URL": f"postgresql+asyncpg://u:secret@127.0.0.1:{_closed_port()}/db",
    }
    config = write_config(csv_connector_toml() + other("Down"), HOST_TOML)
    started = time.monotonic()
    server = server_factory(config, env=env, wait_ready=False)
    wait_until(lambda: server.request("GET", "/Users").status == 200, timeout_s=5)
    assert time.monotonic() - started < 5 + 2  # 5 s after start, plus the test's polling
    assert server.request("GET", "/Users").body["totalResults"] == 4

    down = server.request("GET", "/Users", name="Down", token=TOKEN)
    assert down.status == 503 and int(down.headers["retry-after"]) > 0
    wait_until(lambda: _detail(server)["connectors"]["CSV"]["state"] == "serving")
    detail = _detail(server)
    assert detail["status"] == "degraded"
    assert detail["connectors"]["Down"]["state"] == "degraded"
    assert "unreachable" in detail["connectors"]["Down"]["reason"]
    assert detail["connectors"]["CSV"]["exports"] == {
        "pending": 0,
        "failed": 0,
        "oldest_pending_age_s": None,
    }
    ready = server.request("GET", "", base=_root(server, "CSV") + "/ready", token=ADMIN)
    assert ready.status == 503
    # It keeps trying by itself, with back-off.
    wait_until(lambda: "".join(server.stderr_lines).count('"connector.open_retry"') >= 2)
    assert server.process is not None and server.process.poll() is None


def test_health_detail_needs_the_admin_token(
    write_config: Callable[..., Path], server_factory: Callable[..., Server]
) -> None:
    server = server_factory(write_config(csv_connector_toml(), HOST_TOML))
    root = _root(server, "CSV")
    assert server.request("GET", "", base=root + "/health?detail=1", token=None).status == 401
    assert server.request("GET", "", base=root + "/ready", token=TOKEN).status == 401
    wait_until(lambda: _detail(server)["status"] == "serving")
    ready = server.request("GET", "", base=root + "/ready", token=ADMIN)
    assert ready.status == 200
    csv = ready.body["connectors"]["CSV"]
    assert (csv["state"], csv["reason"], csv["last_import"]["result"]) == ("serving", None, "ok")


def test_a_target_down_at_restart_still_serves_its_space(
    write_config: Callable[..., Path], server_factory: Callable[..., Server], config_dir: Path
) -> None:
    toml = csv_connector_toml().replace("state/InputFile.txt", "share/InputFile.txt")
    config = write_config(toml, HOST_TOML)
    (config_dir / "share").mkdir()
    server = server_factory(config)  # the first import fills the space
    server.stop()
    kept = (config_dir / "share" / "InputFile.txt").read_bytes()
    shutil.rmtree(config_dir / "share")  # the share is gone when the host comes back

    server.wait_ready = False
    server.start()
    users = wait_until(lambda: server.request("GET", "/Users"))
    assert (users.status, users.body["totalResults"]) == (200, 4)
    detail = wait_until(lambda: _detail(server)["connectors"]["CSV"]["reason"])
    # The connector opens (its folder may be a share mounted later), and its import
    # finds the file missing: refused, the view kept, tried again by itself.
    assert detail.startswith("import refused: target missing")
    assert _detail(server)["connectors"]["CSV"]["state"] == "degraded"

    (config_dir / "share").mkdir()  # back: the host imports again by itself
    (config_dir / "share" / "InputFile.txt").write_bytes(kept)
    wait_until(lambda: _detail(server)["connectors"]["CSV"]["state"] == "serving", 20)
