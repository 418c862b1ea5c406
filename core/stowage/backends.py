"""The surface for plugins that implement storage rather than a format: a catalog (``stowage_catalog``)
or a blob store (``stowage_blob_store``).

Such a plugin subclasses core's interfaces (and may extend the built-in implementations), so it needs
more than a format does; these names are kept stable under the same policy as ``stowage.plugin``
(``docs/plugin-api.md``), which is where everything else (``hookimpl``, models, errors) comes from.
"""

from stowage.blobstore import BlobStore, BlobStoreConfig, BlobWriter, FileBlobStore, ResumableUpload
from stowage.catalog import Catalog, DirectoryEntry, RemoteStatus, SqliteCatalog

__all__ = [
    # catalogs
    "Catalog", "DirectoryEntry", "RemoteStatus", "SqliteCatalog",
    # blob stores
    "BlobStore", "BlobStoreConfig", "BlobWriter", "FileBlobStore", "ResumableUpload",
]
