"""yum/RPM repositories for Stowage."""
