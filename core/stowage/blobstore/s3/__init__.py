"""The S3 blob store (type ``S3``): AWS S3 and S3-compatible servers, through boto3 (``stowage[s3]``)."""

from stowage.blobstore.s3.settings import S3Settings, parse_s3_settings
from stowage.blobstore.s3.store import S3BlobStore

__all__ = ["S3BlobStore", "S3Settings", "parse_s3_settings"]
