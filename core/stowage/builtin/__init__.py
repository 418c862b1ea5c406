"""Core's default plugins. They use the same hooks as third-party plugins and are registered ``trylast``."""
