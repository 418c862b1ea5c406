"""The metadata catalog: repositories, assets, components, users and coordination state."""

from stowage.catalog.base import Catalog, Page, RemoteStatus
from stowage.catalog.sqlite import SqliteCatalog

__all__ = ["Catalog", "Page", "RemoteStatus", "SqliteCatalog"]
