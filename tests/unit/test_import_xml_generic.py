"""``ecmahost connectors import-xml`` on Generic SQL and Generic LDAP exports: what each
documented wizard field becomes, what is said instead of carried, and secrets kept out."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from ecmahost.connectors.exceptions import ConfigError
from ecmahost.connectors.ldap.settings import LdapSettings
from ecmahost.connectors.sql.connector import SqlSettings
from ecmahost.engine.cli import ecma_xml_ldap
from ecmahost.engine.cli.ecma_xml import import_xml
from ecmahost.engine.cli.main import main
from ecmahost.engine.config import ConnectorConfig

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SQL = FIXTURES / "Configuration - Generic SQL.xml"
LDAP = FIXTURES / "Configuration - Generic LDAP.xml"
SECRETS = (
    "tok-0123456789-very-secret",
    "AQAAANCMnd8BFdERjHoAwE-encrypted-blob",
    "dsn-secret-never-shown",
)


def _table(toml_text: str, name: str) -> dict[str, Any]:
    return dict(tomllib.loads(toml_text)["connectors"][name])


def _variant(tmp_path: Path, source: Path, *edits: tuple[str, str], count: int = 1) -> Path:
    """``source`` with each literal edit made ``count`` times (-1: everywhere), beside
    a copy of the DSN file."""
    text = source.read_text(encoding="utf-8")
    for old, new in edits:
        assert text.count(old) >= 1, old
        text = text.replace(old, new, count)
    path = tmp_path / source.name
    path.write_text(text, encoding="utf-8")
    (tmp_path / "contoso-sql.dsn").write_bytes((FIXTURES / "contoso-sql.dsn").read_bytes())
    return path


def _valid(table: dict[str, Any], model: type[SqlSettings | LdapSettings], **secret: str) -> None:
    """The table is a valid connector of a valid type (secrets given as the host would)."""
    ConnectorConfig.model_validate({**table, "name": "X", "token": "x" * 20})
    model.model_validate({**table["settings"], **secret})


def test_import_xml_sql_maps_the_documented_pages(tmp_path: Path) -> None:
    done = import_xml(SQL, tmp_path / "ecmahost.toml")
    assert done.names == ("SQL",) and done.files == ()
    table = _table((tmp_path / "ecmahost.toml").read_text(encoding="utf-8"), "SQL")
    assert table["type"] == "sql" and table["token"] == "env:ECMAHOST_SQL_TOKEN"
    assert table["autosync_minutes"] == 120
    # Disable flow: set the Disabled column (true while disabled); Delete flow: None.
    assert table["deprovision"] == {
        "disable": "set_attribute",
        "disable_attribute": "Disabled",
        "disabled_value": True,
        "delete": "none",
    }
    settings = table["settings"]
    assert settings["url"] == "env:ECMAHOST_SQL_DATABASE_URL"
    assert (settings["table"], settings["object_type"]) == ("Employees", "User")
    assert settings["anchor"] == "ContosoLogin"
    assert settings["import_only"] == ["CreatedAt"]
    assert list(settings["attributes"]) == [
        "ContosoLogin", "AzureID", "FirstName", "LastName", "Email", "textID", "CreatedAt",
        "Disabled",
    ]  # fmt: skip
    assert settings["multi_valued"] == {
        "Roles": {"table": "EmployeeRoles", "key_column": "Login", "value_column": "Roles"}
    }
    _valid(table, SqlSettings)


def test_import_xml_sql_says_what_it_does_not_carry(tmp_path: Path) -> None:
    done = import_xml(SQL)
    warnings = "\n".join(done.warnings)
    # The DSN file lies beside the export: the URL to set is spelled out, password aside.
    assert (
        "set ECMAHOST_SQL_DATABASE_URL to the database URL, e.g. "
        "postgresql+asyncpg://ecmahost:PASSWORD@db.contoso.lab:5432/contoso" in warnings
    )
    if "delta" not in SqlSettings.model_fields:
        assert (
            "[settings.delta] watermark_column = 'UpdatedAt', watermark_type = 'timestamp', "
            "soft_delete_column = 'ChangeType', soft_delete_value = 'Deleted'" in warnings
        )
    else:
        assert _table(done.toml, "SQL")["settings"]["delta"]["watermark_column"] == "UpdatedAt"
    assert "the secret token is not carried over; set ECMAHOST_SQL_TOKEN" in warnings
    comments = [line for line in done.toml.splitlines() if line.startswith("#")]
    for warning in done.warnings:
        assert any(warning.split(": ", 1)[1] in line for line in comments), warning


def test_import_xml_sql_other_shapes(tmp_path: Path) -> None:
    """DN is Anchor, a schema-qualified table, a stored procedure, Windows logins,
    another delta strategy, and no DSN file."""
    source = _variant(
        tmp_path,
        SQL,
        ("<Value>0</Value>", "<Value>1</Value>"),  # DN is Anchor, the first check box
        ("<Value>Employees</Value>", "<Value>[hr].[Employees]</Value>"),
        ("<Value>ecmahost</Value>", "<Value>CONTOSO\\svc-ecma</Value>"),
        ("<Value>Watermark</Value>", "<Value>Change Tracking</Value>"),
        ("<Value>Table</Value>", "<Value>Stored Procedure</Value>"),
        ("C:\\ECMA\\contoso-sql.dsn", "C:\\ECMA\\elsewhere.dsn"),
    )
    done = import_xml(source)
    settings = _table(done.toml, "SQL")["settings"]
    assert settings["anchor"] == "AzureID"  # the DN attribute
    assert (settings["table_schema"], settings["table"]) == ("hr", "Employees")
    warnings = "\n".join(done.warnings)
    assert "Windows authentication (CONTOSO\\svc-ecma) is not carried over" in warnings
    assert "Delta Strategy Change Tracking: not supported" in warnings
    assert "stored procedures and SQL queries are not carried over" in warnings
    assert "the DSN file is not in the export nor beside it" in warnings


def test_import_xml_sql_without_a_table_is_refused(tmp_path: Path) -> None:
    source = _variant(tmp_path, SQL, ("<Value>Employees</Value>", "<Value />"), count=-1)
    with pytest.raises(ConfigError, match="names no table"):
        import_xml(source, tmp_path / "out.toml")
    assert not (tmp_path / "out.toml").exists()


def test_import_xml_ldap_maps_the_documented_pages(tmp_path: Path) -> None:
    done = import_xml(LDAP, tmp_path / "ecmahost.toml")
    table = _table((tmp_path / "ecmahost.toml").read_text(encoding="utf-8"), "LDAP")
    assert table["type"] == "ldap" and table["token"] == "env:ECMAHOST_LDAP_TOKEN"
    assert table["deprovision"] == {"disable": "none", "delete": "delete"}
    settings = table["settings"]
    assert settings["url"] == "ldap://ldap.contoso.lab:389"
    assert settings["timeout_s"] == 180
    assert settings["bind_dn"] == "cn=admin,dc=contoso,dc=lab"
    assert settings["password"] == "env:ECMAHOST_LDAP_PASSWORD"
    assert settings["base_dn"] == settings["container"] == "ou=CloudUsers,dc=contoso,dc=lab"
    assert settings["object_classes"] == ["inetOrgPerson"] and settings["object_type"] == "User"
    assert settings["anchor"] == "-dn-" and settings["rdn_attribute"] == "uid"
    assert settings["multi_valued"] == ["objectClass"]
    assert list(settings["attributes"]) == [
        *("uid", "cn", "sn", "givenName", "displayName", "mail"),
        "export_password",
    ]
    assert settings["attributes"]["export_password"] == "userPassword"
    assert "export_password" in settings["export_only"]
    _valid(table, LdapSettings)
    warnings = "\n".join(done.warnings)
    assert "userPassword" not in warnings


@pytest.mark.parametrize(
    ("binding", "port", "url", "start_tls"),
    [
        ("SSL", "636", "ldaps://ldap.contoso.lab:636", None),
        ("TLS", "389", "ldap://ldap.contoso.lab:389", True),
        ("Kerberos", "389", "ldap://ldap.contoso.lab:389", None),
    ],
)
def test_import_xml_ldap_bindings(
    tmp_path: Path, binding: str, port: str, url: str, start_tls: bool | None
) -> None:
    source = _variant(
        tmp_path,
        LDAP,
        ("<Value>Simple</Value>", f"<Value>{binding}</Value>"),
        ("<Value>389</Value>", f"<Value>{port}</Value>"),
    )
    done = import_xml(source)
    settings = _table(done.toml, "LDAP")["settings"]
    assert (settings["url"], settings.get("start_tls")) == (url, start_tls)
    said = any(f"Binding {binding}: ecmahost binds with a DN" in w for w in done.warnings)
    assert said == (binding == "Kerberos")


def test_import_xml_ldap_inverted_flag_and_usn(tmp_path: Path) -> None:
    """AD LDS's msDS-UserAccountDisabled: true means disabled; its delta is the USN."""
    source = _variant(
        tmp_path,
        LDAP,
        ("<SoftDeleteStatusAttribute />", "<SoftDeleteStatusAttribute>msDS-UserAccountDisabled"
         "</SoftDeleteStatusAttribute>"),
        ("<SoftDelete>None</SoftDelete>", "<SoftDelete>SetAttributeValue</SoftDelete>"),
        ("<Value>Accesslog</Value>", "<Value>USN</Value>"),
    )  # fmt: skip
    table = _table(import_xml(source).toml, "LDAP")
    assert table["deprovision"]["disable_attribute"] == "msDS-UserAccountDisabled"
    assert table["deprovision"]["disabled_value"] is True
    assert table["settings"]["attributes"]["msDS-UserAccountDisabled"] == (
        "msDS-UserAccountDisabled"
    )


@pytest.mark.parametrize("source", [SQL, LDAP], ids=["sql", "ldap"])
def test_import_xml_sql_and_ldap_never_show_secrets(
    tmp_path: Path, source: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "ecmahost.toml"
    assert main(["connectors", "import-xml", str(source), "--output", str(output)]) == 0
    assert main(["connectors", "import-xml", str(source)]) == 0
    printed = capsys.readouterr()
    for text in (output.read_text(encoding="utf-8"), printed.out, printed.err):
        for secret in SECRETS:
            assert secret not in text
    assert re.search(r"ecmahost: warning: (SQL|LDAP): ", printed.err)


def test_import_xml_sql_table_from_the_export_step(tmp_path: Path) -> None:
    """Schema 2 left empty: the Export run step's table is the one."""
    source = _variant(tmp_path, SQL, ("<Value>Employees</Value>", "<Value />"))
    assert _table(import_xml(source).toml, "SQL")["settings"]["table"] == "Employees"


@pytest.mark.parametrize(
    ("value", "is_dn"),
    [
        ("cn=admin,dc=contoso,dc=lab", True),
        ("CN=Smith\\, John,OU=Users,DC=contoso,DC=lab", True),
        ("2.5.4.3=admin,dc=lab", True),
        ("CONTOSO\\admin", False),
        ("admin@contoso.lab", False),
        ("cn=admin,,dc=lab", False),
        ("", False),
    ],
)
def test_import_xml_ldap_tells_a_dn_from_a_user_name(value: str, is_dn: bool) -> None:
    assert ecma_xml_ldap._is_dn(value) is is_dn
