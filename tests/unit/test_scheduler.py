"""The scheduler only asks for imports, on the configured interval."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from ecmahost.connectors.memory.connector import MemoryConnector, MemorySettings
from ecmahost.engine.workers.gate import RunGate
from ecmahost.engine.workers.importer import Importer
from ecmahost.engine.workers.retention import Retention
from ecmahost.engine.workers.scheduler import next_import_at, start_scheduler


class _Space:
    """Never reached: the scheduler must not run an import itself."""


def _importer(name: str) -> Importer:
    connector = MemoryConnector(name, MemorySettings(), Path("."))
    return Importer(name, connector, _Space(), RunGate())  # type: ignore[arg-type]


async def test_one_interval_job_per_connector_that_only_requests() -> None:
    every_2h, never = _importer("A"), _importer("B")
    scheduler = start_scheduler([(every_2h, 120), (never, 0)])
    try:
        jobs = {job.id: job for job in scheduler.get_jobs()}
        assert set(jobs) == {"import:A"}
        assert jobs["import:A"].trigger.interval == timedelta(minutes=120)
        assert not every_2h._requested.is_set()
        await jobs["import:A"].func()
        await jobs["import:A"].func()  # asking twice before it runs is one request
        assert every_2h._requested.is_set()
        assert not never._requested.is_set()
    finally:
        scheduler.shutdown(wait=False)


async def test_next_import_at_is_the_jobs_next_run_and_none_without_a_schedule() -> None:
    scheduler = start_scheduler([(_importer("A"), 120), (_importer("B"), 0)])
    try:
        soon = datetime.now(UTC) + timedelta(minutes=120)
        found = next_import_at(scheduler, "A")
        assert found is not None and abs((found - soon).total_seconds()) < 5
        assert next_import_at(scheduler, "B") is None
    finally:
        scheduler.shutdown(wait=False)


async def test_retention_is_asked_hourly_and_only_asked() -> None:
    retention = Retention(_Space(), days=30)  # type: ignore[arg-type]
    scheduler = start_scheduler([], retention)
    try:
        [job] = scheduler.get_jobs()
        assert (job.id, job.trigger.interval) == ("retention", timedelta(hours=1))
        await job.func()
        assert retention._requested.is_set()
    finally:
        scheduler.shutdown(wait=False)
