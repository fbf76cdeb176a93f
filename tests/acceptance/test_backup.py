"""``ecmahost backup PATH`` while 16 clients write over HTTP: the copy, restored,
holds every write the host acknowledged before the backup began."""

from __future__ import annotations

import json
import shutil
import stat
import threading
import time
import uuid
from pathlib import Path

from tests.acceptance.conftest import Server, ecmahost
from tests.conftest import EXT

WRITERS = 16
LOAD_BEFORE_S = 1.5
LOAD_AFTER_S = 1.0


class Writers:
    """Clients creating users until stopped; each acknowledged create is kept with
    the moment its answer arrived."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.acknowledged: list[tuple[float, str]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._write) for _ in range(WRITERS)]

    def __enter__(self) -> Writers:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def _write(self) -> None:
        while not self._stop.is_set():
            anchor = str(uuid.uuid4())
            user = {"AzureObjectID": anchor, "UserName": f"{anchor}@contoso.example"}
            body = {"schemas": [EXT], EXT: user}
            response = self.server.request("POST", "/Users", body)
            with self._lock:
                if response.status == 201:
                    self.acknowledged.append((time.monotonic(), anchor))
                else:
                    self.errors.append(f"{response.status} {response.body}")


def restored_anchors(config: Path, backup: Path, into: Path) -> set[str]:
    """Restore ``backup`` as the database of a copy of ``config`` and read it back."""
    (into / "state").mkdir(parents=True)
    shutil.copy(backup, into / "state" / "ecmahost.db")
    restored_config = into / config.name
    shutil.copy(config, restored_config)
    dumped = ecmahost(restored_config, "cache", "CSV")
    assert dumped.returncode == 0, dumped.stderr
    return {json.loads(line)["anchor"] for line in dumped.stdout.splitlines()}


def test_backup_under_load_restores_every_acknowledged_write(
    server: Server, tmp_path: Path
) -> None:
    target = tmp_path / "backups" / "ecmahost-backup.db"
    target.parent.mkdir()
    with Writers(server) as writers:
        time.sleep(LOAD_BEFORE_S)
        backup_started = time.monotonic()
        taken = ecmahost(server.config, "backup", str(target))
        backup_finished = time.monotonic()
        time.sleep(LOAD_AFTER_S)
    assert taken.returncode == 0, taken.stderr
    assert not writers.errors, writers.errors[:3]
    before = {anchor for at, anchor in writers.acknowledged if at < backup_started}
    after = {anchor for at, anchor in writers.acknowledged if at > backup_finished}
    assert len(before) >= WRITERS and after, "the backup ran while clients wrote"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]  # no temp left

    restored = restored_anchors(server.config, target, tmp_path / "restored")
    assert before <= restored, f"{len(before - restored)} acknowledged writes missing"
    assert not after & restored  # a snapshot: nothing written once it was done


def test_backup_of_a_missing_database_is_one_line(tmp_path: Path, csv_config: Path) -> None:
    taken = ecmahost(csv_config, "backup", str(tmp_path / "copy.db"))
    assert taken.returncode == 2
    assert taken.stderr.strip().endswith("nothing to back up")
    assert not (tmp_path / "copy.db").exists()
