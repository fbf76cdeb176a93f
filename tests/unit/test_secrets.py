"""Redaction: what ``redact`` registers, what ``scrub`` replaces, and that loading the
configuration registers every secret it names before anything can print one."""

from __future__ import annotations

import json
import logging
import secrets
from pathlib import Path

import pytest
from ecmahost.connectors.secrets import redact, scrub
from ecmahost.engine.config import load_config
from ecmahost.engine.logs import JsonFormatter


def fresh(prefix: str = "") -> str:
    """A secret no other test registered."""
    return prefix + secrets.token_hex(8)


def test_scrub_replaces_the_secret_and_its_quoted_forms() -> None:
    secret = fresh('quo"te\\back-zoë-')
    redact(secret)
    for text in (secret, json.dumps(secret), json.dumps(secret, ensure_ascii=False), repr(secret)):
        assert secret not in scrub(text)
        assert "***" in scrub(text)
    assert json.dumps(secret)[1:-1] not in scrub(json.dumps({"x": secret}))


def test_a_secret_holding_another_is_replaced_whole() -> None:
    inner = fresh()
    outer = f"{inner}-and-more-{fresh()}"
    redact(inner)
    redact(outer)
    assert scrub(f"<{outer}>") == "<***>"


def test_a_short_secret_is_not_redacted_but_warned_of(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        redact("q7z", "connectors.X.settings.password")
    assert scrub("the q7z here") == "the q7z here"
    [warning] = [r for r in caplog.records if getattr(r, "action", None) == "secret.too_short"]
    assert warning.key == "connectors.X.settings.password"  # type: ignore[attr-defined]
    assert "q7z" not in warning.getMessage()


def test_load_config_registers_every_secret_it_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin, token, by_env, by_file, url_password = (fresh(f"s{n}-") for n in range(5))
    monkeypatch.setenv("TEST_SCRIPT_SECRET", by_env)
    (tmp_path / "pw.secret").write_text(by_file + "\n", encoding="utf-8")
    (tmp_path / "ecmahost.toml").write_text(
        f"""
[host]
admin_token = "{admin}"

[connectors.S]
type = "script"
token = "{token}"

[connectors.S.settings]
scripts = {{ schema = "s.py", import = "i.py", export = "e.py" }}
url = "postgresql+asyncpg://user:{url_password}@db.example/x"

[connectors.S.settings.secret_parameters]
Password = "file:pw.secret"

[connectors.S.settings.environment]
API_KEY = "env:TEST_SCRIPT_SECRET"
""",
        encoding="utf-8",
    )
    load_config(tmp_path / "ecmahost.toml")
    for secret in (admin, token, by_env, by_file, url_password):
        assert scrub(f"[{secret}]") == "[***]", secret


def test_the_json_log_never_shows_a_registered_secret() -> None:
    secret = fresh('with "quotes" ')
    redact(secret)
    record = logging.makeLogRecord({"msg": "failed: %s", "args": (secret,), "detail": secret})
    line = JsonFormatter().format(record)
    assert secret not in line and json.dumps(secret)[1:-1] not in line
    assert json.loads(line)["detail"] == "***"
