"""The host: the connector space and, per connector, its connector, export worker
and importer, opened and closed together.

Serving (``open(serve=True)``) does not wait for targets: each connector is brought
up by its own task (open with back-off, then the start-up import), so the port opens
at once, reads are answered from the durable space, and a connector whose target is
down fails alone (``ConnectorState`` says how each one is doing)."""

from __future__ import annotations

import asyncio
import functools
import logging
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from ecmahost.connectors.base import Capability, Connector, DataType, Schema
from ecmahost.connectors.exceptions import ConfigError, TransientError
from ecmahost.connectors.secrets import redact
from ecmahost.engine import queue, tls
from ecmahost.engine.config import ConnectorConfig, DisableAction, ExportMode, HostConfig
from ecmahost.engine.metrics import HostMetrics
from ecmahost.engine.notify import Alert, Alerts
from ecmahost.engine.provisioning import Rules, check_passwords
from ecmahost.engine.queue import Outcome, wakeup
from ecmahost.engine.queue.notifier import Notifier
from ecmahost.engine.queue.sealed import Sealer
from ecmahost.engine.registry import build_connector, report_broken_plugins
from ecmahost.engine.relay import Relay
from ecmahost.engine.schema_file import load_schema, save_schema
from ecmahost.engine.scim.resource import ResourceMapper
from ecmahost.engine.space import ConnectorSpace
from ecmahost.engine.workers.delta import DeltaImport
from ecmahost.engine.workers.exporter import Exporter
from ecmahost.engine.workers.gate import RunGate
from ecmahost.engine.workers.importer import Importer
from ecmahost.engine.workers.retention import Retention
from ecmahost.engine.workers.scheduler import next_import_at, start_scheduler
from ecmahost.engine.workers.state import ConnectorState, Phase

__all__ = ["ConnectorRuntime", "Host"]

log = logging.getLogger(__name__)

START_GRACE_S = 1.0
"""How long serving waits for the connectors' first attempts to open: a configuration
error a connector finds only on opening (a missing schema file) still stops start-up,
while a target that is slow or down never holds the port closed."""

FIRST_RETRY_S = 0.5
"""Pause before the second attempt to open a target; it doubles up to the cap."""


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
    exports and brings each connector up in the background (open, start-up import,
    workers), plus the scheduler.

    ``states`` has every configured connector once serving; ``runtimes`` only those
    whose connector is open (a target down since start has none yet)."""

    def __init__(self, config: HostConfig) -> None:
        self.config = config
        self.space: ConnectorSpace | None = None
        self.runtimes: dict[str, ConnectorRuntime] = {}
        self.states: dict[str, ConnectorState] = {}
        self._connectors: list[Connector] = []
        self._tasks: list[asyncio.Task[Any]] = []
        self._scheduler: AsyncIOScheduler | None = None
        self._starting = True
        """While start-up waits for first attempts, which report their own errors."""
        self.certificate: tls.CertificateInfo | None = None
        """The certificate served (read at a serving start), for /health and metrics."""
        self.metrics = HostMetrics(process=True)
        self.sealer = Sealer(config.state_dir)
        """Seals export-only values (passwords) in the queue; its key is in the state folder."""
        url = config.host.notify_url
        self.alerts = Alerts(url.get_secret_value() if url is not None else None)
        self.relay = Relay(self)
        """The other hosts of a shared space: who leads imports, outcomes, wake-ups."""

    async def open(self, *, connectors: bool = True, serve: bool = False) -> None:
        state_dir = self.config.state_dir
        state_dir.mkdir(parents=True, exist_ok=True)
        shared = self.config.shared_database
        self.space = await ConnectorSpace.open(
            self.config.database_url, self.config.host.synchronous, upgrade=not shared
        )
        # Running exports of a shared database may be another host's: their leases
        # give them back when that host is gone.
        if serve and not shared:
            recovered = await queue.recover(self.space)
            if recovered:
                log.info(
                    "%d interrupted exports queued again",
                    recovered,
                    extra={"action": "export.recover"},
                )
        if serve:
            self.certificate = self._served_certificate()
            report_broken_plugins()
            try:
                await self._start_serving()
            except BaseException:
                await self.close()  # the application's clean-up does not run for us
                raise
        elif connectors:
            for name, config in self.config.connectors.items():
                self.runtimes[name] = await self._open_connector(config)

    def _served_certificate(self) -> tls.CertificateInfo | None:
        settings = self.config.host
        if settings.tls == "off":
            return None
        if settings.tls == "files" and settings.tls_cert is not None:
            cert = self.config.resolve(settings.tls_cert)
        else:
            cert = self.config.state_dir / "tls" / tls.CERT_FILE_NAME
        return tls.certificate_info(cert) if cert.exists() else None

    async def _open_connector(self, config: ConnectorConfig) -> ConnectorRuntime:
        connector = await self._build(config)
        await self._open_when_reachable(config.name, connector)
        schema = await connector.schema()
        _check_deprovision(config, schema)
        return self._runtime(config, connector, schema, ConnectorState(config.name, up=True))

    async def _build(self, config: ConnectorConfig) -> Connector:
        """The configured connector, not yet open; closed with the host."""
        assert self.space is not None
        redact(config.token.get_secret_value())
        connector = build_connector(config, self.config.base_dir)
        connector.first_start = not await self.space.has_history(config.name)
        if config.delta_minutes and Capability.DELTA_IMPORT not in connector.capabilities:
            raise ConfigError(
                "this connector has no delta imports configured (see the README's "
                '"Delta imports")',
                f"connectors.{config.name}.delta_minutes",
            )
        self._connectors.append(connector)
        return connector

    def _runtime(
        self, config: ConnectorConfig, connector: Connector, schema: Schema, state: ConnectorState
    ) -> ConnectorRuntime:
        assert self.space is not None
        gate = RunGate()
        outcomes: Notifier[int, Outcome] = Notifier()
        importer = Importer(
            config.name,
            connector,
            self.space,
            gate,
            max_removals=config.import_max_removals,
            state=state,
            retry_cap_s=self.config.host.reconnect_max_s,
            metrics=self.metrics,
        )
        if Capability.DELTA_IMPORT in connector.capabilities:
            importer.deltas = DeltaImport(
                config.name, connector, self.space, gate, state, importer.full_import
            )
        exporter = Exporter(
            config.name,
            connector,
            self.space,
            config,
            gate,
            outcomes,
            metrics=self.metrics,
            alerts=self.alerts,
            carried=frozenset(a.name for a in schema.attributes if not a.imported),
            sealer=self.sealer,
        )
        if self.relay.cluster.shared:
            importer.leadership = self.relay
            if config.export_mode is ExportMode.SYNC:
                exporter.announce = functools.partial(self.relay.announce, config.name)
        return ConnectorRuntime(
            config.name,
            config,
            connector,
            schema,
            ResourceMapper(schema, config.deprovision),
            exporter,
            importer,
            Rules.of(config, schema, connector.capabilities, self.sealer),
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
        assert self.space is not None
        await self.relay.cluster.join()
        first_attempts: list[asyncio.Future[Exception | None]] = []
        for name, config in self.config.connectors.items():
            connector = await self._build(config)  # configuration errors raise here
            # A space an import once filled answers reads at once, even while the
            # start-up import runs or the target is down.
            self.states[name] = ConnectorState(
                name, filled=await self.space.has_finished_import(name), on_change=self._alert
            )
            opened: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()
            first_attempts.append(opened)
            self._tasks.append(asyncio.create_task(self._bring_up(config, connector, opened)))
        self._tasks.append(asyncio.create_task(self.alerts.run()))
        # The command line's replays and discards wake the exporters (queue.wakeup).
        self._tasks.append(
            asyncio.create_task(wakeup.listen(self.config.state_dir, self.wake_here))
        )
        self._tasks.append(asyncio.create_task(self.relay.cluster.run()))
        if first_attempts:
            done, _ = await asyncio.wait(first_attempts, timeout=START_GRACE_S)
            self._starting = False
            for attempt in done:
                if (error := attempt.result()) is not None:
                    raise error
        retention = Retention(self.space, self.config.host.retention_days)
        retention.request()  # a pass at start-up, then hourly
        self._tasks.append(asyncio.create_task(retention.run()))
        self._scheduler = start_scheduler(
            (
                (_ImportRequest(self, name), config.autosync_minutes)
                for name, config in self.config.connectors.items()
            ),
            retention,
            (
                (_ImportRequest(self, name, delta=True), config.delta_minutes)
                for name, config in self.config.connectors.items()
            ),
            aligned=self.config.shared_database,
        )

    def _alert(self, state: ConnectorState, before: Phase) -> None:
        """A connector became degraded, or recovered: tell the webhook."""
        if state.phase is Phase.DEGRADED:
            alert = Alert("connector.degraded", state.name, {"reason": state.reason})
        else:
            alert = Alert("connector.recovered", state.name, {"state": state.phase.value})
        self.alerts.send(alert)

    def wake(self) -> None:
        """Queued events changed outside a SCIM write: every exporter looks now, on
        every host of a shared space."""
        self.wake_here()
        self.relay.wake_all()

    def wake_here(self) -> None:
        """Every exporter of this host looks now."""
        for runtime in self.runtimes.values():
            runtime.wake_exporter()

    async def _bring_up(
        self,
        config: ConnectorConfig,
        connector: Connector,
        opened: asyncio.Future[Exception | None],
    ) -> None:
        """Open the connector, trying again with back-off for as long as its target is
        down, then run its workers; ``opened`` learns how the first attempt went."""
        name, state = config.name, self.states[config.name]
        delay_s = FIRST_RETRY_S
        kept = load_schema(self.config.state_dir, name)
        while True:
            try:
                await connector.open()
                await connector.validate()  # e.g. a script connector's validate role
                schema = await connector.schema()
                _check_deprovision(config, schema)
                check_passwords(config, schema)
                break
            except ConfigError as exc:  # waiting will not mend it: the operator must
                await connector.close()
                state.mark_degraded(f"configuration error: {exc}")
                if not self._starting:  # found after start-up: the host serves on without it
                    log.error(
                        "connector %s is not configured right: %s",
                        name,
                        exc,
                        extra={"action": "connector.config_error", "connector": name},
                    )
                _settle(opened, exc)  # at start-up: start-up fails with this error
                return
            except Exception as exc:  # a target down, refusing us, or a connector bug
                await connector.close()  # safe after a failed open, per the contract
                unreachable = isinstance(exc, TransientError)
                state.mark_degraded(
                    f"target unreachable: {exc}"
                    if unreachable
                    else f"cannot open: {type(exc).__name__}: {exc}"
                )
                log.warning(
                    "connector %s cannot open yet (%s); trying again in %.1f s",
                    name,
                    exc,
                    delay_s,
                    extra={"action": "connector.open_retry", "connector": name},
                )
                if kept is not None and name not in self.runtimes:
                    # Serve the space with the schema the target last reported; no
                    # worker runs until the connector opens (writes wait queued).
                    self.runtimes[name] = self._runtime(config, connector, kept, state)
                    state.up = True
                _settle(opened, None)
                await asyncio.sleep(delay_s)
                delay_s = min(delay_s * 2, self.config.host.reconnect_max_s)
        save_schema(self.config.state_dir, name, schema)
        runtime = self.runtimes.get(name)
        if runtime is None or runtime.schema != schema:
            runtime = self._runtime(config, connector, schema, state)
            self.runtimes[name] = runtime
        state.connected()
        _settle(opened, None)
        log.info(
            "connector %s is open", name, extra={"action": "connector.open", "connector": name}
        )
        if Capability.EXPORT in connector.capabilities:
            self._tasks.append(asyncio.create_task(runtime.exporter.run()))
        if Capability.IMPORT in connector.capabilities:
            if not self.relay.cluster.shared:
                runtime.importer.request()  # the start-up import
            else:  # only a new space's first import: then the cluster's schedule
                self._tasks.append(asyncio.create_task(runtime.importer.follow()))
            await runtime.importer.run()
        else:  # nothing to import: its space is what SCIM wrote
            state.filled = True
            state.serving()

    async def started(self) -> None:
        """Wait until start-up is over for every connector: each serves (its start-up
        import ended well) or is degraded (its target is down, its import failed).
        Serving does not need this; tests and tools that want a settled host do."""
        for state in self.states.values():
            await state.settled.wait()

    def next_import_at(self, name: str) -> datetime | None:
        """When the schedule next asks for the connector's import; None without one."""
        return None if self._scheduler is None else next_import_at(self._scheduler, name)

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
        await self.relay.cluster.close()
        for runtime in self.runtimes.values():
            await runtime.exporter.close()
        for connector in self._connectors:
            await connector.close()
        self._connectors = []
        if self.space is not None:
            await self.space.close()


class _ImportRequest:
    """The scheduler's handle on a connector's importer, which exists only once the
    connector is open: a request before that asks for nothing (the start-up import
    follows the opening anyway)."""

    def __init__(self, host: Host, name: str, *, delta: bool = False) -> None:
        self._host = host
        self.name = name
        self._delta = delta

    def request(self) -> None:
        runtime = self._host.runtimes.get(self.name)
        if runtime is None or Capability.IMPORT not in runtime.connector.capabilities:
            return
        if runtime.importer.leads:  # every host's schedule ticks; the leading one imports
            runtime.importer.request(delta=self._delta)


def _settle(future: asyncio.Future[Exception | None], outcome: Exception | None) -> None:
    if not future.done():
        future.set_result(outcome)


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
