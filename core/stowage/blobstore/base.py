"""The blob store interface.

Blobs are immutable and keyed by their sha256 only; one copy per digest serves every repository. A blob
store never sees a request path. Which blobs are still referenced is the catalog's business (its
``blobs`` and ``assets`` tables); the store only keeps bytes.
"""

from __future__ import annotations

import abc
import hashlib
import queue
import threading
import weakref
from typing import IO, Any, Iterable, Iterator, Mapping

from attrs import field, frozen

from stowage.errors import DigestMismatch, InvalidContent, NotSupported, PayloadTooLarge
from stowage.models import BlobInfo

CHUNK_SIZE = 1024 * 1024
#: digests every new blob gets, computed while it is written (Nexus's asset ``checksum`` fields).
ASSET_DIGESTS = ("md5", "sha1", "sha256", "sha512")


@frozen
class BlobStoreConfig:
    """A named blob store, as in Nexus's ``/service/rest/v1/blobstores`` (``type`` is ``File`` or a plugin's)."""

    name: str
    type: str = "File"
    path: str = ""
    attributes: Mapping[str, Any] = field(factory=dict)


#: blobs up to this size get every digest while they are written. Past it, md5, sha1 and sha512 are left
#: to :class:`stowage.checksums.ChecksumFiller` after the commit (unless the caller asked for them by name):
#: together they hash at ~290 MiB/s on one core here against sha256's ~1,500, so inline they capped a
#: 1 GiB upload at 0.21 of nginx WebDAV; a digest a caller names goes to a helper thread instead.
INLINE_DIGEST_BYTES = 4 * 1024 * 1024
#: the digests :data:`ASSET_DIGESTS` adds to sha256: deferred for large blobs.
DEFERRABLE_DIGESTS = frozenset(ASSET_DIGESTS) - {"sha256"}


def digests_to_compute(size: int, extra_digests: Iterable[str] = (),
                       expected: Mapping[str, str] | None = None) -> set[str]:
    """The digests a blob of ``size`` bytes gets at its commit: all of :data:`ASSET_DIGESTS` when it is
    small, else sha256 and what the caller named (``extra_digests``, the keys of ``expected``)."""
    named = {"sha256", *extra_digests, *(expected or {})}
    return named | set(ASSET_DIGESTS) if size <= INLINE_DIGEST_BYTES else named


class _DigestThread:
    """Updates the extra digests (md5, sha1, sha512) of a large blob on another core while the writer's
    thread computes its sha256 and writes: hashlib releases the GIL, so the upload is not slowed by
    three more hashes in a row. Chunks are immutable bytes, handed over through a short queue."""

    def __init__(self, digests: Mapping[str, Any]):
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=8)
        self._digests = digests
        self._thread = threading.Thread(target=self._run, name="blob-digests", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None:
            for digest in self._digests.values():
                digest.update(chunk)

    def feed(self, data: bytes) -> None:
        self._queue.put(bytes(data))

    def finish(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()


class BlobWriter(abc.ABC):
    """Receives the bytes of one new blob. Nothing is visible until :meth:`commit`.

    Use as a context manager: leaving the block without committing discards the bytes.
    """

    def __init__(self, extra_digests: Iterable[str] = ()):
        self._sha256 = hashlib.sha256()
        # Nexus's four checksums in the one pass that writes the blob; a large blob keeps only the ones
        # its caller named (see INLINE_DIGEST_BYTES), the others are filled in after the commit.
        self._extra = {name: hashlib.new(name) for name in dict.fromkeys([*ASSET_DIGESTS, *extra_digests])
                       if name != "sha256"}
        self._deferrable = DEFERRABLE_DIGESTS - set(extra_digests)
        self._helper: _DigestThread | None = None
        self.size = 0
        self.committed: BlobInfo | None = None

    def write(self, data: bytes) -> None:
        self._sha256.update(data)
        if self._helper is None and self.size + len(data) > INLINE_DIGEST_BYTES and self._extra:
            for name in self._deferrable:
                self._extra.pop(name, None)
        if self._helper is None and self.size + len(data) > INLINE_DIGEST_BYTES and self._extra:
            self._helper = _DigestThread(self._extra)
            # however the writer ends (commit, abort, or just dropped), its helper thread ends with it
            weakref.finalize(self, self._helper.finish)
        if self._helper is not None:
            self._helper.feed(data)
        else:
            for digest in self._extra.values():
                digest.update(data)
        self.size += len(data)
        self._write(data)

    @property
    def sha256(self) -> str:
        return self._sha256.hexdigest()

    def digests(self) -> dict[str, str]:
        if self._helper is not None:
            self._helper.finish()
        found = {name: digest.hexdigest() for name, digest in self._extra.items()}
        found["sha256"] = self.sha256
        return found

    def _stop_helper(self) -> None:
        if self._helper is not None:
            self._helper.finish()

    def commit(self, *, expected_size: int | None = None, expected: Mapping[str, str] | None = None) -> BlobInfo:
        """Check size and digests (``{"sha256": hex, ...}``), then make the blob durable and visible."""
        if expected_size is not None and expected_size != self.size:
            self.abort()
            raise InvalidContent(f"expected {expected_size} bytes, received {self.size}")
        digests = self.digests()
        for name, value in (expected or {}).items():
            if name not in digests:
                self.abort()
                raise ValueError(f"digest {name} was not computed; pass it in extra_digests")
            if digests[name] != value.lower():
                self.abort()
                raise DigestMismatch(f"{name} of the received content is {digests[name]}, expected {value}")
        info = BlobInfo(sha256=self.sha256, size=self.size, digests=digests)
        self._commit(info)
        self.committed = info
        return info

    def open_partial(self) -> IO[bytes] | None:
        """A new read handle on the bytes written so far, for streaming a blob while it is written.

        Reads past what was written return short; the caller tracks how much is there. Stores that
        cannot do this return None (then readers wait for :meth:`commit`).
        """
        return None

    def partial_path(self) -> str | None:
        """The local file holding the bytes written so far (read it, never change it), for checks by
        tools that need a file name; None when the store keeps no such file (then core copies)."""
        return None

    def __enter__(self) -> "BlobWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._stop_helper()
        if self.committed is None:
            self.abort()

    @abc.abstractmethod
    def _write(self, data: bytes) -> None: ...

    @abc.abstractmethod
    def _commit(self, info: BlobInfo) -> None: ...

    @abc.abstractmethod
    def abort(self) -> None:
        """Discard what was written. Safe to call more than once."""


class ResumableUpload(abc.ABC):
    """The bytes of one future blob, arriving over several requests that any process may handle.

    Identified by an ``upload_id`` the caller chose (and keeps, e.g. in a catalog document); nothing is
    visible as a blob until :meth:`commit`, which checks the digests first. An upload left idle is swept
    with the store's other temporary files.
    """

    upload_id: str

    @abc.abstractmethod
    def size(self) -> int | None:
        """Bytes received so far, or None when the upload does not exist (never started, or gone)."""

    @abc.abstractmethod
    def append(self, stream: IO[bytes], length: int | None = None) -> int:
        """Append ``length`` bytes (or until EOF) of ``stream``; creates the upload. Returns the new size."""

    @abc.abstractmethod
    def commit(self, *, extra_digests: Iterable[str] = (), expected: Mapping[str, str] | None = None) -> BlobInfo:
        """Check the digests (``{"sha256": hex, "sha512": hex}``) and make the bytes a durable blob.

        A mismatch raises :class:`~stowage.errors.DigestMismatch` and discards the upload: nothing is stored.
        """

    @abc.abstractmethod
    def discard(self) -> None:
        """Forget the upload. Safe to call more than once."""


class UploadDigests:
    """Hashers of the resumable uploads this process appended to, each with the size it covers.

    Saves reading an upload again at commit; never trusted blindly: a commit whose size differs (another
    process appended meanwhile) or that asks for another digest reads the bytes again.
    """

    def __init__(self) -> None:
        self._hashers: dict[str, tuple[int, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def hashers(self, upload_id: str, size: int) -> dict[str, Any]:
        """Hashers that have seen exactly the first ``size`` bytes of the upload (a fresh sha256 at 0: the
        other digests of a small upload are computed at its commit, of a large one after it)."""
        with self._lock:
            found = self._hashers.get(upload_id)
        if found is not None and found[0] == size:
            return {name: hasher.copy() for name, hasher in found[1].items()}
        return {"sha256": hashlib.sha256()} if size == 0 else {}

    def remember(self, upload_id: str, size: int, hashers: dict[str, Any]) -> None:
        with self._lock:
            if len(self._hashers) > 1000:
                self._hashers.clear()
            if hashers:
                self._hashers[upload_id] = (size, hashers)
            else:
                self._hashers.pop(upload_id, None)

    def forget(self, upload_id: str) -> None:
        with self._lock:
            self._hashers.pop(upload_id, None)

    def clear(self) -> None:
        """Forget every upload (as a process that saw none of them)."""
        with self._lock:
            self._hashers.clear()


class BlobStore(abc.ABC):
    """Where blob bytes live. Implementations: :class:`~stowage.blobstore.file.FileBlobStore`, plugins'."""

    def __init__(self, config: BlobStoreConfig):
        self.config = config

    @property
    def name(self) -> str:
        return self.config.name

    @abc.abstractmethod
    def writer(self, extra_digests: Iterable[str] = ()) -> BlobWriter:
        """A writer for a new blob. It computes :data:`ASSET_DIGESTS` and any extra hashlib algorithm names."""

    @abc.abstractmethod
    def open(self, sha256: str) -> IO[bytes]:
        """A readable, seekable binary stream of the blob. Raises :class:`~stowage.errors.NotFound`."""

    @abc.abstractmethod
    def exists(self, sha256: str) -> bool: ...

    @abc.abstractmethod
    def delete(self, sha256: str) -> None:
        """Remove the blob if present. Only the garbage collector calls this."""

    @abc.abstractmethod
    def digests(self) -> Iterator[str]:
        """Every stored blob's sha256 (for garbage collection and audits)."""

    def collect(self, sha256: str, older_than: float) -> bool:
        """Delete an unreferenced blob for the garbage collector, unless a writer re-used it since ``older_than``.

        The collector calls this inside a catalog transaction, after checking that no asset references
        the blob. A writer that finds the digest already stored must mark it in use (the file store
        touches it) so that a concurrent ``collect`` keeps it; otherwise the writer stores its own copy.
        Returns True when the blob is gone. The default keeps everything: a store opts in to collection
        by implementing this race-free.
        """
        return False

    def resumable(self, upload_id: str) -> ResumableUpload:
        """The upload ``upload_id`` (letters, digits, ``-`` and ``_``), for blobs sent in several requests."""
        raise NotSupported(f"blob store {self.name!r} (type {self.config.type}) cannot take uploads sent in "
                           f"several requests; use a blob store that supports resumable uploads")

    def download_url(self, sha256: str, *, content_type: str) -> str | None:
        """A URL the client may fetch the blob from directly (a presigned object-store URL), or None to
        have Stowage send the bytes. Stores that can hand one out override this."""
        return None

    def local_path(self, sha256: str) -> str | None:
        """The path of a local file holding the blob, for tools that need a file name (createrepo_c,
        rpm, worker processes); read it, never change it. None when the store keeps no local files
        (object stores) or does not hold the blob: copy it out with :meth:`open` then."""
        return None

    def sweep_temp_files(self, older_than: float = 6 * 3600) -> int:
        """Remove what crashed writers and abandoned uploads left behind (older than ``older_than``
        seconds); the ``blobstore.compact`` task calls it. Returns how many leftovers were removed."""
        return 0

    def usage(self) -> dict[str, int]:
        """Counts for the blob-store status API; stores that can measure cheaply override this."""
        return {}

    def store(self, stream: IO[bytes], *, length: int | None = None, extra_digests: Iterable[str] = (),
              expected: Mapping[str, str] | None = None) -> BlobInfo:
        """Store everything ``stream`` yields (at most ``length`` bytes), checked against ``expected``."""
        with self.writer(extra_digests) as writer:
            copy_into(stream, writer, length)
            return writer.commit(expected_size=length, expected=expected)


def copy_into(stream: IO[bytes], writer: Any, length: int | None = None, *, max_bytes: int | None = None) -> int:
    """Copy ``length`` bytes (or until EOF) from ``stream`` into ``writer`` (anything with ``write``: a
    :class:`BlobWriter`, a staged blob) in 1 MiB chunks; returns the bytes copied.
    :class:`~stowage.errors.PayloadTooLarge` once more than ``max_bytes`` arrive."""
    copied = 0
    while length is None or copied < length:
        want = CHUNK_SIZE if length is None else min(CHUNK_SIZE, length - copied)
        chunk = stream.read(want)
        if not chunk:
            break
        copied += len(chunk)
        if max_bytes is not None and copied > max_bytes:
            raise PayloadTooLarge(f"the upload is larger than the {max_bytes} bytes accepted")
        writer.write(chunk)
    return copied
