"""Docker retention: tags by push time, and the two tasks that free what deleted tags leave behind.

``repository.docker.gc`` ("Docker - Delete unused manifests and images"): in a hosted repository, a
manifest that no tag references, directly or through a kept manifest list (its children) or as the
``subject`` of a kept manifest's referrer, is removed, then every layer or config blob asset that no
remaining manifest of the repository lists. Only what is older than ``deployOffset`` hours goes: a push
uploads blobs first and tags last, and a push in progress must not lose its blobs.

``repository.docker.upload-purge`` ("Docker - Delete incomplete uploads"): upload sessions older than
``age`` hours are discarded with their partial bytes.

Both remove catalog rows only; ``blobstore.compact`` then deletes the bytes no asset references.
"""

from __future__ import annotations

import time
from typing import Any

from stowage.plugin import (App, Asset, BadRequest, Repository, RepositoryType, Task, TaskProperty,
                            hookimpl)
from stowage_docker import manifests
from stowage_docker.blobs import UPLOADS

HOUR = 3600.0


def _split(path: str) -> tuple[str, str, str] | None:
    """(image, kind, reference) of ``v2/<image>/(manifests|blobs)/<reference>``."""
    if not path.startswith("v2/"):
        return None
    head, _, reference = path.rpartition("/")
    image, _, kind = head[3:].rpartition("/")
    if kind not in ("manifests", "blobs") or not image:
        return None
    return image, kind, reference


def collect_garbage(repository: Repository, deploy_offset_hours: float, context: Any = None) -> str:
    catalog = repository.stowage.catalog
    cutoff = time.time() - deploy_offset_hours * HOUR
    tags: list[Asset] = []
    by_digest: dict[tuple[str, str], Asset] = {}
    blobs: list[Asset] = []
    for asset in catalog.iter_assets(repository.name, prefix="v2/"):
        parts = _split(asset.path)
        if parts is None:
            continue
        image, kind, reference = parts
        if kind == "blobs":
            blobs.append(asset)
        elif manifests.is_digest(reference):
            by_digest[(image, reference)] = asset
        else:
            tags.append(asset)
    parsed: dict[int, Any] = {}

    def parse(asset: Asset) -> Any:
        if asset.id not in parsed:
            with repository.open(asset) as stream:
                body = stream.read(manifests.MAX_MANIFEST_BYTES + 1)
            try:
                parsed[asset.id] = manifests.parse(body, asset.attributes.get("mediaType") or asset.content_type)
            except Exception:  # unreadable: keep it, and everything it might list
                parsed[asset.id] = None
        return parsed[asset.id]

    # Kept: what tags point at, what kept indexes list, what is too young to judge, and referrers of kept.
    kept: set[tuple[str, str]] = set()
    pending = [(_split(t.path)[0], f"sha256:{t.blob_sha256}") for t in tags]  # type: ignore[index]
    pending += [key for key, asset in by_digest.items() if (asset.last_updated or asset.created) > cutoff]
    while True:
        while pending:
            key = pending.pop()
            if key in kept:
                continue
            kept.add(key)
            asset = by_digest.get(key) or _by_sha256(by_digest, key)
            document = parse(asset) if asset is not None else None
            if document is None:
                continue
            pending += [(key[0], child.digest) for child in document.children]
        referrers = [key for key, asset in by_digest.items() if key not in kept
                     and asset.attributes.get("subject") and (key[0], asset.attributes["subject"]) in kept]
        if not referrers:
            break
        pending += referrers
    removed_manifests = 0
    for key, asset in by_digest.items():
        if key in kept or _sha_key(key, asset) in kept:
            continue
        if context is not None:
            context.check_stopped()
            context.progress(f"{repository.name}: removed {removed_manifests:,} unused manifests")
        _delete(repository, asset.path)
        removed_manifests += 1
    needed: set[str] = set()
    for key, asset in by_digest.items():
        if key in kept or _sha_key(key, asset) in kept:
            document = parse(asset)
            if document is None:
                return (f"{repository.name}: removed {removed_manifests} manifests; kept every layer (a kept "
                        f"manifest could not be read)")
            needed.update(blob.digest for blob in document.blobs)
    removed_blobs = freed = 0
    for asset in blobs:
        digest = _split(asset.path)[2]  # type: ignore[index]
        if digest in needed or f"sha256:{asset.blob_sha256}" in needed or \
                (asset.last_updated or asset.created) > cutoff:
            continue
        if context is not None:
            context.check_stopped()
            context.progress(f"{repository.name}: removed {removed_manifests:,} manifests, {removed_blobs:,} layers")
        _delete(repository, asset.path)
        removed_blobs += 1
        freed += asset.size
    return (f"{repository.name}: removed {removed_manifests} unused manifests and {removed_blobs} layer or "
            f"config blobs ({freed:,} bytes; reclaimed by blobstore.compact)")


def _by_sha256(by_digest: dict[tuple[str, str], Asset], key: tuple[str, str]) -> Asset | None:
    """A tag names its manifest by sha256; the manifest may have been pushed by its sha512 digest."""
    image, digest = key
    if not digest.startswith("sha256:"):
        return None
    for (other_image, _), asset in by_digest.items():
        if other_image == image and f"sha256:{asset.blob_sha256}" == digest:
            return asset
    return None


def _sha_key(key: tuple[str, str], asset: Asset) -> tuple[str, str]:
    return (key[0], f"sha256:{asset.blob_sha256}")


def _delete(repository: Repository, path: str) -> None:
    try:
        asset = repository.delete(path)
    except Exception as error:  # noqa: BLE001 - gone meanwhile is fine
        if getattr(error, "status", None) != 404:
            raise
        return
    repository.stowage.audit.record("content", "content.docker-gc", path, repository=repository.name,
                                    attributes={"bytes": asset.size})


def purge_uploads(stowage: App, age_hours: float, context: Any = None) -> str:
    cutoff = time.time() - age_hours * HOUR
    purged = 0
    for upload_id, state in stowage.catalog.list_documents(UPLOADS):
        if state.get("created", 0) > cutoff:
            continue
        if context is not None:
            context.check_stopped()
        try:
            stowage.blob_store(state["blobStore"]).resumable(upload_id).discard()
        except Exception:  # noqa: BLE001 - the store is gone or the bytes already are: forget the session
            pass
        stowage.catalog.delete_document(UPLOADS, upload_id)
        stowage.audit.record("content", "content.upload-purge", f"{state.get('name')} upload {upload_id}",
                             repository=state.get("repository"), attributes={"started": state.get("created")})
        purged += 1
    return f"discarded {purged} incomplete uploads older than {age_hours:g} hours"


def _docker_repositories(stowage: App, name: str | None) -> list[Repository]:
    chosen = [r for r in stowage.repositories() if r.format_name == "docker" and r.type is RepositoryType.HOSTED
              and (not name or name == "*" or r.name == name)]
    if name and name != "*" and not chosen:
        raise BadRequest(f"{name} is not a hosted docker repository")
    return chosen


def gc_task(stowage: App, context: Any) -> str:
    offset = float(context.properties.get("deployOffset", "24"))
    messages = [collect_garbage(repository, offset, context)
                for repository in _docker_repositories(stowage, context.properties.get("repositoryName"))]
    return "; ".join(messages) or "no hosted docker repositories"


def purge_task(stowage: App, context: Any) -> str:
    return purge_uploads(stowage, float(context.properties.get("age", "24")), context)


@hookimpl
def stowage_register_tasks() -> list[Task]:
    return [Task(type="repository.docker.gc", name="Docker - Delete unused manifests and images", run=gc_task,
                 default_schedule=None,
                 properties=[TaskProperty("repositoryName", "Repository (* for every hosted docker repository)",
                                          type="repository", required=True),
                             TaskProperty("deployOffset", "Keep what was pushed in the last hours",
                                          type="integer", default="24")]),
            Task(type="repository.docker.upload-purge", name="Docker - Delete incomplete uploads", run=purge_task,
                 default_schedule="daily",
                 properties=[TaskProperty("age", "Age in hours", type="integer", default="24")])]
