"""A long import says how far it got, and its run is counted in the host's metrics."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from ecmahost.connectors.memory.connector import MemoryConnector, MemorySettings
from ecmahost.engine.metrics import HostMetrics
from ecmahost.engine.space import ConnectorSpace
from ecmahost.engine.workers import importer
from ecmahost.engine.workers.gate import RunGate
from ecmahost.engine.workers.importer import Importer


async def test_progress_is_logged_while_reading_and_the_run_is_counted(
    space: ConnectorSpace,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(importer, "PROGRESS_EVERY_S", 0.0)  # a line per record, not per 10 s
    connector = MemoryConnector("Mem", MemorySettings(), tmp_path)
    connector.objects = {f"a{i}": {"AzureObjectID": f"a{i}"} for i in range(3)}
    metrics = HostMetrics()
    caplog.set_level(logging.INFO, logger="ecmahost.engine.workers.importer")

    report = await Importer("Mem", connector, space, RunGate(), metrics=metrics).full_import()

    assert report.ok
    progress = [r for r in caplog.records if getattr(r, "action", None) == "import.progress"]
    assert [r.objects for r in progress] == [1, 2, 3]
    assert all(r.rate_per_s > 0 for r in progress)
    sample = metrics.registry.get_sample_value
    assert sample("ecmahost_imports_total", {"connector": "Mem", "result": "ok"}) == 1
    assert sample("ecmahost_import_objects_total", {"connector": "Mem", "change": "added"}) == 3
    assert sample("ecmahost_import_duration_seconds_count", {"connector": "Mem"}) == 1


async def test_a_short_import_logs_no_progress(
    space: ConnectorSpace, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    connector = MemoryConnector("Mem", MemorySettings(), tmp_path)
    connector.objects = {"a": {"AzureObjectID": "a"}}
    caplog.set_level(logging.INFO, logger="ecmahost.engine.workers.importer")
    await Importer("Mem", connector, space, RunGate()).full_import()
    assert not [r for r in caplog.records if getattr(r, "action", None) == "import.progress"]
