"""The engine's own errors; the connector contract's are in ``ecmahost.connectors.exceptions``."""

from __future__ import annotations

from ecmahost.connectors.exceptions import EcmahostError

__all__ = ["ScimError"]


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
