"""A plugin that cannot be imported (its dependency is missing), as happens after a bad upgrade."""

raise ImportError("stowage_broken_example needs the module 'not_installed_anywhere' (broken on purpose)")
