"""Entra's initial password handed to an export script (on its stdin, in the change's
attributes), and a script that quotes it in its error and on stderr: neither Entra's
answer, the log, the export history nor the state folder shows it."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from pathlib import Path

from tests.acceptance.conftest import Server, ecmahost
from tests.acceptance.password_trail import ADMIN_TOKEN, Answers, assert_nowhere, history
from tests.conftest import CORE, EXT, TOKEN

SCRIPT = Path(__file__).resolve().parents[1] / "fixtures" / "scripts" / "passwords.py"


def test_initial_password_reaches_a_script_and_is_kept_nowhere(
    write_config: Callable[..., Path],
    server_factory: Callable[..., Server],
    config_dir: Path,
) -> None:
    connector = f"""
[connectors.Script]
type = "script"
token = "env:T_SCRIPT"
export_wait_s = 3
[connectors.Script.settings]
scripts = {{ schema = "{SCRIPT}", import = "{SCRIPT}", export = "{SCRIPT}" }}
"""
    host = 'log_level = "debug"\nadmin_token = "env:ADMIN_TOKEN"'
    config = write_config(connector, host)
    env = {"T_SCRIPT": TOKEN, "ADMIN_TOKEN": ADMIN_TOKEN}
    server = server_factory(config, env=env)
    answers = Answers(server, "Script")
    taken, refused = (f"Pw-{secrets.token_urlsafe(12)}" for _ in range(2))

    user = {"AzureObjectID": "ann", "DisplayName": "Ann"}
    created = answers.call("POST", "/Users", {"schemas": [CORE], "password": taken, EXT: user})
    assert created.status == 201, created.body
    received = [
        json.loads(line) for line in (config_dir / "received.jsonl").read_text().splitlines()
    ]
    assert received[-1]["attributes"]["export_password"] == taken

    user = {"AzureObjectID": "bob", "DisplayName": "refuse"}
    failed = answers.call("POST", "/Users", {"schemas": [CORE], "password": refused, EXT: user})
    assert failed.status == 400 and "too weak" in json.dumps(failed.body), failed.body
    assert answers.admin("/admin/exports").status == 200
    server.stop()
    log = "".join(server.stderr_lines)
    assert "too weak" in log and "refusing password ***" in log
    events = history(config, env)
    assert "too weak" in events
    listed = ecmahost(config, "exports", "list", "--failed", "--json", env=env)
    (failed_event,) = (json.loads(line)["id"] for line in listed.stdout.splitlines())
    assert ecmahost(config, "exports", "discard", str(failed_event), env=env).returncode == 0
    for password in (taken, refused):
        assert_nowhere(password, answers, config_dir / "state", events, log)
