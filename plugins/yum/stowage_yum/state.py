"""What a hosted yum repository keeps in the catalog besides its assets, and how a change asks for new
repodata.

Per repository ``R`` (shared by every process and node):

- ``yum-pkg:R`` / ``<rpm path>``: the uploaded package's :class:`~stowage_yum.rpmfile.PackageRecord` (its
  createrepo_c XML chunks), written in the same transaction as the RPM's asset; extracted once, never
  re-read. Folded into the repodata (and deleted) by the next regeneration.
- ``yum-seg:R`` / ``<root>|<buckets>|<i>``: each bucket's members (path, sha256) and their identity.
- ``yum-gen:R`` / ``<root>``: the published generation (revision, files, each bucket's byte span in each
  file) and the previous generations' files with the time they were retired (deleted after a grace period).
- core's background work marker of job :data:`JOB`, key ``<root>``: the RPM paths changed since the last
  regeneration, written in the change's transaction (see :mod:`stowage_yum.regeneration`).
"""

from __future__ import annotations

from stowage.plugin import Asset, AssetKind, BackgroundWork, Repository

from stowage_yum.settings import is_repodata_path, root_of, yum_settings

#: the background job that regenerates one repodata root (key: the root, items: changed RPM paths).
JOB = "yum.repodata"
RPM_CONTENT_TYPE = "application/x-rpm"


def package_namespace(repository: str) -> str:
    return f"yum-pkg:{repository}"


def segment_namespace(repository: str) -> str:
    return f"yum-seg:{repository}"


def generation_namespace(repository: str) -> str:
    return f"yum-gen:{repository}"


def is_rpm(path: str) -> bool:
    return path.endswith(".rpm") and not is_repodata_path(path)


def request_regeneration(repository: Repository, root: str, path: str | None = None) -> None:
    """Ask for new repodata of ``root`` (call inside the change's transaction).

    :param path: the RPM that changed; None makes the next run list the catalog instead of applying
        the changed paths (so do more than the job's ``max_items`` changes before a run).
    """
    BackgroundWork.of(repository.stowage).request(JOB, repository.name, root, item=path)


def rpm_assets(repository: Repository, root: str) -> list[Asset]:
    catalog = repository.stowage.catalog
    depth = yum_settings(repository).repodata_depth
    return [asset for asset in catalog.iter_assets(repository.name, prefix=root, kind=AssetKind.CONTENT)
            if is_rpm(asset.path) and root_of(asset.path, depth) == root]


def roots(repository: Repository) -> set[str]:
    """Every repodata root that has RPMs or published repodata."""
    depth = yum_settings(repository).repodata_depth
    found = {root for root, _ in repository.stowage.catalog.list_documents(generation_namespace(repository.name))}
    for asset in rpm_assets(repository, ""):
        root = root_of(asset.path, depth)
        if root is not None:
            found.add(root)
    return found
