"""Writing what ``ecmahost.engine.cli.ecma_xml`` read from an ECMA2Host export: the script files
beside the configuration and the connector's TOML table."""

from __future__ import annotations

import json
import os
import re
import tomllib
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

from ecmahost.connectors.exceptions import ConfigError

__all__ = [
    "EXAMPLES_DIR",
    "REQUIRED_ROLES",
    "ImportedConnector",
    "existing_config",
    "plan_scripts",
    "render",
    "write_files",
]

# Data files of the script connector's package (shipped in the wheel), not code.
EXAMPLES_DIR = Path(str(files("ecmahost.connectors.script"))) / "examples" / "csv-scripts"
"""The Python CSV scripts that ``use_python_examples`` copies and points the roles at."""
_EXAMPLE_FILES = ("csvtarget.py", "schema.py", "import.py", "export.py")
REQUIRED_ROLES = ("schema", "import", "export")


@dataclass
class ImportedConnector:
    """One connector being translated: the TOML values, and what could not be."""

    name: str
    top: dict[str, Any] = field(default_factory=dict)
    deprovision: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    scripts: dict[str, str] = field(default_factory=dict)
    bodies: dict[str, str] = field(default_factory=dict)
    """File name: script body, for the files written beside the configuration."""
    parameters: dict[str, str] = field(default_factory=dict)
    run_steps: dict[str, dict[str, str]] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    placeholders: list[str] = field(default_factory=list)
    module_name: str = "CommonModule.psm1"
    kind: str = "PowerShell"
    """The ECMA2Host connector it was: PowerShell, Generic SQL, Generic LDAP."""
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Tables below ``settings`` by their dotted name (``attributes``, ``delta``)."""
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def warn(self, message: str) -> None:
        self.warnings.append(f"{self.name}: {message}")


def existing_config(output: Path | None, connectors: list[ImportedConnector]) -> str:
    """The configuration ``output`` already holds, checked for a clash of names."""
    if output is None or not output.exists():
        return ""
    try:
        text = output.read_text(encoding="utf-8")
        tables = tomllib.loads(text).get("connectors", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot add to {output}: {exc}") from exc
    for connector in connectors:
        if connector.name in tables:
            raise ConfigError(f"{output} already has a connector {connector.name!r}")
    return text


def write_files(files: dict[Path, str]) -> None:
    """Write every file, after checking that none would replace a different one."""
    for path, body in files.items():
        if path.exists() and path.read_text(encoding="utf-8", errors="replace") != body:
            raise ConfigError(f"{path} exists with other content: remove it or use --scripts-dir")
    for path, body in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body, encoding="utf-8")


def plan_scripts(
    connector: ImportedConnector, folder: Path, base: Path | None, use_python_examples: bool
) -> dict[Path, str]:
    """The script files to write, by path; the roles then refer to them (relative to
    ``base``, the configuration's folder, when there is one)."""
    missing = [r for r in REQUIRED_ROLES if r not in connector.scripts]
    if use_python_examples:
        _use_examples(connector)
    elif missing:
        what = ", ".join(connector.placeholders) or "no " + ", ".join(missing) + " script"
        raise ConfigError(
            f"connector {connector.name!r}: {what} (a redacted export holds placeholders, not "
            "scripts); pass --use-python-examples to use ecmahost's Python CSV scripts"
        )
    for role, name in connector.scripts.items():
        path = folder / name
        connector.scripts[role] = Path(os.path.relpath(path, base) if base else path).as_posix()
    return {folder / _file_name(connector, key): body for key, body in connector.bodies.items()}


def _use_examples(connector: ImportedConnector) -> None:
    if not (EXAMPLES_DIR / "import.py").is_file():
        raise ConfigError(f"the Python examples are not installed here ({EXAMPLES_DIR})")
    for placeholder in connector.placeholders:
        connector.warn(
            f"{placeholder} holds a placeholder, not a script (a redacted export): "
            "the Python example plays its part"
        )
    for role in REQUIRED_ROLES:
        connector.scripts[role] = f"{role}.py"
    for name in _EXAMPLE_FILES:
        connector.bodies[name] = (EXAMPLES_DIR / name).read_text(encoding="utf-8")
    connector.notes.append(
        "the roles run ecmahost's Python CSV examples: FileName and Schema.xml are read "
        "from the configuration's folder"
    )
    leftover = [role for role in connector.scripts if role not in REQUIRED_ROLES]
    for role in leftover:  # ECMA2Host PowerShell: it cannot run beside the examples
        del connector.scripts[role]
        connector.warn(f"the PowerShell {role} script is written to a file but not used")


def _file_name(connector: ImportedConnector, key: str) -> str:
    if key == "module":
        return connector.module_name
    return key if key.endswith(".py") else f"{key}.ps1"


def render(connector: ImportedConnector, source: Path) -> str:
    key = f"connectors.{_key(connector.name)}"
    lines = [
        f"# Imported by `ecmahost connectors import-xml` from {source.name}",
        f"# (ECMA2Host {connector.kind} connector {connector.name!r}).",
    ]
    if any(s.endswith(".ps1") for s in connector.scripts.values()):
        connector.warn(
            "the PowerShell scripts are written for ECMA2Host's connector; adapt them to "
            "ecmahost's JSON Lines contract (the README's script connector section) before use"
        )
    warned = [w.split(": ", 1)[1] for w in connector.warnings]
    if warned:
        lines += ["# Not carried over, or not as it was (review):", *(f"#   - {w}" for w in warned)]
    if connector.notes:
        lines += ["# Notes:", *(f"#   - {n}" for n in connector.notes)]
    lines += _table(key, connector.top)
    lines += _table(f"{key}.deprovision", connector.deprovision)
    lines += _table(f"{key}.settings", connector.settings)
    for name, values in connector.tables.items():
        lines += _table(f"{key}.settings.{name}", values)
    lines += _table(f"{key}.settings.scripts", connector.scripts)
    lines += _table(f"{key}.settings.parameters", connector.parameters)
    for step, values in connector.run_steps.items():
        lines += _table(f"{key}.settings.run_step_parameters.{step}", values)
    lines += _table(f"{key}.settings.secret_parameters", connector.secrets)
    return "\n".join(lines) + "\n"


def _table(name: str, values: dict[str, Any]) -> list[str]:
    if not values:
        return []
    return ["", f"[{name}]", *(f"{_key(k)} = {_value(v)}" for k, v in values.items())]


def _key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else _value(name)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    # JSON's string escapes are all valid in TOML; DEL is the one TOML also wants escaped.
    return json.dumps(str(value), ensure_ascii=False).replace("\x7f", "\\u007f")
