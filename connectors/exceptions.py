"""The errors of the connector contract, grouped by what the caller must do about them.

Connectors raise these; the engine handles them. They import nothing of ecmahost."""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "ConflictError",
    "EcmahostError",
    "PermanentError",
    "TransientError",
    "WatermarkExpiredError",
]


class EcmahostError(Exception):
    """Base of every ecmahost error."""


class ConfigError(EcmahostError):
    """The configuration is wrong: fix it and start again.

    ``key`` names the offending setting (dotted path) when one is known.
    """

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(f"{key}: {message}" if key else message)
        self.key = key


class TransientError(EcmahostError):
    """The target could not take the change now (down, locked, slow): retry later."""


class PermanentError(EcmahostError):
    """The target rejected the change's values: retrying the same change cannot help."""


class ConflictError(PermanentError):
    """The target rejected the change because a unique value is taken."""


class WatermarkExpiredError(TransientError):
    """A delta import's watermark is older than the changes the target still holds (a
    purged accesslog or changelog) or newer than the target's own position.

    The engine catches it and falls back to a full import; it is transient so that a
    caller not knowing deltas retries."""
