"""Secrets by reference, and the registry of values never to print.

The configuration loader registers every secret it can see with ``redact`` when the
file is loaded, and connectors register what they resolve themselves; the engine's log
formatter passes every line through ``scrub``, and so does any connector that hands on
text it did not write (a script's stderr). This is the one place besides the
configuration loader that reads the environment, and only for ``env:`` references the
configuration names.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from ecmahost.connectors.exceptions import ConfigError

__all__ = ["is_reference", "redact", "resolve_secret", "scrub"]

log = logging.getLogger(__name__)

MIN_REDACTED_CHARS = 4
"""Shorter secrets are not redacted: replacing every ``ab`` in every line would garble
the log and still tell the secret by where the stars fall. They get a warning."""

_SECRETS: set[str] = set()
_ordered: tuple[str, ...] = ()
"""``_SECRETS``, longest first: a secret that holds another is replaced whole."""


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


def redact(secret: str, key: str | None = None) -> None:
    """Never print ``secret``: it is replaced by ``***`` wherever it would appear, as
    it is, as it reads inside a JSON string (escaped, with or without ``\\uXXXX``
    for non-ASCII) and inside a Python ``repr`` (messages quote values with ``!r``).
    ``key`` names the setting in the warning for a short secret."""
    global _ordered
    if not secret:
        return
    if len(secret) < MIN_REDACTED_CHARS:
        log.warning(
            "a secret shorter than %d characters cannot be redacted from logs; use a longer one",
            MIN_REDACTED_CHARS,
            extra={"action": "secret.too_short", "key": key},
        )
        return
    quoted = (json.dumps(secret, ensure_ascii=a)[1:-1] for a in (False, True))
    forms = {secret, repr(secret)[1:-1], *quoted}
    if forms <= _SECRETS:
        return
    _SECRETS.update(forms)
    _ordered = tuple(sorted(_SECRETS, key=len, reverse=True))


def scrub(text: str) -> str:
    """``text`` with every registered secret replaced by ``***``."""
    for secret in _ordered:
        if secret in text:
            text = text.replace(secret, "***")
    return text
