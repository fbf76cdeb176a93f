"""What every kind of ECMA2Host connector export shares: its parameters, its schema's
deprovisioning model, the host's ``<Setting>``, and how secrets become references.

``ecma_xml`` reads PowerShell connectors with these, ``ecma_xml_sql`` Generic SQL ones
and ``ecma_xml_ldap`` Generic LDAP ones.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from ecmahost.connectors.exceptions import ConfigError
from ecmahost.engine.cli.ecma_toml import ImportedConnector

__all__ = [
    "PLACEHOLDER",
    "Attribute",
    "Parameter",
    "deprovisioning",
    "directions",
    "entry",
    "find",
    "flag",
    "host_settings",
    "number",
    "parameter",
    "parameters",
    "secret",
    "text",
    "value",
    "variable",
]

PLACEHOLDER = "[REDACTED"


@dataclass(frozen=True, slots=True)
class Parameter:
    """One ``<Parameter>`` of an export: a wizard field, by its label."""

    name: str
    use: str
    encrypted: bool
    value: str

    @property
    def placeholder(self) -> bool:
        return self.value.startswith(PLACEHOLDER)


@dataclass(frozen=True, slots=True)
class Attribute:
    """One selected attribute of the object type (an ``<AttributeSchema>``)."""

    name: str
    anchor: bool
    dn: bool
    multivalued: bool
    direction: str
    """Schema 4's flow direction of a Generic connector: Import, Export or ImportExport."""


def entry(
    connector: ImportedConnector, node: ET.Element, source: Path
) -> tuple[ET.Element, list[Attribute]]:
    """The object type ecmahost serves (the first) and its selected attributes."""
    entries = node.findall("Schema/EntriesSchema/EntrySchema")
    if not entries:
        raise ConfigError(f"{source}: connector {connector.name!r} has no EntrySchema")
    for extra in entries[1:]:
        connector.warn(f"object type {text(extra, 'ObjectType')!r}: ecmahost serves one, skipped")
    attributes = [
        Attribute(
            text(a, "Name"),
            text(a, "IsAnchor").lower() == "true",
            text(a, "IsDN").lower() == "true",
            text(a, "Multivalued").lower() == "true",
            text(a, "Direction") or "ImportExport",
        )
        for a in entries[0].findall("SchemaAttributes/AttributeSchema")
    ]
    return entries[0], [a for a in attributes if a.name]


def directions(connector: ImportedConnector, attributes: list[Attribute]) -> None:
    """Schema 4's one-way attributes as ``import_only`` / ``export_only``."""
    for setting, word in (("import_only", "import"), ("export_only", "export")):
        names = [a.name for a in attributes if a.direction.lower() == word]
        if names:
            connector.settings[setting] = names


def parameter(node: ET.Element) -> Parameter:
    return Parameter(
        text(node, "Name"),
        text(node, "Use"),
        text(node, "Encrypted").lower() == "true",
        node.findtext("Value") or "",  # not stripped: a value may be a lone space
    )


def parameters(node: ET.Element) -> list[Parameter]:
    """The connector-level parameters, then those of every run profile's steps (a
    Generic connector keeps its table names and delta columns there)."""
    found = [parameter(p) for p in node.findall("ConnectorConfig/Parameters/Parameter")]
    path = "ConnectorConfig/RunConfigurations/RunConfiguration/RunSteps/RunStep/Parameters"
    return found + [parameter(p) for p in node.findall(f"{path}/Parameter")]


def _folded(label: str) -> str:
    """A label without case, spaces or punctuation: the wizard's labels are written
    with varying spacing and colons in Microsoft's pages."""
    return re.sub(r"[^a-z0-9]", "", label.lower())


def find(found: list[Parameter], *labels: str) -> Parameter | None:
    """The first parameter carrying one of ``labels`` (in that order of preference)."""
    for label in labels:
        wanted = _folded(label)
        for candidate in found:
            if _folded(candidate.name) == wanted:
                return candidate
    return None


def value(found: list[Parameter], *labels: str) -> str:
    """The first value given under one of ``labels``: a field left empty on one page
    (Schema 2's table) may be filled on another (the Export step's)."""
    for label in labels:
        wanted = _folded(label)
        for candidate in found:
            if _folded(candidate.name) == wanted and candidate.value.strip():
                return candidate.value.strip()
    return ""


def flag(found: list[Parameter], *labels: str) -> bool:
    """A check box: ``1`` or ``true`` when ticked."""
    hit = find(found, *labels)
    return hit is not None and hit.value.strip().lower() in ("1", "true", "yes")


def secret(connector: ImportedConnector, hit: Parameter | None, what: str) -> str:
    """An environment reference for a secret of the export, which is never copied
    (it is encrypted with the ECMA2Host machine's key, or absent)."""
    name = variable(connector.name, what)
    if hit is not None and hit.value.strip():
        connector.warn(f"the {what.lower()} is not carried over (encrypted); set {name}")
    else:
        connector.warn(f"the export holds no {what.lower()}; set {name}")
    return f"env:{name}"


def deprovisioning(connector: ImportedConnector, model: ET.Element | None) -> None:
    """ECMA2Host's Deprovisioning page: the Disable flow (``SoftDelete``) and the
    Delete flow (``HardDelete``), each None, Delete or a status attribute set."""
    soft, hard = text(model, "SoftDelete") or "None", text(model, "HardDelete") or "TreatAsHard"
    attribute = text(model, "SoftDeleteStatusAttribute") or text(model, "HardDeleteStatusAttribute")
    disable = _flow(soft, {"none": "none", "delete": "delete", "hard": "delete"})
    delete = _flow(hard, {"hard": "delete", "delete": "delete", "soft": "disable"})
    if delete is None and hard.lower() == "none":
        delete = "none"  # the Delete flow None: the user stays in the target
    if disable is None or delete is None:
        connector.warn(f"deprovisioning SoftDelete={soft} HardDelete={hard}: not understood")
    if disable == "set_attribute" or (disable is None and attribute):
        disable = "set_attribute" if attribute else "none"
        if attribute:
            connector.deprovision["disable_attribute"] = attribute
            if _inverted(attribute):
                connector.deprovision["disabled_value"] = True
                connector.notes.append(
                    f"{attribute} is read as true while the user is disabled (by its name)"
                )
    if delete == "set_attribute":
        delete = "disable"  # the Delete flow sets the same status attribute
    connector.deprovision["disable"] = disable or "none"
    connector.deprovision["delete"] = delete or "delete"
    connector.notes.append(f"deprovisioning: ECMA2Host SoftDelete={soft}, HardDelete={hard}")


def _inverted(attribute: str) -> bool:
    """A flag whose true means disabled (``msDS-UserAccountDisabled``, ``Disabled``)
    rather than enabled (``IsActive``, ``Enabled``)."""
    lowered = attribute.lower()
    return "disable" in lowered or "locked" in lowered or "deleted" in lowered


def _flow(value: str, words: dict[str, str]) -> str | None:
    lowered = value.lower()
    if "attribute" in lowered or lowered.startswith("set"):
        return "set_attribute"
    return next((action for word, action in words.items() if word in lowered), None)


def host_settings(connector: ImportedConnector, setting: ET.Element | None) -> None:
    """The export's ``<Setting>`` belongs to the host, not to one connector."""
    port = text(setting, "Port")
    if port:
        connector.notes.append(f"ECMA2Host listened on port {port}: see [host] listen")
    if text(setting, "Certificate"):
        connector.warn(
            "the TLS certificate is in the Windows certificate store, not carried over: "
            'use [host] tls = "self-signed" or "files"'
        )


def number(connector: ImportedConnector, name: str, value: str, default: int) -> int:
    try:
        return int(value) if value else default
    except ValueError:
        connector.warn(f"{name} = {value!r} is not a whole number: {default} used")
        return default


def text(node: ET.Element | None, tag: str) -> str:
    return (node.findtext(tag) or "").strip() if node is not None else ""


def variable(connector: str, name: str) -> str:
    return re.sub(r"[^A-Z0-9]+", "_", f"ECMAHOST_{connector}_{name}".upper()).strip("_")
