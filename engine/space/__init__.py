"""The store: every statement against the connector space and the export queue."""
