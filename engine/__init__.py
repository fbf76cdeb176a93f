"""The engine: the SCIM front-end, the connector space, the export queue, the workers
that import and export, and the host that runs them (see the README's layout)."""
