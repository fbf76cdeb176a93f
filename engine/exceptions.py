"""The engine's own errors; the connector contract's are in ``ecmahost.connectors.exceptions``.

Domain errors (``NotFoundError``, ``AnchorTakenError``) say what went wrong in the
connector space's terms; the SCIM front-end's error middleware alone turns them, and
``ScimError``, into SCIM Error responses."""

from __future__ import annotations

from ecmahost.connectors.exceptions import EcmahostError

__all__ = [
    "AnchorImmutableError",
    "AnchorRequiredError",
    "AnchorTakenError",
    "DomainError",
    "ExportUnconfirmedError",
    "NotFoundError",
    "ScimError",
    "TargetConflictError",
    "TargetRefusedError",
    "TargetRejectedError",
    "TargetTimeoutError",
    "TargetUnavailableError",
]


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


class SpaceUnavailableError(DomainError):
    """The connector space's database cannot be reached (PostgreSQL down or
    restarting, SQLite's file held by another process): nothing was done."""

    def __init__(self) -> None:
        super().__init__("the connector space's database cannot be reached; try again later")


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


# -- provisioning rules: the request must change --------------------------------


class AnchorRequiredError(DomainError):
    """A new object comes without its anchor attribute."""

    def __init__(self, attribute: str) -> None:
        super().__init__(f"the anchor attribute {attribute} is required")
        self.attribute = attribute


class AnchorImmutableError(DomainError):
    """A write removes the anchor attribute (``removed``), or changes it on a
    connector that cannot rename."""

    def __init__(self, attribute: str, *, removed: bool) -> None:
        verb = "be removed" if removed else "change"
        super().__init__(f"the anchor attribute {attribute} cannot {verb}")
        self.attribute = attribute
        self.removed = removed


# -- a sync-mode export the target did not take: try again later ----------------


class ExportUnconfirmedError(DomainError):
    """The target has not taken the change yet; it stays queued, so the same
    request may be sent again later."""


class TargetTimeoutError(ExportUnconfirmedError):
    """No outcome within ``wait_s`` seconds."""

    def __init__(self, wait_s: float) -> None:
        super().__init__(
            f"the target did not confirm the change within {wait_s:g} s; "
            "it stays queued and will be exported"
        )
        self.wait_s = wait_s


class TargetUnavailableError(ExportUnconfirmedError):
    """The target could not be reached; ``retrying`` when the export will be
    tried again by itself."""

    def __init__(self, error: str | None, *, retrying: bool) -> None:
        queued = " it stays queued and will be retried" if retrying else ""
        super().__init__(f"the target is unavailable: {error};{queued}")
        self.error = error
        self.retrying = retrying


# -- a sync-mode export the target refused: the request must change -------------


class TargetRefusedError(DomainError):
    """The target refused the change for good; ``error`` is its reason."""

    default = "the target refused the change"

    def __init__(self, error: str | None) -> None:
        super().__init__(error or self.default)
        self.error = error


class TargetConflictError(TargetRefusedError):
    """The change clashes with another object in the target (e.g. a unique value)."""

    default = "conflict in the target"


class TargetRejectedError(TargetRefusedError):
    """The target rejected the change's values."""

    default = "the target rejected the change"
