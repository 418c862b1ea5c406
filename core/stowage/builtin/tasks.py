"""Core's maintenance tasks: ``blobstore.compact`` (delete blobs no asset references) and
``security.audit-purge`` (drop audit events older than ``[server] auditRetentionDays``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stowage.hookspecs import hookimpl
from stowage.registration import Task

if TYPE_CHECKING:
    from stowage.stowage import Stowage


def compact(stowage: "Stowage") -> str:
    from stowage.compaction import compact_blobs

    return compact_blobs(stowage, stowage.settings.blob_gc_grace_seconds).summary()


def purge_audit(stowage: "Stowage") -> str:
    return stowage.audit.purge(stowage.settings.audit_retention_days)


@hookimpl(trylast=True)
def stowage_register_tasks() -> list[Task]:
    return [Task(type="blobstore.compact", name="Compact blob stores: delete blobs no asset references",
                 run=compact, interval=24 * 3600.0),
            Task(type="security.audit-purge", name="Purge audit events older than the retention period",
                 run=purge_audit, interval=24 * 3600.0)]
