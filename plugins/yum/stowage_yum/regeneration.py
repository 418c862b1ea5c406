"""Hosted repodata is regenerated in the background by core's background work (job ``yum.repodata``).

An upload or a delete requests a run for its repodata root in its own transaction
(:func:`~stowage_yum.state.request_regeneration`, the changed RPM path as the item). Core coalesces a
burst into one run (2 s without a change, at most 30 s after the first), runs it in one process of the
cluster at a time under a catalog lease, and lets another process take over if that one dies. A run
applies the changed paths incrementally (:func:`~stowage_yum.generate.generate`) and, while files of a
previous generation are kept for their grace period, asks for a follow-up run that deletes them.
"""

from __future__ import annotations

import logging

from attrs import define

from stowage.plugin import App, BackgroundJob, BackgroundWork, Repository, RepositoryType, Work

from stowage_yum.generate import drop_root, generate
from stowage_yum.settings import yum_settings
from stowage_yum.state import JOB, generation_namespace, package_namespace, roots

log = logging.getLogger(__name__)

#: change markers of the regeneration worker yum ran itself before core had background work.
OLD_MARKERS = "yum-dirty"


@define
class RegenerationSettings:
    """Per app (``stowage.extension``): how long a previous generation's files stay fetchable, for
    clients holding the ``repomd.xml`` that names them."""

    grace_seconds: float = 600.0


def regeneration_settings(stowage: App) -> RegenerationSettings:
    return stowage.extension("yum-regeneration", RegenerationSettings)


def background_job() -> BackgroundJob:
    return BackgroundJob(name=JOB, run=run, delay=2.0, max_delay=30.0, lease_seconds=60.0)


def run(work: Work) -> None:
    """Bring one root's repodata up to date with the catalog (core holds the root's lease)."""
    repository = work.repository
    if repository.format_name != "yum" or repository.type is not RepositoryType.HOSTED:
        return
    grace = regeneration_settings(work.stowage).grace_seconds
    generate(repository, work.key, changed_paths=None if work.items is None else list(work.items),
             grace_seconds=grace, force=work.force, before_publish=work.check_lease)
    published = work.stowage.catalog.get_document(generation_namespace(repository.name), work.key) or {}
    if published.get("retired"):
        work.again(grace)  # delete them once their grace period is over, even if nothing changes


def ensure(repository: Repository, root: str) -> None:
    """Publish repodata for ``root`` now if it has none (a new or empty repository's first GET)."""
    if root.count("/") != yum_settings(repository).repodata_depth:
        return
    if repository.stowage.catalog.get_asset(repository.name, f"{root}repodata/repomd.xml") is None:
        BackgroundWork.of(repository.stowage).run_now(JOB, repository.name, root, wait=30.0)


def regenerate_now(repository: Repository, root: str, *, force: bool = False, wait: float = 60.0) -> bool:
    """Regenerate ``root`` in this thread (``force``: re-extract every RPM); False if the lease stayed taken."""
    return BackgroundWork.of(repository.stowage).run_now(JOB, repository.name, root, force=force, wait=wait)


def rebuild(repository: Repository) -> None:
    """Re-extract every package's metadata and regenerate every root (``rebuild-index``)."""
    catalog = repository.stowage.catalog
    namespace = package_namespace(repository.name)
    with catalog.transaction():
        for key, _ in catalog.list_documents(namespace):
            catalog.delete_document(namespace, key)
    depth = yum_settings(repository).repodata_depth
    targets = roots(repository)
    if depth == 0:
        targets.add("")
    for root in sorted(targets):
        if root.count("/") == depth:
            regenerate_now(repository, root, force=True)
        else:  # yum.repodataDepth changed since this root was generated
            drop_root(repository, root)


def pending_roots(repository: Repository) -> set[str]:
    """The roots with a change whose regeneration has not run yet (not a follow-up that only expires
    old files)."""
    return {pending.key for pending in BackgroundWork.of(repository.stowage).pending(JOB, repository.name)
            if not pending.follow_up}


def adopt_old_markers(stowage: App) -> int:
    """Turn the change markers an older version left (``yum-dirty``) into background work requests, so an
    upgrade loses no pending regeneration; returns how many."""
    catalog = stowage.catalog
    work = BackgroundWork.of(stowage)
    adopted = 0
    with catalog.transaction():
        for key, marker in catalog.list_documents(OLD_MARKERS):
            repository, _, root = key.partition("/")
            paths = marker.get("paths") if isinstance(marker, dict) else None
            for path in paths if paths else [None]:
                work.request(JOB, repository, root, item=path)
            catalog.delete_document(OLD_MARKERS, key)
            adopted += 1
    if adopted:
        log.info("yum: %d pending repodata regenerations moved to core's background work", adopted)
    return adopted
