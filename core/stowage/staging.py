"""Validate-before-commit writes: received bytes a format can check before they become a blob.

Every upload path (a PUT or PATCH body, a multipart file part, a tarball decoded from a JSON document)
streams into an *uncommitted* blob writer, hashed as it arrives. The format's check reads the
:class:`StagedBlob` (``open()`` from the first byte, ``local_path()`` for tools that need a file name,
``sha256`` / ``size`` / ``digests()``) and either raises (nothing is stored: the writer is aborted when the
staging block ends) or answers :class:`Accepted` (where the bytes go and what it learnt); then
:meth:`Repository.commit <stowage.repository.Repository.commit>` re-checks the write and name policy,
commits the blob and records the asset in one catalog transaction.

Blob stores that can re-read their uncommitted bytes (the file store: its temp file) serve ``open()`` and
``local_path()`` from them, with no second copy. Stores that cannot (S3: parts leave for the bucket as they
fill) get the bytes teed into a local temp file while they arrive, only when a check will read them.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import IO, Any, Callable, Iterator, Mapping

import attrs

from stowage.blobstore.base import ASSET_DIGESTS, CHUNK_SIZE, BlobWriter, copy_into
from stowage.errors import InvalidContent, PayloadTooLarge

#: a staged copy older than this is a leftover of a crashed process (no upload is checked for six hours).
STALE_STAGED_SECONDS = 6 * 3600
_PREFIX = "staged-"
from stowage.models import AssetKind, BlobInfo, Component


@attrs.frozen
class Accepted:
    """What a format's check learnt about staged bytes: where they go and how they are recorded.

    :param path: the asset path (write and name policy are checked for it at commit).
    :param artifact_name: the name the name policy checks (default: the format's ``artifact_name(path)``).
    :param server_managed: generated metadata: no write or name policy applies, replaced freely.
    :param replace: the format has decided this write is no update of what ``path`` may hold (a
        content-addressed path such as a docker manifest by digest): ``ALLOW_ONCE`` lets it replace the
        asset; the write policy otherwise, the name policy and the uploader are as for any client write.
    :param then: more catalog writes (documents, a second asset) made in the same transaction as the
        asset, called with the recorded asset; raising there rolls the whole write back.
    """

    path: str
    content_type: str = "application/octet-stream"
    kind: AssetKind = AssetKind.CONTENT
    component: Component | None = None
    attributes: Mapping[str, Any] = attrs.field(factory=dict)
    artifact_name: str | None = None
    server_managed: bool = False
    then: Callable[[Any], None] | None = None
    replace: bool = False


class StagedBlob:
    """Bytes received into a blob writer that is not committed yet: hashed, re-readable, refusable.

    Made by :meth:`Repository.stage <stowage.repository.Repository.stage>`,
    :meth:`Repository.receive <stowage.repository.Repository.receive>` and
    :func:`~stowage.rest.components.receive_multipart` (whose file parts also carry ``field``,
    ``filename`` and ``content_type``). Only valid inside the block that made it: leaving the block
    uncommitted discards the bytes.
    """

    def __init__(self, writer: BlobWriter, temp_dir: Path, *, reread: bool = True, field: str = "",
                 filename: str = "", content_type: str = "application/octet-stream"):
        self.field, self.filename, self.content_type = field, filename, content_type
        self._writer = writer
        self._temp_dir = temp_dir
        self._copy: IO[bytes] | None = None  # the tee, for stores that cannot re-read uncommitted bytes
        self._copy_path: str | None = None
        if reread and writer.partial_path() is None:
            probe = writer.open_partial()
            if probe is None:
                self._copy = self._temp_file()
                self._copy_path = self._copy.name
            else:
                probe.close()
        self.committed: BlobInfo | None = None
        self._sealed = False  # digests() was asked: the writer's hashes are final
        self._late_digests: dict[str, str] = {}  # computed by digests() after receiving (large blobs)

    def _temp_file(self) -> IO[bytes]:
        self._temp_dir.mkdir(parents=True, exist_ok=True)
        return tempfile.NamedTemporaryFile(dir=self._temp_dir, prefix=_PREFIX, delete=False)

    # -- receiving --------------------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        if self.committed is not None or self._sealed:
            raise RuntimeError("the staged blob is committed or its digests were read; nothing more can be "
                               "written to it")
        self._writer.write(data)
        if self._copy is not None:
            self._copy.write(data)

    def receive(self, stream: IO[bytes], length: int | None = None, *, max_bytes: int | None = None) -> int:
        """Copy ``length`` bytes (or until EOF) of ``stream``; :class:`PayloadTooLarge` past ``max_bytes``,
        :class:`InvalidContent` when the stream ends before ``length``."""
        if length is not None and max_bytes is not None and length > max_bytes:
            raise PayloadTooLarge(f"the upload is {length} bytes; at most {max_bytes} are accepted")
        copied = copy_into(stream, self, length, max_bytes=max_bytes)
        if length is not None and copied != length:
            raise InvalidContent(f"expected {length} bytes, received {copied}")
        return copied

    # -- what a check reads -----------------------------------------------------------------------------
    @property
    def size(self) -> int:
        return self._writer.size

    @property
    def sha256(self) -> str:
        return self._writer.sha256

    def digests(self) -> dict[str, str]:
        """md5, sha1, sha256, sha512 and any extra digest; call it once everything has been received
        (nothing can be written after).

        A blob over ``INLINE_DIGEST_BYTES`` is hashed with sha256 (and the extra digests named when staging)
        only while it arrives; the others are computed here from the staged bytes the first time a check
        asks, and recorded with the blob at its commit.
        """
        self._sealed = True
        found = self._writer.digests()
        missing = [name for name in ASSET_DIGESTS if name not in found and name not in self._late_digests]
        if missing:
            hashers = {name: hashlib.new(name) for name in missing}
            with self.open() as handle:
                while chunk := handle.read(CHUNK_SIZE):
                    for hasher in hashers.values():
                        hasher.update(chunk)
            self._late_digests.update({name: hasher.hexdigest() for name, hasher in hashers.items()})
        return {**self._late_digests, **found}

    def open(self) -> IO[bytes]:
        """A new binary handle on the bytes received, from the first byte (seekable); close it."""
        if self.committed is not None:
            raise RuntimeError("the staged blob is committed; open the blob from the blob store")
        if self._copy is not None:
            self._copy.flush()
            return open(self._copy.name, "rb")
        path = self._writer.partial_path()
        handle = open(path, "rb") if path is not None else self._writer.open_partial()
        if handle is None:
            raise RuntimeError("this staged blob was made with reread=False")
        return handle

    def local_path(self) -> str:
        """A local file holding the bytes received, for tools that need a file name (rpm, createrepo_c);
        read it, never change it. Valid until the staging block ends."""
        path = self._writer.partial_path()
        if path is not None and self._copy is None:
            return path
        if self._copy is None:  # a store that re-reads but keeps no local file: copy once
            with self.open() as source:
                copy = self._temp_file()
                self._copy, self._copy_path = copy, copy.name
                shutil.copyfileobj(source, copy, CHUNK_SIZE)
        self._copy.flush()
        return self._copy.name

    # -- ending -----------------------------------------------------------------------------------------
    def commit(self, *, expected: Mapping[str, str] | None = None) -> BlobInfo:
        """Make the bytes a durable blob (checked against ``expected`` digests); returns it. Prefer
        :meth:`Repository.commit <stowage.repository.Repository.commit>`, which records the asset too."""
        if self.committed is None:
            self._drop_copy()
            committed = self._writer.commit(expected=expected)
            if self._late_digests:  # recorded with the blob: nothing left for the background filler
                committed = attrs.evolve(committed, digests={**self._late_digests, **committed.digests})
            self.committed = committed
        return self.committed

    @property
    def blob(self) -> BlobInfo:
        """The blob, committing the bytes unchecked if they are not yet: for ``upload_component``
        implementations written when file parts arrived committed (``UploadedFile.blob``)."""
        return self.commit()

    def discard(self) -> None:
        """Forget the bytes (nothing is stored). Safe to call more than once, and after a commit."""
        self._drop_copy()
        if self.committed is None:
            self._writer.abort()

    def _drop_copy(self) -> None:
        if self._copy is not None:
            self._copy.close()
            self._copy = None
        if self._copy_path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._copy_path)
            self._copy_path = None


@contextlib.contextmanager
def staged_blob(writer: BlobWriter, temp_dir: Path, **kwargs: Any) -> Iterator[StagedBlob]:
    """A :class:`StagedBlob` over ``writer``, discarded at the end of the block unless committed."""
    staged = StagedBlob(writer, temp_dir, **kwargs)
    try:
        yield staged
    finally:
        staged.discard()
        writer.__exit__(None, None, None)  # stops the writer's digest helper thread, aborts if uncommitted


def sweep_staged(temp_dir: Path, older_than: float = STALE_STAGED_SECONDS) -> int:
    """Remove staged copies a killed process left in ``temp_dir`` (the ``blobstore.compact`` task calls
    it); a live upload's copy is younger than ``older_than``. Returns how many were removed."""
    cutoff, removed = time.time() - older_than, 0
    for path in temp_dir.glob(_PREFIX + "*") if temp_dir.is_dir() else ():
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
    return removed
