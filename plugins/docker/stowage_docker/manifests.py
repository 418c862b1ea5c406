"""Manifest media types and what a manifest references (for push checks and the referrers API)."""

from __future__ import annotations

import json
import re
from typing import Any

from attrs import frozen

from stowage_docker.errors import RegistryError

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v1+prettyjws")
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
INDEXES = (DOCKER_LIST, OCI_INDEX)
MANIFESTS = (DOCKER_MANIFEST, OCI_MANIFEST, DOCKER_LIST, OCI_INDEX)
#: what a proxy asks its remote for (schema 1 is not served).
ACCEPT = ", ".join(MANIFESTS)
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
FOREIGN_LAYERS = ("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
                  "application/vnd.oci.image.layer.nondistributable.v1.tar",
                  "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
                  "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd")

DIGEST = re.compile(r"^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$")
TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
NAME = re.compile(r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$")


def is_digest(reference: str) -> bool:
    return DIGEST.match(reference) is not None


def manifest_invalid(message: str) -> RegistryError:
    return RegistryError("MANIFEST_INVALID", message, status=400)


@frozen
class Manifest:
    """A parsed manifest: its media type, what it needs to exist, and its referrers-API fields."""

    media_type: str
    blobs: tuple[str, ...]
    children: tuple[str, ...]
    subject: str | None
    artifact_type: str | None
    annotations: dict[str, str] | None

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEXES


def parse(body: bytes, content_type: str | None) -> Manifest:
    try:
        document = json.loads(body)
    except ValueError as error:
        raise manifest_invalid(f"manifest is not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise manifest_invalid("manifest must be a JSON object")
    declared = document.get("mediaType")
    header = (content_type or "").split(";")[0].strip()
    media_type = declared or header
    if not media_type or header in DOCKER_SCHEMA1 or declared in DOCKER_SCHEMA1:
        if document.get("schemaVersion") == 1:
            raise manifest_invalid("Docker image manifest schema 1 is not supported; push schema 2 or OCI")
        media_type = OCI_INDEX if "manifests" in document else OCI_MANIFEST
    if declared and header and header not in ("application/json", "application/octet-stream") and declared != header:
        raise manifest_invalid(f"mediaType {declared!r} does not match Content-Type {header!r}")
    if media_type not in MANIFESTS:
        # The media type is what a GET answers as Content-Type: only the manifest types are ever served,
        # never one an uploader chose (text/html made a manifest a stored XSS in the UI's origin).
        raise manifest_invalid(f"unsupported manifest media type {media_type!r}; use one of "
                               f"{', '.join(MANIFESTS)}")
    if document.get("schemaVersion") != 2:
        raise manifest_invalid("schemaVersion must be 2")

    def descriptor(value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict) or not isinstance(value.get("digest"), str) \
                or not is_digest(value["digest"]) or not isinstance(value.get("size", 0), int):
            raise manifest_invalid(f"{where} is not a valid descriptor")
        return value

    blobs: list[str] = []
    children: list[str] = []
    if media_type in INDEXES or "manifests" in document:
        entries = document.get("manifests")
        if not isinstance(entries, list):
            raise manifest_invalid("an index needs a manifests array")
        children = [descriptor(entry, f"manifests[{i}]")["digest"] for i, entry in enumerate(entries)]
    else:
        if "config" in document:
            blobs.append(descriptor(document["config"], "config")["digest"])
        layers = document.get("layers", [])
        if not isinstance(layers, list):
            raise manifest_invalid("layers must be an array")
        for i, layer in enumerate(layers):
            layer = descriptor(layer, f"layers[{i}]")
            if layer.get("mediaType") in FOREIGN_LAYERS or layer.get("urls"):
                continue  # foreign layers live elsewhere
            blobs.append(layer["digest"])
    subject = document.get("subject")
    subject_digest = descriptor(subject, "subject")["digest"] if subject is not None else None
    artifact_type = document.get("artifactType")
    if artifact_type is None and media_type == OCI_MANIFEST:
        artifact_type = (document.get("config") or {}).get("mediaType")
    annotations = document.get("annotations") if isinstance(document.get("annotations"), dict) else None
    return Manifest(media_type=media_type, blobs=tuple(dict.fromkeys(blobs)), children=tuple(children),
                    subject=subject_digest, artifact_type=artifact_type, annotations=annotations)


def platform_child(body: bytes, os_name: str = "linux", architecture: str = "amd64") -> str | None:
    """The digest of the index entry for a platform (for clients that do not accept indexes)."""
    try:
        entries = json.loads(body).get("manifests", [])
    except (ValueError, AttributeError):
        return None
    for entry in entries:
        platform = entry.get("platform") or {}
        if platform.get("os") == os_name and platform.get("architecture") == architecture:
            return entry.get("digest")
    return None
