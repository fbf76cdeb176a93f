"""Loading the host configuration: secrets, validation errors that name the key,
paths relative to the configuration folder, and connector types."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from ecmahost.connectors.exceptions import ConfigError
from ecmahost.connectors.secrets import scrub
from ecmahost.engine.config import DEFAULT_CONFIG, ExportMode, Listen, config_path, load_config
from ecmahost.engine.registry import build_connector

TOKEN = "a-literal-token-0123"


def connector(name: str = "X", token: str = f'"{TOKEN}"', extra: str = "") -> str:
    return f'[connectors.{name}]\ntype = "memory"\ntoken = {token}\n{extra}\n'


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "conf"
    path.mkdir()
    return path


def write(folder: Path, text: str) -> Path:
    path = folder / "ecmahost.toml"
    path.write_text(text, encoding="utf-8")
    return path


def config_error(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value


# -- tokens and secrets -------------------------------------------------------------


def test_a_short_token_is_refused_naming_its_key(folder: Path) -> None:
    error = config_error(write(folder, connector(token='"abcdef"')))

    assert error.key == "connectors.X.token"
    assert "connectors.X.token" in str(error)
    assert "12 characters" in str(error)


def test_a_twelve_character_token_is_enough(folder: Path) -> None:
    config = load_config(write(folder, connector(token='"abcdefghijkl"')))

    assert config.connectors["X"].token.get_secret_value() == "abcdefghijkl"


def test_env_reference_reads_the_variable(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECMAHOST_TEST_TOKEN", "from-the-environment-1")

    config = load_config(write(folder, connector(token='"env:ECMAHOST_TEST_TOKEN"')))

    assert config.connectors["X"].token.get_secret_value() == "from-the-environment-1"


def test_env_reference_to_a_missing_variable_names_it(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ECMAHOST_NO_SUCH_TOKEN", raising=False)

    error = config_error(write(folder, connector(token='"env:ECMAHOST_NO_SUCH_TOKEN"')))

    assert error.key == "connectors.X.token"
    assert "ECMAHOST_NO_SUCH_TOKEN" in str(error)


def test_file_reference_resolves_against_the_config_folder(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (folder / "secrets").mkdir()
    (folder / "secrets" / "x.token").write_text("from-a-file-0123456\n", encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # relative to the file's folder, not the working one

    config = load_config(write(folder, connector(token='"file:secrets/x.token"')))

    assert config.connectors["X"].token.get_secret_value() == "from-a-file-0123456"


def test_file_reference_to_a_missing_file_names_the_key(folder: Path) -> None:
    error = config_error(write(folder, connector(token='"file:nope.token"')))

    assert error.key == "connectors.X.token"
    assert "nope.token" in str(error)


def test_a_literal_token_loads_with_a_warning(
    folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="ecmahost.engine.config"):
        config = load_config(write(folder, connector()))

    assert config.connectors["X"].token.get_secret_value() == TOKEN
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [getattr(r, "action", None) for r in warnings] == ["config.literal_secret"]
    assert getattr(warnings[0], "key", None) == "connectors.X.token"
    assert TOKEN not in caplog.text


def test_a_secret_reference_logs_no_warning(
    folder: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("ECMAHOST_TEST_TOKEN", "from-the-environment-1")

    with caplog.at_level(logging.WARNING, logger="ecmahost.engine.config"):
        load_config(write(folder, connector(token='"env:ECMAHOST_TEST_TOKEN"')))

    assert caplog.records == []


# -- validation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[host]\ncolour = "blue"\n', "host.colour"),
        (connector(extra='colour = "blue"'), "connectors.X.colour"),
        (
            connector() + '[connectors.X.deprovision]\nhide = "yes"\n',
            "connectors.X.deprovision.hide",
        ),
        ('colour = "blue"\n', "colour"),
    ],
)
def test_an_unknown_key_is_named(folder: Path, text: str, key: str) -> None:
    error = config_error(write(folder, text))

    assert error.key == key
    assert str(error) == f"{key}: unknown key"


@pytest.mark.parametrize("listen", ["localhost", "127.0.0.1:http", "127.0.0.1:70000", ""])
def test_a_bad_listen_address_is_refused(folder: Path, listen: str) -> None:
    error = config_error(write(folder, f'[host]\nlisten = "{listen}"\n'))

    assert error.key == "host.listen"
    assert "HOST:PORT" in str(error)


@pytest.mark.parametrize(
    ("listen", "host", "port"),
    [("0.0.0.0:8585", "0.0.0.0", 8585), ("[::1]:9000", "::1", 9000), (":8585", "127.0.0.1", 8585)],
)
def test_listen_parses_host_and_port(folder: Path, listen: str, host: str, port: int) -> None:
    config = load_config(write(folder, f'[host]\nlisten = "{listen}"\n'))

    assert config.host.listen_at == Listen(host, port)


def test_a_bad_value_names_its_key(folder: Path) -> None:
    error = config_error(write(folder, connector(extra='export_mode = "eventually"')))

    assert error.key == "connectors.X.export_mode"


def test_values_and_defaults_load(folder: Path) -> None:
    config = load_config(write(folder, connector(extra='export_mode = "queued"')))

    x = config.connector("X")
    assert (x.name, x.type, x.export_mode) == ("X", "memory", ExportMode.QUEUED)
    assert x.export_wait_s == 30.0


def test_an_unknown_connector_name_lists_the_configured_ones(folder: Path) -> None:
    config = load_config(write(folder, connector("A") + connector("B")))

    with pytest.raises(ConfigError, match=r"'C'.*A, B"):
        config.connector("C")


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.toml")


def test_invalid_toml_is_a_config_error(folder: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(write(folder, "[host\n"))


# -- paths ---------------------------------------------------------------------------


def test_a_relative_state_dir_resolves_against_the_config_folder(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    config = load_config(write(folder, '[host]\nstate_dir = "../var"\n'))

    assert config.state_dir == tmp_path / "var"
    assert config.base_dir == folder


def test_an_absolute_state_dir_is_kept(folder: Path, tmp_path: Path) -> None:
    state = tmp_path / "state-here"

    config = load_config(write(folder, f"[host]\nstate_dir = '{state}'\n"))

    assert config.state_dir == state


def test_config_path_prefers_the_explicit_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECMAHOST_CONFIG", "/from/env.toml")

    assert config_path("/explicit.toml") == Path("/explicit.toml")


def test_config_path_then_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECMAHOST_CONFIG", "/from/env.toml")

    assert config_path(None) == Path("/from/env.toml")


def test_config_path_then_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ECMAHOST_CONFIG", raising=False)

    assert config_path(None) == DEFAULT_CONFIG == Path("config/ecmahost.toml")


# -- connector types -----------------------------------------------------------------


def test_an_unknown_connector_type_names_the_key_and_the_known_types(folder: Path) -> None:
    text = f'[connectors.X]\ntype = "ldap-ish"\ntoken = "{TOKEN}"\n'
    config = load_config(write(folder, text))

    with pytest.raises(ConfigError) as info:
        build_connector(config.connector("X"), config.base_dir)

    assert info.value.key == "connectors.X.type"
    assert "'ldap-ish'" in str(info.value)
    assert "csv" in str(info.value)
    assert "memory" in str(info.value)


def test_a_bad_settings_key_is_named(folder: Path) -> None:
    config = load_config(write(folder, connector() + "[connectors.X.settings]\ncolour = 1\n"))

    with pytest.raises(ConfigError) as info:
        build_connector(config.connector("X"), config.base_dir)

    assert info.value.key == "connectors.X.settings.colour"
    assert "unknown key" in str(info.value)


def test_a_bad_settings_value_is_named(folder: Path) -> None:
    settings = '[connectors.X.settings.attributes]\nAzureObjectID = "Float"\n'
    config = load_config(write(folder, connector() + settings))

    with pytest.raises(ConfigError) as info:
        build_connector(config.connector("X"), config.base_dir)

    assert info.value.key == "connectors.X.settings.attributes.AzureObjectID"


def test_valid_settings_build_the_connector(folder: Path) -> None:
    config = load_config(write(folder, connector() + '[connectors.X.settings]\nanchor = "Id"\n'))

    built = build_connector(config.connector("X"), config.base_dir)

    assert (built.name, built.type_name, built.settings.anchor) == ("X", "memory", "Id")


# -- the connector space's database -------------------------------------------------


def test_without_a_database_url_the_space_is_the_sqlite_file_in_the_state_folder(
    folder: Path,
) -> None:
    config = load_config(write(folder, '[host]\nstate_dir = "state"\n'))

    assert config.database_url == f"sqlite+aiosqlite:///{folder / 'state' / 'ecmahost.db'}"
    assert not config.shared_database


def test_a_database_url_is_read_from_its_reference_and_never_printed(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPACE_URL", "postgresql://ecma:s3cret-pass@db.example:5432/space")

    # Read even where the other secrets are left unread: every command opening the
    # space needs it.
    config = load_config(
        write(folder, '[host]\ndatabase_url = "env:SPACE_URL"\n'), resolve_secrets=False
    )

    assert config.database_url == "postgresql+asyncpg://ecma:s3cret-pass@db.example:5432/space"
    assert config.shared_database
    assert scrub(f"connecting to {config.database_url}") == "connecting to ***"
    assert scrub("password s3cret-pass") == "password ***"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u:p@h/db", "must be a postgresql+asyncpg:// URL, got one starting 'mysql://'"),
        ("postgresql+asyncpg://u:p@h", "names no database"),
        ("postgresql+asyncpg://u:p@h:notaport/db", "is not a valid database URL"),
    ],
)
def test_a_bad_database_url_is_refused_naming_the_key_but_not_the_value(
    folder: Path, monkeypatch: pytest.MonkeyPatch, url: str, message: str
) -> None:
    monkeypatch.setenv("SPACE_URL", url)

    error = config_error(write(folder, '[host]\ndatabase_url = "env:SPACE_URL"\n'))

    assert error.key == "host.database_url" and message in str(error)
    assert ":p@" not in str(error)
