"""The script connector through the running host: the Entra sequence gives the same
file as the CSV connector, an imported ECMA2Host export serves, and misbehaving
scripts never take the host down."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.acceptance import test_entra_sequence as entra
from tests.acceptance.conftest import Server, ecmahost
from tests.conftest import DEMO_CONFIG_DIR, EXT, TOKEN, csv_connector_toml

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "connectors" / "script" / "examples" / "csv-scripts"
FIXTURES = REPO / "tests" / "fixtures"
HOST = '[host]\ntls = "off"\nstate_dir = "state"\n'


def _script_connector_toml(scripts: dict[str, Path], settings: str = "", extra: str = "") -> str:
    """The demo connector as ``type = "script"``: same name, token and deprovisioning
    as ``csv_connector_toml``, target file in the state folder."""
    variable = "ECMAHOST_TEST_TOKEN_CSV"
    os.environ[variable] = TOKEN  # as csv_connector_toml does
    roles = "\n".join(f'{role} = "{path.as_posix()}"' for role, path in scripts.items())
    return f"""
[connectors.CSV]
type = "script"
token = "env:{variable}"
{extra}

[connectors.CSV.deprovision]
disable = "set_attribute"
disable_attribute = "IsActive"

[connectors.CSV.settings]
{settings}

[connectors.CSV.settings.scripts]
{roles}

[connectors.CSV.settings.parameters]
FileName_Global = "state/InputFile.txt"
Delimiter_Global = ";"
Encoding_Global = ""
"""


def _folder(root: Path, name: str) -> Path:
    """A configuration folder with the demo's Schema.xml and InputFile.txt."""
    folder = root / name
    (folder / "state").mkdir(parents=True)
    for file in ("Schema.xml", "InputFile.txt"):
        shutil.copyfile(DEMO_CONFIG_DIR / file, folder / file)
    return folder


@pytest.fixture
def snapshots(monkeypatch: pytest.MonkeyPatch) -> dict[Path, list[bytes]]:
    """Per target file, its bytes at every check of the Entra sequence."""
    taken: dict[Path, list[bytes]] = {}
    check = entra.Expected.check

    def check_and_keep(self: entra.Expected) -> None:
        check(self)
        taken.setdefault(self.path, []).append(self.path.read_bytes())

    monkeypatch.setattr(entra.Expected, "check", check_and_keep)
    return taken


def test_the_entra_sequence_writes_the_same_file_as_the_csv_connector(
    tmp_path: Path, server_factory: Callable[..., Server], snapshots: dict[Path, list[bytes]]
) -> None:
    examples = {role: EXAMPLES / f"{role}.py" for role in ("schema", "import", "export")}
    runs: list[tuple[Server, Path]] = []
    for kind, connector in (
        ("csv", csv_connector_toml()),
        ("script", _script_connector_toml(examples)),
    ):
        folder = _folder(tmp_path, kind)
        if kind == "script":  # the CSV connector copies its seed itself
            shutil.copyfile(folder / "InputFile.txt", folder / "state" / "InputFile.txt")
        config = folder / "ecmahost.toml"
        config.write_text(HOST + connector, encoding="utf-8")
        runs.append((server_factory(config), folder))
    # Side by side, to halve the wait: each host has its own folder and file.
    with ThreadPoolExecutor(len(runs)) as pool:
        for done in [pool.submit(entra.test_entra_sequence_end_to_end, *run) for run in runs]:
            done.result()
    csv_file, script_file = (folder / "state" / "InputFile.txt" for _, folder in runs)
    assert len(snapshots[script_file]) > 5
    assert snapshots[script_file] == snapshots[csv_file]
    assert script_file.read_bytes() == csv_file.read_bytes()


def test_an_imported_ecma2host_export_serves(
    tmp_path: Path, server_factory: Callable[..., Server]
) -> None:
    folder = _folder(tmp_path, "imported")
    config = folder / "ecmahost.toml"
    config.write_text(HOST, encoding="utf-8")
    source = FIXTURES / "Configuration - CSV.redacted.xml"
    imported = ecmahost(
        config, "connectors", "import-xml", str(source), "--output", str(config),
        "--use-python-examples",
    )  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    assert "Import Script holds a placeholder" in imported.stderr
    server = server_factory(config, env={"ECMAHOST_CSV_TOKEN": TOKEN})
    assert server.url().endswith("/ecma2host_CSV/scim")

    listed = server.request("GET", "/Users")
    assert listed.status == 200 and listed.body["totalResults"] == 4
    user = {"AzureObjectID": "imported-0001", "UserName": "new@contoso.example", "IsActive": True}
    created = server.request("POST", "/Users", {EXT: user})
    assert created.status == 201, created.body
    lines = (folder / "InputFile.txt").read_text(encoding="utf-8").splitlines()
    assert lines[-1] == '"imported-0001";"True";"";"";"";"new@contoso.example";""'


MODES = ("exit3", "hang", "half", "flood_stdout", "flood_stderr", "ok")


def test_misbehaving_exports_never_take_the_host_down(
    tmp_path: Path, server_factory: Callable[..., Server]
) -> None:
    folder = _folder(tmp_path, "misbehave")
    script = FIXTURES / "scripts" / "misbehave.py"
    connector = _script_connector_toml(
        {"schema": script, "import": script, "export": script},
        settings="timeout_s = 1.0\n[connectors.CSV.settings.run_step_parameters.export]\n"
        'Mode = "by_name"',
        extra="export_wait_s = 10\nretry_base_s = 120",  # no retry within the test
    )
    config = folder / "ecmahost.toml"
    config.write_text(HOST + connector, encoding="utf-8")
    server = server_factory(config)
    statuses = {}
    for number, mode in enumerate(MODES):
        user = {"AzureObjectID": f"misbehave-{number}", "DisplayName": mode}
        statuses[mode] = server.request("POST", "/Users", {EXT: user})
        answered = server.request("GET", "/Users")
        assert answered.status == 200, f"the host stopped answering after {mode}"
    assert {mode: response.status for mode, response in statuses.items()} == {
        "exit3": 503,
        "hang": 503,
        "half": 400,
        "flood_stdout": 400,
        "flood_stderr": 201,
        "ok": 201,  # and the host exports normally again
    }
    assert "exited with code 3" in statuses["exit3"].body["detail"]
    assert "boom: the target said no" in statuses["exit3"].body["detail"]
    assert "timed out after 1 s" in statuses["hang"].body["detail"]
    assert "line 1 is not JSON" in statuses["half"].body["detail"]
    assert "longer than" in statuses["flood_stdout"].body["detail"]
