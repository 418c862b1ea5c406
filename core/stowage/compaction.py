"""Garbage collection of blobs no asset references (the ``blobstore.compact`` task).

Why it is safe with uploads running on other workers and nodes at the same time:

1. Only blobs that have been unreferenced for the whole grace period are candidates. The catalog
   restarts a blob's clock whenever an asset starts *or stops* referencing it, so anyone who saw the
   digest in use a moment ago (and may be about to record it elsewhere) is covered by the grace period.
2. Each candidate is re-checked and removed inside one catalog write transaction (serialised with
   ``put_asset`` across processes): if an upload committed a row for the digest first, it is skipped;
   an upload that commits afterwards re-inserts the blob row.
3. The bytes are removed with :meth:`BlobStore.collect`, which loses no race with a writer that is
   re-using the digest right now: the file store moves the file aside and deletes it only if the
   writer did not touch it since the cutoff; a writer whose touch fails writes its own copy.
4. Blobs with no catalog row at all (left by a crash between writing a blob and recording it) are
   collected by the same rule once their mtime is older than the grace period.
5. A running backup or verify holds a blob pin (:meth:`Catalog.pin_blobs`) taken before its catalog
   snapshot: the cutoff never goes past the oldest live pin's start, read inside the same transaction as
   the re-check, so a blob its snapshot references (still referenced at the pin's start, or since) stays.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from attrs import define

from stowage.staging import sweep_staged

if TYPE_CHECKING:
    from stowage.catalog import Catalog
    from stowage.stowage import Stowage
    from stowage.tasks import TaskContext

log = logging.getLogger(__name__)


@define
class CompactionReport:
    deleted: int = 0
    freed_bytes: int = 0
    kept: int = 0
    orphans: int = 0

    def summary(self) -> str:
        return (f"deleted {self.deleted} unreferenced blob(s) ({self.freed_bytes} bytes), "
                f"{self.orphans} of them unrecorded; kept {self.kept} re-used meanwhile")


def compact_blobs(stowage: "Stowage", grace_seconds: float, *, store_name: str | None = None,
                  context: "TaskContext | None" = None) -> CompactionReport:
    """Delete what no asset references any more; ``store_name``: in that blob store only."""
    report = CompactionReport()
    cutoff = time.time() - grace_seconds
    catalog = stowage.catalog
    stores = stowage.blob_stores()
    if store_name:
        stores = {name: store for name, store in stores.items() if name == store_name}
    candidates = [(sha256, name) for sha256, name in catalog.unreferenced_blobs(cutoff)
                  if not store_name or name == store_name]
    for number, (sha256, blob_store_name) in enumerate(candidates):
        if context is not None:
            context.check_stopped()
            context.progress(f"checked {number:,} of {len(candidates):,} unreferenced blobs; "
                             f"{report.freed_bytes:,} bytes freed")
        store = stores.get(blob_store_name)
        with catalog.transaction():
            effective = _pinned_cutoff(catalog, cutoff)
            created = catalog.blob_created(sha256)
            if created is None or created >= effective or catalog.blob_referenced(sha256):
                report.kept += 1
                continue
            if store is None:  # its store was deleted: nothing to remove but the row
                catalog.forget_blob(sha256)
                continue
            size = _size(store, sha256)
            if store.collect(sha256, effective):
                catalog.forget_blob(sha256)
                report.deleted += 1
                report.freed_bytes += size
            else:
                report.kept += 1
    for store in stores.values():
        if context is not None:
            context.check_stopped()
            context.progress(f"looking for unrecorded files in blob store {store.config.name}")
        # Leftovers of crashed writers and abandoned uploads (the file store also sweeps at start-up;
        # an object store has no start-up of its own).
        store.sweep_temp_files()
        for sha256 in list(store.digests()):
            if catalog.blob_recorded(sha256):
                continue
            with catalog.transaction():
                if catalog.blob_recorded(sha256):
                    continue
                size = _size(store, sha256)
                if store.collect(sha256, _pinned_cutoff(catalog, cutoff)):
                    report.deleted += 1
                    report.orphans += 1
                    report.freed_bytes += size
    sweep_staged(stowage.settings.data_path / "tmp")  # local copies of staged uploads a crash left behind
    log.info("blob compaction: %s", report.summary())
    return report


def _pinned_cutoff(catalog: "Catalog", cutoff: float) -> float:
    pinned = catalog.oldest_blob_pin()
    return cutoff if pinned is None else min(cutoff, pinned)


def _size(store: object, sha256: str) -> int:
    try:
        with store.open(sha256) as handle:  # type: ignore[attr-defined]
            handle.seek(0, 2)
            return handle.tell()
    except Exception:  # gone already, or a store that cannot say: report 0 freed
        return 0
