"""The one-line messages of runtime errors, and the state folder's lock."""

from __future__ import annotations

import errno
import os
import socket
import sqlite3
from pathlib import Path

import pytest
from ecmahost.engine.cli import errors
from ecmahost.engine.cli.lock import LOCK_FILE_NAME, StateFolderBusyError, StateLock
from ecmahost.engine.cli.main import main
from ecmahost.engine.cli.serve import bind
from ecmahost.engine.config import Listen
from ecmahost.engine.space import database


def test_a_folder_without_write_permission_names_the_path_and_the_user(tmp_path: Path) -> None:
    denied = PermissionError(errno.EACCES, "Permission denied", str(tmp_path / LOCK_FILE_NAME))
    message = str(errors.state_dir_error(tmp_path, denied))
    assert str(tmp_path / LOCK_FILE_NAME) in message
    assert "not writable by user" in message
    assert f"uid {os.getuid()}" in message
    assert "\n" not in message


def test_a_read_only_database_names_the_file_and_the_user(tmp_path: Path) -> None:
    path = tmp_path / "ecmahost.db"
    sqlite3.connect(path).close()
    read_only = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    with pytest.raises(sqlite3.Error) as caught:
        read_only.execute("CREATE TABLE t (x)")
    read_only.close()
    problem = database._unusable(str(path), caught.value)
    assert problem is not None
    assert str(path) in str(problem)
    assert f"uid {os.getuid()}" in str(problem)


def test_an_unknown_sqlite_error_is_left_alone() -> None:
    assert database._unusable("x.db", sqlite3.IntegrityError("UNIQUE constraint failed")) is None
    assert database._unusable("x.db", ValueError("no")) is None


def test_one_lock_per_state_folder(tmp_path: Path) -> None:
    first = StateLock(tmp_path / "state")
    first.acquire()
    assert (tmp_path / "state" / LOCK_FILE_NAME).read_text().strip() == str(os.getpid())
    with pytest.raises(StateFolderBusyError, match=f"pid {os.getpid()}"):
        StateLock(tmp_path / "state").acquire()
    first.release()
    second = StateLock(tmp_path / "state")
    second.acquire()  # free again once released
    second.release()


def test_binding_a_port_in_use_is_one_line() -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        with pytest.raises(errors.RuntimeProblem, match="address already in use"):
            bind(Listen("127.0.0.1", port))


def test_bound_sockets_do_not_listen_yet() -> None:
    sockets = bind(Listen("127.0.0.1", 0))
    try:
        port = sockets[0].getsockname()[1]
        with socket.socket() as client, pytest.raises(ConnectionRefusedError):
            client.connect(("127.0.0.1", port))
    finally:
        for sock in sockets:
            sock.close()


def test_main_prints_an_os_error_of_the_state_folder_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "blocker").write_text("a file")
    config = tmp_path / "ecmahost.toml"
    config.write_text('[host]\ntls = "off"\nstate_dir = "blocker/state"\n', encoding="utf-8")
    assert main(["--config", str(config), "exports", "list"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert "blocker" in err


def test_an_os_error_elsewhere_keeps_its_traceback(tmp_path: Path) -> None:
    elsewhere = FileNotFoundError(errno.ENOENT, "No such file", "/etc/nothing-here")
    assert errors.explain(elsewhere, tmp_path / "state") is None
    inside = FileNotFoundError(errno.ENOENT, "No such file", str(tmp_path / "state" / "x"))
    assert errors.explain(inside, tmp_path / "state") is not None
