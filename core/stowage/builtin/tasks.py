"""Core's maintenance tasks: ``repository.cleanup`` (apply cleanup policies), ``blobstore.compact``
(delete blobs no asset references) and ``security.audit-purge`` (drop audit events older than
``[server] auditRetentionDays``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stowage.hookspecs import hookimpl
from stowage.registration import Task, TaskProperty

if TYPE_CHECKING:
    from stowage.stowage import Stowage
    from stowage.tasks import TaskContext


def compact(stowage: "Stowage", context: "TaskContext") -> str:
    from stowage.compaction import compact_blobs

    return compact_blobs(stowage, stowage.settings.blob_gc_grace_seconds,
                         store_name=context.properties.get("blobstoreName"), context=context).summary()


def cleanup(stowage: "Stowage", context: "TaskContext") -> str:
    from stowage.cleanup import run_cleanup

    name = context.properties.get("repositoryName")
    return run_cleanup(stowage, repository_name=None if name in (None, "*") else name, context=context).summary()


def purge_audit(stowage: "Stowage") -> str:
    return stowage.audit.purge(stowage.settings.audit_retention_days)


@hookimpl(trylast=True)
def stowage_register_tasks() -> list[Task]:
    return [Task(type="repository.cleanup", name="Cleanup service: apply repositories' cleanup policies",
                 run=cleanup, default_schedule="daily",
                 properties=[TaskProperty("repositoryName", "Repository (empty or *: every repository)",
                                          type="repository")]),
            Task(type="blobstore.compact", name="Compact blob stores: delete blobs no asset references",
                 run=compact, default_schedule="daily",
                 properties=[TaskProperty("blobstoreName", "Blob store (empty: every store)", type="blobstore")]),
            Task(type="security.audit-purge", name="Purge audit events older than the retention period",
                 run=purge_audit, default_schedule="daily")]
