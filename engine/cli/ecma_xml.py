"""An ECMA2Host connector export (the wizard's configuration XML) as ecmahost TOML.

``import_xml`` reads the connectors of an export and writes, per connector, a
``[connectors.NAME]`` table. Generic SQL and Generic LDAP connectors become ``sql`` and
``ldap`` connectors (``ecma_xml_sql``, ``ecma_xml_ldap``); PowerShell connectors become
type ``script``, translated here: autosync timer, object type, anchor,
selected attributes, parameters by scope, deprovisioning model, time-out. Script
bodies are written to files beside the configuration and referenced. What has no
ecmahost equivalent is listed as a warning and as a TOML comment, never dropped in
silence. Encrypted values and the secret token are never written or printed: the
table refers to environment variables for them instead.
"""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from ecmahost.connectors.exceptions import ConfigError
from ecmahost.engine.cli import ecma_xml_ldap, ecma_xml_sql
from ecmahost.engine.cli.ecma_toml import (
    EXAMPLES_DIR,
    ImportedConnector,
    existing_config,
    plan_scripts,
    render,
    write_files,
)
from ecmahost.engine.cli.ecma_xml_common import Parameter as _Parameter
from ecmahost.engine.cli.ecma_xml_common import deprovisioning as _deprovisioning
from ecmahost.engine.cli.ecma_xml_common import host_settings as _host_settings
from ecmahost.engine.cli.ecma_xml_common import number as _number
from ecmahost.engine.cli.ecma_xml_common import parameter as _parameter
from ecmahost.engine.cli.ecma_xml_common import text as _text
from ecmahost.engine.cli.ecma_xml_common import variable as _variable

__all__ = ["EXAMPLES_DIR", "ImportedConfig", "cli_import", "import_xml"]

DEFAULT_TIMEOUT_S = 300.0

_ROLES = {
    "Schema Script": "schema",
    "Import Script": "import",
    "Export Script": "export",
    "Validation Script": "validate",
    "Begin Import Script": "begin_import",
    "End Import Script": "end_import",
    "Begin Export Script": "begin_export",
    "End Export Script": "end_export",
}
_UNSUPPORTED_SCRIPTS = (
    "Partition Script",
    "Hierarchy Script",
    "Begin Password Script",
    "Password Extension Script",
    "End Password Script",
)
_EXPECTED = {"Enable Import": "1", "Enable Export": "1", "Export Type": "ObjectReplace"}
"""Capability values under which ecmahost behaves as ECMA2Host did; other capabilities
are check boxes expected off ("0") or drop-downs expected at "None" or "Normal"."""
_FLAGS = ("Impersonate Connector Account", "Signed Scripts Only")
_NEUTRAL = ("None", "Normal")
_IGNORED = {
    "Concurrent Operations Of Several Connectors",  # ecmahost runs connectors side by side
    "Load User Profile When Impersonating",  # only with impersonation, warned about
    "Logon Type When Impersonating",
    "Additional Config Parameter Names",  # their values arrive as Name_Global etc.
    "Additional Encrypted Config Parameter Names",
}
_GENERIC = {
    "GenericSql": ecma_xml_sql.translate,
    "GenericLdap": ecma_xml_ldap.translate,
}
"""The Generic connectors, by a word of their ``LibraryName``
(``Microsoft.IAM.Connector.GenericSql.dll``), and the module translating each."""
_TIMEOUT_PREFIX = "PowerShell script execution timeout"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True, slots=True)
class ImportedConfig:
    """What ``import_xml`` made: the TOML text, the warnings, the files it wrote."""

    names: tuple[str, ...]
    toml: str
    warnings: tuple[str, ...]
    files: tuple[Path, ...]


def cli_import(
    source: Path, output: Path | None, scripts_dir: Path | None, use_python_examples: bool
) -> int:
    """``ecmahost connectors import-xml``: warnings to stderr, TOML to stdout or a file."""
    done = import_xml(source, output, scripts_dir, use_python_examples)
    for warning in done.warnings:
        print(f"ecmahost: warning: {warning}", file=sys.stderr)
    if output is None:
        print(done.toml, end="")
    else:
        names = ", ".join(done.names)
        print(f"ecmahost: connector {names} written to {output} ({len(done.files)} script files)")
    return 0


def import_xml(
    source: Path,
    output: Path | None = None,
    scripts_dir: Path | None = None,
    use_python_examples: bool = False,
) -> ImportedConfig:
    """Translate ``source`` and write the script files (and ``output``, appended to if it
    exists). Raises ``ConfigError`` before writing anything when it cannot be done."""
    base = output.resolve().parent if output is not None else Path.cwd()
    root = _root(source)
    nodes = root.findall("Connectors/Connector")
    connectors = [_translate(node, root, source) for node in nodes]
    if not connectors:
        raise ConfigError(f"{source}: no <Connectors>/<Connector> in the export")
    existing = existing_config(output, connectors)
    files: dict[Path, str] = {}
    for connector in (c for c in connectors if c.top["type"] == "script"):
        folder = (
            scripts_dir / connector.name if scripts_dir and len(connectors) > 1 else scripts_dir
        )
        folder = (folder or base / f"{connector.name}-scripts").resolve()
        files |= plan_scripts(connector, folder, base if output else None, use_python_examples)
    write_files(files)
    toml = "\n".join(render(c, source) for c in connectors)
    if output is not None:
        joiner = "\n" if existing and not existing.endswith("\n\n") else ""
        output.write_text(existing + joiner + toml, encoding="utf-8")
    warnings = tuple(w for c in connectors for w in c.warnings)
    return ImportedConfig(tuple(c.name for c in connectors), toml, warnings, tuple(files))


# -- reading ------------------------------------------------------------------------


def _root(path: Path) -> ET.Element:
    try:
        root = ET.fromstring(path.read_bytes())  # expat resolves no external entities
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except ET.ParseError as exc:
        raise ConfigError(f"{path}: not well-formed XML ({exc})") from exc
    if root.tag != "Configuration":
        raise ConfigError(f"{path}: root element is <{root.tag}>, expected <Configuration>")
    return root


def _translate(node: ET.Element, root: ET.Element, source: Path) -> ImportedConnector:
    ecma = node.find("ECMAConfig")
    name = _text(ecma, "ProfileName")
    if not name:
        raise ConfigError(f"{source}: a connector has no ECMAConfig/ProfileName")
    library = _text(ecma, "LibraryName")
    generic = next((t for k, t in _GENERIC.items() if k.lower() in library.lower()), None)
    if generic is not None:
        connector = generic(node, name, source)
        _token_and_timer(connector, ecma)
        _host_settings(connector, root.find("Setting"))
        return connector
    if "PowerShell" not in library:
        raise ConfigError(
            f"{source}: connector {name!r} uses {library or 'no library'}; only PowerShell, "
            "Generic SQL and Generic LDAP connectors can be imported"
        )
    connector = ImportedConnector(name)
    connector.top["type"] = "script"
    _token_and_timer(connector, ecma)
    if _text(ecma, "ECMAFolderPath"):
        connector.notes.append("ECMAFolderPath: scripts run in the configuration's folder")
    parameters = [_parameter(p) for p in node.findall("ConnectorConfig/Parameters/Parameter")]
    for parameter in parameters:
        _take(connector, parameter)
    _run_steps(connector, node, [p for p in parameters if p.use == "RunStep"])
    _schema(connector, node.find("Schema"), source)
    _host_settings(connector, root.find("Setting"))
    connector.settings.setdefault("timeout_s", DEFAULT_TIMEOUT_S)
    return connector


def _token_and_timer(connector: ImportedConnector, ecma: ET.Element | None) -> None:
    """The Properties page: the secret token by reference, the autosync timer."""
    token = _variable(connector.name, "TOKEN")
    connector.top["token"] = f"env:{token}"
    if _text(ecma, "SecretToken"):
        connector.warn(f"the secret token is not carried over; set {token}")
    connector.top["autosync_minutes"] = _number(
        connector, "AutosyncTimer", _text(ecma, "AutosyncTimer"), 120
    )


def _take(connector: ImportedConnector, parameter: _Parameter) -> None:
    """File one connector-level parameter where ecmahost keeps its equivalent."""
    name, value = parameter.name, parameter.value
    if name in _IGNORED:
        return
    if name in _ROLES or name == "Common Module Script":
        _script(connector, parameter)
    elif name in _UNSUPPORTED_SCRIPTS and value.strip():
        connector.warn(f"{name}: not supported by ecmahost, not carried over")
    elif name.startswith(_TIMEOUT_PREFIX):
        minutes = _number(connector, name, value, 0)
        if minutes > 0:
            connector.settings["timeout_s"] = float(minutes * 60)
        else:
            connector.notes.append(f"{name} = 0: ecmahost always has one, {DEFAULT_TIMEOUT_S:g} s")
    elif name == "Common Module Script Name (with extension)":
        connector.module_name = Path(value.strip()).name or connector.module_name
    elif parameter.use == "Capabilities" or name in _FLAGS:
        _capability(connector, name, value)
    elif parameter.use != "RunStep" and name not in _UNSUPPORTED_SCRIPTS:
        _plain(connector, parameter, connector.parameters)


def _capability(connector: ImportedConnector, name: str, value: str) -> None:
    if value == _EXPECTED.get(name, "0") or (name not in _EXPECTED and value in _NEUTRAL):
        return
    if name == "Enable Object Rename" and value == "1":
        connector.settings["rename"] = True  # the scripts move objects to a new anchor
        return
    if name == "Export Type":
        connector.warn(
            f"Export Type {value}: ecmahost exports whole objects (ObjectReplace); "
            "the export script gets every attribute of a changed object"
        )
    else:
        connector.warn(f"{name} = {value}: not supported by ecmahost, not carried over")


def _plain(connector: ImportedConnector, parameter: _Parameter, into: dict[str, str]) -> None:
    """A parameter the scripts read: as a value, or as a secret by reference."""
    name = parameter.name
    if not _NAME.fullmatch(name):
        if parameter.value:
            connector.warn(f"parameter {name!r}: not a name scripts can get, not carried over")
        return
    if parameter.encrypted:
        if parameter.value:
            variable = _variable(connector.name, name)
            connector.secrets[name] = f"env:{variable}"
            connector.warn(f"{name} is encrypted in the export: set {variable} to its value")
        else:
            connector.notes.append(f"{name}: encrypted and empty in the export, not carried")
        return
    if parameter.use == "Connectivity" and not parameter.value:
        return  # Server, Domain, User left empty: nothing to pass on
    into[name] = parameter.value


def _script(connector: ImportedConnector, parameter: _Parameter) -> None:
    """A script body: a role's (``ROLE.ps1``) or the common module's."""
    role = _ROLES.get(parameter.name, "module")
    if not parameter.value.strip():
        return
    if parameter.placeholder:
        connector.placeholders.append(parameter.name)
        return
    connector.bodies[role] = parameter.value
    if role != "module":
        connector.scripts[role] = f"{role}.ps1"


def _run_steps(connector: ImportedConnector, node: ET.Element, defaults: list[_Parameter]) -> None:
    """RunStep parameters per ecmahost run step: a run configuration's, else the
    connector-level defaults."""
    found: dict[str, list[_Parameter]] = {}
    for run in node.findall("ConnectorConfig/RunConfigurations/RunConfiguration"):
        label = _text(run, "Name")
        step = _step_of(label)
        if step is None:
            connector.warn(f"run profile {label!r}: ecmahost runs full imports only, not carried")
            continue
        for run_step in run.findall("RunSteps/RunStep"):
            params = run_step.findall("Parameters/Parameter")
            found.setdefault(step, []).extend(_parameter(p) for p in params)
    for step in ("import", "export"):
        values: dict[str, str] = {}
        for parameter in found.get(step, defaults):
            _plain(connector, parameter, values)
        if values:
            connector.run_steps[step] = values
    page = connector.run_steps.get("export", {}).get("PageSizeExport", "")
    if page.isdigit() and 1 <= int(page) <= 100_000:
        connector.top["export_batch_size"] = int(page)


def _step_of(label: str) -> str | None:
    """The ecmahost run step of an ECMA2Host run profile (none for a delta import)."""
    lowered = label.lower()
    steps = [step for step in ("export", "import") if step in lowered and "delta" not in lowered]
    return steps[0] if steps else None


def _schema(connector: ImportedConnector, schema: ET.Element | None, source: Path) -> None:
    entries = schema.findall("EntriesSchema/EntrySchema") if schema is not None else []
    if not entries:
        raise ConfigError(f"{source}: connector {connector.name!r} has no EntrySchema")
    for extra in entries[1:]:
        connector.warn(f"object type {_text(extra, 'ObjectType')!r}: ecmahost serves one, skipped")
    entry = entries[0]
    connector.settings["object_type"] = _text(entry, "ObjectType")
    attributes: list[str] = []
    for attribute in entry.findall("SchemaAttributes/AttributeSchema"):
        name = _text(attribute, "Name")
        if _text(attribute, "Multivalued").lower() == "true":
            connector.warn(f"attribute {name}: multi-valued, not supported, left out")
            continue
        if _text(attribute, "IsAnchor").lower() == "true":
            connector.settings["anchor"] = name
        attributes.append(name)
    connector.settings["attributes"] = attributes
    _deprovisioning(connector, entry.find("DeprovisioningModel"))
