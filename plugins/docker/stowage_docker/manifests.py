"""Manifest media types, schema checks per media type, and what a manifest references.

A pushed manifest is checked as the registry's clients would read it, before anything is stored: the
fields its media type requires (``config`` and ``layers`` for an image manifest, ``manifests`` for an
index), and every descriptor's ``mediaType``, ``digest`` and ``size``. That the referenced blobs and
manifests exist with exactly the declared size is checked by the registry against the repository.
"""

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
#: Content-Type values that say nothing about which manifest kind the body is.
GENERIC_TYPES = ("", "application/json", "application/octet-stream")

DIGEST = re.compile(r"^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$")
TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
NAME = re.compile(r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$")
#: RFC 6838 ``type/subtype`` (the image spec's rule for a descriptor's mediaType).
MEDIA_TYPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$")
#: the largest size a descriptor may declare (the image spec's int64).
MAX_SIZE = 2 ** 63 - 1


def is_digest(reference: str) -> bool:
    return DIGEST.match(reference) is not None


def manifest_invalid(message: str, detail: object = None) -> RegistryError:
    return RegistryError("MANIFEST_INVALID", message, status=400, detail=detail)


@frozen
class Descriptor:
    """A validated descriptor: what a manifest says about one blob or child manifest."""

    media_type: str
    digest: str
    size: int
    #: a foreign (non-distributable, or ``urls``) layer lives elsewhere and need not be in the registry.
    foreign: bool = False


@frozen
class Manifest:
    """A parsed manifest: its media type, what it needs to exist, and its referrers-API fields."""

    media_type: str
    blobs: tuple[Descriptor, ...]
    children: tuple[Descriptor, ...]
    subject: str | None
    artifact_type: str | None
    annotations: dict[str, str] | None

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEXES


def parse(body: bytes, content_type: str | None) -> Manifest:
    """Check ``body`` against the schema of its media type; :func:`manifest_invalid` says what is wrong."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as error:
        reason = "it is nested too deeply" if isinstance(error, RecursionError) else str(error)
        raise manifest_invalid(f"manifest is not valid JSON: {reason}") from None
    if not isinstance(document, dict):
        raise manifest_invalid("manifest must be a JSON object")
    media_type = _media_type(document, (content_type or "").split(";")[0].strip().lower())
    if document.get("schemaVersion") != 2 or isinstance(document.get("schemaVersion"), bool):
        raise manifest_invalid("schemaVersion must be 2")
    blobs: list[Descriptor] = []
    children: list[Descriptor] = []
    if media_type in INDEXES:
        entries = document.get("manifests")
        if not isinstance(entries, list):
            raise manifest_invalid(f"an index ({media_type}) needs a manifests array")
        children = [descriptor(entry, f"manifests[{i}]") for i, entry in enumerate(entries)]
    else:
        if "config" not in document:
            raise manifest_invalid(f"an image manifest ({media_type}) needs a config descriptor")
        blobs.append(descriptor(document["config"], "config"))
        layers = document.get("layers")
        if not isinstance(layers, list):
            raise manifest_invalid(f"an image manifest ({media_type}) needs a layers array")
        blobs += [descriptor(layer, f"layers[{i}]") for i, layer in enumerate(layers)]
    subject = document.get("subject")
    subject_digest = descriptor(subject, "subject").digest if subject is not None else None
    artifact_type = document.get("artifactType")
    if artifact_type is not None and (not isinstance(artifact_type, str) or not MEDIA_TYPE.match(artifact_type)):
        raise manifest_invalid("artifactType must be a media type (type/subtype)")
    if artifact_type is None and media_type == OCI_MANIFEST:
        artifact_type = blobs[0].media_type
    annotations = document.get("annotations")
    if annotations is not None and (not isinstance(annotations, dict)
                                    or not all(isinstance(v, str) for v in annotations.values())):
        raise manifest_invalid("annotations must be an object of strings")
    unique = {(blob.digest, blob.size, blob.foreign): blob for blob in blobs}
    return Manifest(media_type=media_type, blobs=tuple(unique.values()), children=tuple(children),
                    subject=subject_digest, artifact_type=artifact_type, annotations=annotations)


def _media_type(document: dict[str, Any], header: str) -> str:
    """The manifest's media type, from its ``mediaType`` field, else the Content-Type, else its shape."""
    declared = document.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise manifest_invalid("mediaType must be a string")
    version = document.get("schemaVersion")
    if header in DOCKER_SCHEMA1 or declared in DOCKER_SCHEMA1 or (version == 1 and version is not True):
        raise manifest_invalid("Docker image manifest schema 1 is not supported; push schema 2 or OCI")
    if declared and header not in GENERIC_TYPES and declared != header:
        raise manifest_invalid(f"mediaType {declared!r} does not match Content-Type {header!r}")
    media_type = declared or (header if header not in GENERIC_TYPES else "")
    if not media_type:
        # The image spec lets mediaType be absent; the shape tells an index from an image manifest.
        return OCI_INDEX if "manifests" in document else OCI_MANIFEST
    if media_type not in MANIFESTS:
        # The media type is what a GET answers as Content-Type: only the manifest types are ever served,
        # never one an uploader chose (text/html made a manifest a stored XSS in the UI's origin).
        raise manifest_invalid(f"unsupported manifest media type {media_type!r}; push one of "
                               f"{', '.join(MANIFESTS)}")
    return media_type


def descriptor(value: Any, where: str) -> Descriptor:
    """Check one descriptor: a media type, a digest this registry supports and a non-negative int64 size."""
    if not isinstance(value, dict):
        raise manifest_invalid(f"{where} must be a descriptor object")
    media_type, digest, size = value.get("mediaType"), value.get("digest"), value.get("size")
    if not isinstance(media_type, str) or not MEDIA_TYPE.match(media_type):
        raise manifest_invalid(f"{where}.mediaType must be a media type (type/subtype)")
    if not isinstance(digest, str) or not is_digest(digest):
        raise manifest_invalid(f"{where}.digest must be sha256:<64 hex> or sha512:<128 hex>",
                               detail={"digest": digest if isinstance(digest, str) else None})
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_SIZE:
        raise manifest_invalid(f"{where}.size must be a non-negative integer", detail={"digest": digest})
    urls = value.get("urls")
    if urls is not None and (not isinstance(urls, list) or not all(isinstance(url, str) for url in urls)):
        raise manifest_invalid(f"{where}.urls must be an array of strings")
    return Descriptor(media_type=media_type, digest=digest, size=size,
                      foreign=media_type in FOREIGN_LAYERS or bool(urls))


def platform_child(body: bytes, os_name: str = "linux", architecture: str = "amd64") -> str | None:
    """The digest of the index entry for a platform (for clients that do not accept indexes)."""
    try:
        entries = json.loads(body).get("manifests", [])
    except (ValueError, AttributeError, RecursionError):
        return None
    for entry in entries if isinstance(entries, list) else []:
        platform = (entry.get("platform") if isinstance(entry, dict) else None) or {}
        if not isinstance(platform, dict):
            continue
        if platform.get("os") == os_name and platform.get("architecture") == architecture:
            return entry.get("digest")
    return None
