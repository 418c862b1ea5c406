"""The metadata catalog: repositories, assets, components, users and coordination state."""

from stowage.catalog.base import Catalog, DirectoryEntry, Page, RemoteStatus
from stowage.catalog.sqlite import SqliteCatalog

__all__ = ["Catalog", "DirectoryEntry", "Page", "RemoteStatus", "SqliteCatalog"]
