"""A throwaway PostgreSQL server for the tests, started once per session.

``initdb`` makes a cluster in a fresh temporary folder that belongs to an unprivileged
user (PostgreSQL refuses to run as root); the server listens on a free loopback port,
with its Unix socket inside that folder, and a random password guards TCP logins.
The folder is removed when the session ends.

Both the SQL connector's tests and ``tests/acceptance`` use it, through one
``SharedServer``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.connectors.sql.shared_server import SharedServer
from tests.helpers import unavailable

__all__ = ["PostgresServer", "free_port", "postgres_fixture", "start_server"]

SUPERUSER = "postgres"
START_TIMEOUT_S = 60


def _bin_dir() -> Path | None:
    """The folder holding initdb and pg_ctl: on PATH, else Debian's newest version."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).resolve().parent  # Debian links only a few tools into PATH
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return versions[-1].parent if versions else None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PostgresServer:
    """One cluster in ``root``; ``stop()`` and ``start()`` keep its port and data."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="ecmahost-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.password = secrets.token_urlsafe(18)
        # Root may not run PostgreSQL: hand the folder to the postgres system user.
        self._owner = pwd.getpwnam(SUPERUSER) if os.geteuid() == 0 else None
        if self._owner is not None:
            os.chown(self.root, self._owner.pw_uid, self._owner.pw_gid)

    def url(self, database: str, driver: str = "postgresql+asyncpg") -> str:
        """A URL for ``database`` over loopback TCP, password included."""
        return f"{driver}://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def dsn(self, database: str) -> str:
        """The same, for asyncpg itself."""
        return self.url(database, "postgresql")

    def init(self) -> None:
        password_file = self.root / "password"
        password_file.write_text(self.password)
        if self._owner is not None:
            os.chown(password_file, self._owner.pw_uid, self._owner.pw_gid)
        self._run(
            "initdb",
            "--pgdata",
            str(self.data),
            "--username",
            SUPERUSER,
            "--pwfile",
            str(password_file),
            "--auth-local=trust",  # the socket lives in our private folder
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        password_file.unlink()

    def start(self) -> None:
        # A disposable cluster: durability settings off, for speed.
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        log = self.root / "server.log"
        try:
            self._run(
                "pg_ctl",
                "start",
                "--wait",
                "-t",
                str(START_TIMEOUT_S),
                "-D",
                str(self.data),
                "-l",
                str(log),
                "-o",
                options,
            )
        except subprocess.CalledProcessError:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"PostgreSQL did not start:\n{tail}") from None

    def stop(self) -> None:
        self._run("pg_ctl", "stop", "--wait", "-m", "fast", "-D", str(self.data))

    def create_database(self, name: str) -> str:
        """Create ``name`` (a plain identifier); returns its asyncpg-dialect URL."""
        self._run("createdb", "-h", str(self.root), "-p", str(self.port), "-U", SUPERUSER, name)
        return self.url(name)

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin_dir / program), *args]
        if self._owner is not None:
            command = ["runuser", "-u", SUPERUSER, "--", *command]
        subprocess.run(command, check=True, capture_output=True, text=True, cwd=self.root)


def start_server() -> PostgresServer:
    """A new server of its own, for a test that stops and starts it."""
    bin_dir = _bin_dir()
    if bin_dir is None:
        unavailable("PostgreSQL is not installed (no initdb/pg_ctl found)")
    server = PostgresServer(bin_dir)
    try:
        server.init()
        server.start()
    except BaseException:
        server.destroy()
        raise
    return server


_shared = SharedServer(start_server, PostgresServer.destroy)


@pytest.fixture(scope="session", name="postgres")
def postgres_fixture() -> Iterator[PostgresServer]:
    """The session's PostgreSQL server (skipped, or failed under CI, when not installed)."""
    with _shared.use() as server:
        yield server
