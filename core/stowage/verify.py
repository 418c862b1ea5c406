"""``stowage verify`` and the ``blobstore.verify`` task: is every asset's content, and every format's
generated metadata, whole?

Checks run against a catalog *snapshot* (SQLite online backup API, so uploads go on) under a blob pin
(:class:`~stowage.backup.create.BlobPin`), so blob GC cannot make a checked blob vanish mid-run:

- every asset's blob exists with the size the catalog records; with ``deep`` its sha256 is recomputed;
- each format's :class:`~stowage.registration.MetadataCheck` compares its generated metadata (yum
  repodata, npm packuments, pypi core metadata, docker manifests' references) with the assets;
- blob files no catalog row knows (orphans) and temporary files are counted, not reported as problems.

``repair`` acts on the live catalog, re-checking each finding first: a format's checker regenerates its
metadata; a proxy's cached asset whose blob is missing or corrupt is dropped (fetched again on the next
request); a hosted asset whose bytes are gone is listed as a loss, never silently dropped.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from attrs import define, evolve, field, frozen

from stowage.blobstore.base import CHUNK_SIZE
from stowage.errors import NotFound
from stowage.models import AssetKind, RepositoryType
from stowage.parallel import for_each
from stowage.progress import RunProgress, human_bytes
from stowage.registration import MetadataProblem
from stowage.settings import CatalogSettings

if TYPE_CHECKING:
    from stowage.blobstore import BlobStore
    from stowage.repository import Repository
    from stowage.stowage import Stowage

log = logging.getLogger(__name__)

#: blob problems (the rest are a format's metadata findings)
MISSING, SIZE, CORRUPT = "missing", "size", "corrupt"


@frozen
class Finding:
    """One problem: ``<repository> <path>: <message>``."""

    repository: str
    path: str
    message: str
    #: MISSING / SIZE / CORRUPT for an asset's blob, "metadata" for a format checker's finding.
    kind: str = "metadata"
    sha256: str = ""
    repaired: str = ""
    lost: bool = False

    def line(self) -> str:
        text = f"{self.repository} {self.path}: {self.message}"
        if self.repaired:
            text += f" (repaired: {self.repaired})"
        elif self.lost:
            text += " (LOST: hosted content whose bytes are gone; restore it from a backup or upload it again)"
        return text


@define
class VerifyReport:
    deep: bool = False
    repositories: int = 0
    assets: int = 0
    blobs: int = 0
    bytes: int = 0
    findings: list[Finding] = field(factory=list)
    orphan_blobs: int = 0
    temp_files: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Nothing is wrong (any finding was repaired)."""
        return all(f.repaired for f in self.findings)

    def lines(self) -> list[str]:
        return [f.line() for f in sorted(self.findings, key=lambda f: (f.repository, f.path))]

    def summary(self) -> str:
        repaired = sum(1 for f in self.findings if f.repaired)
        lost = sum(1 for f in self.findings if f.lost)
        mode = "deep-verified" if self.deep else "verified"
        return (f"{mode} {self.assets} assets in {self.repositories} repositories, {self.blobs} blobs "
                f"({human_bytes(self.bytes)}) in {self.seconds:.1f} s: {len(self.findings)} problem(s), "
                f"{repaired} repaired, {lost} hosted loss(es); {self.orphan_blobs} orphan blob file(s) and "
                f"{self.temp_files} temporary file(s) (not problems)")


def run_verify(stowage: "Stowage", *, repository: str | None = None, blob_store: str | None = None,
               deep: bool = False, repair: bool = False, threads: int = 2,
               progress: RunProgress | None = None) -> VerifyReport:
    """Verify ``stowage``'s data (one repository, the repositories of one blob store, or everything)."""
    import time

    from stowage.backup.create import BlobPin
    from stowage.stowage import Stowage

    started = time.monotonic()
    progress = progress or RunProgress(show=False)
    report = VerifyReport(deep=deep)
    if repository is not None:
        stowage.repository(repository)  # RepositoryNotFound before any work
    if blob_store is not None:
        stowage.blob_store(blob_store)
    tmp = stowage.settings.data_path / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    snapshot_file = tmp / f"verify-{secrets.token_hex(6)}.sqlite"
    try:
        with BlobPin(stowage, "verify"):
            stowage.catalog.snapshot(str(snapshot_file))
            settings = evolve(stowage.settings, catalog=CatalogSettings(type="sqlite", path=str(snapshot_file)))
            configured = [stowage.blob_store_config(name) for name in sorted(stowage.configured_blob_stores)]
            snapshot = Stowage(settings, stowage.plugins, blob_stores=configured)
            try:
                chosen = [r for r in snapshot.repositories()
                          if (repository is None or r.name == repository)
                          and (blob_store is None or r.config.storage.blob_store_name == blob_store)]
                report.repositories = len(chosen)
                findings = _check_blobs(snapshot, chosen, report, deep=deep, threads=threads, progress=progress)
                findings += _check_metadata(snapshot, chosen)
                report.findings = _merge(findings)
                if repository is None and blob_store is None:
                    _count_orphans(snapshot, report)
            finally:
                snapshot.close()
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{snapshot_file}{suffix}").unlink(missing_ok=True)
    if repair and report.findings:
        report.findings = repair_findings(stowage, report.findings)
    report.seconds = time.monotonic() - started
    log.debug("verify: %s", report.summary())
    return report


# -- blobs --------------------------------------------------------------------------------------------------
def _check_blobs(snapshot: "Stowage", repositories: list["Repository"], report: VerifyReport, *, deep: bool,
                 threads: int, progress: RunProgress) -> list[Finding]:
    # One check per (store, digest), however many assets share it.
    users: dict[tuple[str, str], list[Any]] = {}
    sizes: dict[tuple[str, str], int] = {}
    for repository in repositories:
        if repository.type is RepositoryType.GROUP:
            continue
        store_name = repository.config.storage.blob_store_name
        for asset in snapshot.catalog.iter_assets(repository.name):
            key = (store_name, asset.blob_sha256)
            users.setdefault(key, []).append(asset)
            sizes[key] = asset.size
            report.assets += 1
    report.blobs = len(users)
    report.bytes = sum(sizes.values())
    stores = snapshot.blob_stores()
    progress.phase("verify" + (" --deep" if deep else ""), files=len(users), total_bytes=report.bytes)
    findings: list[Finding] = []
    lock = threading.Lock()

    def one(key: tuple[str, str]) -> None:
        store_name, sha256 = key
        problem = _blob_problem(stores.get(store_name), sha256, sizes[key], deep=deep)
        if problem is not None:
            kind, message = problem
            with lock:
                findings.extend(Finding(a.repository, a.path, message, kind=kind, sha256=sha256) for a in users[key])
        progress.advance(1, sizes[key])

    for_each(one, list(users), threads=threads)
    return findings


def _blob_problem(store: "BlobStore | None", sha256: str, size: int, *, deep: bool) -> tuple[str, str] | None:
    if store is None:
        return MISSING, f"blob {sha256} is missing: its blob store does not exist"
    path_for = getattr(store, "path_for", None)
    try:
        if path_for is not None and not deep:
            actual = os.stat(path_for(sha256)).st_size
        else:
            with store.open(sha256) as stream:
                digest = hashlib.sha256()
                actual = 0
                if deep:
                    while chunk := stream.read(CHUNK_SIZE):
                        digest.update(chunk)
                        actual += len(chunk)
                else:
                    actual = stream.seek(0, 2)
    except (FileNotFoundError, NotFound):
        return MISSING, f"blob {sha256} is missing"
    if actual != size:
        return SIZE, f"blob {sha256} has {actual} bytes, the catalog records {size}"
    if deep and digest.hexdigest() != sha256:
        return CORRUPT, f"blob {sha256} is corrupt: its content hashes to sha256 {digest.hexdigest()}"
    return None


# -- metadata -----------------------------------------------------------------------------------------------
def _check_metadata(snapshot: "Stowage", repositories: list["Repository"]) -> list[Finding]:
    findings = []
    for repository in repositories:
        for check in snapshot.plugins.metadata_checks:
            if check.format != repository.format_name or repository.format is None:
                continue
            try:
                problems: Iterable[MetadataProblem] = check.check(repository) or ()
                findings.extend(Finding(repository.name, p.path, p.message) for p in problems)
            except Exception as error:  # a checker that breaks is a finding, not a crash of the whole run
                log.exception("metadata check %s failed on %s", check.name, repository.name)
                findings.append(Finding(repository.name, "", f"metadata check {check.name} failed: {error}"))
    return findings


def _merge(findings: list[Finding]) -> list[Finding]:
    """One line per (repository, path): a blob problem and a metadata finding on the same file join."""
    merged: dict[tuple[str, str], Finding] = {}
    for finding in findings:
        key = (finding.repository, finding.path)
        if key in merged:
            first = merged[key]
            merged[key] = evolve(first, message=f"{first.message}; {finding.message}",
                                 kind=first.kind if first.kind != "metadata" else finding.kind,
                                 sha256=first.sha256 or finding.sha256)
        else:
            merged[key] = finding
    return list(merged.values())


def _count_orphans(snapshot: "Stowage", report: VerifyReport) -> None:
    known = set(snapshot.catalog.recorded_blobs())
    for store in snapshot.blob_stores().values():
        report.orphan_blobs += sum(1 for sha in store.digests() if sha not in known)
        tmp_dir = getattr(store, "tmp_dir", None)
        if tmp_dir is not None and Path(tmp_dir).is_dir():
            report.temp_files += sum(1 for _ in Path(tmp_dir).iterdir())
    data_tmp = snapshot.settings.data_path / "tmp"
    if data_tmp.is_dir():
        # this run's own snapshot is there too, and is not a leftover
        report.temp_files += sum(1 for p in data_tmp.iterdir() if not p.name.startswith("verify-"))


# -- repair -------------------------------------------------------------------------------------------------
def repair_findings(stowage: "Stowage", findings: list[Finding]) -> list[Finding]:
    """Act on the live data; each finding comes back marked repaired or lost (or unchanged)."""
    result: list[Finding] = []
    by_repository: dict[str, list[Finding]] = {}
    for finding in findings:
        by_repository.setdefault(finding.repository, []).append(finding)
    for name, found in sorted(by_repository.items()):
        try:
            repository = stowage.repository(name)
        except NotFound:
            result.extend(evolve(f, repaired="the repository no longer exists") for f in found)
            continue
        checks = [c for c in stowage.plugins.metadata_checks if c.format == repository.format_name]
        remaining = []
        for finding in found:
            if finding.kind != "metadata" and repository.type is RepositoryType.PROXY:
                result.append(_drop_cached(repository, finding))
            else:
                remaining.append(finding)
        metadata = [f for f in remaining if f.kind == "metadata" or _is_metadata(repository, f.path)]
        actions: dict[str, str] = {}
        for check in checks:
            if check.repair is None or not metadata:
                continue
            problems = [MetadataProblem(path=f.path, message=f.message) for f in metadata]
            for path, action in (check.repair(repository, problems) or {}).items():
                actions[path] = action
        for finding in remaining:
            if finding.path in actions:
                result.append(evolve(finding, repaired=actions[finding.path]))
            elif finding.kind != "metadata" and repository.type is RepositoryType.HOSTED:
                result.append(evolve(finding, lost=True))
            else:
                result.append(finding)
    return result


def _is_metadata(repository: "Repository", path: str) -> bool:
    asset = repository.stowage.catalog.get_asset(repository.name, path)
    return asset is not None and asset.kind is AssetKind.METADATA


def _drop_cached(repository: "Repository", finding: Finding) -> Finding:
    """Forget a proxy's cached copy whose blob is broken, if the live catalog still points at that blob."""
    asset = repository.stowage.catalog.get_asset(repository.name, finding.path)
    if asset is None or asset.blob_sha256 != finding.sha256:
        return evolve(finding, repaired="already replaced since the snapshot")
    try:
        repository.delete(finding.path)
    except NotFound:
        pass
    return evolve(finding, repaired="dropped the cached copy; it is fetched again on the next request")
