"""Every request shape Entra sends (reference/entra/REQUESTS.md), as JSON fixtures in
tests/fixtures/entra, replayed against the app over the sample users: the status, the
body (a subset match) and the state the target and the connector space end in."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from ecmahost.engine.space.store import object_id_for

from tests.conftest import DEMO_CONFIG_DIR, EXT, Scim

FIXTURES = sorted((Path(__file__).parents[1] / "fixtures" / "entra").glob("*.json"))
_ID = re.compile(r"\{id:([^}]+)\}")


def _sample_users() -> dict[str, dict[str, Any]]:
    with (DEMO_CONFIG_DIR / "InputFile.txt").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter=";"))
    return {
        row["AzureObjectID"]: {
            k: (v == "True" if k == "IsActive" else v) for k, v in row.items() if v != ""
        }
        for row in rows
    }


def _ids(value: Any, connector: str) -> Any:
    """Fixture text with ``{id:ANCHOR}`` replaced by that anchor's SCIM id."""
    text = json.dumps(value)
    return json.loads(_ID.sub(lambda m: object_id_for(connector, m.group(1)), text))


def _assert_subset(expected: Any, actual: Any, where: str = "body") -> None:
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: expected an object, got {actual!r}"
        for key, value in expected.items():
            assert key in actual, f"{where}.{key} is missing from {actual!r}"
            _assert_subset(value, actual[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), f"{where}: {actual!r}"
        for index, (want, got) in enumerate(zip(expected, actual, strict=True)):
            _assert_subset(want, got, f"{where}[{index}]")
    else:
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"


async def _space_state(scim: Scim, anchor: str) -> dict[str, Any] | None:
    status, body = await scim.call("GET", f'/Users?filter=AzureObjectID+eq+"{anchor}"')
    assert status == 200
    return body["Resources"][0][EXT] if body["Resources"] else None


@pytest.mark.parametrize("fixture", FIXTURES, ids=[f.stem for f in FIXTURES])
async def test_entra_request_shape(
    fixture: Path, make_scim: Callable[..., Awaitable[Scim]]
) -> None:
    scim = await make_scim(seed=_sample_users())
    case = _ids(json.loads(fixture.read_text(encoding="utf-8")), scim.name)
    request, expect = case["request"], case["expect"]

    status, body = await scim.call(request["method"], request["path"], request.get("body"))

    assert status == expect["status"], body
    if "body" in expect:
        _assert_subset(expect["body"], body)
    if isinstance(body, dict) and "detail" in body:
        assert "Traceback" not in body["detail"]
    for anchor, attributes in expect.get("state", {}).items():
        assert scim.memory.objects.get(anchor) == attributes, "the target"
        assert await _space_state(scim, anchor) == attributes, "the connector space"


def test_every_documented_shape_has_a_fixture() -> None:
    assert len(FIXTURES) >= 21
    for fixture in FIXTURES:
        case = json.loads(fixture.read_text(encoding="utf-8"))
        assert case["source"].startswith("reference/entra/REQUESTS.md")
