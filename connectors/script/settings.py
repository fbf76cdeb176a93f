"""The script connector's settings: which command plays each role, with which
parameters, and which part of the scripts' schema is served.

Parameters follow ECMA2Host's PowerShell connector: ``Name_Global`` for every run,
``Name_RunStep`` for the import or export run step (where a set value overrides the
Global one), plain names as they are. ``effective_parameters`` is that rule.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, cast, get_args

from ecmahost.connectors.base import Attribute, ConnectorSettings, DataType, Schema
from ecmahost.connectors.direction import DirectionSettings, with_directions
from ecmahost.connectors.exceptions import ConfigError
from ecmahost.connectors.script.process import Command
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

__all__ = [
    "ROLES",
    "Role",
    "RoleCommand",
    "ScriptSettings",
    "effective_parameters",
]

Role = Literal[
    "schema",
    "import",
    "export",
    "validate",
    "begin_import",
    "end_import",
    "begin_export",
    "end_export",
    "delta_import",
]
RunStep = Literal["import", "export"]
ROLES: tuple[str, ...] = get_args(Role)
_REQUIRED = ("schema", "import", "export")
_RUN_STEP: Mapping[str, RunStep] = {
    "begin_import": "import",
    "import": "import",
    "end_import": "import",
    "delta_import": "import",
    "begin_export": "export",
    "export": "export",
    "end_export": "export",
}
"""The ECMA2Host run step whose ``run_step_parameters`` a role gets."""
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SCOPES = (("_Global", 0), ("_RunStep", 2))
"""Scoped parameter suffixes and their rank; a plain name ranks 1. The highest set
value wins."""


class RoleCommand(BaseModel):
    """A role's command: an argv list, or a string split like a POSIX shell would
    (``shell = true`` hands the string to the system shell instead)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    command: str | list[str]
    shell: bool = False
    timeout_s: float | None = Field(default=None, gt=0, le=86_400)

    def words(self) -> list[str]:
        return shlex.split(self.command) if isinstance(self.command, str) else list(self.command)


class ScriptSettings(ConnectorSettings, DirectionSettings):
    """``scripts`` maps each role to its command; ``parameters`` are ECMA2Host's
    (``Name_Global``, ``Name_RunStep``, or plain), ``run_step_parameters`` those of the
    import or export run step only, ``secret_parameters`` go to the header line only.
    ``object_type``, ``anchor`` and ``attributes`` pick from what the schema script
    lists, as ECMA2Host's wizard does. ``rename`` says that the export script moves
    objects to a new anchor (ECMA2Host's "Enable Object Rename")."""

    scripts: dict[Role, str | list[str] | RoleCommand]
    timeout_s: float = Field(300.0, gt=0, le=86_400)
    parameters: dict[str, str] = Field(default_factory=dict)
    run_step_parameters: dict[RunStep, dict[str, str]] = Field(default_factory=dict)
    secret_parameters: dict[str, SecretStr] = Field(default_factory=dict)
    environment: dict[str, str] = Field(default_factory=dict)
    object_type: str | None = None
    anchor: str | None = None
    attributes: list[str] | None = None
    rename: bool = False
    max_line_bytes: int = Field(4 * 1024 * 1024, ge=1024, le=256 * 1024 * 1024)

    @field_validator("scripts")
    @classmethod
    def _required_roles(cls, value: dict[str, Any]) -> dict[str, Any]:
        missing = [role for role in _REQUIRED if role not in value]
        if missing:
            raise ValueError(f"needs a command for {', '.join(missing)}")
        for role, spec in value.items():
            command = spec if isinstance(spec, RoleCommand) else RoleCommand(command=spec)
            if not command.words():
                raise ValueError(f"the {role} command is empty")
        return value

    @field_validator("parameters", "secret_parameters", "environment")
    @classmethod
    def _names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            if not _NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a valid name (letters, digits, _)")
            if name.upper().startswith("ECMAHOST_"):
                raise ValueError(f"{name!r}: names starting with ECMAHOST_ are reserved")
        return value

    @model_validator(mode="after")
    def _run_step_names(self) -> ScriptSettings:
        for step in self.run_step_parameters.values():
            self._names(step)
        return self

    def command(self, role: str) -> RoleCommand | None:
        spec = self.scripts.get(cast(Role, role))
        if spec is None or isinstance(spec, RoleCommand):
            return spec
        return RoleCommand(command=spec)

    def parameters_for(self, role: str) -> dict[str, str]:
        """The parameters a role gets, under their configured names."""
        step = _RUN_STEP.get(role)
        extra = self.run_step_parameters.get(step, {}) if step is not None else {}
        return {**self.parameters, **extra}

    def resolve_command(
        self, role: str, base_dir: Path, search_path: str | None, key: str
    ) -> Command | None:
        """The role's command ready to run, or None if the role has none.

        ``.ps1`` scripts run with ``pwsh``, ``.py`` scripts with the host's own Python;
        relative paths are relative to ``base_dir``. Raises ``ConfigError`` (``key``)
        for a missing script or program."""
        spec = self.command(role)
        if spec is None:
            return None
        timeout_s = spec.timeout_s or self.timeout_s
        words = spec.words()
        if spec.shell:
            line = spec.command if isinstance(spec.command, str) else shlex.join(words)
            return Command(role, (line,), True, timeout_s, f"{role} script ({line})")
        first, rest = words[0], words[1:]
        suffix = Path(first).suffix.lower()
        if suffix == ".ps1":
            pwsh = shutil.which("pwsh", path=search_path)
            if pwsh is None:
                raise ConfigError(f"pwsh is not installed (or not on PATH): {first} needs it", key)
            # -NoProfile too: a profile's output on stdout would break the protocol.
            flags = ("-NoLogo", "-NoProfile", "-NonInteractive", "-File")
            argv = (pwsh, *flags, str(self._file(first, base_dir, key)), *rest)
        elif suffix == ".py":
            # The host's own interpreter: the examples then run wherever ecmahost runs.
            argv = (sys.executable, str(self._file(first, base_dir, key)), *rest)
        else:
            argv = (self._program(first, base_dir, search_path, key), *rest)
        return Command(role, argv, False, timeout_s, f"{role} script ({shlex.join(words)})")

    def select_schema(
        self, types: Mapping[str, list[Attribute]], key: str
    ) -> tuple[Schema, frozenset[str]]:
        """The configured object type, anchor and attributes out of the schema script's
        ``types``, and the lower-cased names of all of that type's attributes."""
        wanted = self.object_type
        if wanted is None:
            if len(types) != 1:
                listed = ", ".join(types)
                raise ConfigError(
                    f"the schema script lists {listed}: pick one", f"{key}.object_type"
                )
            wanted = next(iter(types))
        found = next((t for t in types if t.lower() == wanted.lower()), None)
        if found is None:
            raise ConfigError(
                f"the schema script has no object type {wanted!r}", f"{key}.object_type"
            )
        attributes = _unique(types[found])
        known = frozenset(a.name.lower() for a in attributes)
        attributes = self._anchored(attributes, known, f"{key}.anchor")
        schema = Schema(found, self._selected(attributes, known, f"{key}.attributes"))
        return with_directions(schema, self, key), known

    # -- helpers --------------------------------------------------------------

    def _file(self, name: str, base_dir: Path, key: str) -> Path:
        path = self.resolve(Path(name), base_dir)
        if not path.is_file():
            raise ConfigError(f"script not found: {path}", key)
        return path

    def _program(self, name: str, base_dir: Path, search_path: str | None, key: str) -> str:
        if "/" in name or "\\" in name:
            return str(self._file(name, base_dir, key))
        found = shutil.which(name, path=search_path)
        if found is None:
            raise ConfigError(f"program {name!r} not found on PATH", key)
        return found

    def _anchored(
        self, attributes: list[Attribute], known: frozenset[str], key: str
    ) -> list[Attribute]:
        """``attributes`` with the configured anchor (if any), anchor first."""
        anchor = self.anchor
        if anchor is not None:
            if anchor.lower() not in known:
                raise ConfigError(f"{anchor!r} is not in the schema", key)
            attributes = [
                dataclasses.replace(a, is_anchor=a.name.lower() == anchor.lower())
                for a in attributes
            ]
        anchors = [a for a in attributes if a.is_anchor]
        if len(anchors) != 1:
            raise ConfigError(f"the schema needs exactly one anchor, found {len(anchors)}", key)
        if anchors[0].data_type is not DataType.STRING:
            kind = anchors[0].data_type.value
            raise ConfigError(f"the anchor {anchors[0].name!r} is {kind}, not String", key)
        return [anchors[0], *(a for a in attributes if not a.is_anchor)]

    def _selected(
        self, attributes: list[Attribute], known: frozenset[str], key: str
    ) -> tuple[Attribute, ...]:
        if self.attributes is None:
            return tuple(attributes)
        chosen = {name.lower() for name in self.attributes}
        unknown = sorted(chosen - known)
        if unknown:
            raise ConfigError(f"not in the schema: {', '.join(unknown)}", key)
        return tuple(a for a in attributes if a.is_anchor or a.name.lower() in chosen)


def effective_parameters(raw: Mapping[str, str]) -> dict[str, str]:
    """``Name`` for each parameter: ``Name_RunStep`` when set and not empty, else a plain
    ``Name``, else ``Name_Global`` (the rule ECMA2Host's sample scripts follow)."""
    chosen: dict[str, tuple[int, str]] = {}
    for name, value in raw.items():
        base, rank = name, 1
        for suffix, scope_rank in _SCOPES:
            if name.endswith(suffix) and len(name) > len(suffix):
                base, rank = name[: -len(suffix)], scope_rank
        if rank == 2 and value == "":
            continue
        if base not in chosen or chosen[base][0] <= rank:
            chosen[base] = (rank, value)
    return {base: value for base, (_, value) in chosen.items()}


def _unique(attributes: list[Attribute]) -> list[Attribute]:
    seen: set[str] = set()
    for attribute in attributes:
        if attribute.name.lower() in seen:
            raise ConfigError(f"the schema script lists attribute {attribute.name!r} twice")
        seen.add(attribute.name.lower())
    return attributes
