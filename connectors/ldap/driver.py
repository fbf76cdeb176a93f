"""The ldap3 names the LDAP connector uses, imported in one place.

ldap3 2.9.1, its latest release, imports two names that pyasn1 0.6 deprecates, so
importing it raises a DeprecationWarning, which the test suite turns into an error.
The warning says nothing about ecmahost; it is silenced here, for that one import,
and every LDAP module takes its ldap3 names from this module.
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", r"(tagMap|typeMap) is deprecated", DeprecationWarning)
    import ldap3
    from ldap3 import MODIFY_REPLACE
    from ldap3.core.exceptions import (
        LDAPBindError,
        LDAPCertificateError,
        LDAPCommunicationError,
        LDAPException,
        LDAPMaximumRetriesError,
        LDAPNoSuchObjectResult,
        LDAPOperationResult,
        LDAPResponseTimeoutError,
        LDAPStartTLSError,
    )
    from ldap3.protocol.rfc4512 import SchemaInfo

__all__ = [
    "MODIFY_REPLACE",
    "LDAPBindError",
    "LDAPCertificateError",
    "LDAPCommunicationError",
    "LDAPException",
    "LDAPMaximumRetriesError",
    "LDAPNoSuchObjectResult",
    "LDAPOperationResult",
    "LDAPResponseTimeoutError",
    "LDAPStartTLSError",
    "SchemaInfo",
    "ldap3",
]
