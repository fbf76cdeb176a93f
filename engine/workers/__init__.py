"""The background work of a connector: exports, imports, and the import schedule."""
