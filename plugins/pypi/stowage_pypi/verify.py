"""``stowage verify`` for hosted pypi repositories: can the simple index describe every distribution?

The index pages are built from the catalog per request; what can disagree is what they are built from:
each distribution needs its component (the root index lists components) and, when the upload had core
metadata, the ``.metadata`` file whose sha256 the project page advertises (PEP 658) — a wrong or missing
one makes pip refuse the file or fall back to downloading it.
"""

from __future__ import annotations

from stowage.plugin import MetadataCheck, MetadataProblem, Repository, RepositoryType

from stowage_pypi.distributions import METADATA_SUFFIX


def check(repository: Repository) -> list[MetadataProblem]:
    if repository.type is not RepositoryType.HOSTED:
        return []
    catalog = repository.stowage.catalog
    problems = []
    for asset in catalog.iter_assets(repository.name, prefix="packages/"):
        if asset.path.endswith(METADATA_SUFFIX):
            continue
        info = asset.attributes.get("pypi") or {}
        if asset.component_id is None or catalog.get_component(asset.component_id) is None:
            problems.append(MetadataProblem(path=asset.path, message="distribution has no component: the root "
                                                                     "index does not list its project"))
        advertised = info.get("core_metadata_sha256")
        if advertised:
            metadata = catalog.get_asset(repository.name, asset.path + METADATA_SUFFIX)
            if metadata is None:
                problems.append(MetadataProblem(path=asset.path, message=(
                    f"the project page advertises core metadata sha256 {advertised}, but "
                    f"{asset.path.rsplit('/', 1)[-1]}{METADATA_SUFFIX} is not in the repository")))
            elif metadata.blob_sha256 != advertised:
                problems.append(MetadataProblem(path=asset.path, message=(
                    f"the project page advertises core metadata sha256 {advertised}, the .metadata file has "
                    f"{metadata.blob_sha256}")))
    return problems


def metadata_checks() -> list[MetadataCheck]:
    return [MetadataCheck(format="pypi", name="pypi-simple-index", check=check)]
