"""The LDAP connector's error boundary: ldap3's exceptions and LDAP result codes
translated, once, into the engine's errors, with the server's own message kept."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from ecmahost.connectors.exceptions import (
    ConflictError,
    EcmahostError,
    PermanentError,
    TransientError,
)
from ecmahost.connectors.ldap.driver import (
    LDAPBindError,
    LDAPCertificateError,
    LDAPCommunicationError,
    LDAPException,
    LDAPMaximumRetriesError,
    LDAPOperationResult,
    LDAPResponseTimeoutError,
    LDAPStartTLSError,
)

__all__ = ["boundary", "check_result", "is_connection_error", "translate"]

_TRANSIENT_CODES = frozenset(
    {
        3,  # timeLimitExceeded
        8,  # strongerAuthRequired: the connection's security, not the change, is at fault
        11,  # adminLimitExceeded
        13,  # confidentialityRequired: likewise
        48,  # inappropriateAuthentication
        49,  # invalidCredentials: a rotated password; the change waits for the fix
        51,  # busy
        52,  # unavailable
        80,  # other: OpenLDAP's "internal error", e.g. a full database
    }
)
"""Result codes that say nothing against the change itself: it is retried later."""

_CONFLICT_CODES = frozenset({68})  # entryAlreadyExists
_CONSTRAINT_VIOLATION = 19
_SUCCESS_CODES = frozenset({0, 5, 6})  # success, compareFalse, compareTrue


def translate(exc: Exception, doing: str) -> EcmahostError:
    """The engine's error for ldap3's ``exc``, raised while ``doing`` something."""
    if isinstance(exc, LDAPOperationResult):
        return _from_result(exc, doing)
    if isinstance(exc, LDAPBindError | LDAPStartTLSError | LDAPCertificateError):
        # The connection's set-up failed, not the change: it waits for the fix.
        return TransientError(f"LDAP {doing}: {exc}")
    if is_connection_error(exc):
        return TransientError(f"LDAP {doing}: the server cannot be reached: {_text(exc)}")
    return PermanentError(f"LDAP {doing}: {_text(exc)}")


def is_connection_error(exc: BaseException) -> bool:
    """Whether ``exc`` leaves the connection unusable (it must be opened again)."""
    return isinstance(
        exc,
        LDAPCommunicationError | LDAPResponseTimeoutError | LDAPMaximumRetriesError | OSError,
    )


@contextlib.contextmanager
def boundary(doing: str) -> Iterator[None]:
    """Translate what ldap3 (or the socket under it) raises inside the block."""
    try:
        yield
    except (LDAPException, OSError) as exc:
        raise translate(exc, doing) from exc


def check_result(result: dict[str, Any] | None, doing: str) -> None:
    """Raise for a result ldap3 does not raise for (size and time limits, referrals)."""
    if result is None or result.get("result", 0) in _SUCCESS_CODES:
        return
    raised = LDAPOperationResult(
        result=result.get("result"),
        description=result.get("description"),
        message=result.get("message"),
        response_type=result.get("type"),
    )
    raise translate(raised, doing) from None


def _from_result(exc: LDAPOperationResult, doing: str) -> EcmahostError:
    code = exc.result
    text = f"LDAP {doing}: {exc.description or 'error'} ({code})"
    if exc.message:
        text += f": {exc.message}"
    if code in _TRANSIENT_CODES:
        return TransientError(text)
    if code in _CONFLICT_CODES:
        return ConflictError(text)
    # The unique overlay (OpenLDAP) and uniqueness plug-ins (389, others) answer with
    # constraintViolation; only their message tells them from other constraints.
    if code == _CONSTRAINT_VIOLATION and "unique" in (exc.message or "").lower():
        return ConflictError(text)
    return PermanentError(text)


def _text(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
