"""A script that prints its secret parameter and secret environment value: neither
reaches an error message (which goes to Entra and the log) in any failure."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import pytest
from ecmahost.connectors.base import Change, ChangeKind
from ecmahost.connectors.exceptions import EcmahostError
from ecmahost.connectors.script.connector import ScriptConnector, ScriptSettings

LEAKY = str(Path(__file__).resolve().parents[2] / "fixtures" / "scripts" / "leaky.py")


@pytest.fixture
async def leaky(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ScriptConnector:
    monkeypatch.setenv("LEAKY_PASSWORD", f'pa"ss\\{secrets.token_hex(6)}')
    monkeypatch.setenv("LEAKY_ENV", f"env-{secrets.token_hex(6)}")
    settings = ScriptSettings.model_validate(
        {
            "scripts": {r: LEAKY for r in ("schema", "import", "export")},
            "secret_parameters": {"Password": "env:LEAKY_PASSWORD"},
            "environment": {"LEAKY_SECRET": "env:LEAKY_ENV"},
        }
    )
    connector = ScriptConnector("Leaky", settings, tmp_path)
    await connector.open()
    return connector


@pytest.mark.parametrize("mode", ["crash", "message", "garbage"])
async def test_export_errors_never_show_the_secrets(leaky: ScriptConnector, mode: str) -> None:
    change = Change(ChangeKind.ADD, "a1", {"DisplayName": mode})
    try:
        results = await leaky.export([change])
    except EcmahostError as exc:
        text = str(exc)
    else:
        [result] = results
        assert result.error is not None
        text = str(result.error)
    assert "***" in text, text  # the script did print them: they were replaced
    assert_no_secret(text)


async def test_import_errors_never_show_the_secrets(leaky: ScriptConnector, tmp_path: Path) -> None:
    (tmp_path / "fail-import").touch()
    with pytest.raises(EcmahostError) as failed:
        async for _ in leaky.full_import():
            pass
    assert "leaking ***" in str(failed.value)
    assert_no_secret(str(failed.value))


def assert_no_secret(text: str) -> None:
    for name in ("LEAKY_PASSWORD", "LEAKY_ENV"):
        secret = os.environ[name]
        for form in (secret, json.dumps(secret)[1:-1], repr(secret)[1:-1]):
            assert form not in text, (name, text)
