"""Core's maintenance tasks: ``repository.cleanup`` (apply cleanup policies), ``blobstore.compact``
(delete blobs no asset references), ``security.audit-purge`` (drop audit events older than
``[server] auditRetentionDays``), ``stowage.backup`` (a backup generation into ``location``) and
``blobstore.verify`` (check blobs and format metadata, optionally ``deep`` and ``repair``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stowage.hookspecs import hookimpl
from stowage.registration import Task, TaskProperty

if TYPE_CHECKING:
    from stowage.progress import RunProgress
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


def _progress(context: "TaskContext") -> "RunProgress":
    """Progress shown as the running task's message; a stop request ends the run between blobs."""
    from stowage.progress import RunProgress

    def update(text: str) -> None:
        context.progress(text)
        context.check_stopped()

    return RunProgress(show=False, listener=update)


def backup(stowage: "Stowage", context: "TaskContext") -> str:
    """``stowage.backup``: a new generation in ``location``; ``keep`` (optional) prunes older ones. The
    server does not know its configuration file, so a task-made generation has none (see operations.md)."""
    from stowage.backup.create import run_backup

    keep = context.properties.get("keep")
    report = run_backup(stowage, context.properties["location"], keep=int(keep) if keep else None,
                        progress=_progress(context))
    if not report.ok:
        raise RuntimeError(f"{report.summary()}: {'; '.join(report.problems[:5])}")
    return report.summary()


def verify(stowage: "Stowage", context: "TaskContext") -> str:
    """``blobstore.verify``: the repositories of ``blobstoreName`` (every one when empty)."""
    from stowage.verify import run_verify

    def flag(name: str) -> bool:
        return str(context.properties.get(name) or "false").lower() == "true"

    report = run_verify(stowage, blob_store=context.properties.get("blobstoreName") or None, deep=flag("deep"),
                        repair=flag("repair"), progress=_progress(context))
    if not report.ok:
        raise RuntimeError(f"{report.summary()}: {'; '.join(report.lines()[:5])}")
    return report.summary()


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
                 run=purge_audit, default_schedule="daily"),
            Task(type="stowage.backup", name="Back up the catalog, blobs and secrets (online, incremental)",
                 run=backup, properties=[
                     TaskProperty("location", "Backup directory", required=True),
                     TaskProperty("keep", "Generations to keep (empty: all)", type="integer")]),
            Task(type="blobstore.verify", name="Verify blobs and format metadata", run=verify, properties=[
                TaskProperty("blobstoreName", "Blob store (empty: every store)", type="blobstore"),
                TaskProperty("deep", "Re-hash every blob", type="boolean", default="false"),
                TaskProperty("repair", "Repair what can be repaired", type="boolean", default="false")])]
