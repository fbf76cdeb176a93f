"""External programs as a connector: the PowerShell connector's job, in any language.

Each role (``schema``, ``import``, ``export``, optional ``validate`` and the
``begin_``/``end_`` hooks around imports and exports) is a command run as a child
process per call, with no shell unless asked, the configuration's folder as its
working directory, a time-out, and an environment limited to what the configuration
passes. Scripts speak JSON Lines over stdin/stdout: the contract is
the README ("The script connector"), its code ``script_protocol``; the process handling is
``script_process``.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, ClassVar

from ecmahost.connectors.base import (
    Attribute,
    Capability,
    Change,
    Connector,
    ConnectorSettings,
    Delta,
    Direction,
    Record,
    Result,
    Schema,
)
from ecmahost.connectors.exceptions import (
    ConfigError,
    EcmahostError,
    PermanentError,
    WatermarkExpiredError,
)
from ecmahost.connectors.script.process import (
    Command,
    ProtocolError,
    ScriptProcess,
    host_environment,
)
from ecmahost.connectors.script.protocol import (
    Deletion,
    Expired,
    Header,
    Watermark,
    encode_change,
    normalised_change,
    parse_delta_line,
    parse_import_line,
    parse_result,
    parse_schema,
)
from ecmahost.connectors.script.settings import ROLES, ScriptSettings, effective_parameters
from ecmahost.connectors.secrets import is_reference, redact, resolve_secret

__all__ = ["ScriptConnector", "ScriptSettings"]

log = logging.getLogger(__name__)

MAX_SCHEMA_BYTES = 1024 * 1024
"""More schema output than this is not a schema (it is held in memory to be parsed)."""


class ScriptConnector(Connector):
    """Scripts playing the PowerShell connector's Schema, Import and Export scripts."""

    type_name: ClassVar[str] = "script"
    settings_model: ClassVar[type[ConnectorSettings]] = ScriptSettings
    # RENAME is declared for the type; ``settings.rename`` says whether these scripts
    # take renames, and without it they are refused before they reach a script.
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.IMPORT, Capability.EXPORT, Capability.RENAME}
    )

    def __init__(self, name: str, settings: ScriptSettings, base_dir: Path) -> None:
        super().__init__(name, settings, base_dir)
        self.settings: ScriptSettings = settings
        self._commands: dict[str, Command] = {}
        self._secrets: dict[str, str] = {}
        self._environment: dict[str, str] = {}
        self._schema: Schema | None = None
        self._known: frozenset[str] = frozenset()
        # Export scripts rewrite their target; two at once could lose a change.
        self._export_lock = asyncio.Lock()
        self._running: set[ScriptProcess] = set()
        self.import_watermark: Any = None
        """The last import's watermark, handed to the next import (in memory only)."""
        if settings.scripts.get("delta_import") is not None:  # these scripts' deltas
            self.capabilities = self.capabilities | {Capability.DELTA_IMPORT}  # type: ignore[misc]

    async def open(self) -> None:
        """Resolve the commands, secrets and environment, then run the schema script."""
        environment: dict[str, str] = {}
        for name, value in self.settings.environment.items():
            key = self._key("environment", name)
            environment[name] = resolve_secret(value, key, self.base_dir)
            if is_reference(value):  # kept out of the file: kept out of every message
                redact(environment[name], key)
        self._environment = host_environment() | environment
        self._secrets = {}
        for name, secret in self.settings.secret_parameters.items():
            key = self._key("secret_parameters", name)
            self._secrets[name] = resolve_secret(secret.get_secret_value(), key, self.base_dir)
            redact(self._secrets[name], key)
        search_path = self._environment.get("PATH")
        for role in ROLES:
            key = self._key("scripts", role)
            command = self.settings.resolve_command(role, self.base_dir, search_path, key)
            if command is not None:
                self._commands[role] = command
        try:
            self._schema = await self._discover()
        except EcmahostError as exc:
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(
                f"cannot read the schema: {exc}", self._key("scripts", "schema")
            ) from exc

    async def close(self) -> None:
        for process in list(self._running):
            await process.close()

    async def validate(self) -> None:
        """Run the ``validate`` script, if there is one: a non-zero exit fails."""
        await self._hook("validate")

    async def schema(self) -> Schema:
        if self._schema is None:
            self._schema = await self._discover()
        return self._schema

    async def full_import(self) -> AsyncIterator[Record]:
        schema = await self.schema()
        watermark: Watermark | None = None
        async with (
            self._bracket("begin_import", "end_import"),
            self._run("import", schema, watermark=self.import_watermark) as process,
        ):
            violation = None
            try:
                async for number, line in process.lines():
                    if watermark is not None:
                        raise ProtocolError(f"line {number}: output after the watermark")
                    item = parse_import_line(number, line, schema, self._known)
                    if isinstance(item, Watermark):
                        watermark = item
                    else:
                        yield item
            except ProtocolError as exc:
                violation = self._stop(process, exc)
            await self._finish(process, violation)
        if watermark is not None:
            self.import_watermark = watermark.value

    async def watermark(self) -> str:
        """The ``delta_import`` script's current position: given a null watermark, it
        answers its watermark line alone. The value is kept as its JSON text."""
        items = [item async for item in self._delta_items(None)]
        if len(items) != 1 or not isinstance(items[0], Watermark):
            raise PermanentError(
                f"{self.name}: given no watermark, the delta_import script must answer "
                "its current watermark alone"
            )
        return json.dumps(items[0].value)

    async def delta_import(self, watermark: str) -> AsyncIterator[Delta]:
        """The changes the ``delta_import`` script lists since ``watermark``; every one
        but the last keeps the watermark it was given (the script names its new one
        only at the end), so a delta cut short reads them all again."""
        try:
            since = json.loads(watermark)
        except ValueError:
            raise WatermarkExpiredError(f"{self.name}: {watermark!r} is no JSON") from None
        held: Delta | None = None
        async for item in self._delta_items(since):
            if isinstance(item, Watermark):
                if held is not None:
                    held = Delta(held.anchor, held.record, json.dumps(item.value))
                continue
            if held is not None:
                yield held
            record = item if isinstance(item, Record) else None
            held = Delta(item.anchor, record, watermark)
        if held is not None:  # once the script ended well
            yield held

    async def _delta_items(self, since: Any) -> AsyncIterator[Record | Deletion | Watermark]:
        """The ``delta_import`` script's lines up to its final watermark; a lone
        ``watermark_expired`` line raises ``WatermarkExpiredError`` once it exited."""
        schema = await self.schema()
        ended: Watermark | Expired | None = None
        async with self._run("delta_import", schema, watermark=since) as process:
            violation = None
            try:
                async for number, line in process.lines():
                    if ended is not None:
                        raise ProtocolError(f"line {number}: output after the watermark")
                    item = parse_delta_line(number, line, schema, self._known)
                    if isinstance(item, Expired) and number != 1:
                        raise ProtocolError(f"line {number}: watermark_expired after changes")
                    if isinstance(item, Watermark | Expired):
                        ended = item
                    if not isinstance(item, Expired):
                        yield item
                if ended is None:
                    raise ProtocolError("the output ended without the new watermark")
            except ProtocolError as exc:
                violation = self._stop(process, exc)
            await self._finish(process, violation)
        if isinstance(ended, Expired):
            raise WatermarkExpiredError(f"{self.name}: {ended.reason}")

    async def export(self, changes: Sequence[Change]) -> Sequence[Result]:
        schema = await self.schema()
        results: list[Result | None] = [None] * len(changes)
        batch: list[tuple[int, Change]] = []
        for index, change in enumerate(changes):
            try:
                if change.previous_anchor is not None and not self.settings.rename:
                    raise ValueError("renames are off for this connector (settings.rename)")
                batch.append((index, normalised_change(change, schema)))
            except ValueError as exc:
                refused = PermanentError(f"cannot export {change.anchor!r}: {exc}")
                results[index] = Result(change.anchor, refused)
        if batch:
            async with self._export_lock, self._bracket("begin_export", "end_export"):
                errors = await self._export_batch([change for _, change in batch], schema)
            for (index, change), error in zip(batch, errors, strict=True):
                results[index] = Result(change.anchor, error)
        return [result for result in results if result is not None]

    # -- the roles ------------------------------------------------------------

    async def _discover(self) -> Schema:
        lines: list[tuple[int, bytes]] = []
        types: dict[str, list[Attribute]] = {}
        size = 0
        async with self._run("schema", None) as process:
            violation = None
            try:
                async for number, line in process.lines():
                    size += len(line)
                    if size > MAX_SCHEMA_BYTES:
                        raise ProtocolError(f"more than {MAX_SCHEMA_BYTES} bytes of schema")
                    lines.append((number, line))
                types = parse_schema(lines)
            except ProtocolError as exc:
                violation = self._stop(process, exc)
            await self._finish(process, violation)
        schema, self._known = self.settings.select_schema(types, self._key())
        return schema

    async def _export_batch(
        self, changes: Sequence[Change], schema: Schema
    ) -> list[EcmahostError | None]:
        waiting: dict[str, collections.deque[int]] = collections.defaultdict(collections.deque)
        for index, change in enumerate(changes):
            waiting[change.anchor].append(index)
        errors: list[EcmahostError | None] = [None] * len(changes)
        answered = 0
        lines = map(encode_change, changes)
        async with self._run("export", schema, lines=lines) as process:
            process.hide(_export_only_texts(changes, schema))
            violation = None
            try:
                async for number, line in process.lines():
                    result = parse_result(number, line, process.command.label)
                    if not waiting.get(result.anchor):
                        raise ProtocolError(
                            f"line {number}: a result for {result.anchor!r}, which is not in "
                            "the batch or already has one"
                        )
                    errors[waiting[result.anchor].popleft()] = result.error
                    answered += 1
                if answered < len(changes):
                    missing = next(a for a, left in waiting.items() if left)
                    raise ProtocolError(
                        f"{len(changes) - answered} of {len(changes)} changes have no result "
                        f"(the first: {missing!r})"
                    )
            except ProtocolError as exc:
                violation = self._stop(process, exc)
            await self._finish(process, violation)
        return errors

    async def _hook(self, role: str, schema: Schema | None = None) -> None:
        """Run an optional role whose stdout is ignored; raise if it fails."""
        if role not in self._commands:
            return
        async with self._run(role, schema) as process:
            violation = None
            try:
                async for _ in process.lines():
                    pass
            except ProtocolError as exc:
                violation = self._stop(process, exc)
            await self._finish(process, violation)

    @asynccontextmanager
    async def _bracket(self, begin: str, end: str) -> AsyncIterator[None]:
        """``begin`` before the block, ``end`` after it unless cancelled. A failing
        ``end`` is logged, not raised: the work it closes is already done."""
        schema = await self.schema()
        await self._hook(begin, schema)
        try:
            yield
        except asyncio.CancelledError:
            raise
        except BaseException:
            await self._end(end, schema)
            raise
        await self._end(end, schema)

    async def _end(self, role: str, schema: Schema) -> None:
        try:
            await self._hook(role, schema)
        except EcmahostError as exc:
            log.warning("%s", exc, extra={"action": "script.end_failed", "connector": self.name})

    # -- running a script -----------------------------------------------------

    @asynccontextmanager
    async def _run(
        self,
        role: str,
        schema: Schema | None,
        *,
        lines: Iterable[bytes] = (),
        watermark: Any = None,
    ) -> AsyncIterator[ScriptProcess]:
        """The role's script, started, with the header and ``lines`` on its stdin."""
        raw = self.settings.parameters_for(role)
        effective = effective_parameters(raw)
        secrets = effective_parameters(self._secrets)  # stdin only: environments leak
        header = Header(
            role, self.name, effective | secrets, raw | self._secrets, schema, watermark
        )
        env = self._environment | {
            "ECMAHOST_PROTOCOL": "1",
            "ECMAHOST_ROLE": role,
            "ECMAHOST_CONNECTOR": self.name,
            **{f"ECMAHOST_PARAM_{name}": value for name, value in effective.items()},
        }
        if schema is not None:  # what a shell script cannot easily dig out of JSON
            env |= {
                "ECMAHOST_OBJECT_TYPE": schema.object_type,
                "ECMAHOST_ANCHOR": schema.anchor.name,
            }
        process = ScriptProcess(
            self._commands[role], env, self.base_dir, self.settings.max_line_bytes
        )
        self._running.add(process)
        try:
            async with process:
                process.send(_chain([header.encode()], lines))
                yield process
        finally:
            self._running.discard(process)

    def _stop(self, process: ScriptProcess, exc: ProtocolError) -> str:
        """Stop reading a script that broke the protocol: kill it unless its output has
        already ended (then its exit status still tells whether it crashed)."""
        if not process.at_eof:
            process.kill()
        return str(exc)

    async def _finish(self, process: ScriptProcess, violation: str | None) -> None:
        returncode = await process.wait()
        error = process.failure(returncode, violation)
        log.debug(
            "%s: exit status %d after %.2f s%s",
            process.command.label,
            returncode,
            process.elapsed_s,
            f"; stderr: {process.stderr_tail}" if process.stderr_tail else "",
            extra={
                "action": "script.finished",
                "connector": self.name,
                "role": process.command.role,
            },
        )
        if error is not None:
            raise error

    def _key(self, *parts: str) -> str:
        return ".".join(("connectors", self.name, "settings", *parts))


def _export_only_texts(changes: Sequence[Change], schema: Schema) -> list[str]:
    """The batch's export-only values (initial passwords): handed to the script on
    its stdin, never shown in what is logged or answered about the run."""
    names = {a.name for a in schema.attributes if a.direction is Direction.EXPORT_ONLY}
    return [
        value
        for change in changes
        for name, value in change.attributes.items()
        if name in names and isinstance(value, str)
    ]


def _chain(first: Iterable[bytes], rest: Iterable[bytes]) -> Iterable[bytes]:
    yield from first
    yield from rest
