"""Writing one new blob to S3 while it arrives.

Up to one part (``multipartPartSize``, 16 MiB) is spooled (in memory up to :data:`SPOOL_MEMORY`, then in a
temporary file); a blob that fits is PUT at commit straight to its final key, which S3 makes visible
whole or not at all. A larger blob becomes a multipart upload to a temporary key as it arrives (parts
are sent while the client is still sending), completed at commit and then copied server side to its
digest's key. Either way nothing is visible under a digest before the digest was checked.
"""

from __future__ import annotations

import tempfile
from typing import IO, TYPE_CHECKING, Any, Iterable

from stowage.blobstore.base import BlobWriter
from stowage.blobstore.s3.store import bucket_errors_are_503, temp_name
from stowage.models import BlobInfo

if TYPE_CHECKING:
    from stowage.blobstore.s3.store import S3BlobStore

#: bytes of a part kept in memory before the spool moves to a temporary file.
SPOOL_MEMORY = 4 * 1024 * 1024


class PartSpool:
    """The bytes of the part being assembled: memory first, then a temporary file."""

    def __init__(self, directory: str):
        self._directory = directory
        self.file: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY, dir=directory)
        self.size = 0

    def write(self, data: bytes) -> None:
        self.file.write(data)
        self.size += len(data)

    def rewound(self) -> IO[bytes]:
        self.file.flush()
        self.file.seek(0)
        return self.file

    def reset(self) -> None:
        self.file.close()
        self.file = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY, dir=self._directory)
        self.size = 0

    def close(self) -> None:
        self.file.close()


class MultipartUpload:
    """One S3 multipart upload to ``key``: created at the first part."""

    def __init__(self, store: "S3BlobStore", key: str, upload_id: str | None = None,
                 parts: list[dict[str, Any]] | None = None):
        self.store, self.key = store, key
        self.upload_id = upload_id
        self.parts: list[dict[str, Any]] = list(parts or [])

    def send(self, body: IO[bytes], length: int) -> None:
        client = self.store.client
        if self.upload_id is None:
            self.upload_id = client.create_multipart_upload(Bucket=self.store.bucket, Key=self.key)["UploadId"]
        number = len(self.parts) + 1
        answer = client.upload_part(Bucket=self.store.bucket, Key=self.key, UploadId=self.upload_id,
                                    PartNumber=number, Body=body, ContentLength=length)
        self.parts.append({"PartNumber": number, "ETag": answer["ETag"]})

    def complete(self) -> None:
        self.store.client.complete_multipart_upload(
            Bucket=self.store.bucket, Key=self.key, UploadId=self.upload_id,
            MultipartUpload={"Parts": [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]} for p in self.parts]})

    def abort(self) -> None:
        if self.upload_id is None:
            return
        try:
            self.store.client.abort_multipart_upload(Bucket=self.store.bucket, Key=self.key,
                                                     UploadId=self.upload_id)
        except Exception as error:
            from stowage.blobstore.s3.store import is_missing

            if not is_missing(error):
                raise


def publish(store: "S3BlobStore", temp_key: str, sha256: str) -> None:
    """Make the finished object ``temp_key`` the blob ``sha256`` (kept as is when the digest is stored
    already: same digest, same bytes), then drop the temporary object."""
    if not store.reuse(sha256):
        store.copy(temp_key, store.blob_key(sha256), store.written_metadata())
    store.delete_key(temp_key)


class S3BlobWriter(BlobWriter):
    def __init__(self, store: "S3BlobStore", extra_digests: Iterable[str]):
        super().__init__(extra_digests)
        self._store = store
        self._spool = PartSpool(str(store.spool_dir))
        self._multipart = MultipartUpload(store, store.key(f"tmp/{temp_name('upload')}"))
        self._done = False

    @bucket_errors_are_503
    def _write(self, data: bytes) -> None:
        self._spool.write(data)
        if self._spool.size >= self._store.settings.part_size:
            self._send_part()

    def _send_part(self) -> None:
        self._multipart.send(self._spool.rewound(), self._spool.size)
        self._spool.reset()

    @bucket_errors_are_503
    def _commit(self, info: BlobInfo) -> None:
        store = self._store
        try:
            if self._multipart.upload_id is None:
                # Small: the digest is known before anything is sent, so the final key is written directly.
                if not store.reuse(info.sha256):
                    store.client.put_object(Bucket=store.bucket, Key=store.blob_key(info.sha256),
                                            Body=self._spool.rewound(), ContentLength=self._spool.size,
                                            Metadata=store.written_metadata())
            else:
                if self._spool.size:
                    self._send_part()
                self._multipart.complete()
                publish(store, self._multipart.key, info.sha256)
        except BaseException:
            self.abort()
            raise
        self._done = True
        self._spool.close()

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        self._spool.close()
        self._multipart.abort()
        if self._multipart.upload_id is not None:
            self._store.delete_key(self._multipart.key)  # in case it was completed before a failure
