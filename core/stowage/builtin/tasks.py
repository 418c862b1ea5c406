"""Core's maintenance tasks: ``blobstore.compact`` (delete blobs no asset references), ``stowage.backup``
(property ``location``) and ``blobstore.verify`` (property ``blobstoreName``).

Task properties are read from the catalog document ``tasks.properties`` / ``<task type>`` (e.g.
``{"location": "/backup/stowage", "keep": "7"}``). The ``run_*_task(stowage, properties)`` functions are
the whole behaviour; the registered :class:`Task` objects only adapt them to today's task runner, so a
runner with per-task properties can call them directly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from stowage.errors import ConfigurationError
from stowage.hookspecs import hookimpl
from stowage.registration import Task

if TYPE_CHECKING:
    from stowage.stowage import Stowage

#: catalog namespace of each task's properties (key: the task type).
TASK_PROPERTIES = "tasks.properties"


def task_properties(stowage: "Stowage", task_type: str) -> Mapping[str, Any]:
    return stowage.catalog.get_document(TASK_PROPERTIES, task_type) or {}


def compact(stowage: "Stowage") -> str:
    from stowage.compaction import compact_blobs

    return compact_blobs(stowage, stowage.settings.blob_gc_grace_seconds).summary()


def run_backup_task(stowage: "Stowage", properties: Mapping[str, Any]) -> str:
    """``stowage.backup``: a new generation in ``location``; ``keep`` (optional) prunes older ones."""
    from stowage.backup.create import run_backup

    location = properties.get("location")
    if not location:
        raise ConfigurationError("task stowage.backup needs its location property (the backup directory)")
    keep = properties.get("keep")
    report = run_backup(stowage, str(location), keep=int(keep) if keep not in (None, "") else None)
    if not report.ok:
        raise RuntimeError(f"{report.summary()}: {'; '.join(report.problems[:5])}")
    return report.summary()


def run_verify_task(stowage: "Stowage", properties: Mapping[str, Any]) -> str:
    """``blobstore.verify``: verify the repositories of ``blobstoreName`` (all when unset); ``deep``,
    ``repair`` are "true"/"false"."""
    from stowage.verify import run_verify

    def flag(name: str) -> bool:
        return str(properties.get(name, "false")).lower() == "true"

    report = run_verify(stowage, blob_store=properties.get("blobstoreName") or None, deep=flag("deep"),
                        repair=flag("repair"))
    if not report.ok:
        raise RuntimeError(f"{report.summary()}: {'; '.join(report.lines()[:5])}")
    return report.summary()


def backup(stowage: "Stowage") -> str:
    return run_backup_task(stowage, task_properties(stowage, "stowage.backup"))


def verify(stowage: "Stowage") -> str:
    return run_verify_task(stowage, task_properties(stowage, "blobstore.verify"))


@hookimpl(trylast=True)
def stowage_register_tasks() -> list[Task]:
    return [Task(type="blobstore.compact", name="Compact blob stores: delete blobs no asset references",
                 run=compact, interval=24 * 3600.0),
            Task(type="stowage.backup", name="Back up the catalog, blobs and secrets (property location)",
                 run=backup),
            Task(type="blobstore.verify", name="Verify blobs and metadata (property blobstoreName)", run=verify)]
