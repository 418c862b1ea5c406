"""Built-in storage: the SQLite catalog (default), the PostgreSQL catalog, the file blob store and the S3
blob store (``stowage[s3]``)."""

from __future__ import annotations

from pathlib import Path

from stowage.blobstore import BlobStore, BlobStoreConfig, FileBlobStore
from stowage.catalog import Catalog, SqliteCatalog
from stowage.errors import ConfigurationError
from stowage.hookspecs import hookimpl
from stowage.settings import ServerSettings


@hookimpl(trylast=True)
def stowage_catalog(settings: ServerSettings) -> Catalog | None:
    if settings.catalog.type == "postgresql":
        from stowage.catalog.postgres import PostgresCatalog  # psycopg loads only for clusters

        if not settings.catalog.url:
            raise ConfigurationError("[server] catalog: type postgresql needs a url (postgresql://user@host/db)")
        return PostgresCatalog(settings.catalog.url, pool_size=settings.catalog.pool_size)
    if settings.catalog.type != "sqlite":
        return None
    path = Path(settings.catalog.path) if settings.catalog.path else settings.data_path / "db" / "catalog.sqlite"
    return SqliteCatalog(path)


@hookimpl(trylast=True)
def stowage_blob_store(config: BlobStoreConfig, settings: ServerSettings) -> BlobStore | None:
    if config.type.lower() == "s3":
        from stowage.blobstore.s3 import S3BlobStore

        return S3BlobStore(config, spool_dir=settings.data_path / "tmp" / "s3-spool",
                           pool_size=max(10, settings.threads + 4))
    if config.type.lower() != "file":
        return None
    root = Path(config.path or config.name)
    if not root.is_absolute():
        root = settings.data_path / "blobs" / root
    return FileBlobStore(config, root)
