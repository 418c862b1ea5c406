"""npm registries for Stowage (hosted, proxy, group); see ``docs/formats/npm.md``."""
