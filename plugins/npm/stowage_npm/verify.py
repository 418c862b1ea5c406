"""``stowage verify`` for hosted npm repositories: does each packument agree with the tarballs?

Every version a package document lists must have its tarball asset, every dist-tag must name a listed
version, and every tarball asset must be listed by its package's document (else npm cannot see it).
Packuments are the catalog's documents (built per request), so there is nothing to regenerate.
"""

from __future__ import annotations

from stowage.plugin import MetadataCheck, MetadataProblem, Repository, RepositoryType

from stowage_npm.names import tarball_path
from stowage_npm.packument import namespace


def check(repository: Repository) -> list[MetadataProblem]:
    if repository.type is not RepositoryType.HOSTED:
        return []
    catalog = repository.stowage.catalog
    problems = []
    listed: set[str] = set()
    for name, document in catalog.list_documents(namespace(repository.name)):
        if not isinstance(document, dict) or "versions" not in document:
            continue
        versions = document.get("versions") or {}
        for version in sorted(versions):
            path = tarball_path(name, version)
            listed.add(path)
            if catalog.get_asset(repository.name, path) is None:
                problems.append(MetadataProblem(path=path, message=(
                    f"the packument of {name} lists version {version}, whose tarball is not in the repository")))
        for tag, version in sorted((document.get("dist-tags") or {}).items()):
            if version not in versions:
                problems.append(MetadataProblem(path=name, message=(
                    f"dist-tag {tag} points at {version}, which the packument does not list")))
    for asset in catalog.iter_assets(repository.name):
        if asset.path.endswith(".tgz") and "/-/" in asset.path and asset.path not in listed:
            problems.append(MetadataProblem(path=asset.path, message="tarball is listed by no packument version"))
    return problems


def metadata_checks() -> list[MetadataCheck]:
    return [MetadataCheck(format="npm", name="npm-packuments", check=check)]
