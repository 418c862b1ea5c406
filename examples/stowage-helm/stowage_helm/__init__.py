"""Helm chart repositories for Stowage (an example of a third-party format plugin)."""
