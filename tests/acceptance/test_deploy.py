"""The files in deploy/: the systemd unit passes ``systemd-analyze verify`` and keeps
its hardening, the container runs as a user with its state in a volume, and the
configuration samples are valid."""

from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ecmahost.engine.config import load_config

from tests.helpers import unavailable

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
UNIT = DEPLOY / "ecmahost.service"
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "StateDirectory": "ecmahost",
    "UMask": "0077",
    "CapabilityBoundingSet": "",
}
MAX_EXPOSURE = 2.5
"""systemd-analyze security's 0 (locked down) to 10 (exposed); the unit scores 1.8."""


def systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is not None:
        return found
    reason = "systemd-analyze is missing (Debian package systemd)"
    unavailable(reason)


def unit_settings(text: str) -> dict[str, str]:
    # The last assignment wins, as in systemd (SystemCallFilter= adds up; not read here).
    return dict(re.findall(r"^(\w+)=(.*)$", text, re.MULTILINE))


@pytest.fixture
def runnable_unit(tmp_path: Path) -> Path:
    """The unit with ExecStart= at this virtualenv's ecmahost and User=/Group= this
    test's user: verify checks that both exist."""
    text = UNIT.read_text(encoding="utf-8")
    executable = Path(sys.executable).parent / "ecmahost"
    assert executable.exists()
    user = pwd.getpwuid(os.getuid()).pw_name
    group = grp.getgrgid(os.getgid()).gr_name
    text, started = re.subn(
        r"^ExecStart=\S+", f"ExecStart={executable}", text, count=1, flags=re.MULTILINE
    )
    text = re.sub(r"^User=.*$", f"User={user}", text, flags=re.MULTILINE)
    text = re.sub(r"^Group=.*$", f"Group={group}", text, flags=re.MULTILINE)
    assert started == 1
    copy = tmp_path / UNIT.name
    copy.write_text(text, encoding="utf-8")
    return copy


def test_unit_passes_systemd_analyze_verify(runnable_unit: Path) -> None:
    checked = subprocess.run(
        [systemd_analyze(), "verify", str(runnable_unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # verify exits 0 after a key it ignores, so any word about our file is a failure.
    about_ours = [line for line in checked.stderr.splitlines() if runnable_unit.name in line]
    assert checked.returncode == 0 and not about_ours, checked.stderr


def test_unit_exposure_stays_low(runnable_unit: Path) -> None:
    checked = subprocess.run(
        [systemd_analyze(), "security", "--offline=yes", "--no-pager", str(runnable_unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    found = re.search(r"Overall exposure level for \S+: ([\d.]+)", checked.stdout)
    assert found, checked.stdout[-2000:] + checked.stderr
    assert float(found.group(1)) <= MAX_EXPOSURE


def test_unit_runs_as_a_dedicated_user_with_its_hardening() -> None:
    settings = unit_settings(UNIT.read_text(encoding="utf-8"))
    assert settings["User"] == "ecmahost" and settings["Group"] == "ecmahost"
    assert {key: settings.get(key) for key in HARDENING} == HARDENING
    assert int(settings["LimitNOFILE"]) >= 4096
    # Longer than serve's 60 s for requests in flight, or systemd kills the drain.
    assert int(settings["TimeoutStopSec"]) > 60
    assert settings["ExecStart"].endswith("--config /etc/ecmahost/ecmahost.toml serve")


def test_service_config_sample_is_valid() -> None:
    config = load_config(DEPLOY / "config" / "ecmahost.toml", resolve_secrets=False)
    assert config.state_dir == Path("/var/lib/ecmahost")
    assert config.host.tls == "self-signed"
    assert config.host.max_connections < 8192  # below the unit's LimitNOFILE


def test_compose_config_sample_is_valid() -> None:
    config = load_config(DEPLOY / "config" / "compose.toml", resolve_secrets=False)
    assert {c.type for c in config.connectors.values()} == {"csv", "sql", "ldap"}


def test_container_is_non_root_with_state_in_a_volume_and_a_health_check() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    instructions = re.findall(r"^([A-Z]+) (.*)$", dockerfile, re.MULTILINE)
    users = [arg for word, arg in instructions if word == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert ("VOLUME", '["/var/lib/ecmahost"]') in instructions
    health = next(arg for word, arg in instructions if word == "HEALTHCHECK")
    assert "/health" in dockerfile[dockerfile.index(health) :].split("\n\n")[0]
    # The image installs with the command CI runs, so what CI tests is what ships.
    assert "make install" in dockerfile
    ci = (DEPLOY.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert "make test" in ci  # which runs make install first
