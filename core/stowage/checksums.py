"""Nexus's asset checksums (md5, sha1, sha256, sha512).

New blobs get all four while they are written (``BlobWriter``); the catalog keeps them per blob.
Blobs stored before that (catalog migration ``m013_blob_checksums``) are hashed once, the first time an
answer needs them, or all at once by the ``blobstore.checksums`` task.
"""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING, Iterable

from stowage.blobstore.base import ASSET_DIGESTS, CHUNK_SIZE
from stowage.errors import NotFound
from stowage.models import Asset

if TYPE_CHECKING:
    from stowage.stowage import Stowage

log = logging.getLogger(__name__)


def asset_checksums(stowage: "Stowage", assets: Iterable[Asset]) -> dict[str, dict[str, str]]:
    """sha256 -> {md5, sha1, sha256, sha512} for each asset's blob, backfilling blobs that lack some."""
    assets = list(assets)
    found = stowage.catalog.blob_checksums([asset.blob_sha256 for asset in assets])
    for asset in assets:
        known = found.get(asset.blob_sha256, {})
        if all(name in known for name in ASSET_DIGESTS):
            continue
        computed = _backfill(stowage, asset)
        found[asset.blob_sha256] = {**computed, **known} if computed else {"sha256": asset.blob_sha256, **known}
    return found


def _backfill(stowage: "Stowage", asset: Asset) -> dict[str, str]:
    try:
        store = stowage.repository(asset.repository).blob_store
        handle = store.open(asset.blob_sha256)
    except NotFound:
        return {}
    hashers = {name: hashlib.new(name) for name in ASSET_DIGESTS}
    with handle:
        while chunk := handle.read(CHUNK_SIZE):
            for hasher in hashers.values():
                hasher.update(chunk)
    digests = {name: hasher.hexdigest() for name, hasher in hashers.items()}
    if digests["sha256"] != asset.blob_sha256:
        log.error("blob %s of %s/%s does not match its digest (sha256 %s); checksums not recorded",
                  asset.blob_sha256, asset.repository, asset.path, digests["sha256"])
        return {}
    stowage.catalog.record_blob_checksums(asset.blob_sha256, digests)
    return digests


def backfill_all(stowage: "Stowage") -> str:
    """The ``blobstore.checksums`` task: compute missing checksums of every asset's blob."""
    done = 0
    for repository in stowage.repositories():
        for asset in stowage.catalog.iter_assets(repository.name):
            before = stowage.catalog.blob_checksums([asset.blob_sha256]).get(asset.blob_sha256, {})
            if not all(name in before for name in ASSET_DIGESTS):
                done += bool(_backfill(stowage, asset))
    return f"checksums computed for {done} blob(s)"
