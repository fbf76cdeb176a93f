"""The server's limits, against the real server over loopback: slow and silent
clients are cut off in time, extra connections are refused at once, parser errors
quote nothing back, and none of it floods the log or slows the real client down."""

from __future__ import annotations

import contextlib
import http.client
import random
import re
import resource
import select
import socket
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.acceptance.conftest import Server, wait_until
from tests.conftest import TOKEN, csv_connector_toml

SCIM = "/ecma2host_CSV/scim"


def _host_toml(**settings: float) -> str:
    return "\n".join(f"{key} = {value}" for key, value in settings.items())


def _address(server: Server) -> tuple[str, int]:
    url = urlsplit(server.url())
    assert url.hostname is not None and url.port is not None
    return url.hostname, url.port


def _get(path: str, token: str = TOKEN) -> bytes:
    return (
        f"GET {SCIM}{path} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {token}\r\n\r\n"
    ).encode()


def _read_until_closed(sock: socket.socket, timeout_s: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and when it closed (seconds from
    now); fails if it is still open after ``timeout_s``."""
    started = time.monotonic()
    sock.settimeout(timeout_s)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    except TimeoutError:
        pytest.fail(f"still open after {timeout_s} s; received {received[:200]!r}")
    return received, time.monotonic() - started


def _admitted(address: tuple[str, int]) -> socket.socket:
    """A connection the server took: the readiness check's last connection may hold
    its slot a moment after the client closed it, and a connection refused then is
    closed at once; it is opened again."""
    for _ in range(50):
        sock = socket.create_connection(address)
        time.sleep(0.05)
        if _still_open(sock):
            return sock
        sock.close()
    raise AssertionError("the server refused every connection")


def _still_open(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1) != b""
    except BlockingIOError:
        return True
    finally:
        sock.setblocking(True)


def _log_size(server: Server) -> int:
    return sum(len(line.encode()) for line in server.stderr_lines)


def _open_files(limit: int) -> Callable[[], None]:
    def lower() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    return lower


# -- a flood of idle and slow clients ------------------------------------------------

HEADER_TIMEOUT_S = 2.0
MARGIN_S = 1.5
"""Room for a loaded machine between a deadline and the close the client sees."""


class _Flood:
    """500 silent and 200 slow-header sockets, opened in batches, tracked until the
    server closed each one."""

    def __init__(self, address: tuple[str, int], silent: int = 500, slow: int = 200) -> None:
        self.address = address
        self.kinds = ["silent"] * silent + ["slow"] * slow
        random.Random(0).shuffle(self.kinds)
        self.opened_at: dict[socket.socket, float] = {}
        self.kind_of: dict[socket.socket, str] = {}
        self.open: set[socket.socket] = set()
        self.lifetimes: list[tuple[str, float]] = []
        self._next_trickle = 0.0

    @property
    def done(self) -> bool:
        return not self.kinds and not self.open

    def open_batch(self, size: int = 25) -> None:
        for kind in self.kinds[:size]:
            sock = socket.create_connection(self.address, timeout=5)
            self.opened_at[sock] = time.monotonic()
            self.kind_of[sock] = kind
            self.open.add(sock)
        del self.kinds[:size]

    def trickle(self) -> None:
        """Each slow socket sends one more header line a second, never the last one."""
        if time.monotonic() < self._next_trickle:
            return
        self._next_trickle = time.monotonic() + 1.0
        for sock in self.open:
            if self.kind_of[sock] == "slow":
                line = b"GET / HTTP/1.1\r\n" if self._first(sock) else b"X-Slow: 1\r\n"
                with contextlib.suppress(OSError):  # closed by the server: seen by reap
                    sock.send(line)

    def _first(self, sock: socket.socket) -> bool:
        return time.monotonic() - self.opened_at[sock] < 1.0

    def reap(self) -> None:
        readable, _, _ = select.select(list(self.open), [], [], 0)
        for sock in readable:
            try:
                data = sock.recv(4096)
            except ConnectionResetError:
                data = b""
            if data:
                continue  # an answer: the close comes next
            self.lifetimes.append((self.kind_of[sock], time.monotonic() - self.opened_at[sock]))
            self.open.discard(sock)
            sock.close()

    def close(self) -> None:
        for sock in self.opened_at:
            sock.close()


def test_a_flood_of_silent_and_slow_clients_neither_slows_requests_nor_floods_the_log(
    write_config: Callable[..., Path], server_factory: Callable[..., Server]
) -> None:
    # An open-files limit of 256, as a small service unit might have, and room for
    # 128 connections: 128 plus the host's own descriptors (FD_HEADROOM, 64) fit under
    # it, so no accept() ever fails however many clients connect.
    config = write_config(
        csv_connector_toml(),
        _host_toml(header_timeout_s=HEADER_TIMEOUT_S, max_connections=128),
    )
    server = server_factory(config, preexec_fn=_open_files(256))
    client = http.client.HTTPConnection(*_address(server), timeout=10)
    latencies_s: list[float] = []

    def timed_get() -> None:
        started = time.perf_counter()
        client.request("GET", f"{SCIM}/Users?count=5", headers={"Authorization": f"Bearer {TOKEN}"})
        response = client.getresponse()
        response.read()
        latencies_s.append(time.perf_counter() - started)
        assert response.status == 200

    timed_get()  # the client's keep-alive connection is open before the flood
    log_before = _log_size(server)
    flood = _Flood(_address(server))
    deadline = time.monotonic() + 20 * HEADER_TIMEOUT_S
    try:
        # Until the server has closed every attacking socket: a request every 25 ms.
        while not flood.done:
            assert time.monotonic() < deadline, f"{len(flood.open)} sockets still open"
            flood.open_batch()
            flood.trickle()
            flood.reap()
            timed_get()
            time.sleep(0.025)
        timed_get()
    finally:
        flood.close()
        client.close()

    latencies_s.sort()
    p99_s = latencies_s[int(len(latencies_s) * 0.99) - 1]
    assert p99_s < 0.1, f"p99 {p99_s * 1000:.0f} ms over {len(latencies_s)} requests"
    longest = max(lifetime for _, lifetime in flood.lifetimes)
    assert longest < HEADER_TIMEOUT_S + MARGIN_S
    # Most were held to the header timeout (not merely refused), slow ones included.
    held = [kind for kind, lifetime in flood.lifetimes if lifetime > HEADER_TIMEOUT_S - 0.2]
    assert held.count("silent") > 30 and held.count("slow") > 10
    growth = _log_size(server) - log_before
    assert growth < 100_000, f"the log grew by {growth} bytes"
    assert not [line for line in server.stderr_lines if '"level": "error"' in line]


# -- one limit at a time ------------------------------------------------------------------


@pytest.fixture
def strict_server(
    write_config: Callable[..., Path], server_factory: Callable[..., Server]
) -> Server:
    config = write_config(
        csv_connector_toml(),
        _host_toml(header_timeout_s=1, body_timeout_s=1, keepalive_timeout_s=3, max_connections=8),
    )
    return server_factory(config)


def test_an_over_long_header_gets_a_plain_400_that_quotes_nothing(strict_server: Server) -> None:
    secret = "sender-secret-0123456789"
    with socket.create_connection(_address(strict_server)) as sock:
        sock.sendall(_get("/Users", token=secret + "x" * 9000))
        answer, _ = _read_until_closed(sock, 5)

    assert answer.startswith(b"HTTP/1.0 400") or answer.startswith(b"HTTP/1.1 400")
    _, _, body = answer.partition(b"\r\n\r\n")
    assert body == b"bad request\n"
    assert b"sender-secret" not in answer and b"xxxx" not in answer
    wait_until(lambda: "http.bad_request" in "".join(strict_server.stderr_lines))
    log = "".join(strict_server.stderr_lines)
    assert "sender-secret" not in log and "xxxx" not in log


def test_a_garbled_request_line_gets_a_plain_400_that_quotes_nothing(
    strict_server: Server,
) -> None:
    with socket.create_connection(_address(strict_server)) as sock:
        sock.sendall(b"GET /sender-secret-987 HTTP/1.1 and more\r\nHost: x\r\n\r\n")
        answer, _ = _read_until_closed(sock, 5)

    assert answer.split(b" ", 2)[1] == b"400"
    assert answer.endswith(b"\r\n\r\nbad request\n")
    assert b"sender-secret" not in answer
    assert "sender-secret" not in "".join(strict_server.stderr_lines)


def test_a_body_that_stalls_gets_408_and_the_connection_closes(strict_server: Server) -> None:
    with socket.create_connection(_address(strict_server)) as sock:
        sock.sendall(
            f"POST {SCIM}/Users HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {TOKEN}\r\n"
            "Content-Type: application/scim+json\r\nContent-Length: 200\r\n\r\n"
            '{"schemas": '.encode()
        )
        answer, closed_after_s = _read_until_closed(sock, 1 + MARGIN_S + 2)

    assert answer.split(b" ", 2)[1] == b"408"
    assert 0.8 < closed_after_s < 1 + MARGIN_S


def test_an_idle_keep_alive_connection_closes_after_keepalive_timeout(
    strict_server: Server,
) -> None:
    with socket.create_connection(_address(strict_server)) as sock:
        sock.sendall(_get("/ServiceProviderConfig"))
        sock.settimeout(5)
        assert sock.recv(12) == b"HTTP/1.1 200"
        _, closed_after_s = _read_until_closed(sock, 3 + MARGIN_S + 2)

    assert 2.8 < closed_after_s < 3 + MARGIN_S, "keepalive_timeout_s is 3"


def test_a_kept_alive_connection_has_header_timeout_s_from_the_next_requests_first_byte(
    strict_server: Server,
) -> None:
    with socket.create_connection(_address(strict_server)) as sock:
        sock.sendall(_get("/ServiceProviderConfig"))
        sock.settimeout(5)
        assert sock.recv(12) == b"HTTP/1.1 200"
        time.sleep(0.2)  # idle, well within keep-alive
        sock.sendall(f"GET {SCIM}/Users HTTP/1.1\r\n".encode())
        _, closed_after_s = _read_until_closed(sock, 1 + MARGIN_S + 2)

    # 1 s from the first byte (the idle timer alone would close it 2.8 s after it).
    assert 0.8 < closed_after_s < 1 + MARGIN_S


def test_connections_beyond_max_connections_are_closed_at_once_with_one_log_line(
    write_config: Callable[..., Path], server_factory: Callable[..., Server]
) -> None:
    # A header timeout well above the margin a loaded machine needs: "at once" must
    # still be told apart from "at the header timeout".
    header_timeout_s = 2 * MARGIN_S + 1
    config = write_config(
        csv_connector_toml(), _host_toml(header_timeout_s=header_timeout_s, max_connections=8)
    )
    server = server_factory(config)
    address = _address(server)
    held = [_admitted(address) for _ in range(8)]
    extra: list[socket.socket] = []
    try:
        extra = [socket.create_connection(address) for _ in range(20)]
        for sock in extra:
            _, closed_after_s = _read_until_closed(sock, MARGIN_S)
            assert closed_after_s < MARGIN_S
        # Once the eight are cut off (header timeout), a client is served again.
        for sock in held:
            _read_until_closed(sock, header_timeout_s + MARGIN_S)
        response = server.request("GET", "/ServiceProviderConfig")
        assert response.status == 200
    finally:
        for sock in held + extra:
            sock.close()
    refused = [line for line in server.stderr_lines if "http.refused" in line]
    assert len(refused) == 1, refused


def test_a_tls_handshake_that_never_comes_is_cut_off_at_header_timeout(
    write_config: Callable[..., Path], server_factory: Callable[..., Server]
) -> None:
    config = write_config(csv_connector_toml(), _host_toml(header_timeout_s=1))
    server = server_factory(config, "--tls", "self-signed")
    with socket.create_connection(_address(server)) as sock:
        sock.sendall(b"\x16\x03\x01")  # the start of a ClientHello, never finished
        _, closed_after_s = _read_until_closed(sock, 1 + MARGIN_S + 2)
    assert closed_after_s < 1 + MARGIN_S
    # The server still serves TLS.
    context = ssl._create_unverified_context()
    connection = http.client.HTTPSConnection(*_address(server), context=context, timeout=10)
    connection.request(
        "GET", f"{SCIM}/ServiceProviderConfig", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert connection.getresponse().status == 200
    connection.close()


# -- the open-files limit -----------------------------------------------------------------


def _soft_open_files(server: Server) -> int:
    assert server.process is not None
    limits = Path(f"/proc/{server.process.pid}/limits").read_text()
    found = re.search(r"Max open files\s+(\d+)", limits)
    assert found is not None
    return int(found.group(1))


def test_the_soft_open_files_limit_is_raised_to_fit_max_connections(
    write_config: Callable[..., Path], server_factory: Callable[..., Server]
) -> None:
    def soft_256() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 4096))

    config = write_config(csv_connector_toml(), _host_toml(max_connections=1000))
    server = server_factory(config, preexec_fn=soft_256)
    assert _soft_open_files(server) == 1000 + 64
    assert not [line for line in server.stderr_lines if "does not fit" in line]


def test_max_connections_over_the_hard_limit_is_one_warning(
    write_config: Callable[..., Path], server_factory: Callable[..., Server]
) -> None:
    config = write_config(csv_connector_toml(), _host_toml(max_connections=1000))
    server = server_factory(config, preexec_fn=_open_files(256))
    assert _soft_open_files(server) == 256
    warned = [line for line in server.stderr_lines if "does not fit" in line]
    assert len(warned) == 1 and "LimitNOFILE" in warned[0]


def test_accept_errors_pause_accepting_and_are_logged_once_per_interval(
    write_config: Callable[..., Path], server_factory: Callable[..., Server]
) -> None:
    # The host itself holds about 20 descriptors: at 40, about 20 connections fit,
    # far fewer than max_connections, so accept() fails with EMFILE (a misconfiguration
    # the start-up warning names).
    config = write_config(
        csv_connector_toml(), _host_toml(header_timeout_s=1, max_connections=1000)
    )
    server = server_factory(config, preexec_fn=_open_files(40))
    flood = _Flood(_address(server), silent=60, slow=0)
    flood.open_batch(60)
    deadline = time.monotonic() + 30
    try:
        while not flood.done:  # each round of ~20 is cut off by the header timeout
            assert time.monotonic() < deadline, f"{len(flood.open)} sockets still open"
            flood.reap()
            time.sleep(0.05)
    finally:
        flood.close()

    assert _request(server).status == 200
    failed = [line for line in server.stderr_lines if "http.accept_error" in line]
    assert len(failed) == 1, failed
    assert "Too many open files" in failed[0]


def _request(server: Server) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection(*_address(server), timeout=10)
    try:
        connection.request(
            "GET", f"{SCIM}/ServiceProviderConfig", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        response = connection.getresponse()
        response.read()
        return response
    finally:
        connection.close()
