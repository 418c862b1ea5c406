"""Where things are: the catalog paths of blobs, manifests and tags, and finding them in a hosted, proxy
or group repository (a group's members in order, with core's dependency-confusion guard for image names).

Paths in a repository's catalog: ``v2/<image>/blobs/<digest>``, ``v2/<image>/manifests/<digest>`` and
``v2/<image>/manifests/<tag>`` (the tag's asset shares the manifest's blob). Blobs are content-addressed
in core, so a blob a repository already holds is never uploaded or stored twice.
"""

from __future__ import annotations

import json
import re
from typing import Iterable

import falcon

from stowage.plugin import (Asset, AssetKind, InFlightAsset, NotFound, Repository, RepositoryType, StowageError,
                            UpstreamBlocked, UpstreamError, member_leaves)
from stowage_docker import manifests
from stowage_docker.errors import RegistryError, digest_invalid, manifest_unknown, name_unknown
from stowage_docker.upstream import fetch, remote_tags


def blob_path(name: str, digest: str) -> str:
    return f"v2/{name}/blobs/{digest}"


def manifest_path(name: str, reference: str) -> str:
    return f"v2/{name}/manifests/{reference}"


def check_digest(digest: str) -> None:
    if not manifests.is_digest(digest):
        raise digest_invalid(f"invalid digest {digest!r}: use sha256:<64 hex> or sha512:<128 hex>")


def check_reference(reference: str) -> None:
    if not manifests.is_digest(reference) and not manifests.TAG.match(reference):
        raise RegistryError("MANIFEST_INVALID" if ":" not in reference else "DIGEST_INVALID",
                            f"invalid tag or digest {reference!r}", status=400)


def digest_names(digest: str) -> tuple[str, ...]:
    return ("sha512",) if digest.startswith("sha512:") else ()


def expected_digest(digest: str) -> dict[str, str]:
    algorithm, _, value = digest.partition(":")
    return {algorithm: value}


def find_blob(repository: Repository, name: str, digest: str, *, remote: bool = True,
              stream: bool = False) -> Asset | InFlightAsset | None:
    """The blob in a hosted or proxy repository: under the image, or (hosted, sha256) anywhere in it."""
    catalog = repository.stowage.catalog
    if repository.type is RepositoryType.PROXY:
        return fetch(repository, blob_path(name, digest), AssetKind.CONTENT, digest, remote=remote, stream=stream)
    asset = catalog.get_asset(repository.name, blob_path(name, digest))
    if asset is not None:
        return asset
    if digest.startswith("sha256:"):
        page = catalog.search_assets(repositories=[repository.name], sha256=digest[7:], limit=1)
        if page.items:
            return page.items[0]
    return None


def find_manifest(repository: Repository, name: str, reference: str) -> Asset | None:
    is_digest = manifests.is_digest(reference)
    path = manifest_path(name, reference)
    if repository.type is RepositoryType.PROXY:
        return fetch(repository, path, AssetKind.CONTENT if is_digest else AssetKind.METADATA,
                     reference if is_digest else None)
    return repository.stowage.catalog.get_asset(repository.name, path)


def list_tags(repository: Repository, name: str) -> list[str] | None:
    """The repository's tags of ``name``; None when it does not know the image."""
    if repository.type is RepositoryType.PROXY:
        return remote_tags(repository, name)
    assets = list(repository.stowage.catalog.iter_assets(repository.name, prefix=f"v2/{name}/manifests/"))
    if not assets:
        return None
    return [tag for tag in (a.path.rsplit("/", 1)[1] for a in assets
                            if a.path.count("/") == name.count("/") + 3)
            if not manifests.is_digest(tag)]


def image_names(repositories: Iterable[Repository]) -> set[str]:
    names: set[str] = set()
    pattern = re.compile(r"^v2/(?P<name>.+)/manifests/[^/]+$")
    for repository in repositories:
        for asset in repository.stowage.catalog.iter_assets(repository.name, prefix="v2/"):
            match = pattern.match(asset.path)
            if match:
                names.add(match.group("name"))
    return names


def media_type_of(repository: Repository, asset: Asset) -> str:
    """The manifest media type to serve ``asset`` as: always one of :data:`manifests.MANIFESTS`, whatever
    type a remote or an older push recorded."""
    if asset.content_type in manifests.MANIFESTS:
        return asset.content_type
    declared = asset.attributes.get("mediaType")
    if declared in manifests.MANIFESTS:
        return declared
    with repository.open(asset) as stream:
        try:
            document = json.loads(stream.read(manifests.MAX_MANIFEST_BYTES))
        except ValueError:
            document = None
    found = document.get("mediaType") if isinstance(document, dict) else None
    if found in manifests.MANIFESTS:
        return found
    return manifests.OCI_INDEX if isinstance(document, dict) and "manifests" in document else manifests.OCI_MANIFEST


def accepted_types(req: falcon.Request) -> list[str]:
    """Every media type of every ``Accept`` line (waitress joins repeated header lines with commas)."""
    header = req.get_header("Accept") or ""
    return [part.split(";")[0].strip() for part in header.split(",") if part.strip()]


# -- through groups ----------------------------------------------------------------------------------------
def find_blob_in(repository: Repository, name: str, digest: str, *, remote: bool = True,
                 stream: bool = False) -> Asset | InFlightAsset | None:
    """A blob through ``repository`` (any type): the first leaf that has it. Blobs are addressed by digest
    and belong to no one image name, so every member may serve them."""
    for leaf in member_leaves(repository):
        try:
            asset = find_blob(leaf, name, digest, remote=remote, stream=stream)
        except (NotFound, UpstreamError):
            continue
        if asset is not None:
            return asset
    return None


def find_manifest_in(repository: Repository, name: str, reference: str) -> Asset | None:
    """A manifest through ``repository`` (any type), from the leaves the group guard lets serve ``name``."""
    failures: list[StowageError] = []
    blocked: list[str] = []
    for leaf in member_leaves(repository, name):
        try:
            asset = find_manifest(leaf, name, reference)
        except UpstreamError as error:
            failures.append(error)
            if isinstance(error, UpstreamBlocked):
                blocked.append(leaf.name)
            continue
        if asset is not None:
            return asset
    if failures and len(blocked) == len(failures):
        # Every member said no and every proxy that might know is blocked with nothing cached: say
        # "unknown" (clients fail fast instead of retrying a 503), and why.
        catalog = repository.stowage.catalog
        known = any(catalog.list_assets(leaf.name, prefix=f"v2/{name}/manifests/", limit=1).items
                    for leaf in member_leaves(repository))
        error = manifest_unknown(reference) if known else name_unknown(name)
        raise RegistryError(error.code, f"{error.message}: no member has it, and the remote of proxy "
                            f"{', '.join(blocked)} is blocked with nothing cached", status=404, detail=error.detail)
    if failures:
        raise failures[0]
    return None


def tags_in(repository: Repository, name: str) -> list[str]:
    """The tags of ``name`` through ``repository`` (any type), merged over the leaves that may serve it."""
    found: set[str] = set()
    known = False
    failures: list[StowageError] = []
    for leaf in member_leaves(repository, name):
        try:
            tags = list_tags(leaf, name)
        except UpstreamError as error:
            failures.append(error)
            continue
        if tags is not None:
            known = True
            found.update(tags)
    if not known:
        if failures:
            raise failures[0]
        raise name_unknown(name)
    return sorted(found)
