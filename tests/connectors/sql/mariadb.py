"""A throwaway MariaDB server for the tests, started once per session.

``mariadb-install-db`` makes a data folder in a fresh temporary folder; ``mariadbd``
serves it on a free loopback port and a Unix socket inside that folder. The tests log
in over TCP as a created user with a random password, as a deployment would. The
server's character set is utf8mb4 (MariaDB 10.x still defaults to latin1, which cannot
hold 4-byte characters); its collation is that set's default, case-insensitive one,
the one most real tables have. The folder is removed when the session ends.

Shared by reference count like the PostgreSQL server (see ``postgres``).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.connectors.sql.postgres import free_port
from tests.connectors.sql.shared_server import SharedServer
from tests.helpers import unavailable

__all__ = ["MariadbServer", "mariadb_fixture"]

USER = "ecmahost"
START_TIMEOUT_S = 60


class MariadbServer:
    """One data folder in ``root``; ``stop()`` and ``start()`` keep its port and data."""

    def __init__(self, server: Path, install_db: Path, client: Path) -> None:
        self._server, self._install_db, self._client = server, install_db, client
        self.root = Path(tempfile.mkdtemp(prefix="ecmahost-mariadb-"))
        self.data = self.root / "data"
        self.socket = self.root / "mariadb.sock"
        self.port = free_port()
        self.password = secrets.token_urlsafe(18)
        self._process: subprocess.Popen[bytes] | None = None

    def url(self, database: str, driver: str = "mariadb+aiomysql") -> str:
        """A URL for ``database`` over loopback TCP, password included."""
        return f"{driver}://{USER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def init(self) -> None:
        self._run(
            str(self._install_db),
            "--no-defaults",
            f"--datadir={self.data}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            *self._as_root(),
        )

    def start(self) -> None:
        log = self.root / "server.log"
        self._process = subprocess.Popen(
            [
                str(self._server),
                "--no-defaults",
                f"--datadir={self.data}",
                f"--socket={self.socket}",
                f"--port={self.port}",
                "--bind-address=127.0.0.1",
                f"--pid-file={self.root / 'mariadb.pid'}",
                f"--log-error={log}",
                "--character-set-server=utf8mb4",
                "--skip-log-bin",
                # A disposable server: durability off, memory small, for speed.
                "--innodb-flush-log-at-trx-commit=0",
                "--innodb-buffer-pool-size=32M",
                *self._as_root(),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait_ready(log)

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=START_TIMEOUT_S)
            self._process = None

    def create_user(self) -> None:
        self.sql(
            f"CREATE USER '{USER}'@'127.0.0.1' IDENTIFIED BY '{self.password}';"
            f"GRANT ALL ON *.* TO '{USER}'@'127.0.0.1'"
        )

    def create_database(self, name: str) -> str:
        """Create ``name`` (a plain identifier); returns its aiomysql-dialect URL."""
        self.sql(f"CREATE DATABASE {name}")
        return self.url(name)

    def sql(self, script: str) -> None:
        """Run ``script`` as root over the socket."""
        self._run(
            str(self._client), "--no-defaults", f"--socket={self.socket}", "-uroot", "-e", script
        )

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError):
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def _wait_ready(self, log: Path) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                break
            with contextlib.suppress(subprocess.CalledProcessError):
                self.sql("SELECT 1")
                return
            time.sleep(0.1)
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        raise RuntimeError(f"MariaDB did not start:\n{tail}")

    @staticmethod
    def _as_root() -> list[str]:
        # mariadbd refuses to run as root unless told so; the folder is root's own.
        return ["--user=root"] if os.geteuid() == 0 else []

    def _run(self, *command: str) -> None:
        subprocess.run(command, check=True, capture_output=True, cwd=self.root)


def _programs() -> tuple[Path, Path, Path] | None:
    """mariadbd (Debian keeps it in /usr/sbin), mariadb-install-db and the client."""
    server = shutil.which("mariadbd") or shutil.which("mariadbd", path="/usr/sbin:/usr/local/sbin")
    install_db, client = shutil.which("mariadb-install-db"), shutil.which("mariadb")
    if server is None or install_db is None or client is None:
        return None
    return Path(server), Path(install_db), Path(client)


def _start() -> MariadbServer:
    programs = _programs()
    if programs is None:
        unavailable("MariaDB is not installed (no mariadbd/mariadb-install-db found)")
    server = MariadbServer(*programs)
    try:
        server.init()
        server.start()
        server.create_user()
    except BaseException:
        server.destroy()
        raise
    return server


_shared = SharedServer(_start, MariadbServer.destroy)


@pytest.fixture(scope="session", name="mariadb")
def mariadb_fixture() -> Iterator[MariadbServer]:
    """The session's MariaDB server (skipped, or failed under CI, when not installed)."""
    with _shared.use() as server:
        yield server
