"""PyPI repositories for Stowage."""
