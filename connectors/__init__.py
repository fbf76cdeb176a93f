"""Connectors: the contract every connector implements (``base``, ``exceptions``,
``secrets``, importing nothing else of ecmahost) and the built-in connector types,
one sub-package each. The engine reaches a type only through the contract and its
registry."""
