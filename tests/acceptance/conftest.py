"""The real server as a subprocess, reached over loopback HTTP(S)."""

from __future__ import annotations

import csv
import http.client
import json
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from tests.conftest import TOKEN, csv_connector_toml

START_TIMEOUT_S = 30.0


def ecmahost(config: Path, *args: str, env: dict[str, str] | None = None, timeout_s: float = 60):
    """Run one ``ecmahost`` command to completion."""
    return subprocess.run(
        [sys.executable, "-m", "ecmahost.engine.cli.main", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env={**os.environ, **(env or {})},
        check=False,
    )


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: Any


@dataclass
class Server:
    """``ecmahost serve`` on a free port; ``url(name)`` is a connector's SCIM base URL."""

    config: Path
    extra_args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[str] | None = None
    urls: dict[str, str] = field(default_factory=dict)
    stderr_lines: list[str] = field(default_factory=list)
    ssl_context: ssl.SSLContext | None = None
    wait_ready: bool = True
    """``start`` returns once each connector answers reads (its start-up import ran),
    as the host did before it served first; False returns as soon as the port opens."""
    prefix: tuple[str, ...] = ()
    """Put before the command, e.g. to run the server as another user."""
    preexec_fn: Callable[[], None] | None = None
    """Run in the server's process before it starts, e.g. to lower its limits."""
    _drainer: threading.Thread | None = None

    def start(self) -> Server:
        self.process = subprocess.Popen(
            [
                *self.prefix,
                sys.executable,
                "-m",
                "ecmahost.engine.cli.main",
                "--config",
                str(self.config),
                "serve",
                "--listen",
                "127.0.0.1:0",
                *self.extra_args,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **self.env},
            preexec_fn=self.preexec_fn,
        )
        self._drainer = threading.Thread(target=self._drain_stderr, daemon=True)
        self._drainer.start()
        self._read_urls()
        if self.wait_ready:
            self._await_ready()
        return self

    def _await_ready(self) -> None:
        """Until no connector answers 503 (importing, or its target not up yet); a
        connector with another token (401) is not waited for."""
        deadline = time.monotonic() + START_TIMEOUT_S
        verify = self.ssl_context
        if self.ssl_context is None:  # a self-signed certificate the test checks later
            self.ssl_context = ssl._create_unverified_context()
        try:
            for name in self.urls:
                while self.request("GET", "/ServiceProviderConfig", name=name).status == 503:
                    assert time.monotonic() < deadline, f"connector {name} not ready in time"
                    time.sleep(0.05)
        finally:
            self.ssl_context = verify

    def _drain_stderr(self) -> None:
        assert self.process and self.process.stderr
        for line in self.process.stderr:
            self.stderr_lines.append(line)

    def _read_urls(self) -> None:
        assert self.process and self.process.stdout
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                raise AssertionError(f"server exited: {''.join(self.stderr_lines)[-2000:]}")
            if line.startswith("ecmahost: serving connector "):
                name, _, url = line.removeprefix("ecmahost: serving connector ").partition(" at ")
                self.urls[name] = url.strip()
                if set(self.urls) >= self._expected():
                    return
        raise AssertionError("server did not start in time")

    def _expected(self) -> set[str]:
        import tomllib

        return set(tomllib.loads(self.config.read_text())["connectors"])

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self._drainer is not None:
            self._drainer.join(timeout=5)
        for stream in (self.process.stdout, self.process.stderr):
            if stream:
                stream.close()
        self.process = None
        self.urls = {}

    def restart(self) -> Server:
        self.stop()
        return self.start()

    def url(self, name: str = "CSV") -> str:
        return self.urls[name]

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        name: str = "CSV",
        token: str | None = TOKEN,
        raw: bytes | None = None,
        base: str | None = None,
    ) -> Response:
        """``path`` is relative to the connector's SCIM base (``/Users?filter=…``)."""
        url = urlsplit((base or self.url(name)) + path)
        connection: http.client.HTTPConnection
        if url.scheme == "https":
            connection = http.client.HTTPSConnection(
                url.netloc, context=self.ssl_context, timeout=60
            )
        else:
            connection = http.client.HTTPConnection(url.netloc, timeout=60)
        headers = {"Content-Type": "application/scim+json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        target = url.path + (f"?{url.query}" if url.query else "")
        try:  # closed on errors too: a host killed mid-request must not leak the socket
            connection.request(method, target, body=data, headers=headers)
            response = connection.getresponse()
            payload = response.read()
        finally:
            connection.close()
        parsed = json.loads(payload) if payload else None
        return Response(response.status, {k.lower(): v for k, v in response.getheaders()}, parsed)


def wait_until(predicate: Callable[[], Any], timeout_s: float = 10.0) -> Any:
    """Poll ``predicate`` until it is truthy; fail once ``timeout_s`` has passed."""
    deadline = time.monotonic() + timeout_s
    while not (result := predicate()):
        assert time.monotonic() < deadline, f"condition not met within {timeout_s:g} s"
        time.sleep(0.05)
    return result


def filter_query(expression: str) -> str:
    """A filter as Entra sends it: spaces as ``+``."""
    return "?filter=" + quote(expression, safe="").replace("%20", "+")


def read_csv(path: Path) -> dict[str, dict[str, str]]:
    """The CSV file's rows by anchor, as the file holds them (strings)."""
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter=";"))
    by_anchor = {row["AzureObjectID"]: row for row in rows}
    assert len(by_anchor) == len(rows), "a row is duplicated"
    return by_anchor


@pytest.fixture
def csv_config(write_config: Callable[..., Path]) -> Path:
    return write_config(csv_connector_toml())


_SERVERS = pytest.StashKey[list[Server]]()
LOG_TAIL = 8000
"""How much of each server's log a failed test's report shows (its last characters)."""


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A failed test's report shows the log of each server it started: a failure seen
    only in CI can then be read from CI's output."""
    report = yield
    if report.when == "call" and report.failed:
        for number, started in enumerate(item.stash.get(_SERVERS, []), 1):
            log = "".join(started.stderr_lines)[-LOG_TAIL:]
            report.sections.append((f"log of server {number} ({started.config})", log))
    return report


@pytest.fixture
def server_factory(request: pytest.FixtureRequest) -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []
    request.node.stash[_SERVERS] = servers

    def make(
        config: Path,
        *extra_args: str,
        env: dict[str, str] | None = None,
        wait_ready: bool = True,
        prefix: tuple[str, ...] = (),
        preexec_fn: Callable[[], None] | None = None,
    ) -> Server:
        server = Server(
            config,
            tuple(extra_args),
            env or {},
            wait_ready=wait_ready,
            prefix=prefix,
            preexec_fn=preexec_fn,
        )
        servers.append(server)
        return server.start()

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def server(csv_config: Path, server_factory: Callable[..., Server]) -> Server:
    """The demo CSV connector served over plain HTTP."""
    return server_factory(csv_config)
