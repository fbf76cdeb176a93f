"""The script connector's ``delta_import`` role, over a Python script reading a change
log: the current watermark, the changes since one (records and deletions) ending with
the new watermark, an expired watermark, and output that breaks the protocol."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from ecmahost.connectors.base import Capability, Delta, Record
from ecmahost.connectors.exceptions import PermanentError, WatermarkExpiredError
from ecmahost.connectors.script.connector import ScriptConnector, ScriptSettings

SCRIPT = str(Path(__file__).resolve().parents[2] / "fixtures" / "scripts" / "changelog.py")
ROLES = ("schema", "import", "export", "delta_import")

Make = Callable[..., Awaitable[ScriptConnector]]


def write_log(path: Path, changes: list[dict[str, Any]], purged: int | None = None) -> None:
    head = [{"purged_through": purged}] if purged is not None else []
    path.write_text("".join(json.dumps(c) + "\n" for c in head + changes), encoding="utf-8")


def put(seq: int, anchor: str, name: str) -> dict[str, Any]:
    return {"seq": seq, "anchor": anchor, "attributes": {"id": anchor, "name": name}}


@pytest.fixture
async def make(tmp_path: Path) -> AsyncIterator[Make]:
    opened: list[ScriptConnector] = []

    async def build(**scripts: Any) -> ScriptConnector:
        body = {
            "scripts": {role: [sys.executable, SCRIPT] for role in ROLES} | scripts,
            "parameters": {"Log": "log.jsonl"},
        }
        connector = ScriptConnector("Script", ScriptSettings.model_validate(body), tmp_path)
        await connector.open()
        opened.append(connector)
        return connector

    yield build
    for connector in opened:
        await connector.close()


async def deltas(connector: ScriptConnector, watermark: str) -> list[Delta]:
    return [change async for change in connector.delta_import(watermark)]


async def test_delta_lists_changes_since_the_watermark(tmp_path: Path, make: Make) -> None:
    log = tmp_path / "log.jsonl"
    write_log(log, [put(1, "a", "A"), put(2, "b", "B")])
    connector = await make()
    assert Capability.DELTA_IMPORT in connector.capabilities
    mark = await connector.watermark()
    assert json.loads(mark) == {"seq": 2}

    write_log(
        log,
        [
            put(1, "a", "A"),
            put(2, "b", "B"),
            put(3, "a", "A2"),
            {"seq": 4, "anchor": "b", "deleted": True},
            put(5, "c", "C"),
        ],
    )
    changes = await deltas(connector, mark)
    assert changes == [
        Delta("a", Record("a", {"id": "a", "name": "A2"}), mark),
        Delta("b", None, mark),
        Delta("c", Record("c", {"id": "c", "name": "C"}), '{"seq": 5}'),
    ]
    assert await deltas(connector, '{"seq": 5}') == []


async def test_an_expired_watermark_raises(tmp_path: Path, make: Make) -> None:
    write_log(tmp_path / "log.jsonl", [put(9, "a", "A")], purged=8)
    connector = await make()
    with pytest.raises(WatermarkExpiredError, match="purged"):
        await deltas(connector, '{"seq": 2}')


async def test_without_the_role_the_connector_has_no_deltas(make: Make) -> None:
    scripts = {
        "schema": [sys.executable, SCRIPT],
        "import": [sys.executable, SCRIPT],
        "export": [sys.executable, SCRIPT],
    }
    body = {"scripts": scripts, "parameters": {"Log": "log.jsonl"}}
    connector = ScriptConnector("Script", ScriptSettings.model_validate(body), Path("."))
    assert Capability.DELTA_IMPORT not in connector.capabilities
    assert Capability.DELTA_IMPORT not in ScriptConnector.capabilities


@pytest.mark.parametrize(
    ("output", "words"),
    [
        ('{"anchor": "a", "attributes": {"name": "A"}}', "without the new watermark"),
        ('{"watermark": 1}\n{"anchor": "a", "deleted": true}', "output after the watermark"),
        ('{"anchor": "a", "deleted": "yes", "x": 1}', "a deletion is an anchor and deleted: true"),
    ],
)
async def test_output_breaking_the_protocol_fails_the_delta(
    tmp_path: Path, make: Make, output: str, words: str
) -> None:
    (tmp_path / "log.jsonl").write_text("", encoding="utf-8")
    script = tmp_path / "broken.py"
    script.write_text(f"import sys\nsys.stdin.readline()\nprint({output!r})\n", encoding="utf-8")
    connector = await make(delta_import=[sys.executable, str(script)])
    with pytest.raises(PermanentError, match=words):
        await deltas(connector, "1")
