"""Raw repositories for Stowage: any file at any path."""
