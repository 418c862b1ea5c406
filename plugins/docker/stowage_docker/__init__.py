"""Docker / OCI registry format for Stowage."""
