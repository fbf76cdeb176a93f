"""Two hosts, each with its own connector space, serving one CSV file: creates,
patches and deletes sent to both at once all reach the file, none lost or doubled.
Each batch holds the file's lock between processes (``connectors.csv.file_lock``);
without it, a rewrite by one host drops the rows the other appended meanwhile."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.acceptance.conftest import Server, read_csv
from tests.conftest import DEMO_CONFIG_DIR, EXT, csv_connector_toml

CLIENTS_PER_HOST = 4
USERS_PER_CLIENT = 15


def _config(folder: Path, shared: Path) -> Path:
    folder.mkdir()
    shutil.copy(DEMO_CONFIG_DIR / "Schema.xml", folder / "Schema.xml")
    toml = (
        csv_connector_toml(autosync_minutes="0")
        .replace('path = "state/InputFile.txt"', f'path = "{shared}"')
        .replace('seed = "InputFile.txt"', f'seed = "{DEMO_CONFIG_DIR / "InputFile.txt"}"')
    )
    config = folder / "ecmahost.toml"
    config.write_text(f'[host]\ntls = "off"\nstate_dir = "state"\n{toml}', encoding="utf-8")
    return config


def _client(server: Server, client: str) -> dict[str, str | None]:
    """Creates its users, patches each one's title, deletes every third; returns the
    title each anchor should end with (None: deleted)."""
    ids, expected = {}, {}
    for i in range(USERS_PER_CLIENT):
        anchor = f"{client}-{i:02d}"
        user = {"AzureObjectID": anchor, "UserName": f"{anchor}@contoso.example"}
        created = server.request("POST", "/Users", {EXT: user})
        assert created.status == 201, created.body
        ids[anchor] = created.body["id"]
    for anchor, scim_id in ids.items():
        ops = [{"op": "Replace", "path": f"{EXT}:Title", "value": f"Title of {anchor}"}]
        patched = server.request("PATCH", f"/Users/{scim_id}", {"Operations": ops})
        assert patched.status in (200, 204), patched.body
        expected[anchor] = f"Title of {anchor}"
    for anchor, scim_id in list(ids.items())[::3]:
        assert server.request("DELETE", f"/Users/{scim_id}").status == 204
        expected[anchor] = None
    return expected


def test_two_hosts_share_one_csv_file(
    tmp_path: Path, server_factory: Callable[..., Server]
) -> None:
    shared = tmp_path / "shared" / "users.csv"
    shared.parent.mkdir()
    hosts = [server_factory(_config(tmp_path / f"host{n}", shared)) for n in (1, 2)]
    seeded = read_csv(shared)

    clients = [(host, f"h{n}c{c}") for n, host in enumerate(hosts) for c in range(CLIENTS_PER_HOST)]
    with ThreadPoolExecutor(len(clients)) as pool:
        outcomes = list(pool.map(lambda hc: _client(*hc), clients))

    rows = read_csv(shared)  # fails on a row written twice
    expected = {a: t for outcome in outcomes for a, t in outcome.items()}
    kept = {a: t for a, t in expected.items() if t is not None}
    assert set(rows) == set(seeded) | set(kept), "rows lost or left behind"
    assert {a: rows[a]["Title"] for a in kept} == kept
    assert all(rows[a] == row for a, row in seeded.items())  # the seed's users untouched
