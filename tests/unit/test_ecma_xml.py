"""``ecmahost connectors import-xml``: an ECMA2Host connector export as ecmahost TOML."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from ecmahost.connectors.exceptions import ConfigError
from ecmahost.connectors.script.connector import ScriptSettings
from ecmahost.engine.cli.ecma_xml import EXAMPLES_DIR, import_xml
from ecmahost.engine.cli.main import main
from ecmahost.engine.config import ConnectorConfig

SAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "Configuration - CSV.redacted.xml"
SECRETS = ("tok-0123456789-very-secret", "AQAAANCMnd8BFdERjHoAwE-encrypted-blob")


Edit = tuple[str, str]
"""A regular expression (one match, in the whole file) and the text that replaces it."""


def _variant(tmp_path: Path, *edits: Edit) -> Path:
    """The sample with each edit applied once."""
    text = SAMPLE.read_text(encoding="utf-8")
    for pattern, new in edits:
        text, count = re.subn(pattern, lambda _, new=new: new, text, count=1, flags=re.S)
        assert count == 1, pattern
    path = tmp_path / "export.xml"
    path.write_text(text, encoding="utf-8")
    return path


def _literal(old: str, new: str) -> Edit:
    return re.escape(old), new


def _set(name: str, new: str) -> Edit:
    """Set the value of the first parameter called ``name``."""
    inside = r"(?:(?!</Parameter>).)*?"  # stays within that parameter
    pattern = rf"<Name>{re.escape(name)}</Name>{inside}(?:<Value>[^<]*</Value>|<Value />)"
    text = SAMPLE.read_text(encoding="utf-8")
    match = re.search(pattern, text, re.S)
    assert match, name
    block = match.group(0)
    value_at = block.rfind("<Value")
    return re.escape(block), f"{block[:value_at]}<Value>{new}</Value>"


def _redacted(name: str) -> str:
    """The placeholder text of the script parameter ``name``."""
    match = re.search(
        rf"<Name>{re.escape(name)}</Name>.*?<Value>(\[REDACTED[^<]*)</Value>",
        SAMPLE.read_text(encoding="utf-8"),
        re.S,
    )
    assert match, name
    return match.group(1)


def _connector(toml_text: str, name: str = "CSV") -> dict[str, Any]:
    return dict(tomllib.loads(toml_text)["connectors"][name])


def test_the_sample_becomes_a_script_connector(tmp_path: Path) -> None:
    output = tmp_path / "ecmahost.toml"
    done = import_xml(SAMPLE, output, use_python_examples=True)
    assert done.names == ("CSV",)
    table = _connector(output.read_text(encoding="utf-8"))
    assert table["type"] == "script"
    assert table["token"] == "env:ECMAHOST_CSV_TOKEN"
    assert table["autosync_minutes"] == 120
    assert table["export_batch_size"] == 5000
    assert table["deprovision"] == {"disable": "none", "delete": "delete"}
    settings = table["settings"]
    assert settings["object_type"] == "Person" and settings["anchor"] == "AzureObjectID"
    assert settings["attributes"] == [
        "AzureObjectID", "DisplayName", "Email", "EmployeeId", "IsActive", "Title", "UserName"
    ]  # fmt: skip
    assert settings["timeout_s"] == 300
    assert settings["scripts"] == {
        "schema": "CSV-scripts/schema.py",
        "import": "CSV-scripts/import.py",
        "export": "CSV-scripts/export.py",
    }
    assert settings["parameters"] == {
        "FileName_Global": "InputFile.txt",
        "Delimiter_Global": ";",
        "Encoding_Global": "",
    }
    steps = settings["run_step_parameters"]
    assert steps["import"]["FileName_RunStep"] == "InputFile.txt"
    assert steps["import"]["PageSizeFullImport"] == "5000"
    assert steps["export"]["PageSizeExport"] == "5000"
    # The result is a valid connector table of a valid script connector.
    ConnectorConfig.model_validate({**table, "name": "CSV", "token": "x" * 20})
    ScriptSettings.model_validate(settings)
    for name in ("csvtarget.py", "schema.py", "import.py", "export.py"):
        copied = (tmp_path / "CSV-scripts" / name).read_bytes()
        assert copied == (EXAMPLES_DIR / name).read_bytes()


def test_what_is_not_carried_over_is_said_twice(tmp_path: Path) -> None:
    done = import_xml(SAMPLE, tmp_path / "ecmahost.toml", use_python_examples=True)
    warnings = "\n".join(done.warnings)
    for script in ("Import Script", "Export Script", "Schema Script", "Common Module Script"):
        assert f"{script} holds a placeholder, not a script" in warnings
    assert "TLS certificate" in warnings
    comments = [line for line in done.toml.splitlines() if line.startswith("#")]
    for warning in done.warnings:
        assert any(warning.split(": ", 1)[1] in line for line in comments), warning
    notes = "\n".join(comments)
    assert "execution timeout in minutes (0 \u2013 disabled) = 0" in notes  # an en dash
    assert "SoftDelete=None, HardDelete=TreatAsHard" in notes


def test_placeholders_without_the_examples_are_refused(tmp_path: Path) -> None:
    output = tmp_path / "ecmahost.toml"
    with pytest.raises(ConfigError, match=r"placeholders.*--use-python-examples"):
        import_xml(SAMPLE, output)
    assert not output.exists() and not (tmp_path / "CSV-scripts").exists()


def test_real_script_bodies_are_written_and_referenced(tmp_path: Path) -> None:
    bodies = {
        name: f"# {name} in PowerShell\nWrite-Output 'x'\n"
        for name in ("Import", "Export", "Schema")
    }
    edits = [_literal(_redacted(f"{name} Script"), body) for name, body in bodies.items()]
    edits.append(_literal(_redacted("Common Module Script"), "function Get-Thing {}\n"))
    edits.append(_set("Begin Export Script", "Write-Output 'open'"))
    done = import_xml(_variant(tmp_path, *edits), tmp_path / "out.toml", tmp_path / "ps")
    settings = _connector(done.toml)["settings"]
    assert settings["scripts"] == {
        "import": "ps/import.ps1",
        "export": "ps/export.ps1",
        "begin_export": "ps/begin_export.ps1",
        "schema": "ps/schema.ps1",
    }
    assert (tmp_path / "ps" / "import.ps1").read_text() == bodies["Import"]
    assert (
        tmp_path / "ps" / "xADSyncPSConnectorModule.psm1"
    ).read_text() == "function Get-Thing {}\n"
    assert any("adapt them to ecmahost's JSON Lines contract" in w for w in done.warnings)


def test_secrets_are_never_written_or_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token, blob = SECRETS
    source = _variant(
        tmp_path,
        _literal("<SecretToken></SecretToken>", f"<SecretToken>{token}</SecretToken>"),
        _set("Password", blob),
    )
    output = tmp_path / "out.toml"
    code = main(
        ["connectors", "import-xml", str(source), "--output", str(output), "--use-python-examples"]
    )
    printed = capsys.readouterr()
    assert code == 0
    written = output.read_text(encoding="utf-8")
    for secret in SECRETS:
        assert secret not in printed.out + printed.err + written
    assert _connector(written)["settings"]["secret_parameters"] == {
        "Password": "env:ECMAHOST_CSV_PASSWORD"
    }
    assert "set ECMAHOST_CSV_PASSWORD" in printed.err
    assert "the secret token is not carried over; set ECMAHOST_CSV_TOKEN" in printed.err


def test_unsupported_choices_become_warnings(tmp_path: Path) -> None:
    source = _variant(
        tmp_path,
        _set("Export Type", "AttributeUpdate"),
        _set("Enable Delta Import", "1"),
        _set("Partition Script", "Write-Output 'p'"),
        _set("Enable Object Rename", "1"),
        _literal("<Name>FullImport</Name>", "<Name>Delta Import</Name>"),
        _literal("<SoftDelete>None</SoftDelete>", "<SoftDelete>SetAttribute</SoftDelete>"),
        _literal(
            "<SoftDeleteStatusAttribute />",
            "<SoftDeleteStatusAttribute>IsActive</SoftDeleteStatusAttribute>",
        ),
    )
    done = import_xml(source, tmp_path / "out.toml", use_python_examples=True)
    warnings = "\n".join(done.warnings)
    assert "Export Type AttributeUpdate: ecmahost exports whole objects" in warnings
    assert "Enable Delta Import = 1: not supported" in warnings
    assert "Partition Script: not supported" in warnings
    assert "run profile 'Delta Import': ecmahost runs full imports only" in warnings
    assert "Object Rename" not in warnings
    table = _connector(done.toml)
    assert table["settings"]["rename"] is True
    assert table["deprovision"]["disable"] == "set_attribute"
    assert table["deprovision"]["disable_attribute"] == "IsActive"
    # Without the FullImport run profile, the connector-level RunStep values are used.
    assert "PageSizeFullImport" in table["settings"]["run_step_parameters"]["import"]


def test_output_is_added_to_an_existing_configuration(tmp_path: Path) -> None:
    output = tmp_path / "ecmahost.toml"
    output.write_text('[host]\ntls = "off"\n', encoding="utf-8")
    import_xml(SAMPLE, output, use_python_examples=True)
    parsed = tomllib.loads(output.read_text(encoding="utf-8"))
    assert parsed["host"] == {"tls": "off"} and "CSV" in parsed["connectors"]
    with pytest.raises(ConfigError, match="already has a connector 'CSV'"):
        import_xml(SAMPLE, output, use_python_examples=True)


def test_an_edited_script_file_is_never_overwritten(tmp_path: Path) -> None:
    edited = tmp_path / "CSV-scripts" / "import.py"
    edited.parent.mkdir()
    edited.write_text("# my own changes\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="exists with other content"):
        import_xml(SAMPLE, tmp_path / "out.toml", use_python_examples=True)
    assert edited.read_text(encoding="utf-8") == "# my own changes\n"
    assert not (tmp_path / "out.toml").exists()


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, "cannot read"),
        (b"<Configuration><Connectors>", "not well-formed XML"),
        (b"<Schema/>", "root element is <Schema>"),
        (b"<Configuration/>", "no <Connectors>/<Connector>"),
    ],
)
def test_an_unreadable_file_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes | None, words: str
) -> None:
    source = tmp_path / "export.xml"
    if content is not None:
        source.write_bytes(content)
    assert main(["connectors", "import-xml", str(source)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ecmahost: error: ") and words in lines[0]


def test_other_connector_libraries_are_refused(tmp_path: Path) -> None:
    source = _variant(
        tmp_path,
        _literal("Microsoft.IAM.Connector.PowerShell", "Microsoft.IAM.Connector.GraphConnector"),
    )
    with pytest.raises(ConfigError, match="GraphConnector; only PowerShell, Generic SQL and"):
        import_xml(source, use_python_examples=True)


def test_stdout_gets_the_table_with_absolute_script_paths(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["connectors", "import-xml", str(SAMPLE), "--use-python-examples"]) == 0
    printed = capsys.readouterr()
    scripts = _connector(printed.out)["settings"]["scripts"]
    assert scripts["import"] == (tmp_path / "CSV-scripts" / "import.py").as_posix()
    assert "ecmahost: warning: CSV: Import Script holds a placeholder" in printed.err
