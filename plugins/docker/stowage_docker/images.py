"""What the web UI shows for a Docker image (a component is an image name and one tag): the manifest's
digest, the image's size (config + layers; for an index, of every platform's image) and an index's
platforms. Read from the catalog and stored manifests only: never a request to a proxy's remote."""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

from stowage.plugin import Asset, Component, Repository

#: an index lists at most this many platforms in the UI (and sums their sizes).
MAX_PLATFORMS = 32
_MANIFEST_LIMIT = 4 * 1024 * 1024


def _read_json(repository: Repository, asset: Asset) -> dict[str, Any] | None:
    if asset.size > _MANIFEST_LIMIT:
        return None
    try:
        with repository.open(asset) as handle:
            document = json.loads(handle.read(_MANIFEST_LIMIT + 1))
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def _image_size(document: Mapping[str, Any]) -> int:
    parts = [document.get("config") or {}, *(document.get("layers") or ())]
    return sum(int(p.get("size") or 0) for p in parts if isinstance(p, dict))


def _platform(entry: Mapping[str, Any]) -> str:
    platform = entry.get("platform") or {}
    text = "/".join(str(platform[k]) for k in ("os", "architecture", "variant") if platform.get(k))
    return text or "unknown"


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover


def image_details(repository: Repository, component: Component, assets: Sequence[Asset]) -> dict[str, str]:
    """``Format.component_details`` of docker: Digest, Size, Platforms (an index's)."""
    tag = next((a for a in assets if "/manifests/" in a.path), None)
    if tag is None:
        return {}
    details = {"Digest": str(tag.attributes.get("digest") or f"sha256:{tag.blob_sha256}")}
    document = _read_json(repository, tag)
    if document is None:
        return details
    children = document.get("manifests")
    if isinstance(children, list):
        entries = [c for c in children if isinstance(c, dict)][:MAX_PLATFORMS]
        images = [e for e in entries if _platform(e) != "unknown/unknown"]
        size = 0
        for entry in images:
            child = repository.stowage.catalog.get_asset(
                repository.name, f"v2/{component.name}/manifests/{entry.get('digest')}")
            child_document = _read_json(repository, child) if child is not None else None
            size += _image_size(child_document) if child_document else 0
        details["Platforms"] = ", ".join(_platform(e) for e in images) or "none"
        details["Size"] = _human(size)
    else:
        details["Size"] = _human(_image_size(document))
    return details
