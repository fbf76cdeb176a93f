"""The `ldap` connector type."""

from ecmahost.connectors.ldap.connector import LdapConnector

__all__ = ["LdapConnector"]
