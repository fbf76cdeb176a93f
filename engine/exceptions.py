"""The engine's own errors; the connector contract's are in ``ecmahost.connectors.exceptions``.

Domain errors (``NotFoundError``, ``AnchorTakenError``) say what went wrong in the
connector space's terms; the SCIM front-end's error middleware alone turns them, and
``ScimError``, into SCIM Error responses."""

from __future__ import annotations

from ecmahost.connectors.exceptions import EcmahostError

__all__ = ["AnchorTakenError", "DomainError", "NotFoundError", "ScimError"]


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


class DomainError(EcmahostError):
    """A request cannot be done in the connector space as it stands."""


class NotFoundError(DomainError):
    """No visible object has this id."""

    def __init__(self, object_id: str) -> None:
        super().__init__(f"resource {object_id} not found")
        self.object_id = object_id


class AnchorTakenError(DomainError):
    """A visible object already holds this anchor."""

    def __init__(self, anchor: str) -> None:
        super().__init__(f"an object with anchor {anchor!r} exists")
        self.anchor = anchor
