"""The S3 blob store: one object per digest under ``<prefix>blobs/ab/cd/<sha256>`` in one bucket.

Keys under ``<prefix>tmp/`` are never served: writers' multipart uploads, resumable uploads (Docker
chunked pushes) and blobs the collector has set aside. ``<prefix>touched/<sha256>`` records when a
writer last re-used an existing blob, the S3 counterpart of the file store's touch (see :meth:`collect`).
"""

from __future__ import annotations

import functools
import io
import re
import secrets
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator

from stowage.blobstore.base import BlobStore, BlobStoreConfig, BlobWriter, ResumableUpload, UploadDigests
from stowage.blobstore.s3.client import make_client
from stowage.blobstore.s3.settings import parse_s3_settings
from stowage.errors import BadRequest, NotFound, StowageError

#: temporary objects older than this are leftovers of a crashed writer or an abandoned upload.
STALE_TEMP_SECONDS = 6 * 3600
#: key prefix (under ``tmp/``) of a blob the collector has copied aside while it decides.
COLLECT_PREFIX = "collect-"
#: presigned download URLs live this long: enough to start a download, too short to be worth sharing.
PRESIGNED_SECONDS = 300
#: a collector decides about a blob it set aside within seconds; older asides are a stopped collector's.
COLLECT_DECISION_SECONDS = 600
_STAMPED = re.compile(r"-(\d{9,11})-[0-9a-f]+$")
_HEX = frozenset("0123456789abcdef")
_READ_BUFFER = 256 * 1024


class S3Error(StowageError):
    """The bucket answered with an error Stowage cannot turn into a client's mistake."""

    code, status = "BLOB_STORE_UNAVAILABLE", 503


def bucket_errors_are_503(method: Callable[..., Any]) -> Callable[..., Any]:
    """Report the bucket's failures (unreachable, denied, throttled beyond retries) as a 503 naming the
    cause, not as an internal error: the request was fine, the storage behind it is not."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except Exception as error:
            if not type(error).__module__.startswith(("botocore", "boto3", "s3transfer")):
                raise
            raise S3Error(f"the S3 blob store failed: {error_code(error) or type(error).__name__}: {error}") from error

    return wrapper


def error_code(error: Exception) -> str:
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def is_missing(error: Exception) -> bool:
    return error_code(error) in ("404", "NoSuchKey", "NotFound", "NoSuchUpload")


def temp_name(stem: str) -> str:
    """A temporary key's last component, stamped with its creation time: the sweep goes by it, since
    some servers report no usable start time for a multipart upload (moto says 2010)."""
    return f"{stem}-{int(time.time())}-{secrets.token_hex(6)}"


def _started(name: str, initiated: float) -> float:
    match = _STAMPED.search(name)
    return float(match.group(1)) if match else initiated


class S3BlobReader(io.RawIOBase):
    """A seekable read-only view of one object: each read continues one ranged GetObject stream;
    a seek just moves the position (the next read opens a new stream there). Memory: the socket buffer."""

    def __init__(self, client: Any, bucket: str, key: str, size: int):
        super().__init__()
        self._client, self._bucket, self._key, self.size = client, bucket, key, size
        self._pos = 0
        self._body: Any = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        position = max(0, base + offset)
        if position != self._pos:
            self._drop_body()
            self._pos = position
        return self._pos

    @bucket_errors_are_503
    def readinto(self, buffer: Any) -> int:
        if self._pos >= self.size or len(buffer) == 0:
            return 0
        if self._body is None:
            response = self._client.get_object(Bucket=self._bucket, Key=self._key, Range=f"bytes={self._pos}-")
            self._body = response["Body"]
        data = self._body.read(min(len(buffer), self.size - self._pos))
        if not data:
            raise S3Error(f"object {self._key} ended at {self._pos} of {self.size} bytes")
        buffer[:len(data)] = data
        self._pos += len(data)
        return len(data)

    def _drop_body(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None

    def close(self) -> None:
        self._drop_body()
        super().close()


class S3BlobStore(BlobStore):
    def __init__(self, config: BlobStoreConfig, *, spool_dir: Path, pool_size: int = 16):
        self._pool_size = pool_size
        self._client_lock = threading.Lock()
        self._client: Any = None
        self.spool_dir = Path(spool_dir)
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        super().__init__(config)  # through the property: validates the settings
        self.upload_digests = UploadDigests()

    @property
    def config(self) -> BlobStoreConfig:
        return self._config

    @config.setter
    def config(self, config: BlobStoreConfig) -> None:
        """New settings (credentials, endpoint) take effect with a new client; the bucket stays."""
        settings = parse_s3_settings(config.attributes, f"blob store {config.name}: bucketConfiguration")
        with self._client_lock:
            self._config, self.settings, self._client = config, settings, None

    @property
    def client(self) -> Any:
        client = self._client
        if client is None:
            with self._client_lock:
                if self._client is None:
                    self._client = make_client(self.settings, pool_size=self._pool_size)
                client = self._client
        return client

    @property
    def bucket(self) -> str:
        return self.settings.bucket

    def key(self, name: str) -> str:
        return f"{self.settings.key_prefix}{name}"

    def blob_key(self, sha256: str) -> str:
        if len(sha256) != 64 or not _HEX.issuperset(sha256):
            raise NotFound(f"no blob {sha256!r}")
        return self.key(f"blobs/{sha256[:2]}/{sha256[2:4]}/{sha256}")

    def ensure_bucket(self) -> None:
        """Check that the bucket answers (creating it when it does not exist, as Nexus does); a
        :class:`~stowage.errors.BadRequest` that says why otherwise."""
        try:
            try:
                self.client.head_bucket(Bucket=self.bucket)
            except Exception as error:
                if not is_missing(error):
                    raise
                extra = ({"CreateBucketConfiguration": {"LocationConstraint": self.settings.region}}
                         if self.settings.region not in ("", "us-east-1") else {})
                self.client.create_bucket(Bucket=self.bucket, **extra)
        except Exception as error:
            if isinstance(error, StowageError):
                raise
            raise BadRequest(f"blob store {self.name}: bucket {self.bucket} cannot be used: "
                             f"{error_code(error) or type(error).__name__}: {error}") from None

    # -- the BlobStore interface ----------------------------------------------------------------------
    def writer(self, extra_digests: Iterable[str] = ()) -> BlobWriter:
        from stowage.blobstore.s3.writer import S3BlobWriter

        return S3BlobWriter(self, extra_digests)

    def resumable(self, upload_id: str) -> ResumableUpload:
        from stowage.blobstore.s3.resumable import S3ResumableUpload

        return S3ResumableUpload(self, upload_id)

    def head(self, key: str) -> dict[str, Any] | None:
        try:
            return self.client.head_object(Bucket=self.bucket, Key=key)
        except Exception as error:
            if is_missing(error):
                return None
            raise

    @bucket_errors_are_503
    def open(self, sha256: str) -> IO[bytes]:
        key = self.blob_key(sha256)
        found = self.head(key)
        if found is None:
            raise NotFound(f"blob {sha256} is missing from blob store {self.name!r}")
        return io.BufferedReader(S3BlobReader(self.client, self.bucket, key, int(found["ContentLength"])),
                                 _READ_BUFFER)

    @bucket_errors_are_503
    def exists(self, sha256: str) -> bool:
        try:
            return self.head(self.blob_key(sha256)) is not None
        except NotFound:
            return False

    @bucket_errors_are_503
    def delete(self, sha256: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.blob_key(sha256))

    def digests(self) -> Iterator[str]:
        for key in self.list_keys(self.key("blobs/")):
            name = key[0].rsplit("/", 1)[-1]
            if len(name) == 64 and _HEX.issuperset(name):
                yield name

    def list_keys(self, prefix: str) -> Iterator[tuple[str, float]]:
        """(key, last-modified epoch seconds) of every object under ``prefix``."""
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", ()):
                yield item["Key"], item["LastModified"].timestamp()

    def download_url(self, sha256: str, *, content_type: str) -> str | None:
        """A presigned GetObject URL when ``redirectDownloads`` is on (the bucket then serves the bytes)."""
        if not self.settings.redirect_downloads:
            return None
        return self.client.generate_presigned_url("get_object", ExpiresIn=PRESIGNED_SECONDS, Params={
            "Bucket": self.bucket, "Key": self.blob_key(sha256), "ResponseContentType": content_type})

    # -- publishing and collection ---------------------------------------------------------------------
    def copy(self, source: str, target: str, metadata: dict[str, str] | None = None) -> None:
        """Server-side copy (multipart above 5 GiB: boto3's managed copy)."""
        extra = {"Metadata": metadata, "MetadataDirective": "REPLACE"} if metadata is not None else None
        self.client.copy({"Bucket": self.bucket, "Key": source}, self.bucket, target, ExtraArgs=extra)

    def delete_key(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)

    def reuse(self, sha256: str) -> bool:
        """True when the blob is stored already and is now marked in use (so a concurrent
        :meth:`collect` keeps it); False when the writer must store its own copy."""
        key = self.blob_key(sha256)
        if self.head(key) is None:
            return False
        self.client.put_object(Bucket=self.bucket, Key=self.key(f"touched/{sha256}"),
                               Body=repr(time.time()).encode())
        return self.head(key) is not None

    @staticmethod
    def written_metadata() -> dict[str, str]:
        return {"stowage-written": repr(time.time())}

    def _touched_at(self, sha256: str) -> float:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self.key(f"touched/{sha256}"))["Body"]
            return float(body.read(64))
        except Exception as error:
            if is_missing(error):
                return 0.0
            if isinstance(error, ValueError):
                return 0.0
            raise

    def _last_used(self, sha256: str, head: dict[str, Any]) -> float:
        written = head.get("Metadata", {}).get("stowage-written")
        modified = head["LastModified"]
        used = modified.timestamp() if isinstance(modified, datetime) else 0.0
        try:
            used = max(used, float(written)) if written else used
        except ValueError:
            pass
        return max(used, self._touched_at(sha256))

    @bucket_errors_are_503
    def collect(self, sha256: str, older_than: float) -> bool:
        """Delete the blob unless a writer wrote or re-used it since ``older_than``.

        S3 has no rename, so the blob is first copied aside (server side), then deleted, then the
        writers' mark is read again: a writer that re-used the blob meanwhile wrote its mark before
        checking that the blob exists, so either it saw the blob (and its mark is seen here: the copy
        goes back) or it did not (and stores its own copy). As with the file store, the digest's object
        exists once that writer's catalog row is committed.
        """
        key = self.blob_key(sha256)
        head = self.head(key)
        if head is None:
            return True
        if self._last_used(sha256, head) >= older_than:
            return False
        aside = self.key(f"tmp/{COLLECT_PREFIX}{sha256}-{secrets.token_hex(4)}")
        self.copy(key, aside)
        try:
            self.delete_key(key)
            reused = self._touched_at(sha256) >= older_than
        except BaseException:
            self._restore(aside, sha256)
            raise
        if reused:
            self._restore(aside, sha256)
            return False
        self.delete_key(aside)
        self.delete_key(self.key(f"touched/{sha256}"))
        return True

    def _restore(self, aside: str, sha256: str) -> None:
        self.copy(aside, self.blob_key(sha256), self.written_metadata())
        self.delete_key(aside)

    @bucket_errors_are_503
    def sweep_temp_files(self, older_than: float = STALE_TEMP_SECONDS) -> int:
        """Put back blobs a stopped collector left aside; delete stale temporary objects and abort
        stale multipart uploads. Returns how many leftovers were removed."""
        cutoff = time.time() - older_than
        removed = 0
        tmp = self.key("tmp/")
        #: resumable upload -> when its state last changed (its multipart upload lives as long as it).
        active: dict[str, float] = {}
        for key, modified in list(self.list_keys(tmp)):
            name = key[len(tmp):]
            if name.startswith("resumable-") and name.endswith("/state"):
                active[name.split("/", 1)[0]] = modified
            if name.startswith(COLLECT_PREFIX):
                if modified > time.time() - COLLECT_DECISION_SECONDS:
                    continue  # a collector may be deciding right now
                sha256 = name[len(COLLECT_PREFIX):].split("-", 1)[0]
                try:
                    self._restore(key, sha256)
                except NotFound:
                    self.delete_key(key)
            elif modified < cutoff:
                self.delete_key(key)
                removed += 1
        paginator = self.client.get_paginator("list_multipart_uploads")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=tmp):
            for upload in page.get("Uploads", ()):
                name = upload["Key"][len(tmp):]
                started = active.get(name.split("/", 1)[0], _started(name, upload["Initiated"].timestamp()))
                if started < cutoff:
                    try:
                        self.client.abort_multipart_upload(Bucket=self.bucket, Key=upload["Key"],
                                                           UploadId=upload["UploadId"])
                        removed += 1
                    except Exception as error:
                        if not is_missing(error):
                            raise
        return removed
