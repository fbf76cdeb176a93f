"""A delimited text file as a target: ECMA2HostCSV's file format, without its hazards.

The file looks like Microsoft's sample: a header row, every field double-quoted,
``;`` between fields, ``\\n`` after each row, booleans as ``True``/``False``. Columns
are found by header name, so a hand-edited file with reordered or extra columns keeps
working and keeps its extra data.

Unlike the sample scripts, every value round-trips byte for byte (the file is data,
not a spreadsheet, so nothing is escaped), a retried change never duplicates a row,
and no crash leaves a half-written file: a batch either replaces the file atomically
or, when it only adds new anchors, is appended with one fsync'ed write.
"""

from __future__ import annotations

import asyncio
import codecs
import csv
import dataclasses
import io
import logging
import os
import re
import shutil
import threading
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from ecmahost.connectors.base import (
    Capability,
    Change,
    ChangeKind,
    Connector,
    ConnectorSettings,
    Record,
    Result,
    Schema,
    TargetMissingError,
)
from ecmahost.connectors.csv import atomic_file, file_lock
from ecmahost.connectors.csv.delimited import KEEP_BYTES, Cursor, Layout, Table, read_back, to_text
from ecmahost.connectors.csv.schema_xml import parse_schema_xml
from ecmahost.connectors.csv.settings import CsvSettings
from ecmahost.connectors.direction import with_directions
from ecmahost.connectors.exceptions import ConfigError, PermanentError, TransientError

__all__ = ["CsvConnector", "CsvSettings"]

log = logging.getLogger(__name__)

CHUNK_ROWS = 1000
"""Records parsed per worker-thread hop during a full import."""


class CsvConnector(Connector):
    """One CSV file holding one object type, described by an ECMA2Host Schema.xml."""

    type_name: ClassVar[str] = "csv"
    settings_model: ClassVar[type[ConnectorSettings]] = CsvSettings
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.IMPORT, Capability.EXPORT, Capability.RENAME}
    )
    # A batch with a replace or a delete rewrites the whole file: a backlog of
    # 20,000 changes drains in two rewrites instead of forty.
    export_batch_size: ClassVar[int] = 10_000

    def __init__(self, name: str, settings: CsvSettings, base_dir: Path) -> None:
        super().__init__(name, settings, base_dir)
        self.settings: CsvSettings = settings
        self._schema: Schema | None = None
        self._format: dict[str, Any] = {
            "delimiter": settings.delimiter,
            "quotechar": '"',
            "doublequote": True,
            "quoting": csv.QUOTE_ALL,
            "lineterminator": "\n",
        }
        # Batches queue here, on the event loop, rather than each blocking a thread.
        self._export_lock = asyncio.Lock()
        # Held by the worker threads themselves: a cancelled export's thread runs on after
        # its task let go of the asyncio lock, and an import must measure the file
        # between two appends, never during one.
        self._file_lock = threading.Lock()
        self._contents: _Contents | None = None
        # Text without the delimiter, quotes, line breaks or NUL, and far below the
        # csv module's field size limit, reads back as written: no need to try it.
        special = re.escape(settings.delimiter + '"\r\n\x00')
        self._plain = re.compile(f"[^{special}]{{0,4096}}").fullmatch

    @property
    def _path(self) -> Path:
        return self.settings.resolve(self.settings.path, self.base_dir)

    def _held(self) -> AbstractContextManager[None]:
        """The file's lock between processes (see ``file_lock``), inside the thread lock."""
        return file_lock.held(self._path, self.settings.lock_timeout_s)

    async def open(self) -> None:
        """Parse the schema and, on the connector's first start only, create a missing
        file (from ``seed`` or a header). Later a missing file is left missing: an
        import refuses it, where a re-seeded file would replace every user."""
        self._schema = await asyncio.to_thread(self._parse_schema)
        if self.first_start:
            await asyncio.to_thread(self._create, self._schema)
        elif not self._path.exists():
            log.error(
                "%s: the file is missing; imports are refused until it is back",
                self._path,
                extra={"action": "csv.target_missing", "connector": self.name},
            )

    async def validate(self) -> None:
        """Check that the file can be read and its header has the anchor's column.
        A missing file (after the first start) is left to the import to report."""
        try:
            cursor = await asyncio.to_thread(self._open_import, await self.schema())
        except TargetMissingError:
            return
        cursor.close()

    async def schema(self) -> Schema:
        if self._schema is None:
            self._schema = await asyncio.to_thread(self._parse_schema)
        return self._schema

    async def full_import(self) -> AsyncIterator[Record]:
        cursor = await asyncio.to_thread(self._open_import, await self.schema())
        try:
            while records := await asyncio.to_thread(self._next_chunk, cursor):
                for record in records:
                    yield record
        finally:
            cursor.close()

    async def import_size(self) -> int | None:
        # The file's lines less the header: a quoted value holding a line break
        # counts twice, which a progress bar can bear.
        if not self._path.exists():
            return None
        return max(await asyncio.to_thread(_count_lines, self._path) - 1, 0)

    async def export(self, changes: Sequence[Change]) -> Sequence[Result]:
        schema = await self.schema()
        results: list[Result] = []
        rows: dict[str, _Row] = {}
        for change in changes:
            try:
                row = self._prepare(change, schema)
            except ValueError as exc:  # UnicodeEncodeError included
                results.append(self._rejected(change, exc))
                continue
            # One change per anchor is the contract; should two come, the later one wins,
            # just as if they had been applied one after the other.
            rows[row.anchor] = row
            results.append(Result(change.anchor))
        if rows:
            async with self._export_lock:
                await asyncio.to_thread(self._write_batch, rows, schema)
        return results

    # -- opening ---------------------------------------------------------------

    def _parse_schema(self) -> Schema:
        path = self.settings.resolve(self.settings.schema_file, self.base_dir)
        key = f"connectors.{self.name}.settings"
        return with_directions(parse_schema_xml(path), self.settings, key)

    def _create(self, schema: Schema) -> None:
        path = self._path
        with self._file_lock, _boundary(path, "create"), self._held():
            if path.exists():
                return
            if self.settings.seed is None:
                with atomic_file.replacing(path, self.settings.encoding, KEEP_BYTES) as out:
                    csv.writer(out, **self._format).writerow(a.name for a in schema.attributes)
            else:
                self._copy_seed(self.settings.resolve(self.settings.seed, self.base_dir))

    def _copy_seed(self, seed: Path) -> None:
        if not seed.is_file():
            raise ConfigError(f"seed file not found: {seed}")
        path = self._path
        with (
            _boundary(path, f"copy {seed} to"),
            atomic_file.replacing(path, self.settings.encoding, KEEP_BYTES) as out,
            open(seed, "rb") as source,
        ):
            # Byte for byte, under the text layer (which has written nothing, not even
            # a BOM): the seed is already in the file's format.
            shutil.copyfileobj(source, out.buffer)

    # -- import ----------------------------------------------------------------

    def _open_import(self, schema: Schema) -> Cursor:
        path = self._path
        with ExitStack() as stack, _boundary(path, "read"):
            try:
                raw = stack.enter_context(open(path, "rb", buffering=0))
            except FileNotFoundError:
                raise TargetMissingError(f"{path}: file not found") from None
            with self._file_lock, self._held():
                size = os.fstat(raw.fileno()).st_size
            encoding = self._encoding_of(raw.read(len(codecs.BOM_UTF8)))
            raw.seek(0)
            buffered = io.BufferedReader(atomic_file.Prefix(raw, size))
            stream = stack.enter_context(
                io.TextIOWrapper(buffered, encoding, KEEP_BYTES, newline="")
            )
            table = Table(stream, schema, self._format, path, log)
            cursor = Cursor(stream, table, path, log)
            stack.pop_all()  # the cursor closes the file from now on
            return cursor

    def _encoding_of(self, head: bytes) -> str:
        """The file's encoding: UTF-8 when it starts with UTF-8's byte-order mark
        (as Excel writes it), whatever ``encoding`` says, else ``encoding``. Read as
        ``utf-8-sig``, the mark is not part of the first column's name, and a
        rewrite writes it back."""
        return "utf-8-sig" if head.startswith(codecs.BOM_UTF8) else self.settings.encoding

    def _file_encoding(self, path: Path) -> str:
        with open(path, "rb") as file:
            return self._encoding_of(file.read(len(codecs.BOM_UTF8)))

    def _next_chunk(self, cursor: Cursor) -> list[Record]:
        with _boundary(self._path, "read"):
            return cursor.next_chunk(CHUNK_ROWS)

    # -- export ----------------------------------------------------------------

    def _prepare(self, change: Change, schema: Schema) -> _Row:
        """The change as text cells; ValueError when it cannot be written faithfully."""
        if not change.anchor:
            raise ValueError("the anchor is empty")
        if change.kind is ChangeKind.DELETE:
            return _Row(change.kind, change.anchor, None)
        if change.previous_anchor == "":
            raise ValueError("the previous anchor of a rename is empty")
        values = {schema.anchor.name: change.anchor}
        for name, value in change.attributes.items():
            attribute = schema.get(name)
            if attribute is None:
                raise ValueError(f"attribute {name!r} is not in the schema")
            if not attribute.exported:
                continue  # the file keeps what it holds
            text = to_text(value, attribute.data_type)
            if attribute.is_anchor and text != change.anchor:
                raise ValueError(f"attribute {name!r} is {text!r}, not the change's anchor")
            values[attribute.name] = text
        for name, text in values.items():
            self._check_writable(name, text)
        return _Row(change.kind, change.anchor, values, change.previous_anchor)

    def _check_writable(self, name: str, text: str) -> None:
        encoding = self.settings.encoding
        try:
            text.encode(encoding)
        except UnicodeEncodeError as exc:
            bad = text[exc.start : exc.end]
            raise ValueError(
                f"attribute {name!r}: {bad!r} cannot be written in {encoding!r} ({exc.reason})"
            ) from exc
        if not self._plain(text) and read_back(text, self._format) != text:
            raise ValueError(f"attribute {name!r}: the value would not read back unchanged")

    def _rejected(self, change: Change, exc: ValueError) -> Result:
        # Entra shows this to whoever provisions: the file's name, not where it lives,
        # and the anchor cut short (it may be the over-long value refused).
        anchor = change.anchor if len(change.anchor) <= 60 else change.anchor[:60] + "…"
        error = PermanentError(f"{self._path.name}: cannot write {anchor!r}: {exc}")
        error.__cause__ = exc
        return Result(change.anchor, error)

    def _write_batch(self, rows: Mapping[str, _Row], schema: Schema) -> None:
        with self._file_lock, _boundary(self._path, "write"), self._held():
            layout = self._append_layout(rows, schema)
            how = "rewrite" if layout is None else "append"
            log.debug(
                "%s: %s of %d changes", self._path, how, len(rows), extra={"action": f"csv.{how}"}
            )
            if layout is None:
                self._contents = None
                self._rewrite(rows, schema)
            else:
                self._append(rows.values(), layout)

    def _append_layout(self, rows: Mapping[str, _Row], schema: Schema) -> Layout | None:
        """The file's layout when ``rows`` can simply be appended to it, else None."""
        if any(row.kind is not ChangeKind.ADD for row in rows.values()):
            return None
        contents = self._read_contents(schema)
        if not contents.appendable or any(anchor in contents.anchors for anchor in rows):
            return None
        return contents.layout

    def _read_contents(self, schema: Schema) -> _Contents:
        """What the file holds, read again only when it changed since last time."""
        path = self._path
        if self._contents is not None and self._contents.identity == _identity(path):
            return self._contents
        encoding = self._file_encoding(path)
        with open(path, encoding=encoding, errors=KEEP_BYTES, newline="") as source:
            identity = _identity(source.fileno())
            table = Table(source, schema, self._format, path)
            anchors = {table.layout.anchor_of(cells) for _, cells in table.rows()}
        # An empty or hand-edited file without a final newline, or one lacking schema
        # columns (which need a new header), is rewritten rather than appended to.
        appendable = table.layout.complete and _ends_with_newline(path, encoding)
        self._contents = _Contents(identity, table.layout, anchors, appendable)
        return self._contents

    def _append(self, rows: Iterable[_Row], layout: Layout) -> None:
        text = io.StringIO()
        writer = csv.writer(text, **self._format)
        writer.writerows(layout.fill(row.values or {}) for row in rows)
        encoding = self._file_encoding(self._path)
        data = _mid_stream_encoder(encoding).encode(text.getvalue(), True)
        contents, self._contents = self._contents, None  # unknown should the append fail
        atomic_file.append(self._path, data)
        if contents is not None:
            contents.anchors.update(row.anchor for row in rows)
            self._contents = dataclasses.replace(contents, identity=_identity(self._path))

    def _rewrite(self, rows: Mapping[str, _Row], schema: Schema) -> None:
        path = self._path
        encoding = self._file_encoding(path)
        with atomic_file.replacing(path, encoding, KEEP_BYTES) as target:
            # The source closes before the rename: Windows cannot replace an open file.
            with open(path, encoding=encoding, errors=KEEP_BYTES, newline="") as source:
                table = Table(source, schema, self._format, path)
                writer = csv.writer(target, **self._format)
                writer.writerow(table.layout.header)
                done = _copy_rows(table, _by_file_anchor(rows), writer)
            for row in rows.values():
                if row.values is not None and row.anchor not in done:
                    writer.writerow(table.layout.fill(row.values))


@dataclass(frozen=True, slots=True)
class _Contents:
    """The file as an append-only batch of creates needs to know it, kept between
    batches: without it each create in sync mode would read the whole file to learn
    that its anchor is new. ``identity`` tells whether the file changed since."""

    identity: tuple[int, int, int, int]
    layout: Layout
    anchors: set[str]
    appendable: bool


def _identity(file: Path | int) -> tuple[int, int, int, int]:
    """Device, inode, size and modification time (in the file system's resolution):
    a write, ours or another program's, or a replacement of the file changes it."""
    found = os.stat(file)
    return found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns


@dataclass(frozen=True, slots=True)
class _Row:
    """One change as the text of its schema attributes (``values`` None: delete)."""

    kind: ChangeKind
    anchor: str
    values: Mapping[str, str] | None
    previous: str | None = None
    """The anchor the file holds the object under, for a rename."""


def _by_file_anchor(rows: Mapping[str, _Row]) -> dict[str, _Row]:
    """Each change under every anchor of the file it replaces: a rename's row is found
    by its previous anchor, and a row already under the new one (an earlier attempt of
    the same rename) is collapsed into it."""
    found = {row.previous: row for row in rows.values() if row.previous}
    return {**found, **rows}


def _copy_rows(table: Table, rows: Mapping[str, _Row], writer: Any) -> set[str]:
    """Copy the table's rows to ``writer``, changing those in ``rows``; the anchors done."""
    done: set[str] = set()
    for _, cells in table.rows():
        anchor = table.layout.anchor_of(cells)
        row = rows.get(anchor)
        if row is None:
            writer.writerow(table.layout.fit(cells))
        elif row.anchor not in done:  # later copies of a changed anchor are collapsed
            done.add(row.anchor)
            if row.values is not None:
                writer.writerow(table.layout.fill(row.values, cells))
    return done


@contextmanager
def _boundary(path: Path, doing: str) -> Iterator[None]:
    """Translate the file system's and codecs' errors into the engine's, once."""
    try:
        yield
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(path) else ""
        raise TransientError(f"cannot {doing} {path}: {exc.strerror or exc}{where}") from exc
    except (UnicodeError, csv.Error) as exc:
        raise PermanentError(f"cannot {doing} {path}: {exc}") from exc


def _mid_stream_encoder(encoding: str) -> codecs.IncrementalEncoder:
    encoder = codecs.getincrementalencoder(encoding)()
    encoder.setstate(0)  # past the file's start: utf-8-sig or utf-16 must not add a BOM
    return encoder


def _ends_with_newline(path: Path, encoding: str) -> bool:
    newline = _mid_stream_encoder(encoding).encode("\n", True)
    with open(path, "rb") as file:
        size = file.seek(0, os.SEEK_END)
        if size <= len(newline):
            return False
        file.seek(size - len(newline))
        return file.read() == newline


def _count_lines(path: Path) -> int:
    lines, last = 0, b"\n"
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return lines + (last != b"\n")  # a last line without its line break
