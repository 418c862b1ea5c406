"""``stowage verify`` for hosted docker repositories: every manifest's references are there.

An image manifest needs its config and layer blobs under the same image; an index needs its child
manifests. Proxies fetch lazily (a layer nobody pulled is legitimately absent) and are not checked here.
There is nothing to regenerate: a missing referenced blob is content that was lost.
"""

from __future__ import annotations

from stowage.plugin import MetadataCheck, MetadataProblem, NotFound, Repository, RepositoryType, StowageError

from stowage_docker import manifests
from stowage_docker.lookups import blob_path, manifest_path


def check(repository: Repository) -> list[MetadataProblem]:
    if repository.type is not RepositoryType.HOSTED:
        return []
    catalog = repository.stowage.catalog
    problems = []
    for asset in catalog.iter_assets(repository.name, prefix="v2/"):
        name, marker, reference = asset.path[3:].rpartition("/manifests/")
        if not marker or not manifests.is_digest(reference):
            continue  # tags share their digest asset's blob: checking the digest asset covers them
        try:
            with repository.open(asset) as stream:
                parsed = manifests.parse(stream.read(), asset.content_type)
        except (NotFound, FileNotFoundError):
            continue  # the blob check reports it
        except StowageError as error:
            problems.append(MetadataProblem(path=asset.path, message=f"manifest is unreadable: {error.message}"))
            continue
        absent = [blob.digest for blob in parsed.blobs  # foreign layers live elsewhere
                  if not blob.foreign and catalog.get_asset(repository.name, blob_path(name, blob.digest)) is None]
        absent += [child.digest for child in parsed.children
                   if catalog.get_asset(repository.name, manifest_path(name, child.digest)) is None]
        if absent:
            problems.append(MetadataProblem(path=asset.path, message=(
                f"manifest references {len(absent)} blob(s)/manifest(s) the repository does not have: "
                f"{', '.join(absent[:3])}{' ...' if len(absent) > 3 else ''}")))
    return problems


def metadata_checks() -> list[MetadataCheck]:
    return [MetadataCheck(format="docker", name="docker-manifest-references", check=check)]

