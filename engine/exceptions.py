"""Every error ecmahost raises, grouped by what the caller must do about it."""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "ConflictError",
    "EcmahostError",
    "PermanentError",
    "ScimError",
    "TransientError",
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


class ScimError(EcmahostError):
    """A SCIM request cannot be served: answer it with a SCIM Error body.

    ``status`` is the HTTP status, ``scim_type`` the RFC 7644 §3.12 ``scimType``.
    """

    def __init__(
        self,
        status: int,
        detail: str,
        scim_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.scim_type = scim_type
        self.headers = headers or {}
