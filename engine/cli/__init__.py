"""The ``ecmahost`` command."""
