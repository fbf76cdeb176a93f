"""The script connector against scripts that misbehave, and the rules of its contract:
parameters and environment, time-outs, bounded output, protocol violations."""

from __future__ import annotations

import json
import shutil
import sys
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from ecmahost.connectors.base import Change, ChangeKind, DataType, Record
from ecmahost.connectors.exceptions import (
    ConfigError,
    ConflictError,
    PermanentError,
    TransientError,
)
from ecmahost.connectors.script.connector import ScriptConnector, ScriptSettings
from ecmahost.connectors.script.process import PASSED_THROUGH
from ecmahost.connectors.script.settings import effective_parameters

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "scripts"
REPO = Path(__file__).resolve().parents[3]
MISBEHAVE = str(FIXTURES / "misbehave.py")
MEMORY_CAP_BYTES = 24 * 1024 * 1024
"""Peak Python allocations allowed while a script prints 100 MB."""

Make = Callable[..., Awaitable[ScriptConnector]]


@pytest.fixture
async def make(tmp_path: Path) -> AsyncIterator[Make]:
    """Factory: an opened connector over ``misbehave.py`` (or the given scripts)."""
    opened: list[ScriptConnector] = []

    async def build(mode: str = "ok", role: str = "export", **settings: Any) -> ScriptConnector:
        body: dict[str, Any] = {
            "scripts": {r: MISBEHAVE for r in ("schema", "import", "export")},
            "parameters": {"Mode": mode, "Role": role},
            **settings,
        }
        connector = ScriptConnector("Script", ScriptSettings.model_validate(body), tmp_path)
        await connector.open()
        opened.append(connector)
        return connector

    yield build
    for connector in opened:
        await connector.close()


def _add(anchor: str = "a1", **attributes: Any) -> Change:
    return Change(ChangeKind.ADD, anchor, {"DisplayName": "Adele", **attributes})


async def _export_error(connector: ScriptConnector, *changes: Change) -> Exception:
    """The whole batch's failure: raised by export, never a success."""
    with pytest.raises((TransientError, PermanentError)) as caught:
        await connector.export(list(changes) or [_add()])
    return caught.value


# -- misbehaving exports ------------------------------------------------------------


async def test_a_crash_is_transient_with_the_stderr_tail(make: Make) -> None:
    error = await _export_error(await make("exit3"))
    assert isinstance(error, TransientError)
    assert "exited with code 3" in str(error)
    assert "boom: the target said no" in str(error)


async def test_a_hanging_script_is_killed_at_its_time_out(make: Make) -> None:
    connector = await make("hang", timeout_s=0.5)
    started = time.monotonic()
    error = await _export_error(connector)
    assert time.monotonic() - started < 5
    assert isinstance(error, TransientError)
    assert "timed out after 0.5 s and was killed" in str(error)
    assert "going to sleep" in str(error)


async def test_a_time_out_kills_the_whole_process_group(make: Make) -> None:
    connector = await make("hang_with_child", timeout_s=0.5)
    error = await _export_error(connector)
    assert "timed out" in str(error)
    child = int(str(error).split("child ")[1].split()[0])
    assert _dead_or_zombie(child), "the script's child outlived the time-out"


@pytest.mark.parametrize(
    ("mode", "expected", "words"),
    [
        ("half", PermanentError, "line 1 is not JSON"),
        ("garbage", PermanentError, "line 1 is not JSON"),
        ("missing", PermanentError, "1 of 1 changes have no result"),
        ("stranger", PermanentError, "a result for 'nobody'"),
        ("half_then_exit3", TransientError, "exited with code 3"),
    ],
)
async def test_broken_output_fails_the_batch(
    make: Make, mode: str, expected: type[Exception], words: str
) -> None:
    error = await _export_error(await make(mode))
    assert type(error) is expected
    assert words in str(error)
    assert "export script" in str(error)


async def test_a_bad_line_before_a_full_pipe_does_not_hang(make: Make) -> None:
    # With a small line cap, asyncio stops reading the pipe before the bad line is even
    # parsed; the rest must still be drained for the pipe to close.
    connector = await make("garbage_then_flood", max_line_bytes=1024, timeout_s=20)
    started = time.monotonic()
    error = await _export_error(connector)
    assert isinstance(error, PermanentError) and "line 1 is not JSON" in str(error)
    assert time.monotonic() - started < 5


async def test_a_100_mb_line_on_stdout_is_cut_off_in_bounded_memory(make: Make) -> None:
    connector = await make("flood_stdout")
    tracemalloc.start()
    try:
        error = await _export_error(connector)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(error, PermanentError)
    assert "longer than 4194304 bytes" in str(error)
    assert peak < MEMORY_CAP_BYTES


async def test_100_mb_on_stderr_keeps_only_a_tail(make: Make) -> None:
    connector = await make("flood_stderr")
    tracemalloc.start()
    try:
        results = await connector.export([_add()])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [r.ok for r in results] == [True]
    assert peak < MEMORY_CAP_BYTES


async def test_per_change_errors_keep_the_script_message(make: Make) -> None:
    connector = await make()
    results = await connector.export(
        [_add("a1"), _add("a2", Title="refuse"), _add("a3", Title="later"), _add("a4")]
    )
    assert [r.anchor for r in results] == ["a1", "a2", "a3", "a4"]
    assert results[0].ok and results[3].ok
    assert isinstance(results[1].error, PermanentError) and "no titles" in str(results[1].error)
    assert isinstance(results[2].error, TransientError) and "busy" in str(results[2].error)


async def test_values_the_schema_refuses_never_reach_the_script(make: Make) -> None:
    connector = await make("exit3")  # the script would fail any batch it got
    results = await connector.export(
        [_add("a1", IsActive="maybe"), _add("a2", Shoe="42"), Change(ChangeKind.ADD, "", {})]
    )
    assert all(isinstance(r.error, PermanentError) for r in results)
    assert "IsActive" in str(results[0].error) and "Shoe" in str(results[1].error)


async def test_renames_reach_the_script_only_when_enabled(make: Make) -> None:
    rename = Change(ChangeKind.REPLACE, "new", {"DisplayName": "A"}, previous_anchor="old")
    refusing = await make("exit3")  # the script would fail any batch it got
    [refused] = await refusing.export([rename])
    assert isinstance(refused.error, PermanentError)
    assert "renames are off for this connector (settings.rename)" in str(refused.error)
    [done] = await (await make(rename=True)).export([rename])
    assert done.ok


# -- misbehaving imports and schemas ------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "expected", "words"),
    [
        ("exit3", TransientError, "exited with code 3"),
        ("garbage", PermanentError, "line 1 is not JSON"),
    ],
)
async def test_a_failed_import_raises(
    make: Make, mode: str, expected: type[Exception], words: str
) -> None:
    connector = await make(mode, role="import")
    with pytest.raises(expected, match=words):
        [record async for record in connector.full_import()]


async def test_a_hanging_import_times_out(make: Make) -> None:
    connector = await make("hang", role="import", timeout_s=0.5)
    with pytest.raises(TransientError, match=r"import script .* timed out"):
        [record async for record in connector.full_import()]


async def test_an_import_streams_records_and_keeps_its_watermark(make: Make) -> None:
    connector = await make(role="none")
    records = [record async for record in connector.full_import()]
    assert records == [Record("a1", {"AzureObjectID": "a1", "DisplayName": "A", "IsActive": True})]
    assert connector.import_watermark == {"seen": 1, "at": "import"}


async def test_a_broken_schema_script_refuses_to_open(tmp_path: Path, make: Make) -> None:
    scripts = {"schema": [sys.executable, "-c", "print('{\"object_type\": 3}')"]}
    scripts |= {"import": MISBEHAVE, "export": MISBEHAVE}
    with pytest.raises(ConfigError, match=r"scripts\.schema: cannot read the schema: .*line 1"):
        await make(scripts=scripts)


# -- the contract: parameters, environment, commands -------------------------------


async def test_a_script_gets_its_parameters_and_a_limited_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dump = tmp_path / "dump.json"
    monkeypatch.setenv("ECMAHOST_TEST_PASSWORD", "s3cret-value")
    monkeypatch.setenv("ECMAHOST_TEST_UNRELATED", "not for scripts")
    settings = ScriptSettings.model_validate(
        {
            "scripts": {r: str(FIXTURES / "dump.py") for r in ("schema", "import", "export")},
            "parameters": {"Dump": str(dump), "FileName_Global": "g.txt", "Page_RunStep": ""},
            "run_step_parameters": {"export": {"FileName_RunStep": "export.txt"}},
            "secret_parameters": {"Password": "env:ECMAHOST_TEST_PASSWORD"},
            "environment": {"ORACLE_HOME": "/opt/oracle"},
        }
    )
    connector = ScriptConnector("Dumped", settings, tmp_path)
    await connector.open()
    await connector.export([Change(ChangeKind.ADD, "x", {"Age": "7"})])
    seen = json.loads(dump.read_text())
    schema, export = seen["schema"], seen["export"]
    assert schema["header"]["parameters"]["FileName"] == "g.txt"
    assert export["header"]["parameters"]["FileName"] == "export.txt"
    assert export["header"]["config_parameters"]["FileName_Global"] == "g.txt"
    assert export["header"]["parameters"]["Password"] == "s3cret-value"
    assert export["header"]["anchor"] == "Id"
    assert export["env"]["ECMAHOST_PARAM_FileName"] == "export.txt"
    assert export["env"]["ORACLE_HOME"] == "/opt/oracle"
    assert export["cwd"] == str(tmp_path)
    for env in (schema["env"], export["env"]):
        assert "s3cret-value" not in json.dumps(env), "a secret leaked into the environment"
        extra = {k for k in env if not k.startswith("ECMAHOST_")} - set(PASSED_THROUGH)
        assert extra <= {"ORACLE_HOME", "LC_CTYPE"}  # Python may set LC_CTYPE itself
        assert "ECMAHOST_TEST_UNRELATED" not in env
    schema_of = await connector.schema()
    assert schema_of.get("Age") is not None and schema_of.get("Age").data_type is DataType.INTEGER  # type: ignore[union-attr]
    await connector.close()


def test_run_step_values_override_global_ones_when_set() -> None:
    assert effective_parameters(
        {
            "FileName_Global": "g",
            "FileName_RunStep": "r",
            "Encoding_Global": "utf-8",
            "Encoding_RunStep": "",
            "PageSize": "50",
            "Delimiter_RunStep": ";",
        }
    ) == {"FileName": "r", "Encoding": "utf-8", "PageSize": "50", "Delimiter": ";"}


@pytest.mark.parametrize(
    ("scripts", "words"),
    [
        ({"schema": "no-such-program-here --flag"}, "'no-such-program-here' not found on PATH"),
        ({"schema": "missing/schema.py"}, "script not found"),
        ({"schema": "./missing-tool"}, "script not found"),
    ],
)
async def test_a_command_that_cannot_run_is_a_config_error(
    make: Make, scripts: dict[str, str], words: str
) -> None:
    with pytest.raises(ConfigError, match=words):
        await make(scripts={"import": MISBEHAVE, "export": MISBEHAVE, **scripts})


def test_a_missing_role_is_refused_by_the_settings() -> None:
    with pytest.raises(ValueError, match="needs a command for export"):
        ScriptSettings.model_validate({"scripts": {"schema": "a", "import": "b"}})


async def test_powershell_scripts_need_pwsh(make: Make, tmp_path: Path) -> None:
    (tmp_path / "schema.ps1").write_text("Write-Output 'unused'\n", encoding="utf-8")
    scripts = {"schema": "schema.ps1", "import": MISBEHAVE, "export": MISBEHAVE}
    # A PATH without pwsh, whether or not this machine has it.
    with pytest.raises(ConfigError, match=r"pwsh is not installed .*schema\.ps1 needs it"):
        await make(scripts=scripts, environment={"PATH": str(tmp_path)})


async def test_powershell_script_runs(make: Make, tmp_path: Path) -> None:
    if shutil.which("pwsh") is None:
        pytest.skip("pwsh is not installed")
    shutil.copy(FIXTURES / "schema.ps1", tmp_path / "schema.ps1")
    connector = await make(
        scripts={"schema": "schema.ps1", "import": MISBEHAVE, "export": MISBEHAVE}
    )
    schema = await connector.schema()
    assert schema.object_type == "Person" and schema.anchor.name == "AzureObjectID"


async def test_a_shell_line_runs_only_when_asked(make: Make, tmp_path: Path) -> None:
    lines = ['{"object_type": "Person"}', '{"name": "AzureObjectID", "anchor": true}']
    (tmp_path / "schema.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    pipe = "cat schema.jsonl | cat"
    with pytest.raises(ConfigError, match=r"exited with code 1.*No such file"):  # "|" is a file
        await make(scripts={"schema": pipe, "import": MISBEHAVE, "export": MISBEHAVE})
    shell = {"command": pipe, "shell": True}
    connector = await make(scripts={"schema": shell, "import": MISBEHAVE, "export": MISBEHAVE})
    assert [a.name for a in (await connector.schema()).attributes] == ["AzureObjectID"]


async def test_the_configuration_picks_anchor_and_attributes(make: Make) -> None:
    connector = await make(anchor="UserName", attributes=["DisplayName", "IsActive"])
    schema = await connector.schema()
    assert [a.name for a in schema.attributes] == ["UserName", "DisplayName", "IsActive"]
    with pytest.raises(ConfigError, match="not in the schema: shoe"):
        await make(attributes=["Shoe"])


async def test_conflicts_are_reported_as_conflicts(tmp_path: Path, make: Make) -> None:
    script = tmp_path / "conflict.py"
    script.write_text(
        "import json, sys\n"
        "header = json.loads(sys.stdin.readline())\n"
        "for line in sys.stdin:\n"
        "    anchor = json.loads(line)['anchor']\n"
        "    print(json.dumps({'anchor': anchor, 'status': 'error', 'conflict': True,"
        " 'message': 'UserName is taken'}))\n",
        encoding="utf-8",
    )
    connector = await make(
        scripts={"schema": MISBEHAVE, "import": MISBEHAVE, "export": str(script)}
    )
    [result] = await connector.export([_add()])
    assert isinstance(result.error, ConflictError) and "UserName is taken" in str(result.error)


# -- the shell example ---------------------------------------------------------------


async def test_the_shell_example_imports_and_exports(tmp_path: Path) -> None:
    if shutil.which("sh") is None or shutil.which("awk") is None:
        pytest.skip("sh and awk are needed for the shell example")
    examples = REPO / "connectors" / "script" / "examples" / "shell-scripts"
    for name in ("InputFile.txt", "Schema.xml"):
        shutil.copy(REPO / "config" / name, tmp_path / name)
    settings = ScriptSettings.model_validate(
        {
            "scripts": {
                r: ["sh", str(examples / f"{r}.sh")] for r in ("schema", "import", "export")
            },
            "parameters": {"FileName_Global": "InputFile.txt"},
            "rename": True,
        }
    )
    connector = ScriptConnector("Shell", settings, tmp_path)
    await connector.open()
    try:
        before = {r.anchor: r async for r in connector.full_import()}
        assert len(before) == 4
        adele = before["de4841f1-cb92-48e5-9056-29a36a0653c2"]
        assert adele.attributes["IsActive"] is True and "EmployeeId" not in adele.attributes
        bianca, alex = (
            "ba8c90b5-176c-499d-9dbb-dd7027dd9fd3",
            "b2c15a35-7a3e-4714-ab50-79e9dd1fb13d",
        )
        alex_attributes = {**before[alex].attributes, "AzureObjectID": "alex-2"}
        results = await connector.export(
            [
                _add("new-1", UserName="new@contoso.example", IsActive=False),
                Change(ChangeKind.REPLACE, adele.anchor, {**adele.attributes, "Title": "Boss"}),
                Change(ChangeKind.DELETE, bianca),
                _add("new-2", DisplayName='Say "hi"'),
                Change(ChangeKind.REPLACE, "alex-2", alex_attributes, previous_anchor=alex),
            ]
        )
        assert [r.ok for r in results] == [True, True, True, False, True]
        assert "cannot" in str(results[3].error)
        after = {r.anchor: r async for r in connector.full_import()}
        assert set(after) == set(before) - {bianca, alex} | {"new-1", "alex-2"}
        assert after[adele.anchor].attributes["Title"] == "Boss"
        assert after["alex-2"].attributes == alex_attributes
        assert after["new-1"].attributes == {
            "AzureObjectID": "new-1",
            "DisplayName": "Adele",
            "UserName": "new@contoso.example",
            "IsActive": False,
        }
    finally:
        await connector.close()


def _dead_or_zombie(pid: int) -> bool:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False
