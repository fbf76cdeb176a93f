"""The CSV connector's file access: worker threads (what it does) against aiofiles.

Two jobs, each run both ways over the same generated file of ``--rows`` users, best of
``--repeat`` runs, with the worst stall of the event loop meanwhile (a 1 ms ticker):

- a full import: ``CsvConnector.full_import()`` (a worker thread reads and parses a
  chunk of rows per hop) against the file read through aiofiles in 1 MiB chunks and
  parsed by the same code, on the event loop or in a worker thread per chunk;
- the write of a rewrite's temporary file: ``atomic_file.replacing`` filled by the csv
  module in one worker thread, against rows formatted on the event loop and written
  through aiofiles in 1 MiB chunks, fsync'ed and renamed the same way.

Both sides of each job must produce the same records or the same bytes.
"""

from __future__ import annotations

import asyncio
import codecs
import csv
import hashlib
import io
import logging
import os
import statistics
import tempfile
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiofiles
import aiofiles.os
from ecmahost.connectors.base import Record, Schema
from ecmahost.connectors.csv import atomic_file
from ecmahost.connectors.csv.connector import CsvConnector, CsvSettings
from ecmahost.connectors.csv.delimited import KEEP_BYTES, Cursor, Table

from bench.report import Sizes, emit, figures_table
from bench.target import COLUMNS, CSV_FORMAT, REPO, csv_row, write_csv

CHUNK_BYTES = 1 << 20
CHUNK_ROWS = 1000
FORMAT: dict[str, Any] = {**CSV_FORMAT, "quotechar": '"', "doublequote": True}
log = logging.getLogger("bench.csv_file_io")


class _Lines:
    """A line source csv.reader keeps reading from as chunks arrive: each chunk ends
    on a record boundary, so the reader never stops inside a record."""

    encoding = "utf-8"

    def __init__(self) -> None:
        self._lines: deque[str] = deque()

    def feed(self, text: str) -> None:
        self._lines.extend(io.StringIO(text, newline=""))

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        if not self._lines:
            raise StopIteration
        return self._lines.popleft()

    def close(self) -> None:
        pass


def _record_end(text: str, quotes_before: int) -> int:
    """The end of the last whole record in ``text`` (0: none): after a newline that has
    an even number of quotes before it, counting ``quotes_before`` from earlier text."""
    end = text.rfind("\n")
    while end >= 0 and (quotes_before + text.count('"', 0, end)) % 2:
        end = text.rfind("\n", 0, end)
    return end + 1


async def _aiofiles_import(path: Path, schema: Schema, in_thread: bool) -> AsyncIterator[Record]:
    """The file through aiofiles in large chunks, parsed by the connector's own code,
    its records yielded one by one as the connector yields them."""
    decoder = codecs.getincrementaldecoder("utf-8")(KEEP_BYTES)
    lines, table, pending, quotes = _Lines(), None, "", 0
    async with aiofiles.open(path, "rb") as source:
        while True:
            data = await source.read(CHUNK_BYTES)
            text = pending + decoder.decode(data, final=not data)
            end = len(text) if not data else _record_end(text, quotes)
            pending, text = text[end:], text[:end]
            quotes = 0  # the pending text starts a record
            lines.feed(text)
            if table is None and text:
                table = Table(lines, schema, FORMAT, path)
            if table is not None:
                parse = Cursor(lines, table, path, log)  # type: ignore[arg-type]
                chunk = await asyncio.to_thread(_drain, parse) if in_thread else _drain(parse)
                for record in chunk:
                    yield record
            if not data:
                return


def _drain(cursor: Cursor) -> list[Record]:
    records: list[Record] = []
    while batch := cursor.next_chunk(CHUNK_ROWS):
        records.extend(batch)
    return records


async def _count(stream: AsyncIterator[Record]) -> int:
    """How many records: what a timed run does with them."""
    count = 0
    async for _ in stream:
        count += 1
    return count


async def _digest(stream: AsyncIterator[Record]) -> str:
    """A digest of every record, to check (untimed) that both sides read the same."""
    digest = hashlib.sha256()
    async for record in stream:
        digest.update(repr((record.anchor, sorted(record.attributes.items()))).encode())
    return digest.hexdigest()


def _threads_write(path: Path, rows: int) -> None:
    with atomic_file.replacing(path, "utf-8", KEEP_BYTES) as out:
        writer = csv.writer(out, **FORMAT)
        writer.writerow(COLUMNS)
        writer.writerows(csv_row(i) for i in range(rows))


async def _aiofiles_write(path: Path, rows: int) -> None:
    tmp = path.with_name(f".{path.name}.aiofiles.tmp")
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, **FORMAT)
    writer.writerow(COLUMNS)
    async with aiofiles.open(tmp, "xb") as out:
        for i in range(rows):
            writer.writerow(csv_row(i))
            if buffer.tell() >= CHUNK_BYTES:
                await out.write(buffer.getvalue().encode("utf-8", KEEP_BYTES))
                buffer.seek(0)
                buffer.truncate()
        await out.write(buffer.getvalue().encode("utf-8", KEEP_BYTES))
        await out.flush()
        await asyncio.to_thread(os.fsync, out.fileno())
    await aiofiles.os.replace(tmp, path)
    await asyncio.to_thread(_fsync_folder, path.parent)


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


async def _with_stall(work: Callable[[], Awaitable[Any]]) -> tuple[Any, float, float]:
    """``work()``'s result, wall seconds, and the event loop's worst stall in ms."""
    worst = 0.0

    async def tick() -> None:
        nonlocal worst
        while True:
            before = time.perf_counter()
            await asyncio.sleep(0.001)
            worst = max(worst, time.perf_counter() - before - 0.001)

    ticker = asyncio.create_task(tick())
    started = time.perf_counter()
    try:
        result = await work()
    finally:
        ticker.cancel()
    return result, time.perf_counter() - started, worst * 1000


async def _best(repeat: int, work: Callable[[], Awaitable[Any]]) -> tuple[Any, float, float]:
    runs = [await _with_stall(work) for _ in range(repeat)]
    return runs[0][0], min(r[1] for r in runs), statistics.median(r[2] for r in runs)


async def _measure(folder: Path, rows: int, repeat: int) -> dict[str, Any]:
    path = folder / "InputFile.txt"
    write_csv(path, range(rows))
    settings = CsvSettings(path=path, schema_file=REPO / "config" / "Schema.xml")
    connector = CsvConnector("CSV", settings, folder)
    await connector.open()
    schema = await connector.schema()
    figures: dict[str, Any] = {"benchmark": "csv_file_io", "rows": rows}
    imports: dict[str, Callable[[], AsyncIterator[Record]]] = {
        "import_threads": connector.full_import,
        "import_aiofiles_loop": lambda: _aiofiles_import(path, schema, False),
        "import_aiofiles_thread": lambda: _aiofiles_import(path, schema, True),
    }
    digests = {await _digest(stream()) for stream in imports.values()}
    if len(digests) != 1:
        raise SystemExit("the variants read different records")
    for name, stream in imports.items():
        count, seconds, stall = await _best(repeat, lambda s=stream: _count(s()))
        if count != rows:
            raise SystemExit(f"{name} read {count:,} records, not {rows:,}")
        figures[f"{name}_s"], figures[f"{name}_stall_ms"] = round(seconds, 2), round(stall, 1)
    written = {}
    for name, work in {
        "write_threads": lambda: asyncio.to_thread(_threads_write, folder / "a.csv", rows),
        "write_aiofiles": lambda: _aiofiles_write(folder / "b.csv", rows),
    }.items():
        _, seconds, stall = await _best(repeat, work)
        figures[f"{name}_s"], figures[f"{name}_stall_ms"] = round(seconds, 2), round(stall, 1)
    for name in ("a.csv", "b.csv"):
        written[name] = hashlib.sha256((folder / name).read_bytes()).hexdigest()
    if written["a.csv"] != written["b.csv"]:
        raise SystemExit("the two writes produced different files")
    return figures


def main() -> None:
    sizes = Sizes(__doc__.splitlines()[0], "100,000 rows instead of 1,000,000")
    sizes.add("--rows", 1_000_000, 100_000, "rows of the generated CSV file")
    sizes.add("--repeat", 3, 3, "runs of each variant (the best time is kept)")
    args = sizes.parse()
    with tempfile.TemporaryDirectory(prefix="ecmahost-bench-") as tmp:
        figures = asyncio.run(_measure(Path(tmp), args.rows, args.repeat))
    table = figures_table(
        f"CSV file access, {args.rows:,} rows: worker threads vs aiofiles",
        [
            (name.removesuffix("_s"), f"{figures[name]:.2f} s", f"{figures[stall]:.1f} ms stall")
            for name in figures
            if name.endswith("_s") and (stall := name.removesuffix("_s") + "_stall_ms")
        ],
    )
    emit(table, figures)


if __name__ == "__main__":
    main()
