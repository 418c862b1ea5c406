"""Content-addressed blob storage: the interface and the built-in file implementation."""

from stowage.blobstore.base import BlobStore, BlobStoreConfig, BlobWriter, ResumableUpload, copy_into
from stowage.blobstore.file import FileBlobStore

__all__ = ["BlobStore", "BlobStoreConfig", "BlobWriter", "FileBlobStore", "ResumableUpload", "copy_into"]
