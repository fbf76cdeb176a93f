"""What a serving host leaves on disk is its owner's only: the state folder 0700; the
database, its journal files, the TLS key and the CSV target 0600.

Run as an unprivileged user: as root every file is readable anyway, so a test that
only looked at modes would miss nothing a real attacker could not see. Under root
the server runs as ``$ECMAHOST_TEST_USER`` (CI creates ``ecmahost-ci``)."""

from __future__ import annotations

import os
import pwd
import shutil
import ssl
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.acceptance.conftest import Server
from tests.conftest import DEMO_CONFIG_DIR, EXT, csv_connector_toml
from tests.helpers import unavailable


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _as_test_user() -> tuple[tuple[str, ...], int | None]:
    """The command prefix that runs the server unprivileged, and that user's uid."""
    if os.geteuid() != 0:
        return (), None  # already unprivileged
    user = os.environ.get("ECMAHOST_TEST_USER")
    if not user:
        reason = "running as root: set ECMAHOST_TEST_USER to an unprivileged user"
        unavailable(reason)
    uid = pwd.getpwnam(user).pw_uid
    return ("setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--"), uid


@pytest.fixture
def user_folder() -> Iterator[tuple[Path, tuple[str, ...], int]]:
    """A folder the server's user can write, holding the demo's Schema.xml and
    InputFile.txt and a configuration (state in ``state/``, self-signed TLS)."""
    prefix, uid = _as_test_user()
    folder = Path(tempfile.mkdtemp(prefix="ecmahost-modes-"))
    for name in ("Schema.xml", "InputFile.txt"):
        shutil.copy(DEMO_CONFIG_DIR / name, folder / name)
    (folder / "ecmahost.toml").write_text(
        f'[host]\ntls = "self-signed"\nstate_dir = "state"\n{csv_connector_toml()}',
        encoding="utf-8",
    )
    # A state folder an older version made 0755 is tightened too.
    (folder / "state").mkdir(mode=0o755)
    (folder / "state").chmod(0o755)
    if uid is not None:
        for path in (folder, *folder.iterdir()):
            os.chown(path, uid, -1)
    yield folder, prefix, os.geteuid() if uid is None else uid
    shutil.rmtree(folder, ignore_errors=True)


def _wide_open_umask() -> None:
    # The host must not count on the umask it inherits.
    os.umask(0)


def test_state_files_are_readable_by_their_owner_only(
    user_folder: tuple[Path, tuple[str, ...], int], server_factory: Callable[..., Server]
) -> None:
    folder, prefix, uid = user_folder
    server = server_factory(
        folder / "ecmahost.toml", "--tls", "self-signed", prefix=prefix, preexec_fn=_wide_open_umask
    )
    server.ssl_context = ssl._create_unverified_context()
    # A create appends to the target; a change rewrites it through a new file.
    created = server.request("POST", "/Users", {EXT: {"AzureObjectID": "m-1", "DisplayName": "M"}})
    assert created.status == 201, created.body
    changed = server.request(
        "PATCH",
        f"/Users/{created.body['id']}",
        {"Operations": [{"op": "Replace", "path": "active", "value": False}]},
    )
    assert changed.status in (200, 204), changed.body
    state = folder / "state"

    # While serving: the journal files exist only then.
    files = {path.name: _mode(path) for path in state.rglob("*") if path.is_file()}
    assert state.stat().st_uid == uid, "the server ran as the unprivileged user"
    assert _mode(state) == 0o700
    for name in ("ecmahost.db", "ecmahost.db-wal", "ecmahost.db-shm", "InputFile.txt"):
        assert files.get(name) == 0o600, (name, files)
    assert _mode(state / "tls" / "key.pem") == 0o600
    # The certificate is public (sent to every client); the folders hide it anyway.
    files.pop("cert.pem")
    leaky = {name: oct(mode) for name, mode in files.items() if mode & 0o077}
    assert not leaky, "group or other may read or write these"
