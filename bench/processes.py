"""The processes a benchmark runs: the real ``ecmahost`` command line, the bare
aiohttp app, and one-shot commands whose own wall time and peak RSS are measured."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.target import CONNECTOR, REPO, TOKEN, TOKEN_VARIABLE

START_TIMEOUT_S = 1800.0
"""How long a server may take to listen: ``serve`` imports the whole target first,
which takes minutes at a million rows."""


@dataclass(frozen=True, slots=True)
class Finished:
    """A command run to its end, with its own figures (not the benchmark's)."""

    command: list[str]
    returncode: int
    wall_s: float
    peak_rss_mb: float
    stdout: str
    stderr: str

    def check(self) -> Finished:
        """Self, or SystemExit with what the command said when it failed."""
        if self.returncode != 0:
            raise SystemExit(
                f"{' '.join(self.command)} exited with {self.returncode}:\n"
                f"{self.stdout}{self.stderr}"
            )
        return self


def environment() -> dict[str, str]:
    """This process's environment plus the connector token the configuration names."""
    return {**os.environ, TOKEN_VARIABLE: TOKEN}


def ecmahost(config: Path, *args: str) -> list[str]:
    """The command line of ``ecmahost --config CONFIG ARGS…``, run from source."""
    return [sys.executable, "-m", "ecmahost.engine.cli.main", "--config", str(config), *args]


def run_measured(command: list[str], cwd: Path) -> Finished:
    """Run ``command`` to its end. The wall time runs from spawning to reaping, and
    the peak RSS is the child's own (``wait4``'s rusage, KiB on Linux), not this
    process's nor other children's, which ``RUSAGE_CHILDREN`` would mix in."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, env=environment(), stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        wall_s = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        return Finished(
            command,
            process.returncode,
            wall_s,
            usage.ru_maxrss / 1024,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
        )


def cli_import(config: Path, rows: int) -> Finished:
    """``ecmahost import CSV`` over a target of ``rows`` new users, measured; exits
    unless the command reports every row seen and added."""
    finished = run_measured(ecmahost(config, "import", CONNECTOR), config.parent).check()
    match = re.search(r"import of \S+: (\d+) records \(([^)]*)\)", finished.stdout)
    counts = dict(re.findall(r"(\w+) (\d+)", match.group(2))) if match else {}
    if not match or int(match.group(1)) != rows or int(counts.get("added", -1)) != rows:
        raise SystemExit(f"the import did not add all {rows:,} rows:\n{finished.stdout}")
    return finished


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start(command: list[str], port: int, cwd: Path) -> subprocess.Popen[bytes]:
    """Start a server and return once it accepts connections on ``port``."""
    process = subprocess.Popen(command, cwd=cwd, env=environment(), stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{' '.join(command)} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return process
        except OSError:
            time.sleep(0.2)
    stop(process)
    raise SystemExit(f"{' '.join(command)} did not listen on {port} in {START_TIMEOUT_S:.0f} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass(frozen=True, slots=True)
class Served:
    base_url: str
    """The connector's SCIM base URL."""
    startup_s: float
    """From spawning to listening, the start-up import included."""
    pid: int
    """The server's process, whose CPU time a benchmark reads from /proc."""


@contextmanager
def serving(config: Path) -> Iterator[Served]:
    """``ecmahost serve`` over ``config`` on a free port, without TLS."""
    port = free_port()
    started = time.perf_counter()
    command = ecmahost(config, "serve", "--listen", f"127.0.0.1:{port}", "--tls", "off")
    process = start(command, port, config.parent)
    base_url = f"http://127.0.0.1:{port}/ecma2host_{CONNECTOR}/scim"
    try:
        _wait_filled(base_url, process)
        yield Served(base_url, time.perf_counter() - started, process.pid)
    finally:
        stop(process)


def _wait_filled(base_url: str, process: subprocess.Popen[bytes]) -> None:
    """Wait for the start-up import, which runs after the port opened: until it ends
    the connector answers 503."""
    request = urllib.request.Request(
        base_url + "/Users?count=0", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                if response.status == 200:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code != 503:
                raise
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the connector at {base_url} did not finish its start-up import")


@contextmanager
def bare_app() -> Iterator[str]:
    """The reference server (bench/bare_app.py); yields a URL it answers."""
    port = free_port()
    process = start([sys.executable, "-m", "bench.bare_app", str(port)], port, REPO)
    try:
        yield f"http://127.0.0.1:{port}/Users"
    finally:
        stop(process)
