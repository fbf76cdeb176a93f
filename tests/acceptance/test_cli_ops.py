"""The command line an operator scripts against: --version, --config on either side
of the command, paged export listings, replay/discard that refuse a wrong id, a
closed pipe, and read-only commands that run without the secrets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.acceptance.conftest import Server, ecmahost
from tests.conftest import EXT

CLI = [sys.executable, "-m", "ecmahost.engine.cli.main"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=60, check=False, env=env
    )


def create_users(server: Server, count: int) -> list[str]:
    anchors = [str(uuid.uuid4()) for _ in range(count)]
    for anchor in anchors:
        created = server.request(
            "POST", "/Users", {"schemas": [EXT], EXT: {"AzureObjectID": anchor}}
        )
        assert created.status == 201, created.body
    return anchors


def listed(config: Path, *args: str) -> tuple[list[dict[str, object]], str]:
    shown = ecmahost(config, "exports", "list", "--json", *args)
    assert shown.returncode == 0, shown.stderr
    return [json.loads(line) for line in shown.stdout.splitlines()], shown.stderr


def test_version() -> None:
    shown = run("--version")
    assert (shown.returncode, shown.stdout.strip()) == (0, f"ecmahost {version('ecmahost')}")


def test_config_after_the_command(server: Server) -> None:
    create_users(server, 1)
    before = run("--config", str(server.config), "exports", "list", "--json")
    after = run("exports", "list", "--json", "--config", str(server.config))
    assert before.returncode == after.returncode == 0, after.stderr
    assert after.stdout == before.stdout and len(after.stdout.splitlines()) == 1


def test_exports_list_pages_by_id(server: Server) -> None:
    anchors = create_users(server, 5)
    first, hint = listed(server.config, "--limit", "2")
    assert [e["anchor"] for e in first] == anchors[:2]
    assert f"--after {first[-1]['id']}" in hint
    second, _ = listed(server.config, "--limit", "2", "--after", str(first[-1]["id"]))
    last, hint = listed(server.config, "--limit", "2", "--after", str(second[-1]["id"]))
    assert [e["anchor"] for e in second + last] == anchors[2:]
    assert hint == ""  # the last page says nothing more follows


def test_exports_list_by_status_and_age(server: Server) -> None:
    create_users(server, 2)
    done, _ = listed(server.config, "--status", "done", "--since", "10m")
    assert len(done) == 2 and {e["status"] for e in done} == {"done"}
    assert listed(server.config, "--status", "failed")[0] == []
    assert listed(server.config, "--since", "2999-01-01")[0] == []
    wrong = ecmahost(server.config, "exports", "list", "--since", "yesterday")
    assert wrong.returncode == 2 and "yesterday" in wrong.stderr


@pytest.mark.parametrize("action", ["replay", "discard"])
def test_replay_or_discard_of_a_wrong_id_names_it(server: Server, action: str) -> None:
    create_users(server, 1)
    [event], _ = listed(server.config)
    refused = ecmahost(server.config, "exports", action, str(event["id"]), "999999")
    assert refused.returncode == 1
    assert "no export event 999999" in refused.stderr
    assert f"export event {event['id']} is done, not failed" in refused.stderr
    assert listed(server.config)[0][0]["status"] == "done"  # nothing changed


def test_a_closed_pipe_ends_quietly(server: Server) -> None:
    create_users(server, 30)
    with subprocess.Popen(
        [*CLI, "--config", str(server.config), "exports", "list", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=0,
    ) as listing:
        assert listing.stdout is not None and listing.stderr is not None
        listing.stdout.read(10)
        listing.stdout.close()  # as `| head -c 10` does
        errors = listing.stderr.read().decode()
        assert listing.wait(timeout=60) in (0, 141), errors
    assert "Traceback" not in errors and "BrokenPipe" not in errors


def test_read_only_commands_need_no_secrets(server: Server) -> None:
    create_users(server, 1)
    without = {k: v for k, v in os.environ.items() if not k.startswith("ECMAHOST_TEST_TOKEN")}
    for command in (["exports", "list"], ["cache", "CSV"], ["tenant-url", "CSV"]):
        shown = run("--config", str(server.config), *command, env=without)
        assert shown.returncode == 0, (command, shown.stderr)
    needs_token = run("--config", str(server.config), "test-connection", "CSV", env=without)
    assert needs_token.returncode == 2 and "ECMAHOST_TEST_TOKEN_CSV" in needs_token.stderr


def test_check_config_validates_without_secrets_or_serving(csv_config: Path) -> None:
    without = {k: v for k, v in os.environ.items() if not k.startswith("ECMAHOST_TEST_TOKEN")}
    checked = run("check-config", "--config", str(csv_config), env=without)
    assert (checked.returncode, checked.stdout.strip()) == (
        0,
        "configuration valid: 1 connector(s) CSV",
    )
    assert not (csv_config.parent / "state").exists()  # nothing served, nothing written
    csv_config.write_text(csv_config.read_text() + "bogus = 1\n")
    refused = run("check-config", "--config", str(csv_config), env=without)
    assert refused.returncode == 2 and "connectors.CSV.settings.bogus" in refused.stderr


def test_check_config_connect_reaches_each_target(csv_config: Path) -> None:
    (csv_config.parent / "state").mkdir()
    reached = ecmahost(csv_config, "check-config", "--connect")
    assert reached.returncode == 0, reached.stderr
    assert "connector CSV: reached" in reached.stdout
    csv_config.write_text(csv_config.read_text().replace('"state/InputFile.txt"', '"gone/x.txt"'))
    unreachable = ecmahost(csv_config, "check-config", "--connect")
    assert unreachable.returncode == 1
    assert "connector CSV: cannot be reached" in unreachable.stderr


def test_check_config_loads_the_operators_certificate(csv_config: Path) -> None:
    text = csv_config.read_text().replace(
        'tls = "off"', 'tls = "files"\ntls_cert = "c.pem"\ntls_key = "k.pem"'
    )
    csv_config.write_text(text)
    (csv_config.parent / "c.pem").write_text("not a certificate")
    (csv_config.parent / "k.pem").write_text("not a key")
    refused = ecmahost(csv_config, "check-config")
    assert refused.returncode == 2 and "c.pem is not a PEM certificate" in refused.stderr
