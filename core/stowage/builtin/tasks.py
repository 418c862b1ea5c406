"""Core's maintenance tasks: ``blobstore.compact`` (delete blobs no asset references) and
``blobstore.checksums`` (Nexus's checksums of blobs stored before they were computed at write time)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stowage.hookspecs import hookimpl
from stowage.registration import Task

if TYPE_CHECKING:
    from stowage.stowage import Stowage


def compact(stowage: "Stowage") -> str:
    from stowage.compaction import compact_blobs

    return compact_blobs(stowage, stowage.settings.blob_gc_grace_seconds).summary()


@hookimpl(trylast=True)
def stowage_register_tasks() -> list[Task]:
    return [Task(type="blobstore.compact", name="Compact blob stores: delete blobs no asset references",
                 run=compact, interval=24 * 3600.0),
            Task(type="blobstore.checksums",
                 name="Compute the md5, sha1 and sha512 checksums of blobs stored before they were recorded",
                 run=backfill_checksums)]


def backfill_checksums(stowage: "Stowage") -> str:
    from stowage.checksums import backfill_all

    return backfill_all(stowage)
