"""Where an initial password could linger, searched: every SCIM answer a test got,
the host's log, the export history (admin API and command line), every file in the
state folder (the connector space, its journal, the key) and the queue's payloads."""

from __future__ import annotations

import json
import sqlite3
import stat
from pathlib import Path
from typing import Any

from tests.acceptance.conftest import Response, Server, ecmahost

ADMIN_TOKEN = "admin-token-for-the-password-tests"


class Answers:
    """Every SCIM answer received through ``call``, as text."""

    def __init__(self, server: Server, name: str) -> None:
        self.server = server
        self.name = name
        self.texts: list[str] = []

    def call(self, method: str, path: str, body: Any = None) -> Response:
        response = self.server.request(method, path, body, name=self.name)
        self.texts.append(json.dumps(response.body, ensure_ascii=False))
        self.texts.append(json.dumps(response.body))
        return response

    def admin(self, path: str) -> Response:
        base = self.server.url(self.name).split("/ecma2host_")[0]
        response = self.server.request("GET", "", base=base + path, token=ADMIN_TOKEN)
        self.texts.append(json.dumps(response.body, ensure_ascii=False))
        return response


def queued_payloads(state_dir: Path) -> list[dict[str, Any]]:
    """Each export event's payload, as the connector space holds it."""
    with sqlite3.connect(state_dir / "ecmahost.db") as db:
        rows = db.execute("SELECT payload FROM export_events ORDER BY id").fetchall()
    return [json.loads(payload) for (payload,) in rows if payload is not None]


def object_rows(state_dir: Path) -> str:
    """The objects' attributes and confirmed states, and the value index, as text."""
    with sqlite3.connect(state_dir / "ecmahost.db") as db:
        rows = db.execute("SELECT attributes, confirmed FROM objects").fetchall()
        rows += db.execute("SELECT * FROM object_values").fetchall()
    return json.dumps(rows)


def state_bytes(state_dir: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(state_dir.rglob("*")) if p.is_file())


def history(config: Path, env: dict[str, str]) -> str:
    """``ecmahost exports list`` and ``show`` of every event."""
    listed = ecmahost(config, "exports", "list", "--json", env=env)
    texts = [listed.stdout, listed.stderr]
    for line in listed.stdout.splitlines():
        shown = ecmahost(config, "exports", "show", str(json.loads(line)["id"]), env=env)
        texts += [shown.stdout, shown.stderr]
    return "\n".join(texts)


def assert_nowhere(
    password: str, answers: Answers, state_dir: Path, history_text: str, log: str
) -> None:
    """The password is in no answer, log line, history line nor state file, in any of
    the forms text takes (as it is, JSON-escaped, UTF-16 as AD wants it)."""
    forms = {password, json.dumps(password)[1:-1], json.dumps(password, ensure_ascii=False)[1:-1]}
    texts = {"SCIM answers": "\n".join(answers.texts), "log": log, "history": history_text}
    for where, text in texts.items():
        for form in forms:
            assert form not in text, f"the password is in the {where}"
    stored = state_bytes(state_dir)
    for encoded in (password.encode(), password.encode("utf-16-le")):
        assert encoded not in stored, "the password is in the state folder"
    for payload in queued_payloads(state_dir):
        assert not any(isinstance(v, dict) and "$sealed" in v for v in payload.values()), payload
    assert "$sealed" not in object_rows(state_dir), "a sealed value is in the objects table"
    key = state_dir / "queue.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
