"""Secrets by reference, and the registry of values never to print.

A connector resolves its secret settings with ``resolve_secret`` and registers what it
resolved with ``redact``; the engine's log formatter passes every line through
``scrub``. This is the one place besides the configuration loader that reads the
environment, and only for ``env:`` references the configuration names.
"""

from __future__ import annotations

import os
from pathlib import Path

from ecmahost.connectors.exceptions import ConfigError

__all__ = ["is_reference", "redact", "resolve_secret", "scrub"]

_SECRETS: set[str] = set()


def is_reference(value: str) -> bool:
    """Whether ``value`` names a secret (``env:``/``file:``) rather than holding it."""
    return value.startswith(("env:", "file:"))


def resolve_secret(reference: str, key: str, base_dir: Path) -> str:
    """``env:NAME`` reads a variable, ``file:PATH`` a file; anything else is a literal.
    ConfigError names ``key`` when the variable or file is missing."""
    kind, sep, rest = reference.partition(":")
    if sep and kind == "env":
        value = os.environ.get(rest)
        if value is None:
            raise ConfigError(f"environment variable {rest} is not set", key)
        return value
    if sep and kind == "file":
        file = Path(rest) if Path(rest).is_absolute() else base_dir / rest
        try:
            return file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"cannot read secret file {file}: {exc.strerror}", key) from exc
    return reference


def redact(secret: str) -> None:
    """Never print ``secret``: it is replaced by ``***`` wherever it would appear."""
    if secret:
        _SECRETS.add(secret)


def scrub(text: str) -> str:
    """``text`` with every registered secret replaced by ``***``."""
    for secret in _SECRETS:
        text = text.replace(secret, "***")
    return text
