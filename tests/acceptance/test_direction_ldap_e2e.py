"""The real ``ecmahost serve`` over slapd with an import-only server-assigned attribute
(``createTimestamp``), an inverted Boolean flag (TRUE while disabled, as AD LDS's
``msDS-UserAccountDisabled``) and ``deprovision.delete = "none"``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.acceptance.conftest import Server, filter_query, wait_until
from tests.acceptance.test_ldap_e2e import create, directory, patch, serve
from tests.conftest import EXT
from tests.ldap_server import Slapd, slapd_fixture  # noqa: F401 - a fixture


def inverted_toml(slapd: Slapd, base_dn: str) -> str:
    return f"""
[connectors.LDAP]
type = "ldap"
token = "env:ECMAHOST_TEST_TOKEN"
autosync_minutes = 0

[connectors.LDAP.deprovision]
disable = "set_attribute"
disable_attribute = "AccountDisabled"
disabled_value = true
delete = "none"

[connectors.LDAP.settings]
url = "{slapd.url}"
bind_dn = "{slapd.bind_dn}"
password = "env:ECMAHOST_TEST_LDAP_PASSWORD"
base_dn = "{base_dn}"
anchor = "uid"
object_classes = ["inetOrgPerson", "ecmahostAccount"]
import_only = ["Created"]

[connectors.LDAP.settings.attributes]
AzureObjectID = "uid"
UserName = "cn"
Surname = "sn"
Created = "createTimestamp"
AccountDisabled = "ecmahostActive"
"""


def test_import_only_timestamp_inverted_flag_and_delete_none_on_slapd(
    slapd: Slapd, write_config: Callable[..., Path], server_factory: Callable[..., Server]
) -> None:
    base = slapd.new_ou()
    server = serve(server_factory, write_config(inverted_toml(slapd, base)), slapd)
    user = {"AzureObjectID": "ann", "UserName": "Ann", "Surname": "A", "Created": "1999"}
    # The server refuses any write of createTimestamp: the create succeeds because
    # the value Entra sent is ignored.
    user_id = create(server, user)
    replace = {"op": "Replace", "path": "active"}

    assert patch(server, user_id, {**replace, "value": "False"})["active"] is False
    assert directory(slapd, base)["ann"]["ecmahostactive"] == ["TRUE"]
    assert patch(server, user_id, {**replace, "value": True})["active"] is True
    assert directory(slapd, base)["ann"]["ecmahostactive"] == ["FALSE"]

    assert server.request("DELETE", f"/Users/{user_id}", name="LDAP").status == 204
    assert server.request("GET", f"/Users/{user_id}", name="LDAP").status == 404
    assert "ann" in directory(slapd, base)

    server.restart()  # its start-up import reads the entry back, timestamp and all
    query = "/Users" + filter_query('AzureObjectID eq "ann"')

    def found() -> list[dict[str, object]]:
        return list(server.request("GET", query, name="LDAP").body["Resources"])

    (imported,) = wait_until(found, timeout_s=20)
    created = imported[EXT]["Created"]  # type: ignore[index]
    assert isinstance(created, str) and created.endswith("Z") and not created.startswith("1999")
    assert imported["active"] is True
