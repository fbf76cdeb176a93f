"""A Generic SQL connector of an ECMA2Host export as an ecmahost ``sql`` connector.

The wizard's pages, as Microsoft documents them (the Generic SQL Connector technical
reference, and "Configure the Microsoft Entra ECMA Connector Host to provision to
SQL"), and where each lands: Connectivity (DSN file, user name, password, DN is
anchor) becomes ``url``, always by reference since it holds the password; Schema 1-3
(object type, table, anchor) and the selected attributes become ``object_type``,
``table``, ``anchor`` and ``attributes``; Schema 4's one-way attributes become
``import_only`` / ``export_only``; multi-valued tables joined to the main one become
``multi_valued``; the Global page's watermark strategy and the Delta Import step's
columns become the ``delta`` table. Parameters are found by their wizard label, without
regard to case, spaces or punctuation.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path, PureWindowsPath
from typing import Any

from ecmahost.connectors.exceptions import ConfigError
from ecmahost.engine.cli.ecma_toml import ImportedConnector
from ecmahost.engine.cli.ecma_xml_common import (
    Attribute,
    Parameter,
    deprovisioning,
    directions,
    entry,
    find,
    flag,
    parameters,
    text,
    value,
    variable,
)

__all__ = ["translate"]

_DIALECTS = (
    ("sql server", "mssql+aioodbc"),
    ("postgres", "postgresql+asyncpg"),
    ("mariadb", "mariadb+aiomysql"),
    ("mysql", "mysql+aiomysql"),
    ("oracle", "oracle+oracledb"),
)
"""A word of the ODBC driver's name, and the SQLAlchemy dialect with an asyncio driver."""
_NAME = re.compile(r"[A-Za-z0-9_-]+")


def translate(node: ET.Element, name: str, source: Path) -> ImportedConnector:
    connector = ImportedConnector(name, kind="Generic SQL")
    connector.top["type"] = "sql"
    found = parameters(node)
    schema, attributes = entry(connector, node, source)
    object_type = text(schema, "ObjectType") or "User"
    connector.settings["url"] = _url(connector, found, source)
    table = _table(connector, found, object_type, source)
    connector.settings.update(table)
    connector.settings["object_type"] = object_type
    anchor = _anchor(connector, found, attributes, source)
    connector.settings["anchor"] = anchor
    deprovisioning(connector, schema.find("DeprovisioningModel"))
    _attributes(connector, found, attributes, anchor)
    directions(connector, attributes)
    _delta(connector, found)
    _leftovers(connector, found)
    return connector


def _url(connector: ImportedConnector, found: list[Parameter], source: Path) -> str:
    """The connection, which holds the password: always an environment reference,
    with the URL to put there worked out from the DSN file when it can be read."""
    name = variable(connector.name, "DATABASE_URL")
    password = find(found, "Password")
    if password is not None and password.value.strip():
        connector.notes.append("the password is encrypted in the export: it goes in the URL")
    user = find(found, "User Name")
    login = user.value.strip() if user is not None else ""
    if "\\" in login or flag(found, "Windows Authentication"):
        connector.warn(
            f"Windows authentication ({login or 'the service account'}) is not carried "
            "over: give the database a login with a password"
        )
        login = login.rsplit("\\", 1)[-1]
    dsn = _dsn(find(found, "DSN File"), source)
    if dsn:
        template = _template(dsn, login)
        connector.warn(f"set {name} to the database URL, e.g. {template} (from the DSN file)")
    else:
        connector.warn(
            f"set {name} to the database URL (dialect+driver://USER:PASSWORD@HOST/DB); "
            "the DSN file is not in the export nor beside it"
        )
    return f"env:{name}"


def _dsn(hit: Parameter | None, source: Path) -> dict[str, str]:
    """The ODBC file DSN's keywords: from the value when the export holds the file's
    text, else from a file of that name beside the export."""
    value = hit.value.strip() if hit is not None else ""
    if not value:
        return {}
    body = value
    if "=" not in value:
        beside = source.parent / PureWindowsPath(value).name
        try:
            body = beside.read_text(encoding="utf-8-sig")
        except OSError:
            return {}
    pairs = (line.split("=", 1) for line in re.split(r"[\r\n;]+", body) if "=" in line)
    return {key.strip().upper(): item.strip() for key, item in pairs}


def _template(dsn: dict[str, str], login: str) -> str:
    """A SQLAlchemy URL for the DSN's server and database; the password is left as
    the word PASSWORD (a DSN's PWD is never shown)."""
    driver = dsn.get("DRIVER", "").strip("{}")
    dialect = next((d for word, d in _DIALECTS if word in driver.lower()), "DIALECT+DRIVER")
    host = dsn.get("SERVER") or dsn.get("SERVERNAME") or dsn.get("HOST") or "HOST"
    port = f":{dsn['PORT']}" if dsn.get("PORT") else ""
    user = login or dsn.get("UID") or "USER"
    database = dsn.get("DATABASE") or dsn.get("DB") or "DATABASE"
    query = f"?driver={driver.replace(' ', '+')}" if dialect.startswith("mssql") else ""
    return f"{dialect}://{user}:PASSWORD@{host.replace(',', ':')}{port}/{database}{query}"


def _table(
    connector: ImportedConnector, found: list[Parameter], object_type: str, source: Path
) -> dict[str, str]:
    """Schema 2's table (or the Export step's), as ``table`` and ``table_schema``."""
    for label in ("Attribute Detection", "Operation Method"):
        method = find(found, f"{object_type}:{label}", label)
        if method is not None and method.value.strip().lower() not in ("", "table", "view"):
            connector.warn(
                f"{method.name} = {method.value.strip()}: ecmahost reads and writes the table "
                "itself; stored procedures and SQL queries are not carried over"
            )
    name = value(
        found, f"{object_type}:Table/View/SP", "Table/View/SP", "Table/View/Stored Procedure"
    )
    if not name:
        raise ConfigError(f"{source}: connector {connector.name!r} names no table (Schema 2)")
    parts = [part.strip('[]"`') for part in name.split(".")]
    if len(parts) > 2:
        connector.warn(f"table {name}: the database part is not carried over; see the URL")
    table = {"table": parts[-1]}
    if len(parts) > 1:
        table["table_schema"] = parts[-2]
    return table


def _anchor(
    connector: ImportedConnector, found: list[Parameter], attributes: list[Attribute], source: Path
) -> str:
    """Schema 3's anchor; with ``DN is Anchor`` the DN attribute is the anchor."""
    anchors = [a.name for a in attributes if a.anchor]
    if flag(found, "DN is Anchor"):
        anchors = [a.name for a in attributes if a.dn] or anchors
    if not anchors:
        raise ConfigError(f"{source}: connector {connector.name!r} has no anchor attribute")
    if len(anchors) > 1:
        connector.warn(
            f"the anchor is made of {', '.join(anchors)}: ecmahost anchors on one column, "
            f"{anchors[0]} (it must be the primary key or unique)"
        )
    return anchors[0]


def _attributes(
    connector: ImportedConnector,
    found: list[Parameter],
    attributes: list[Attribute],
    anchor: str,
) -> None:
    """The selected columns (plus the anchor and the deprovisioning attribute, which
    the wizard keeps off the selection), and the multi-valued ones' tables."""
    names = [anchor] + [a.name for a in attributes if not a.multivalued and a.name != anchor]
    flag_column = connector.deprovision.get("disable_attribute")
    if flag_column and flag_column not in names:
        names.append(flag_column)
    connector.tables["attributes"] = {name: name for name in names}
    for attribute in (a for a in attributes if a.multivalued):
        table = _value_table(connector, found, attribute.name, anchor)
        if table:
            connector.tables[f"multi_valued.{attribute.name}"] = table


def _value_table(
    connector: ImportedConnector, found: list[Parameter], name: str, anchor: str
) -> dict[str, str]:
    """A multi-valued attribute's table: the step's only multi-valued table, joined
    to the main table's anchor column (``Employees.AzureID=Roles.EmployeeID``)."""
    tables = find(found, "Name of Multi-Valued table/views", "Multi-Valued Table/Views")
    join = find(found, "Join Condition")
    listed = [t.strip().strip('[]"`') for t in (tables.value if tables else "").split(",")]
    listed = [t for t in listed if t]
    sides = [s.strip() for s in (join.value if join else "").split("=")]
    keys = {s.rsplit(".", 1)[0].strip('[]"`'): s.rsplit(".", 1)[-1].strip('[]"`') for s in sides}
    value_table = listed[0] if len(listed) == 1 else ""
    parent = [column for table, column in keys.items() if table != value_table]
    if not _NAME.fullmatch(name) or not value_table or value_table not in keys:
        connector.warn(f"multi-valued attribute {name}: its table is not clear, left out")
        return {}
    if parent != [anchor]:
        connector.warn(
            f"multi-valued attribute {name}: {value_table} is joined on {parent}, not on "
            f"the anchor {anchor}; ecmahost keys value tables on the anchor, left out"
        )
        return {}
    return {"table": value_table, "key_column": keys[value_table], "value_column": name}


def _delta(connector: ImportedConnector, found: list[Parameter]) -> None:
    """The Global page's delta strategy; only a watermark has an equivalent."""
    strategy = find(found, "Delta Strategy")
    chosen = strategy.value.strip() if strategy is not None else ""
    if chosen.lower() in ("", "none"):
        return
    if "watermark" not in chosen.lower():
        connector.warn(f"Delta Strategy {chosen}: not supported, delta imports not carried over")
        return
    column = find(found, "Water Mark Column Name", "Watermark Column Name", "Watermark Column")
    if column is None or not column.value.strip():
        connector.warn("Delta Strategy Watermark without a watermark column: not carried over")
        return
    delta: dict[str, Any] = {"watermark_column": column.value.strip()}
    delta["watermark_type"] = "timestamp"
    change = find(found, "Change Type Attribute", "Change Type Column")
    if change is not None and change.value.strip():
        delete = find(found, "Delete Value", "Delete")
        delta["soft_delete_column"] = change.value.strip()
        delta["soft_delete_value"] = (delete.value.strip() if delete else "") or "Delete"
    _write_delta(connector, delta)


def _write_delta(connector: ImportedConnector, delta: dict[str, Any]) -> None:
    connector.tables["delta"] = delta
    connector.notes.append("delta imports: set delta_minutes to schedule them")


def _leftovers(connector: ImportedConnector, found: list[Parameter]) -> None:
    """Global-page settings with no counterpart, said rather than dropped."""
    for label in ("Set Password SP Name", "Change Password SP Name", "Extension Name"):
        hit = find(found, label)
        if hit is not None and hit.value.strip():
            connector.warn(f"{hit.name} = {hit.value.strip()}: passwords are not carried over")
    for label in ("Data Source Date Time Format", "Data Source Time Zone"):
        hit = find(found, label)
        if hit is not None and hit.value.strip():
            connector.notes.append(f"{label}: column types are read from the table instead")
