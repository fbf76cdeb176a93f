"""The load generator: ``concurrency`` clients, each on its own keep-alive connection
taking the next request of a phase until none is left. It reports its own CPU share, so a
result limited by the generator rather than the server shows as such."""

from __future__ import annotations

import asyncio
import json
import re
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, quote, urlsplit

__all__ = ["PhaseResult", "Request", "run_phase"]


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    url: str
    json: Any = None
    expect: tuple[int, ...] = (200,)


@dataclass(frozen=True, slots=True)
class PhaseResult:
    name: str
    requests: int
    wall_s: float
    latencies_s: tuple[float, ...]
    generator_cpu_share: float
    """CPU seconds the generator spent per wall second (1.0 = one core)."""

    @property
    def rate(self) -> float:
        return self.requests / self.wall_s if self.wall_s else 0.0

    def percentile_ms(self, q: float) -> float:
        ordered = sorted(self.latencies_s)
        return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    @property
    def p50_ms(self) -> float:
        return 1000 * statistics.median(self.latencies_s)


async def run_phase(
    name: str,
    requests: Iterator[Request],
    concurrency: int,
    headers: dict[str, str] | None = None,
    on_response: Callable[[Request, Any], None] | None = None,
) -> PhaseResult:
    """Send every request of ``requests`` over ``concurrency`` keep-alive connections;
    a status other than the request's ``expect`` stops the phase with an error."""
    latencies: list[float] = []
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())

    async def client() -> None:
        connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            for request in requests:
                url = urlsplit(request.url)
                if connection is None:
                    connection = await asyncio.open_connection(url.hostname, url.port)
                reader, writer = connection
                started = time.perf_counter()
                writer.write(_encode(request, url, extra))
                status, body = await _response(reader)
                latencies.append(time.perf_counter() - started)
                if status not in request.expect:
                    raise RuntimeError(f"{request.method} {request.url}: {status} {body[:300]!r}")
                if on_response is not None:
                    on_response(request, body)
        finally:
            if connection is not None:
                connection[1].close()

    cpu_before, wall_before = time.process_time(), time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    wall_s = time.perf_counter() - wall_before
    cpu_s = time.process_time() - cpu_before
    return PhaseResult(
        name, len(latencies), wall_s, tuple(latencies), cpu_s / wall_s if wall_s else 0.0
    )


# A minimal HTTP/1.1 client: aiohttp's own spent about twice the CPU of the bare
# server it drove, so on two cores it, not the server, set the bare app's rate.


def _encode(request: Request, url: SplitResult, extra: str) -> bytes:
    target = quote(url.path + (f"?{url.query}" if url.query else ""), safe=_SAFE)
    body = b"" if request.json is None else json.dumps(request.json).encode()
    kind = "Content-Type: application/scim+json\r\n" if body else ""
    head = (
        f"{request.method} {target} HTTP/1.1\r\nHost: {url.netloc}\r\n{extra}{kind}"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """The status and body of the next response (Content-Length or chunked)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = _CONTENT_LENGTH.search(head)
    if length is not None:
        return status, await reader.readexactly(int(length.group(1)))
    if _CHUNKED.search(head) is None:
        return status, b""
    body = bytearray()
    while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
        body += await reader.readexactly(size)
        await reader.readexactly(2)
    await reader.readuntil(b"\r\n")  # the (empty) trailer
    return status, bytes(body)


_SAFE = "/?&=+:@,;%"
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)
_CHUNKED = re.compile(rb"\r\ntransfer-encoding:\s*chunked", re.IGNORECASE)
