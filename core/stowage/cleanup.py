"""Applying cleanup policies to a repository: what they select (the preview) and removing it (the run).

The unit of removal is a component (a package version, an image tag) with all its assets, or, where the
format says so (:meth:`~stowage.formats.FormatHandler.cleanup_asset`), an asset that belongs to no
component (a raw file, a proxy's cached file). Every criterion of one policy must hold (AND); a
repository with several policies removes what any of them selects. ``retain`` then keeps, for each
component name, the newest N (by the format's version order) of the versions the other criteria selected.

Removal goes through the format's own delete path (``FormatHandler.delete_component`` / ``delete_asset``)
so its metadata stays right (simple pages, packuments, repodata). Only catalog rows go: the bytes are
reclaimed by ``blobstore.compact`` once no asset anywhere references them, so a download that already
found its asset finishes, and a blob another component shares is never touched.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from typing import TYPE_CHECKING, Any, Iterable

from attrs import define, frozen

from stowage.cleanup_policies import CleanupPolicies, CleanupPolicy, ReleaseType
from stowage.errors import FormatUnavailable, NotFound
from stowage.models import Asset, Component, RepositoryType

if TYPE_CHECKING:
    from stowage.repository import Repository
    from stowage.stowage import Stowage
    from stowage.tasks import TaskContext

log = logging.getLogger(__name__)

DAY = 86400.0


@frozen
class Candidate:
    """Something cleanup would remove: a component with its assets, or one loose asset."""

    group: str
    name: str
    version: str
    assets: tuple[Asset, ...]
    component: Component | None = None

    @property
    def size(self) -> int:
        return sum(asset.size for asset in self.assets)

    @property
    def key(self) -> tuple[str, Any]:
        if self.component is not None:
            return ("component", self.component.id)
        return ("asset", self.assets[0].id)

    def to_json(self) -> dict[str, Any]:
        return {"group": self.group or None, "name": self.name, "version": self.version or None,
                "assets": [{"path": a.path, "fileSize": a.size} for a in self.assets]}


def candidates(repository: "Repository") -> list[Candidate]:
    """Every unit cleanup may consider in ``repository``, each with its assets (one pass over both)."""
    catalog = repository.stowage.catalog
    by_component: dict[int, list[Asset]] = defaultdict(list)
    loose: list[Asset] = []
    handler = repository.handler
    for asset in catalog.iter_assets(repository.name):
        if asset.component_id is not None:
            by_component[asset.component_id].append(asset)
        elif handler.cleanup_asset(repository, asset):
            loose.append(asset)
    found = []
    token = None
    while True:
        page = catalog.list_components(repository.name, continuation_token=token, limit=1000)
        for component in page.items:
            assets = by_component.get(component.id)  # type: ignore[arg-type]
            if assets:
                found.append(Candidate(component.group, component.name, component.version, tuple(assets), component))
        token = page.continuation_token
        if token is None:
            break
    found += [Candidate("", asset.path, "", (asset,)) for asset in loose]
    return found


def select(repository: "Repository", policy: CleanupPolicy, units: Iterable[Candidate], now: float) -> list[Candidate]:
    """The units ``policy`` removes from ``repository``: every criterion holds, then ``retain``."""
    if not policy.has_criteria or policy.format not in ("*", repository.format_name):
        return []
    handler = repository.handler
    pattern = policy.pattern
    chosen = []
    for unit in units:
        if policy.criteria_last_blob_updated is not None:
            updated = max([a.last_updated or a.created for a in unit.assets]
                          + [unit.component.created if unit.component else 0.0])
            if updated > now - policy.criteria_last_blob_updated * DAY:
                continue
        if policy.criteria_last_downloaded is not None:
            # never downloaded: counts from when it was published (or cached)
            used = max(a.last_downloaded or a.created for a in unit.assets)
            if used > now - policy.criteria_last_downloaded * DAY:
                continue
        if policy.criteria_release_type not in (None, ReleaseType.RELEASES_AND_PRERELEASES):
            prerelease = unit.component is not None and handler.is_prerelease(unit.component)
            if prerelease != (policy.criteria_release_type is ReleaseType.PRERELEASES):
                continue
        if pattern is not None and not any(pattern.fullmatch(a.path) or pattern.fullmatch("/" + a.path)
                                           for a in unit.assets):
            continue
        chosen.append(unit)
    if policy.retain is None:
        return chosen
    versions: dict[tuple[str, str], list[Candidate]] = defaultdict(list)
    for unit in chosen:
        versions[(unit.group, unit.name)].append(unit)
    removed = []
    for same_name in versions.values():
        if any(unit.component is None for unit in same_name):
            continue  # a loose asset has no versions: retain keeps it
        same_name.sort(key=lambda unit: handler.version_key(unit.component), reverse=True)
        removed += same_name[policy.retain:]
    return removed


def preview(repository: "Repository", policies: Iterable[CleanupPolicy], now: float | None = None) -> list[Candidate]:
    """What cleanup would remove now from ``repository`` with ``policies`` (any of them), in a stable order."""
    if repository.type is RepositoryType.GROUP:
        return []
    now = time.time() if now is None else now
    units = candidates(repository)
    selected: dict[tuple[str, Any], Candidate] = {}
    for policy in policies:
        for unit in select(repository, policy, units, now):
            selected.setdefault(unit.key, unit)
    return sorted(selected.values(), key=lambda u: (u.group, u.name, u.version, u.assets[0].path))


@define
class CleanupReport:
    repositories: int = 0
    components: int = 0
    removed: int = 0
    removed_bytes: int = 0
    failed: int = 0

    def summary(self) -> str:
        text = (f"removed {self.removed:,} of {self.components:,} selected components "
                f"({self.removed_bytes:,} bytes; reclaimed by blobstore.compact) in {self.repositories} repositories")
        return text + (f"; {self.failed} could not be removed (see the log)" if self.failed else "")


#: units removed in one catalog transaction: one commit (and fsync) per batch instead of per unit keeps a
#: run over tens of thousands of components well under a minute; the write lock is held for one batch.
BATCH = 100


def remove(repository: "Repository", selected: list[Candidate], report: CleanupReport,
           context: "TaskContext | None" = None) -> None:
    """Remove ``selected`` through the format's delete path, in batches of :data:`BATCH` per transaction.

    A batch in which a unit fails is rolled back and its units are removed one by one, so one bad unit
    costs only itself.
    """
    catalog = repository.stowage.catalog
    for start in range(0, len(selected), BATCH):
        batch = selected[start:start + BATCH]
        if context is not None:
            context.check_stopped()
            context.progress(f"{repository.name}: removed {report.removed:,} of {report.components:,} components")
        try:
            with catalog.transaction():
                for unit in batch:
                    _remove_one(repository, unit)
        except Exception:
            log.warning("cleanup of %s: a batch failed; removing its %s components one by one", repository.name,
                        len(batch))
            for unit in batch:
                try:
                    with catalog.transaction():
                        _remove_one(repository, unit)
                except Exception:
                    log.exception("cleanup of %s: removing %s %s failed", repository.name, unit.name,
                                  unit.version)
                    report.failed += 1
                    continue
                report.removed += 1
                report.removed_bytes += unit.size
            continue
        report.removed += len(batch)
        report.removed_bytes += sum(unit.size for unit in batch)


def _remove_one(repository: "Repository", unit: Candidate) -> None:
    handler = repository.handler
    try:
        if unit.component is not None:
            handler.delete_component(repository, unit.component)
        else:
            handler.delete_asset(repository, unit.assets[0])
    except NotFound:
        return  # removed meanwhile (by a client, or a run on another node before its lease expired)
    # in the batch's transaction: the event commits (or rolls back) with the removal
    fmt = repository.format
    target = fmt.label(unit.component) if unit.component is not None and fmt is not None else unit.name
    repository.stowage.audit.record("content", "content.cleanup", f"{target} {unit.version}".strip(),
                                    repository=repository.name,
                                    attributes={"assets": [a.path for a in unit.assets][:20], "bytes": unit.size})


def run_cleanup(stowage: "Stowage", *, repository_name: str | None = None,
                context: "TaskContext | None" = None) -> CleanupReport:
    """Apply every repository's policies (or one repository's), as the ``repository.cleanup`` task does."""
    report = CleanupReport()
    policies = CleanupPolicies.of(stowage)
    for repository in stowage.repositories():
        if repository_name and repository.name != repository_name:
            continue
        if repository.type is RepositoryType.GROUP:
            continue
        try:
            repository.handler
        except FormatUnavailable:
            log.warning("cleanup: repository %s is skipped: its format plugin is missing", repository.name)
            continue
        applied = policies.for_repository(repository.config)
        if not applied:
            continue
        report.repositories += 1
        if context is not None:
            context.check_stopped()
            context.progress(f"{repository.name}: selecting what {', '.join(p.name for p in applied)} remove(s)",
                             force=True)
        selected = preview(repository, applied)
        report.components += len(selected)
        remove(repository, selected, report, context)
    log.info("cleanup: %s", report.summary())
    return report
