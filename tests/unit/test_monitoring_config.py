"""The [host] keys of monitoring: metrics_listen, log_format, notify_url."""

from __future__ import annotations

from pathlib import Path

import pytest
from ecmahost.connectors.exceptions import ConfigError
from ecmahost.engine.config import load_config


def test_defaults_are_json_logs_no_scrape_address_and_no_webhook(tmp_path: Path) -> None:
    host = load_config(_write(tmp_path, "")).host
    assert (host.log_format, host.metrics_listen, host.notify_url) == ("json", None, None)


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ('metrics_listen = "localhost"', "host.metrics_listen"),
        ('log_format = "xml"', "host.log_format"),
        ('notify_url = "env:ECMAHOST_TEST_NO_SUCH_VARIABLE"', "host.notify_url"),
    ],
)
def test_a_bad_value_names_its_key(tmp_path: Path, line: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, line))
    assert info.value.key == key


def test_the_webhook_url_is_a_secret_read_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ECMAHOST_TEST_HOOK", "https://hooks.example.org/x?key=k")
    host = load_config(_write(tmp_path, 'notify_url = "env:ECMAHOST_TEST_HOOK"')).host
    assert host.notify_url is not None
    assert host.notify_url.get_secret_value() == "https://hooks.example.org/x?key=k"
    assert "key=k" not in repr(host)


def _write(tmp_path: Path, host: str) -> Path:
    path = tmp_path / "ecmahost.toml"
    path.write_text(f"[host]\n{host}\n", encoding="utf-8")
    return path
