"""Safe to leave running: one host per state folder, runtime errors in one line
(exit code 2, no traceback) and a clean stop on SIGTERM, even during start-up."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.acceptance.conftest import Server, ecmahost
from tests.conftest import EXT

QUICK_S = 15.0
"""A refusal happens before any import; this bounds a loaded machine's start."""


def assert_one_line(result: subprocess.CompletedProcess[str], *parts: str) -> str:
    """Exit code 2 and stderr exactly one line, holding every one of ``parts``."""
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ecmahost: error: ")
    for part in parts:
        assert part in lines[0]
    return lines[0]


def serve_once(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return ecmahost(config, "serve", "--listen", "127.0.0.1:0", *args, timeout_s=QUICK_S)


@pytest.fixture
def state_dir(csv_config: Path) -> Path:
    return csv_config.parent / "state"


def test_a_second_serve_on_the_same_state_folder_exits_at_once(
    csv_config: Path, state_dir: Path, server_factory: Callable[..., Server]
) -> None:
    first = server_factory(csv_config)
    assert first.process is not None
    started = time.monotonic()
    line = assert_one_line(serve_once(csv_config), str(state_dir), f"pid {first.process.pid}")
    assert "in use" in line
    assert time.monotonic() - started < QUICK_S
    # The first host is untouched and still serves.
    assert first.request("GET", "/Users?count=1").status == 200


def test_the_lock_goes_with_the_process(
    csv_config: Path, server_factory: Callable[..., Server]
) -> None:
    first = server_factory(csv_config)
    assert first.process is not None
    first.process.kill()  # no clean-up at all: the operating system drops the lock
    first.process.wait()
    first.stop()
    server_factory(csv_config)


def test_import_and_exports_still_run_beside_a_serving_host(
    csv_config: Path, server_factory: Callable[..., Server]
) -> None:
    server_factory(csv_config)
    assert ecmahost(csv_config, "import", "CSV").returncode == 0
    assert ecmahost(csv_config, "exports", "list").returncode == 0


@pytest.fixture
def listening() -> Iterator[int]:
    """A port something else listens on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield other.getsockname()[1]


def test_a_port_in_use_is_one_line_before_any_import(
    csv_config: Path, state_dir: Path, listening: int
) -> None:
    result = ecmahost(csv_config, "serve", "--listen", f"127.0.0.1:{listening}", timeout_s=QUICK_S)
    assert_one_line(result, f"127.0.0.1:{listening}", "address already in use")
    assert not (state_dir / "ecmahost.db").exists()  # refused before the database


def test_a_state_folder_that_cannot_be_created_is_one_line(csv_config: Path) -> None:
    # Root ignores permissions, so the folder is made impossible another way: where
    # it should be created there is a file.
    (csv_config.parent / "blocker").write_text("not a folder")
    text = csv_config.read_text().replace('state_dir = "state"', 'state_dir = "blocker/state"')
    csv_config.write_text(text)
    assert_one_line(serve_once(csv_config), "blocker", "not a folder")


def test_a_database_from_a_newer_ecmahost_is_one_line(csv_config: Path, state_dir: Path) -> None:
    assert ecmahost(csv_config, "cache", "CSV").returncode == 0  # creates the database
    with sqlite3.connect(state_dir / "ecmahost.db") as db:
        db.execute("UPDATE alembic_version SET version_num = '9999'")
    assert_one_line(serve_once(csv_config), "newer ecmahost", "9999", "newest schema revision is")


def test_a_corrupt_database_is_one_line(csv_config: Path, state_dir: Path) -> None:
    state_dir.mkdir()
    database = state_dir / "ecmahost.db"
    database.write_bytes(os.urandom(16384))
    assert_one_line(serve_once(csv_config), str(database), "corrupt", "backup")


def test_verbose_shows_the_traceback(csv_config: Path, state_dir: Path) -> None:
    state_dir.mkdir()
    (state_dir / "ecmahost.db").write_bytes(b"garbage" * 4096)
    result = ecmahost(csv_config, "-v", "serve", "--listen", "127.0.0.1:0", timeout_s=QUICK_S)
    assert result.returncode == 2
    assert "Traceback" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("ecmahost: error: ")


def test_sigterm_during_the_start_up_import_stops_cleanly(
    csv_config: Path, state_dir: Path
) -> None:
    state_dir.mkdir()
    header = '"AzureObjectID";"IsActive";"DisplayName";"EmployeeId";"Title";"UserName";"Email"'
    with (state_dir / "InputFile.txt").open("w", encoding="utf-8") as out:
        out.write(header + "\n")
        for n in range(300_000):
            anchor = uuid.UUID(int=n + 1)
            out.write(f'"{anchor}";"True";"User {n}";"";"t";"u{n}@x.example";"u{n}@x.example"\n')
    command = [sys.executable, "-m", "ecmahost.engine.cli.main", "--config", str(csv_config)]
    process = subprocess.Popen(
        [*command, "serve", "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    for line in process.stderr:  # wait for the import to be under way
        if '"import.start"' in line:
            break
    time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    try:
        _, rest = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    assert process.returncode == 0, rest
    assert "Traceback" not in rest
    # The port opened before the import (which runs in the background): the stop is
    # the ordinary graceful one, and it does not wait for the import to end.
    assert '"msg": "stopped"' in rest
    assert '"import.finished"' not in rest  # it was stopped, not waited for
    # The space is intact: the next host starts and finds what it needs.
    assert ecmahost(csv_config, "cache", "CSV").returncode == 0


def test_a_graceful_stop_says_what_it_waits_for_and_keeps_what_was_acknowledged(
    csv_config: Path, server_factory: Callable[..., Server]
) -> None:
    server = server_factory(csv_config)
    anchor = str(uuid.uuid4())
    values = {"AzureObjectID": anchor, "UserName": "stop@x.example", "Title": "kept"}
    created = server.request("POST", "/Users", {EXT: values})
    assert created.status == 201
    assert server.process is not None
    process = server.process
    server.stop(signal.SIGTERM)
    assert process.returncode == 0
    logged = "".join(server.stderr_lines)
    assert "Traceback" not in logged
    assert "waiting up to" in logged
    assert "export workers of CSV" in logged
    assert '"msg": "stopped"' in logged
    again = server.start()
    assert again.request("GET", f"/Users/{created.body['id']}").status == 200
