"""Manifest endpoints: ``GET``/``HEAD``/``PUT``/``DELETE /v2/<image>/manifests/<tag or digest>``.

A push is checked whole before anything is stored: the manifest parses, every blob it references is in
the repository with its declared size, every manifest an index lists is there too, and a digest
reference matches the body. Then one catalog transaction records the blobs under the image, the manifest
by digest and the tag; the tag's ``ALLOW_ONCE`` check is in that transaction (:meth:`record_tag`).
"""

from __future__ import annotations

import hashlib
from typing import Any

import falcon

from stowage.plugin import (Accepted, Asset, AssetKind, BlobInfo, Component, NotFound, Repository, WritePolicy,
                            StagedBlob, WritePolicyViolation)
from stowage_docker import manifests
from stowage_docker.blobs import BlobEndpoints
from stowage_docker.errors import RegistryError, digest_invalid, manifest_unknown
from stowage_docker.lookups import (accepted_types, check_reference, find_blob, find_manifest, find_manifest_in,
                                    manifest_path, media_type_of)


class ManifestEndpoints(BlobEndpoints):
    """The manifest responders of :class:`~stowage_docker.registry.Registry` (a push records the blobs
    its manifest references under the image, as a blob push does)."""

    def manifest_get(self, name: str, reference: str) -> None:
        check_reference(reference)
        asset = find_manifest_in(self.repository, name, reference)
        if asset is None:
            raise manifest_unknown(reference)
        media_type = media_type_of(self.repository, asset)
        accepted = accepted_types(self.req)
        if media_type in manifests.INDEXES and accepted and media_type not in accepted and "*/*" not in accepted:
            with self.repository.open(asset) as stream:
                child = manifests.platform_child(stream.read(manifests.MAX_MANIFEST_BYTES))
            child_asset = find_manifest_in(self.repository, name, child) if child else None
            if child_asset is None:
                raise manifest_unknown(f"{reference} is an index and the client accepts none of its forms")
            asset, media_type = child_asset, media_type_of(self.repository, child_asset)
        digest = reference if reference.startswith("sha512:") else f"sha256:{asset.blob_sha256}"
        self.resp.set_header("Docker-Content-Digest", digest)
        self.request.send_asset(asset, content_type=media_type)
        self.resp.set_header("ETag", f'"{digest}"')

    manifest_head = manifest_get

    def manifest_put(self, name: str, reference: str) -> None:
        check_reference(reference)
        # core's write API: the body is staged (hashed as it arrives), checked whole, then the blob is
        # committed and everything recorded in one transaction; a refusal stores nothing
        with self.repository.receive(self.body(), self.req.content_length, extra_digests=("sha512",),
                                     max_bytes=manifests.MAX_MANIFEST_BYTES) as staged:
            accepted = self.check_manifest(staged, name, reference)
            self.repository.commit(staged, accepted)
        self.resp.status = falcon.HTTP_201
        self.resp.set_header("Location", self.target.url(name, f"manifests/{accepted.attributes['digest']}"))
        self.resp.set_header("Docker-Content-Digest", accepted.attributes["digest"])
        if accepted.attributes["subject"]:
            self.resp.set_header("OCI-Subject", accepted.attributes["subject"])
        self.resp.content_length = 0

    def check_manifest(self, staged: StagedBlob, name: str, reference: str) -> Accepted:
        """Every check of a pushed manifest, before anything is stored: it parses, what it references is
        here with its declared size, a digest reference matches, and a tag may move. Accepted: the
        manifest by digest (content-addressed, so pushing it again is no update), recorded with the blobs
        under the image and the tag in the same transaction."""
        with staged.open() as stream:
            body = stream.read(manifests.MAX_MANIFEST_BYTES + 1)
        parsed = manifests.parse(body, self.req.get_header("Content-Type"))
        blobs = self.referenced_blobs(name, parsed)
        self.check_children(name, parsed)
        digest = f"sha256:{staged.sha256}"
        if manifests.is_digest(reference):
            algorithm, _, value = reference.partition(":")
            actual = hashlib.new(algorithm, body).hexdigest()
            if actual != value:
                raise digest_invalid(f"the manifest's {algorithm} digest is {actual}, not {value}")
            digest = reference
        tag_path = None if manifests.is_digest(reference) else manifest_path(name, reference)
        # Nexus's storage.latestPolicy: under ALLOW_ONCE, the tag "latest" may still be moved.
        latest_moves = reference == "latest" and bool(self.repository.config.storage.latest_policy)
        if tag_path and self.repository.write_policy is WritePolicy.ALLOW_ONCE and not latest_moves:
            # Early refusal so that an ordinary re-push stores no blob; record_tag is the guard that holds
            # under concurrent pushes.
            current = self.catalog.get_asset(self.repository.name, tag_path)
            if current is not None and current.blob_sha256 != staged.sha256:
                raise tag_exists(self.repository, name, reference)
        attributes = {"mediaType": parsed.media_type, "subject": parsed.subject,
                      "artifactType": parsed.artifact_type, "annotations": parsed.annotations, "digest": digest}

        def record_image(manifest: Asset) -> None:
            for needed, asset in blobs:
                self.record_blob(name, needed, BlobInfo(sha256=asset.blob_sha256, size=asset.size))
            if tag_path:
                self.record_tag(name, reference, tag_path, BlobInfo(sha256=manifest.blob_sha256, size=manifest.size),
                                parsed.media_type, attributes, may_move=latest_moves)

        return Accepted(path=manifest_path(name, digest), content_type=parsed.media_type, attributes=attributes,
                        artifact_name=name, replace=True, then=record_image)

    def record_tag(self, name: str, reference: str, tag_path: str, blob: BlobInfo, media_type: str,
                   attributes: dict[str, Any], *, may_move: bool = False) -> None:
        """Point the tag at the manifest under the repository's write policy, in the caller's transaction.

        The policy check and the write are one catalog transaction (serialised across worker processes), so
        of two concurrent pushes of one ALLOW_ONCE tag exactly one wins. Re-pushing the manifest the tag
        already points at is not an update: it is accepted (docker retries pushes).

        :param may_move: the tag may be re-pointed whatever the write policy (``latest`` under latestPolicy).
        """
        current = self.catalog.get_asset(self.repository.name, tag_path)
        unchanged = current is not None and current.blob_sha256 == blob.sha256
        try:
            self.repository.record(tag_path, blob, content_type=media_type, kind=AssetKind.METADATA,
                                   attributes=attributes, replace=unchanged or may_move,
                                   component=Component(repository=self.repository.name, format="docker",
                                                       name=name, version=reference))
        except WritePolicyViolation:
            raise tag_exists(self.repository, name, reference) from None

    def referenced_blobs(self, name: str, parsed: manifests.Manifest) -> list[tuple[str, Asset]]:
        """The repository's blob for each descriptor of an image manifest, which must have its declared size."""
        found = []
        for needed in parsed.blobs:
            if needed.foreign:
                continue  # foreign layers live elsewhere
            asset = find_blob(self.repository, name, needed.digest, remote=False)
            if asset is None:
                raise RegistryError("MANIFEST_BLOB_UNKNOWN", f"blob unknown to registry: {needed.digest}",
                                    status=400, detail={"digest": needed.digest})
            if asset.size != needed.size:
                raise manifests.manifest_invalid(
                    f"the manifest declares {needed.size} bytes for blob {needed.digest}, which has {asset.size}",
                    detail={"digest": needed.digest, "declared": needed.size, "actual": asset.size})
            found.append((needed.digest, asset))
        return found

    def check_children(self, name: str, parsed: manifests.Manifest) -> None:
        """Each manifest an index lists is in the repository with its declared size."""
        for child in parsed.children:
            asset = find_manifest(self.repository, name, child.digest)
            if asset is None:
                raise RegistryError("MANIFEST_UNKNOWN", f"manifest unknown: {child.digest} (referenced by the "
                                    f"index; push it to {name} first)", status=400, detail={"digest": child.digest})
            if asset.size != child.size:
                raise manifests.manifest_invalid(
                    f"the index declares {child.size} bytes for manifest {child.digest}, which has {asset.size}",
                    detail={"digest": child.digest, "declared": child.size, "actual": asset.size})

    def manifest_delete(self, name: str, reference: str) -> None:
        check_reference(reference)
        if manifests.is_digest(reference):
            asset = self.catalog.get_asset(self.repository.name, manifest_path(name, reference))
            if asset is None:
                raise manifest_unknown(reference)
            with self.catalog.transaction():
                for tag in self.catalog.iter_assets(self.repository.name, prefix=f"v2/{name}/manifests/"):
                    if tag.blob_sha256 == asset.blob_sha256 and not manifests.is_digest(tag.path.rsplit("/", 1)[1]):
                        self.repository.delete(tag.path)
                self.repository.delete(asset.path)
        else:
            try:
                self.repository.delete(manifest_path(name, reference))
            except NotFound:
                raise manifest_unknown(reference) from None
        self.resp.status = falcon.HTTP_202
        self.resp.content_length = 0


def tag_exists(repository: Repository, name: str, reference: str) -> RegistryError:
    return RegistryError("DENIED", f"Repository does not allow updating assets: {repository.name} "
                         f"(tag {name}:{reference} exists; writePolicy ALLOW_ONCE)", status=403)
