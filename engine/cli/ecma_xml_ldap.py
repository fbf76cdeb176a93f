"""A Generic LDAP connector of an ECMA2Host export as an ecmahost ``ldap`` connector.

The wizard's pages, as Microsoft documents them (the Generic LDAP Connector technical
reference, and "Configure the Microsoft Entra ECMA Connector Host to provision to
LDAP"), and where each lands: Connectivity (host, port, connection timeout, binding,
user name, password) becomes ``url``, ``start_tls``, ``timeout_s``, ``bind_dn`` and a
``password`` reference; the Partitions page's naming context and container become
``base_dn`` and ``container``; the Object Types page (target object, anchor, ``-dn-``)
and the selected attributes become ``object_classes``, ``anchor``, ``attributes`` and
``multi_valued``; the Global page's delta strategy becomes the ``delta`` table.
Parameters are found by their wizard label, without regard to case or punctuation.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from ecmahost.connectors.exceptions import ConfigError
from ecmahost.engine.cli.ecma_toml import ImportedConnector
from ecmahost.engine.cli.ecma_xml_common import (
    Attribute,
    Parameter,
    deprovisioning,
    directions,
    entry,
    find,
    number,
    parameters,
    secret,
    text,
    value,
)

__all__ = ["translate"]

_PASSWORDS = ("userpassword", "unicodepwd", "export_password", "password")
"""Password attributes: written as Entra's export-only ``export_password``, never read."""
_LOGS = {"accesslog": "cn=accesslog", "changelog": "cn=changelog", "usn": ""}


_RDN = re.compile(r"\s*([A-Za-z][A-Za-z0-9-]*|[0-9]+(\.[0-9]+)+)\s*=")

DN_ANCHOR = "-dn-"
"""The ldap connector's name for an entry's DN as its anchor (ECMA2Host's too)."""


def translate(node: ET.Element, name: str, source: Path) -> ImportedConnector:
    connector = ImportedConnector(name, kind="Generic LDAP")
    connector.top["type"] = "ldap"
    found = parameters(node)
    schema, attributes = entry(connector, node, source)
    _connectivity(connector, found, source)
    _partition(connector, node, source)
    object_class = text(schema, "ObjectType") or "inetOrgPerson"
    connector.settings["object_type"] = text(schema, "ExternalName") or object_class
    connector.settings["object_classes"] = [object_class]
    deprovisioning(connector, schema.find("DeprovisioningModel"))
    kept = _without_passwords(connector, found, attributes)
    _anchor(connector, kept, source)
    _attributes(connector, kept)
    directions(connector, kept)
    _password(connector, attributes, kept)
    _delta(connector, found)
    return connector


def _connectivity(connector: ImportedConnector, found: list[Parameter], source: Path) -> None:
    host = value(found, "Host")
    if not host:
        raise ConfigError(f"{source}: connector {connector.name!r} names no LDAP host")
    binding = value(found, "Binding") or "SSL"
    tls = binding.lower()
    port = number(connector, "Port", value(found, "Port"), 636 if tls == "ssl" else 389)
    scheme = "ldaps" if tls == "ssl" else "ldap"
    connector.settings["url"] = f"{scheme}://{host}:{port}"
    if tls == "tls":
        connector.settings["start_tls"] = True
    elif tls not in ("ssl", "simple"):
        connector.warn(
            f"Binding {binding}: ecmahost binds with a DN and password (simple bind); "
            "set bind_dn and the password for one"
        )
    if tls != "ssl":
        connector.notes.append(f"Binding {binding}: {scheme}://, no certificate to trust")
    else:
        connector.notes.append("the server's CA is trusted from the system store; see ca_file")
    timeout = number(connector, "Connection Timeout", value(found, "Connection Timeout"), 30)
    connector.settings["timeout_s"] = float(min(max(timeout, 1), 600))
    connector.settings["bind_dn"] = _bind_dn(connector, value(found, "User Name"))
    connector.settings["password"] = secret(connector, find(found, "Password"), "PASSWORD")
    if value(found, "Certificate"):
        connector.warn("the client certificate (Windows certificate store) is not carried over")


def _bind_dn(connector: ImportedConnector, user: str) -> str:
    if not _is_dn(user):
        connector.warn(f"User Name {user!r} is not a DN: set bind_dn to the bind account's DN")
    return user


def _partition(connector: ImportedConnector, node: ET.Element, source: Path) -> None:
    """The Partitions page: the naming context read, and the container new users go
    to (with one container selected, reads stay inside it too)."""
    partitions = [p for p in node.findall("Schema/Partitions/Partition") if _is_dn(text(p, "DN"))]
    if not partitions:
        raise ConfigError(f"{source}: connector {connector.name!r} has no partition DN")
    if len(partitions) > 1:
        connector.warn(f"{len(partitions)} partitions: ecmahost serves one, the first")
    partition = partitions[0]
    containers = [
        c.text.strip()
        for c in partition.findall("Containers/Container")
        if c.text and _is_dn(c.text.strip())
    ]
    connector.settings["base_dn"] = containers[0] if len(containers) == 1 else text(partition, "DN")
    if containers:
        connector.settings["container"] = containers[0]
    if len(containers) > 1:
        connector.warn(
            f"{len(containers)} containers selected: users are read from the whole "
            f"partition and created in {containers[0]}"
        )


def _is_dn(value: str) -> bool:
    """Whether ``value`` reads as a DN: ``type=value`` parts split by unescaped commas.
    A plausibility check for what the export holds; the connector parses DNs fully
    when it starts (the engine reaches connectors only through their settings)."""
    parts = re.split(r"(?<!\\),", value)
    return bool(value.strip()) and all(_RDN.match(part) for part in parts)


def _without_passwords(
    connector: ImportedConnector, found: list[Parameter], attributes: list[Attribute]
) -> list[Attribute]:
    """The selected attributes less the password ones (``_password`` maps the first)."""
    password = value(found, "Password Attribute")
    names = [*_PASSWORDS, password.lower()] if password else list(_PASSWORDS)
    return [a for a in attributes if a.name.lower() not in names]


def _password(
    connector: ImportedConnector, attributes: list[Attribute], kept: list[Attribute]
) -> None:
    """The password attribute becomes the export-only ``export_password`` Entra
    writes (the README's Passwords section); any other is left out with a warning."""
    dropped = [a.name for a in attributes if a not in kept]
    if not dropped:
        return
    connector.tables.setdefault("attributes", {})["export_password"] = dropped[0]
    export_only = connector.settings.setdefault("export_only", [])
    export_only.append("export_password")
    connector.notes.append(
        f"initial passwords: map Entra's export_password to {dropped[0]} (export-only)"
    )
    if len(dropped) > 1:
        connector.warn(f"password attributes {', '.join(dropped[1:])}: not carried over")


def _anchor(connector: ImportedConnector, attributes: list[Attribute], source: Path) -> None:
    anchors = [a.name for a in attributes if a.anchor]
    if not anchors:
        raise ConfigError(f"{source}: connector {connector.name!r} has no anchor attribute")
    anchor = anchors[0]
    connector.settings["anchor"] = DN_ANCHOR if anchor.lower() == DN_ANCHOR else anchor
    names = {a.name.lower() for a in attributes}
    rdn = "uid" if "uid" in names or "cn" not in names else "cn"
    connector.settings["rdn_attribute"] = rdn
    connector.notes.append(f"new entries are named {rdn}=<value>,<container> without a -dn-")


def _attributes(connector: ImportedConnector, attributes: list[Attribute]) -> None:
    """The selected attributes under their own names (``-dn-`` is always served), the
    deprovisioning attribute (kept off the wizard's selection), and the sets."""
    served = (DN_ANCHOR, "objectclass")  # both always served, never mapped
    names = [a.name for a in attributes if a.name.lower() not in served]
    flag_attribute = connector.deprovision.get("disable_attribute")
    if flag_attribute and flag_attribute not in names:
        names.append(flag_attribute)
    if names:
        connector.tables["attributes"] = {name: name for name in names}
    multi = [a.name for a in attributes if a.multivalued and a.name.lower() != "-dn-"]
    if multi:
        connector.settings["multi_valued"] = multi


def _delta(connector: ImportedConnector, found: list[Parameter]) -> None:
    """The Global page: OpenLDAP's accesslog, a retro changelog, or AD LDS's USN."""
    strategy = value(found, "Delta Strategy", "Delta Import Strategy").lower()
    log_dn = value(found, "Accesslog DN", "Changelog DN", "Change Log DN")
    source = next((s for s in _LOGS if s in strategy.replace(" ", "")), None)
    if source is None and log_dn:
        source = "accesslog" if "accesslog" in log_dn.lower() else "changelog"
    if source is None:
        if strategy and strategy != "none":
            connector.warn(f"Delta Strategy {strategy}: not supported, not carried over")
        return
    delta = {"source": source}
    if source != "usn" and log_dn and log_dn.lower() != _LOGS[source]:
        delta["log_base"] = log_dn
    connector.tables["delta"] = delta
    connector.notes.append("delta imports: set delta_minutes to schedule them")
