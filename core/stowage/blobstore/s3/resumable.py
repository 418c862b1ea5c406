"""Resumable uploads (Docker chunked pushes) on S3, continuable by any worker or node.

An upload is ``<prefix>tmp/resumable-<id>/``: ``state`` (JSON: size, the S3 multipart upload id and its
parts, the current tail object), a multipart upload to ``data``, and ``tail-<size>-<random>``, the bytes
after the last whole part. S3 refuses parts under 5 MiB (but the last), and Docker clients send PATCHes of
any size, so what does not fill a part waits in the tail object. The tail lives in the bucket, not on
the local disk, so the next PATCH may land on another node; it costs re-reading at most one part per
PATCH (skopeo and docker send one PATCH per layer, so this is rare). ``state`` is rewritten last:
a node that dies mid-PATCH leaves the previous state intact (its stray part numbers are overwritten by
the next PATCH and its stray tail is swept).

Digests are computed while appending and remembered by this process; a commit elsewhere reads the
assembled object back once.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from typing import IO, TYPE_CHECKING, Any, Iterable, Mapping

from stowage.blobstore.base import CHUNK_SIZE, ResumableUpload, digests_to_compute
from stowage.blobstore.s3.store import bucket_errors_are_503, error_code, is_missing
from stowage.blobstore.s3.writer import MultipartUpload, PartSpool, publish
from stowage.errors import BadRequest, DigestMismatch, NotFound
from stowage.models import BlobInfo

if TYPE_CHECKING:
    from stowage.blobstore.s3.store import S3BlobStore

_UPLOAD_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


class S3ResumableUpload(ResumableUpload):
    def __init__(self, store: "S3BlobStore", upload_id: str):
        if not _UPLOAD_ID.match(upload_id):
            raise NotFound(f"no upload {upload_id!r}")
        self.upload_id = upload_id
        self._store = store
        self._base = store.key(f"tmp/resumable-{upload_id}/")

    # -- state ----------------------------------------------------------------------------------------
    def _load(self) -> dict[str, Any] | None:
        try:
            body = self._store.client.get_object(Bucket=self._store.bucket, Key=self._base + "state")["Body"]
            return json.loads(body.read())
        except Exception as error:
            if is_missing(error):
                return None
            raise

    def _save(self, state: dict[str, Any]) -> None:
        self._store.client.put_object(Bucket=self._store.bucket, Key=self._base + "state",
                                      Body=json.dumps(state).encode(), ContentType="application/json")

    @bucket_errors_are_503
    def size(self) -> int | None:
        state = self._load()
        return None if state is None else int(state["size"])

    # -- appending ------------------------------------------------------------------------------------
    @bucket_errors_are_503
    def append(self, stream: IO[bytes], length: int | None = None) -> int:
        store = self._store
        state = self._load() or {"size": 0, "multipartUploadId": None, "parts": [], "tail": None, "tailSize": 0}
        start = int(state["size"])
        hashers = store.upload_digests.hashers(self.upload_id, start)
        multipart = MultipartUpload(store, self._base + "data", state["multipartUploadId"], state["parts"])
        spool = PartSpool(str(store.spool_dir))
        try:
            if state["tail"]:
                self._read_into(state["tail"], spool)
            copied = 0
            while length is None or copied < length:
                chunk = stream.read(CHUNK_SIZE if length is None else min(CHUNK_SIZE, length - copied))
                if not chunk:
                    break
                spool.write(chunk)
                for hasher in hashers.values():
                    hasher.update(chunk)
                copied += len(chunk)
                if spool.size >= store.settings.part_size:
                    multipart.send(spool.rewound(), spool.size)
                    spool.reset()
            new_size = start + copied
            old_tail = state["tail"]
            tail = None
            if copied == 0:
                tail = old_tail
            elif spool.size:
                tail = self._base + f"tail-{new_size}-{secrets.token_hex(4)}"
                store.client.put_object(Bucket=store.bucket, Key=tail, Body=spool.rewound(),
                                        ContentLength=spool.size)
            self._save({"size": new_size, "multipartUploadId": multipart.upload_id, "parts": multipart.parts,
                        "tail": tail, "tailSize": spool.size if tail else 0})
        finally:
            spool.close()
        if old_tail and old_tail != tail:
            store.delete_key(old_tail)
        store.upload_digests.remember(self.upload_id, new_size, hashers)
        return new_size

    def _read_into(self, key: str, spool: PartSpool) -> None:
        body = self._store.client.get_object(Bucket=self._store.bucket, Key=key)["Body"]
        try:
            while chunk := body.read(CHUNK_SIZE):
                spool.write(chunk)
        finally:
            body.close()

    # -- commit ---------------------------------------------------------------------------------------
    def _assemble(self, state: dict[str, Any]) -> str:
        """One object holding every byte of the upload (the multipart upload completed, the tail as its
        last part); recorded in the state so that a retried commit does not do it twice."""
        store = self._store
        if state.get("assembled"):
            return state["assembled"]
        if not state["multipartUploadId"]:
            key = state["tail"]
            if key is None:  # nothing was ever sent: an empty blob
                key = self._base + "empty"
                store.client.put_object(Bucket=store.bucket, Key=key, Body=b"")
        else:
            multipart = MultipartUpload(store, self._base + "data", state["multipartUploadId"], state["parts"])
            if state["tail"]:
                spool = PartSpool(str(store.spool_dir))
                try:
                    self._read_into(state["tail"], spool)
                    multipart.send(spool.rewound(), spool.size)
                finally:
                    spool.close()
            multipart.complete()
            key = multipart.key
        state["assembled"] = key
        self._save(state)
        return key

    def _digests(self, key: str, names: set[str], size: int) -> dict[str, str]:
        cached = self._store.upload_digests.hashers(self.upload_id, size)
        if not names.issubset(cached):
            cached = {name: hashlib.new(name) for name in names}
            body = self._store.client.get_object(Bucket=self._store.bucket, Key=key)["Body"]
            try:
                while chunk := body.read(CHUNK_SIZE):
                    for hasher in cached.values():
                        hasher.update(chunk)
            finally:
                body.close()
        return {name: cached[name].hexdigest() for name in names}

    @bucket_errors_are_503
    def commit(self, *, extra_digests: Iterable[str] = (), expected: Mapping[str, str] | None = None) -> BlobInfo:
        state = self._load()
        if state is None:
            raise NotFound(f"upload {self.upload_id} does not exist")
        size = int(state["size"])
        try:
            key = self._assemble(state)
        except Exception as error:
            if error_code(error) not in ("InvalidPart", "InvalidPartOrder", "NoSuchUpload", "EntityTooSmall"):
                raise
            # Two requests appended to the upload at once and replaced each other's parts: the client's
            # doing. Nothing is stored; it starts again.
            self.discard()
            raise BadRequest(f"upload {self.upload_id} was changed by concurrent requests; start it again") from None
        digests = self._digests(key, digests_to_compute(size, extra_digests, expected), size)
        for name, value in (expected or {}).items():
            if digests[name] != value.lower():
                self.discard()
                raise DigestMismatch(f"{name} of the received content is {digests[name]}, expected {value}")
        publish(self._store, key, digests["sha256"])
        self.discard()
        return BlobInfo(sha256=digests["sha256"], size=size, digests=digests)

    @bucket_errors_are_503
    def discard(self) -> None:
        store = self._store
        store.upload_digests.forget(self.upload_id)
        state = self._load()
        if state is not None and state["multipartUploadId"] and not state.get("assembled"):
            MultipartUpload(store, self._base + "data", state["multipartUploadId"]).abort()
        keys = [key for key, _ in store.list_keys(self._base)]
        state_key = self._base + "state"
        for key in sorted(keys, key=lambda k: k == state_key):  # the state last: it says the upload exists
            store.delete_key(key)
