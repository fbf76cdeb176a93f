"""The host: the connector space and, per connector, its connector, export worker
and importer, opened and closed together."""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from ecmahost.connectors.base import Capability, Connector, DataType, Schema
from ecmahost.connectors.exceptions import ConfigError, TransientError
from ecmahost.connectors.secrets import redact
from ecmahost.engine import queue
from ecmahost.engine.config import ConnectorConfig, DisableAction, HostConfig
from ecmahost.engine.provisioning import Rules
from ecmahost.engine.queue import Outcome, wakeup
from ecmahost.engine.queue.notifier import Notifier
from ecmahost.engine.registry import build_connector, report_broken_plugins
from ecmahost.engine.scim.resource import ResourceMapper
from ecmahost.engine.space import ConnectorSpace
from ecmahost.engine.space.database import sqlite_url
from ecmahost.engine.workers.exporter import Exporter
from ecmahost.engine.workers.gate import RunGate
from ecmahost.engine.workers.importer import Importer
from ecmahost.engine.workers.scheduler import start_scheduler

__all__ = ["ConnectorRuntime", "Host"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ConnectorRuntime:
    """Everything the host keeps for one configured connector."""

    name: str
    config: ConnectorConfig
    connector: Connector
    schema: Schema
    mapper: ResourceMapper
    exporter: Exporter
    importer: Importer
    rules: Rules
    outcomes: Notifier[int, Outcome]
    """Export outcomes by event id: the exporter publishes, sync-mode writes await."""

    def wake_exporter(self) -> None:
        """New events are queued: export them now instead of at the next poll."""
        self.exporter.wake()


class Host:
    """Open with ``await host.open()``; ``serve=True`` also recovers interrupted
    exports, runs the start-up imports and starts the workers and scheduler."""

    def __init__(self, config: HostConfig) -> None:
        self.config = config
        self.space: ConnectorSpace | None = None
        self.runtimes: dict[str, ConnectorRuntime] = {}
        self._tasks: list[asyncio.Task[Any]] = []
        self._scheduler: AsyncIOScheduler | None = None

    async def open(self, *, connectors: bool = True, serve: bool = False) -> None:
        state_dir = self.config.state_dir
        state_dir.mkdir(parents=True, exist_ok=True)
        self.space = await ConnectorSpace.open(sqlite_url(state_dir), self.config.host.synchronous)
        if serve:
            recovered = await queue.recover(self.space)
            if recovered:
                log.info(
                    "%d interrupted exports queued again",
                    recovered,
                    extra={"action": "export.recover"},
                )
        if serve:
            report_broken_plugins()
        if connectors:
            for name, config in self.config.connectors.items():
                self.runtimes[name] = await self._open_connector(config)
        if serve:
            await self._start_serving()

    async def _open_connector(self, config: ConnectorConfig) -> ConnectorRuntime:
        assert self.space is not None
        redact(config.token.get_secret_value())
        connector = build_connector(config, self.config.base_dir)
        connector.first_start = not await self.space.has_history(config.name)
        await self._open_when_reachable(config.name, connector)
        schema = await connector.schema()
        _check_deprovision(config, schema)
        gate = RunGate()
        outcomes: Notifier[int, Outcome] = Notifier()
        return ConnectorRuntime(
            config.name,
            config,
            connector,
            schema,
            ResourceMapper(schema, config.deprovision),
            Exporter(config.name, connector, self.space, config, gate, outcomes),
            Importer(config.name, connector, self.space, gate, config.import_max_removals),
            Rules.of(config, schema, connector.capabilities),
            outcomes,
        )

    async def _open_when_reachable(self, name: str, connector: Connector) -> None:
        """Open the connector, waiting up to ``host.startup_wait_s`` for a target that
        is down (a host and its database often start together)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.host.startup_wait_s
        delay_s = 0.5
        while True:
            try:
                await connector.open()
                await connector.validate()  # e.g. a script connector's validate role
                return
            except TransientError as exc:
                await connector.close()  # safe after a failed open, per the contract
                if loop.time() + delay_s > deadline:
                    raise TransientError(f"connector {name} cannot open: {exc}") from exc
                log.warning(
                    "connector %s cannot open yet (%s); trying again in %.1f s",
                    name,
                    exc,
                    delay_s,
                    extra={"action": "connector.open_retry", "connector": name},
                )
                await asyncio.sleep(delay_s)
                delay_s = min(delay_s * 2, 10.0)

    async def _start_serving(self) -> None:
        for runtime in self.runtimes.values():
            if Capability.IMPORT in runtime.connector.capabilities:
                await runtime.importer.full_import()
                self._tasks.append(asyncio.create_task(runtime.importer.run()))
            if Capability.EXPORT in runtime.connector.capabilities:
                self._tasks.append(asyncio.create_task(runtime.exporter.run()))
        # The command line's replays and discards wake the exporters (queue.wakeup).
        self._tasks.append(asyncio.create_task(wakeup.listen(self.config.state_dir, self.wake)))
        self._scheduler = start_scheduler(
            (rt.importer, rt.config.autosync_minutes)
            for rt in self.runtimes.values()
            if Capability.IMPORT in rt.connector.capabilities
        )

    def wake(self) -> None:
        """Queued events changed outside a SCIM write: every exporter looks now."""
        for runtime in self.runtimes.values():
            runtime.wake_exporter()

    def runtime(self, name: str) -> ConnectorRuntime:
        try:
            return self.runtimes[name]
        except KeyError:
            raise ConfigError(f"no connector named {name!r}") from None

    async def close(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with suppress(asyncio.CancelledError):
                await task
        for runtime in self.runtimes.values():
            await runtime.exporter.close()
        for runtime in self.runtimes.values():
            await runtime.connector.close()
        if self.space is not None:
            await self.space.close()


def _check_deprovision(config: ConnectorConfig, schema: Schema) -> None:
    """The disable attribute must be one of the schema's booleans."""
    name = config.deprovision.disable_attribute
    key = f"connectors.{config.name}.deprovision.disable_attribute"
    if name is None:
        if config.deprovision.disable is DisableAction.SET_ATTRIBUTE:
            raise ConfigError("set_attribute needs a disable_attribute", key)
        return
    attribute = schema.get(name)
    if attribute is None or attribute.data_type is not DataType.BOOLEAN:
        raise ConfigError(f"{name!r} is not a Boolean attribute of the connector's schema", key)
