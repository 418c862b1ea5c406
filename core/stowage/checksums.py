"""Nexus's asset checksums (md5, sha1, sha256, sha512).

Blobs up to :data:`~stowage.blobstore.base.INLINE_DIGEST_BYTES` get all four while they are written
(``BlobWriter``); the catalog keeps them per blob. A larger blob is committed with its sha256 (and the
digests its format named) only: md5, sha1 and sha512 cost five times sha256 and would cap the upload, so
:class:`ChecksumFiller` computes them right after the commit, off the request path, from the stored blob.
Nothing about that is only in memory: a blob whose checksums are missing, because its process stopped
before filling them or because it was stored before they were recorded (catalog migration
``m013_blob_checksums``), is found by :meth:`ChecksumFiller.sweep` when a server starts, hashed the first
time an answer needs it (:func:`asset_checksums`: REST, search results), or by the ``blobstore.checksums``
task.
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import threading
from typing import TYPE_CHECKING, Iterable

from stowage.blobstore.base import ASSET_DIGESTS, CHUNK_SIZE, BlobStore
from stowage.errors import NotFound, StowageError
from stowage.models import Asset

if TYPE_CHECKING:
    from stowage.stowage import Stowage

log = logging.getLogger(__name__)
#: how many blobs missing checksums one sweep queues (the next start, or the task, takes the rest).
SWEEP_LIMIT = 10_000


def asset_checksums(stowage: "Stowage", assets: Iterable[Asset]) -> dict[str, dict[str, str]]:
    """sha256 -> {md5, sha1, sha256, sha512} for each asset's blob, backfilling blobs that lack some."""
    assets = list(assets)
    found = stowage.catalog.blob_checksums([asset.blob_sha256 for asset in assets])
    for asset in assets:
        known = found.get(asset.blob_sha256, {})
        if all(name in known for name in ASSET_DIGESTS):
            continue
        computed = _backfill(stowage, asset)
        found[asset.blob_sha256] = {**computed, **known} if computed else {"sha256": asset.blob_sha256, **known}
    return found


def _backfill(stowage: "Stowage", asset: Asset) -> dict[str, str]:
    try:
        store = stowage.repository(asset.repository).blob_store
    except NotFound:
        return {}
    return fill_checksums(stowage, store, asset.blob_sha256)


def fill_checksums(stowage: "Stowage", store: BlobStore, sha256: str) -> dict[str, str]:
    """Hash the stored blob and record its checksums; {} when it is gone or does not match its name."""
    try:
        handle = store.open(sha256)
    except NotFound:
        return {}
    hashers = {name: hashlib.new(name) for name in ASSET_DIGESTS}
    with handle:
        while chunk := handle.read(CHUNK_SIZE):
            for hasher in hashers.values():
                hasher.update(chunk)
    digests = {name: hasher.hexdigest() for name, hasher in hashers.items()}
    if digests["sha256"] != sha256:
        log.error("blob %s in blob store %s does not match its digest (sha256 %s); checksums not recorded",
                  sha256, store.name, digests["sha256"])
        return {}
    stowage.catalog.record_blob_checksums(sha256, digests)
    return digests


class ChecksumFiller:
    """This process's background thread that fills in the checksums of blobs committed without them.

    :meth:`submit` is called once the asset's transaction committed; the thread starts on first use and
    stays (idle on its queue). Work is at most a few blobs behind the uploads, and idempotent (the catalog
    never overwrites a checksum), so two processes filling the same blob only waste a read.
    """

    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage
        self._queue: queue.Queue[tuple[BlobStore, str] | None] = queue.Queue()
        self._closed = False
        self._pending: set[str] = set()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None

    @classmethod
    def of(cls, stowage: "Stowage") -> "ChecksumFiller":
        return stowage.extension("checksum-filler", lambda: cls(stowage))

    def submit(self, store: BlobStore, sha256: str) -> None:
        with self._lock:
            if self._closed or sha256 in self._pending:
                return
            self._pending.add(sha256)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="blob-checksums", daemon=True)
                self._thread.start()
        self._queue.put((store, sha256))

    def sweep(self) -> int:
        """Queue the blobs the catalog records without all their checksums; returns how many."""
        queued = 0
        for sha256, store_name in self.stowage.catalog.blobs_missing_checksums(SWEEP_LIMIT):
            try:
                store = self.stowage.blob_store(store_name)
            except StowageError:
                continue  # a store that cannot be opened now: the task or an answer fills it later
            self.submit(store, sha256)
            queued += 1
        return queued

    def sweep_at_start(self) -> None:
        """:meth:`sweep` once per server start, whichever worker process gets there first (a catalog
        lease, left to expire, keeps its siblings from hashing the same blobs again)."""
        import socket

        try:
            owner = f"{socket.gethostname()}:{os.getpid()}:{id(self)}"
            if self.stowage.catalog.acquire_lease("checksums.sweep", owner, 600):
                queued = self.sweep()
                if queued:
                    log.info("computing the missing checksums of %d blob(s) in the background", queued)
        except Exception:
            log.exception("looking for blobs without checksums failed")

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until every submitted blob was handled (tests, shutdown); False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._pending, timeout)

    def close(self) -> None:
        """Stop (the app is closing): the blob being hashed is finished if that takes under 10 s; the rest
        stay missing in the catalog, where the next start's sweep finds them."""
        with self._lock:
            self._closed = True
            thread = self._thread
        self._queue.put(None)
        if thread is not None and thread is not threading.current_thread():
            thread.join(10)

    def _run(self) -> None:
        try:  # Linux: a thread's own nice value. The hashing yields the CPU to requests (2 cores: it matters)
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        except (AttributeError, OSError):
            pass
        while True:
            item = self._queue.get()
            if item is None or self._closed:
                return
            store, sha256 = item
            try:
                known = self.stowage.catalog.blob_checksums([sha256]).get(sha256)
                if known is not None and not all(name in known for name in ASSET_DIGESTS):
                    fill_checksums(self.stowage, store, sha256)
            except Exception:
                log.exception("computing the checksums of blob %s failed; an answer that needs them, or the "
                              "blobstore.checksums task, computes them later", sha256)
            finally:
                with self._idle:
                    self._pending.discard(sha256)
                    self._idle.notify_all()


def backfill_all(stowage: "Stowage") -> str:
    """The ``blobstore.checksums`` task: compute missing checksums of every asset's blob."""
    done = 0
    for repository in stowage.repositories():
        for asset in stowage.catalog.iter_assets(repository.name):
            before = stowage.catalog.blob_checksums([asset.blob_sha256]).get(asset.blob_sha256, {})
            if not all(name in before for name in ASSET_DIGESTS):
                done += bool(_backfill(stowage, asset))
    return f"checksums computed for {done} blob(s)"
