"""Blob endpoints: ``GET``/``HEAD``/``DELETE /v2/<image>/blobs/<digest>``, and uploads (``POST`` to start or
to push in one request, cross-repository mounts, ``PATCH`` chunks, ``PUT`` to finish, ``GET`` for progress,
``DELETE`` to cancel).

Core has checked the request before any of this runs (:mod:`stowage_docker.endpoints`): the caller may
write, the repository is hosted, online and not read-only, and the image name passes its name policy.
An upload's state is a catalog document and its bytes are the blob store's resumable upload, so any worker
or node can continue it.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import IO, Any

import falcon

from stowage.plugin import Action, Asset, BlobInfo, NotFound, RepoRequest, Repository, member_leaves
from stowage_docker import manifests, tokens
from stowage_docker.access import Target
from stowage_docker.errors import RegistryError, blob_unknown, digest_invalid, upload_unknown
from stowage_docker.lookups import (blob_path, check_digest, digest_names, expected_digest, find_blob,
                                    find_blob_in)

UPLOADS = "docker.uploads"


class BlobEndpoints:
    """The blob and upload responders of :class:`~stowage_docker.registry.Registry`."""

    request: RepoRequest
    target: Target
    repository: Repository
    req: falcon.Request
    resp: falcon.Response
    stowage: Any
    catalog: Any

    # -- blobs -----------------------------------------------------------------------------------------------
    def blob_get(self, name: str, digest: str) -> None:
        check_digest(digest)
        # A GET of a proxy miss streams while it downloads; a HEAD waits for the size the client wants.
        asset = find_blob_in(self.repository, name, digest, stream=self.req.method == "GET")
        if asset is None:
            raise blob_unknown(digest)
        self.resp.set_header("Docker-Content-Digest", digest)
        self.request.send_asset(asset, content_type="application/octet-stream")

    blob_head = blob_get

    def blob_delete(self, name: str, digest: str) -> None:
        check_digest(digest)
        try:
            self.repository.delete(blob_path(name, digest))
        except NotFound:
            raise blob_unknown(digest) from None
        self.resp.status = falcon.HTTP_202
        self.resp.content_length = 0

    # -- uploads ---------------------------------------------------------------------------------------------
    def uploads_post(self, name: str) -> None:
        mount, source = self.req.get_param("mount"), self.req.get_param("from")
        if mount and manifests.is_digest(mount):
            asset = self.mountable(name, mount, source)
            if asset is not None:
                self.record_blob(name, mount, BlobInfo(sha256=asset.blob_sha256, size=asset.size))
                return self.blob_created(name, mount)
        digest = self.req.get_param("digest")
        if digest is not None:
            check_digest(digest)
            blob = self.repository.blob_store.store(self.body(), length=self.req.content_length,
                                                    extra_digests=digest_names(digest),
                                                    expected=expected_digest(digest))
            self.record_blob(name, digest, blob)
            return self.blob_created(name, digest)
        upload_id = uuid.uuid4().hex
        self.catalog.put_document(UPLOADS, upload_id, {
            "repository": self.repository.name, "name": name, "blobStore": self.repository.blob_store.name,
            "created": time.time(), "user": self.request.user.user_id if self.request.user else None})
        size = self.repository.blob_store.resumable(upload_id).append(self.body(), self.req.content_length or 0)
        self.upload_headers(name, upload_id, size)
        self.resp.status = falcon.HTTP_202

    def mountable(self, name: str, digest: str, source: str | None) -> Asset | None:
        """A blob this repository (any image) already holds, or that ``from`` names in a repository the
        caller may read (path routing: ``<repo>/<image>``)."""
        found = find_blob(self.repository, name, digest, remote=False)
        if found is not None or not source:
            return found
        repo_name, _, image = source.partition("/")
        if self.target.name_prefix and image:
            try:
                other = self.stowage.repository(repo_name)
            except NotFound:
                return None
            if other.format_name != "docker" or not self.stowage.permits(
                    None if tokens.is_anonymous(self.request.user) else self.request.user, other, Action.READ):
                return None
            for leaf in member_leaves(other):
                asset = find_blob(leaf, image, digest, remote=False)
                if asset is not None:
                    return asset
        return None

    def record_blob(self, name: str, digest: str, blob: BlobInfo) -> Asset:
        """Record a pushed blob under the image. The check and the write are one transaction: a blob path is
        content-addressed, so a concurrent push of the same blob finds it recorded and is not an update."""
        path = blob_path(name, digest)
        with self.catalog.transaction():
            existing = self.catalog.get_asset(self.repository.name, path)
            if existing is not None and existing.blob_sha256 == blob.sha256:
                return existing
            return self.repository.record(path, blob, content_type="application/octet-stream")

    def blob_created(self, name: str, digest: str) -> None:
        self.resp.status = falcon.HTTP_201
        self.resp.set_header("Location", self.target.url(name, f"blobs/{digest}"))
        self.resp.set_header("Docker-Content-Digest", digest)
        self.resp.content_length = 0

    def body(self) -> IO[bytes]:
        if self.req.content_length is not None:
            return self.req.bounded_stream
        return self.req.stream  # chunked without a length: waitress ends the stream at the last chunk

    def session(self, name: str, upload_id: str) -> Any:
        state = self.catalog.get_document(UPLOADS, upload_id) if re.match(r"^[a-f0-9]{32}$", upload_id) else None
        if state is None or state["repository"] != self.repository.name or state["name"] != name:
            raise upload_unknown(upload_id)
        upload = self.stowage.blob_store(state["blobStore"]).resumable(upload_id)
        if upload.size() is None:
            self.catalog.delete_document(UPLOADS, upload_id)
            raise upload_unknown(upload_id)
        return upload

    def upload_headers(self, name: str, upload_id: str, size: int) -> None:
        self.resp.set_header("Location", self.target.url(name, f"blobs/uploads/{upload_id}"))
        self.resp.set_header("Docker-Upload-UUID", upload_id)
        self.resp.set_header("Range", f"0-{max(size - 1, 0)}")
        self.resp.content_length = 0

    def upload_get(self, name: str, upload: str) -> None:
        session = self.session(name, upload)
        self.upload_headers(name, upload, session.size())
        self.resp.status = falcon.HTTP_204

    def upload_patch(self, name: str, upload: str) -> None:
        session = self.session(name, upload)
        current = session.size()
        content_range = self.req.get_header("Content-Range")
        if content_range:
            match = re.match(r"^(?:bytes[ =])?(\d+)-(\d+)(?:/\d+|/\*)?$", content_range.strip())
            if match is None or int(match.group(1)) != current:
                self.upload_headers(name, upload, current)
                raise RegistryError("BLOB_UPLOAD_INVALID",
                                    f"chunk starts at {match.group(1) if match else content_range!r}; the upload "
                                    f"has {current} bytes", status=416, headers={
                                        "Location": self.target.url(name, f"blobs/uploads/{upload}"),
                                        "Range": f"0-{max(current - 1, 0)}", "Docker-Upload-UUID": upload})
        size = session.append(self.body(), self.req.content_length)
        self.upload_headers(name, upload, size)
        self.resp.status = falcon.HTTP_202

    def upload_put(self, name: str, upload: str) -> None:
        digest = self.req.get_param("digest")
        if not digest:
            raise digest_invalid("PUT of an upload needs ?digest=")
        check_digest(digest)
        session = self.session(name, upload)
        if self.req.content_length or self.req.content_length is None:
            session.append(self.body(), self.req.content_length)
        try:
            blob = session.commit(extra_digests=digest_names(digest), expected=expected_digest(digest))
        finally:
            self.catalog.delete_document(UPLOADS, upload)
        self.record_blob(name, digest, blob)
        self.blob_created(name, digest)

    def upload_delete(self, name: str, upload: str) -> None:
        session = self.session(name, upload)
        session.discard()
        self.catalog.delete_document(UPLOADS, upload)
        self.resp.status = falcon.HTTP_204
        self.resp.content_length = 0
