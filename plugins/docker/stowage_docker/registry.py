"""The distribution API (``/v2/``) for one repository: blobs, uploads, manifests, tags, referrers.

A :class:`Target` says how the client reached the repository (its own port, path routing on the main
port, or ``/repository/<repo>/v2``) so every ``Location``, ``Link`` and challenge points back the same way.

Paths in a repository's catalog: ``v2/<image>/blobs/<digest>``, ``v2/<image>/manifests/<digest>`` and
``v2/<image>/manifests/<tag>`` (the tag's asset shares the manifest's blob). Blobs are content-addressed
in core, so a blob a repository already holds is never uploaded or stored twice.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import time
import uuid
from typing import IO, Any, Iterable, Iterator
from urllib.parse import parse_qs, quote

import falcon
from attrs import frozen

from stowage.plugin import (Action, Asset, AssetKind, BlobInfo, Component, InFlightAsset, NotFound, RepoRequest,
                            Repository, RepositoryType, StowageError, Unauthorized, UpstreamBlocked, UpstreamError,
                            WritePolicy, authenticate, sign_in)
from stowage_docker import manifests, tokens
from stowage_docker.errors import (RegistryError, blob_unknown, digest_invalid, manifest_unknown, name_unknown,
                                   unsupported, upload_unknown)

UPLOADS = "docker.uploads"
API_VERSION_HEADER = ("Docker-Distribution-API-Version", "registry/2.0")

_ROUTES = [
    ("uploads", re.compile(r"^(?P<name>.+)/blobs/uploads/?$")),
    ("upload", re.compile(r"^(?P<name>.+)/blobs/uploads/(?P<upload>[^/]+)$")),
    ("blob", re.compile(r"^(?P<name>.+)/blobs/(?P<digest>[^/]+)$")),
    ("manifest", re.compile(r"^(?P<name>.+)/manifests/(?P<reference>[^/]+)$")),
    ("tags", re.compile(r"^(?P<name>.+)/tags/list$")),
    ("referrers", re.compile(r"^(?P<name>.+)/referrers/(?P<digest>[^/]+)$")),
]


@frozen
class Target:
    """How the client addresses the registry.

    :param root: the client's URL of ``/v2`` for this repository (absolute), e.g.
        ``http://host:8443/v2``, ``http://host:8081/v2/docker-hosted`` or
        ``http://host:8081/repository/docker-hosted/v2``.
    :param token_url: where the client gets bearer tokens.
    :param name_prefix: what the client puts before image names (``docker-hosted/`` in path routing).
    """

    root: str
    token_url: str
    name_prefix: str = ""

    def url(self, name: str, rest: str) -> str:
        return f"{self.root}/{name}/{rest}"

    def path(self, name: str, rest: str) -> str:
        """The same URL without scheme and host (for ``Link`` headers, as the reference registry sends)."""
        root = self.root.split("://", 1)[-1]
        return "/" + root.partition("/")[2] + f"/{name}/{rest}"


def settings_of(repository: Repository) -> Any:
    from stowage_docker.plugin import DockerSettings

    return repository.config.section("docker") or DockerSettings()


# -- authentication ----------------------------------------------------------------------------------------
def challenge(repository: Repository | None, target: Target, name: str | None = None,
              actions: str = "pull") -> str:
    if repository is not None and settings_of(repository).force_basic_auth:
        return 'Basic realm="Stowage"'
    value = f'Bearer realm="{target.token_url}",service="{tokens.SERVICE}"'
    if name is not None:
        value += f',scope="repository:{target.name_prefix}{name}:{actions}"'
    return value


def check_access(request: RepoRequest, target: Target, name: str | None, action: Action) -> None:
    """The per-request permission check (tokens stand for users, not scopes): 401 with a challenge
    for anonymous callers, DENIED for users who lack the privilege."""
    user = None if tokens.is_anonymous(request.user) else request.user
    repository = request.repository
    allowed = request.stowage.plugins.hook.stowage_permission(user=user, repository=repository, action=action)
    if allowed:
        return
    # A content-selector privilege covers what its selector matches, on Nexus's path of the request
    # (``/v2/<image>/manifests/<tag>``, ``/v2/<image>/blobs/<digest>``): ``path =^ "/v2/cwiq/"``.
    access = request.stowage.security.content_access(user, repository.format_name, repository.name, action)
    if access is not None and access.permits("/" + request.path):
        return
    actions = "pull" if action is Action.READ else "pull,push"
    if user is None:
        raise RegistryError("UNAUTHORIZED", "authentication required", status=401,
                            headers={"WWW-Authenticate": challenge(repository, target, name, actions)})
    raise RegistryError("DENIED", f"user {user.user_id} may not {action.value} repository {repository.name}",
                        status=403)


def anonymous_challenge(target: Target, v2path: str, method: str) -> str:
    """The challenge :meth:`Registry.serve` would send an anonymous caller for ``v2path`` (for answering a
    missing repository exactly like an existing one)."""
    for _, pattern in _ROUTES:
        match = pattern.match(v2path)
        if match is not None and manifests.NAME.match(match.group("name")):
            return challenge(None, target, match.group("name"),
                             "pull" if method in ("GET", "HEAD") else "pull,push")
    return challenge(None, target)


def authenticate_request(req: falcon.Request, stowage: Any, repository: Repository | None, target: Target) -> Any:
    return authenticate(req, stowage, challenge=challenge(repository, target), audience=tokens.AUDIENCE)


def serve_base(request_user: Any, resp: falcon.Response, repository: Repository | None, target: Target) -> None:
    """``GET /v2/``: 200 for an authenticated caller, 401 with the challenge otherwise (clients send their
    credentials only after a challenge, so even anonymous-readable registries challenge here)."""
    if request_user is None:
        raise RegistryError("UNAUTHORIZED", "authentication required", status=401,
                            headers={"WWW-Authenticate": challenge(repository, target)})
    resp.content_type = "application/json"
    resp.data = b"{}"


def serve_token(req: falcon.Request, resp: falcon.Response, stowage: Any) -> None:
    """The token service: basic credentials (or a password grant) -> a token for that user; no
    credentials -> an anonymous token when anonymous access is on."""
    user = None
    if req.method == "POST":
        form = parse_qs(req.bounded_stream.read(64 * 1024).decode("utf-8", "replace"))
        grant = (form.get("grant_type") or [""])[0]
        if grant == "password":
            try:
                user = sign_in(req, stowage, (form.get("username") or [""])[0], (form.get("password") or [""])[0],
                               audience=tokens.AUDIENCE)
            except Unauthorized as error:
                raise RegistryError("UNAUTHORIZED", error.message, status=401) from None
        elif grant == "refresh_token":
            user = tokens.verify(stowage, (form.get("refresh_token") or [""])[0], use=tokens.REFRESH)
            if user is None:
                raise RegistryError("UNAUTHORIZED", "invalid or expired refresh token", status=401)
    if user is None:
        try:
            user = authenticate(req, stowage, audience=tokens.AUDIENCE)
        except Unauthorized:
            raise RegistryError("UNAUTHORIZED", "invalid credentials", status=401,
                                headers={"WWW-Authenticate": 'Basic realm="Stowage"'}) from None
    if user is None or tokens.is_anonymous(user):
        if not stowage.security.anonymous_access:
            raise RegistryError("UNAUTHORIZED", "authentication required", status=401,
                                headers={"WWW-Authenticate": 'Basic realm="Stowage"'})
        user = None
    token, ttl = tokens.issue(stowage, user)
    body: dict[str, Any] = {"token": token, "access_token": token, "expires_in": ttl,
                            "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if user is not None and req.get_param("offline_token") == "true":
        body["refresh_token"] = tokens.issue(stowage, user, use=tokens.REFRESH)[0]
    resp.content_type = "application/json"
    resp.data = json.dumps(body).encode()


# -- the API ---------------------------------------------------------------------------------------------
class Registry:
    """Serves ``/v2/<v2path>`` for one request against one repository."""

    def __init__(self, request: RepoRequest, target: Target):
        self.request = request
        self.target = target
        self.repository = request.repository
        self.stowage = request.stowage
        self.catalog = request.stowage.catalog

    # -- dispatch ------------------------------------------------------------------------------------------
    def serve(self, v2path: str) -> None:
        for kind, pattern in _ROUTES:
            match = pattern.match(v2path)
            if match is None:
                continue
            name = match.group("name")
            if not manifests.NAME.match(name):
                raise RegistryError("NAME_INVALID", f"invalid repository name {name!r}", status=400)
            method = self.request.method
            check_access(self.request, self.target, name, Action.of_method(method))
            responder = getattr(self, f"{kind}_{method.lower()}", None)
            if responder is None:
                raise unsupported(f"{method} is not supported on {kind} endpoints")
            responder(name, **{k: v for k, v in match.groupdict().items() if k != "name"})
            return
        raise RegistryError("NOT_FOUND", f"no registry endpoint at /v2/{v2path}", status=404)

    @property
    def resp(self) -> falcon.Response:
        return self.request.resp

    @property
    def req(self) -> falcon.Request:
        return self.request.req

    # -- lookups (hosted: catalog; proxy: the engine; group: members in order) ---------------------------
    def members(self, repository: Repository) -> list[Repository]:
        if repository.type is RepositoryType.GROUP:
            return list(repository.resolver.members())  # type: ignore[attr-defined]
        return [repository]

    def leaves(self, repository: Repository | None = None) -> Iterator[Repository]:
        """The hosted and proxy repositories behind ``repository``, in group order."""
        for member in self.members(repository or self.repository):
            if member.type is RepositoryType.GROUP:
                yield from self.leaves(member)
            else:
                yield member

    def name_leaves(self, name: str) -> list[Repository]:
        """The leaves that may answer for image ``name``: core's group guard (a name a hosted member
        holds is not extended by proxy members unless ``group.allowProxyNames`` frees it)."""
        if self.repository.type is not RepositoryType.GROUP:
            return list(self.leaves())
        leaves: list[Repository] = []
        for member in self.repository.resolver.serving_members(name):  # type: ignore[attr-defined]
            leaves.extend(self.leaves(member) if member.type is RepositoryType.GROUP else [member])
        return leaves

    def find_blob(self, name: str, digest: str, *, remote: bool = True,
                  stream: bool = False) -> Asset | InFlightAsset | None:
        for leaf in self.leaves():
            try:
                asset = find_blob(leaf, name, digest, remote=remote, stream=stream)
            except (NotFound, UpstreamError):
                continue
            if asset is not None:
                return asset
        return None

    def find_manifest(self, name: str, reference: str) -> Asset | None:
        failures: list[StowageError] = []
        blocked: list[str] = []
        for leaf in self.name_leaves(name):
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
            known = any(self.catalog.list_assets(leaf.name, prefix=f"v2/{name}/manifests/", limit=1).items
                        for leaf in self.leaves())
            error = manifest_unknown(reference) if known else name_unknown(name)
            raise RegistryError(error.code, f"{error.message}: no member has it, and the remote of proxy "
                                f"{', '.join(blocked)} is blocked with nothing cached", status=404, detail=error.detail)
        if failures:
            raise failures[0]
        return None

    # -- blobs -----------------------------------------------------------------------------------------------
    def blob_get(self, name: str, digest: str) -> None:
        check_digest(digest)
        # A GET of a proxy miss streams while it downloads; a HEAD waits for the size the client wants.
        asset = self.find_blob(name, digest, stream=self.req.method == "GET")
        if asset is None:
            raise blob_unknown(digest)
        self.resp.set_header("Docker-Content-Digest", digest)
        self.request.send_asset(asset, content_type="application/octet-stream")

    blob_head = blob_get

    def blob_delete(self, name: str, digest: str) -> None:
        check_digest(digest)
        self.require_hosted("delete blobs")
        try:
            self.repository.delete(blob_path(name, digest))
        except NotFound:
            raise blob_unknown(digest) from None
        self.resp.status = falcon.HTTP_202
        self.resp.content_length = 0

    # -- uploads ---------------------------------------------------------------------------------------------
    def require_hosted(self, what: str) -> None:
        repository = self.repository
        if repository.type is not RepositoryType.HOSTED:
            raise unsupported(f"repository {repository.name} is a {repository.type.value} repository and cannot "
                              f"{what}; push to a hosted repository (e.g. its own docker port)")
        if not repository.config.online:
            raise RegistryError("UNAVAILABLE", f"repository {repository.name} is offline", status=503)

    def require_push(self, name: str) -> None:
        self.require_hosted("accept pushes")
        if self.repository.write_policy is WritePolicy.DENY:
            raise RegistryError("DENIED", f"Repository is read only: {self.repository.name}", status=403)
        self.repository.check_name_policy(name)

    def uploads_post(self, name: str) -> None:
        self.require_push(name)
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
            if other.format_name != "docker" or not self.stowage.plugins.hook.stowage_permission(
                    user=None if tokens.is_anonymous(self.request.user) else self.request.user,
                    repository=other, action=Action.READ):
                return None
            for leaf in self.leaves(other):
                asset = find_blob(leaf, image, digest, remote=False)
                if asset is not None:
                    return asset
        return None

    def record_blob(self, name: str, digest: str, blob: BlobInfo) -> Asset:
        path = blob_path(name, digest)
        existing = self.catalog.get_asset(self.repository.name, path)
        if existing is not None and existing.blob_sha256 == blob.sha256:
            return existing
        # Blob paths are content-addressed: re-recording one never changes what it serves.
        return self.repository.record(path, blob, content_type="application/octet-stream", server_managed=True)

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
        self.require_push(name)
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
        self.require_push(name)
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

    # -- manifests ------------------------------------------------------------------------------------------
    def manifest_get(self, name: str, reference: str) -> None:
        check_reference(reference)
        asset = self.find_manifest(name, reference)
        if asset is None:
            raise manifest_unknown(reference)
        media_type = media_type_of(self.repository, asset)
        accepted = accepted_types(self.req)
        if media_type in manifests.INDEXES and accepted and media_type not in accepted and "*/*" not in accepted:
            with self.repository.open(asset) as stream:
                child = manifests.platform_child(stream.read(manifests.MAX_MANIFEST_BYTES))
            child_asset = self.find_manifest(name, child) if child else None
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
        self.require_push(name)
        length = self.req.content_length
        if length is not None and length > manifests.MAX_MANIFEST_BYTES:
            raise RegistryError("SIZE_INVALID", "manifests are limited to 4 MiB", status=413)
        body = self.body().read(manifests.MAX_MANIFEST_BYTES + 1)
        if len(body) > manifests.MAX_MANIFEST_BYTES:
            raise RegistryError("SIZE_INVALID", "manifests are limited to 4 MiB", status=413)
        parsed = manifests.parse(body, self.req.get_header("Content-Type"))
        blobs = self.referenced_blobs(name, parsed)  # every check before anything is stored
        self.check_children(name, parsed)
        sha256 = hashlib.sha256(body).hexdigest()
        digest = f"sha256:{sha256}"
        if manifests.is_digest(reference):
            algorithm, _, value = reference.partition(":")
            actual = hashlib.new(algorithm, body).hexdigest()
            if actual != value:
                raise digest_invalid(f"the manifest's {algorithm} digest is {actual}, not {value}")
            digest = reference
        tag_path = None if manifests.is_digest(reference) else manifest_path(name, reference)
        if tag_path and self.repository.write_policy is WritePolicy.ALLOW_ONCE:
            current = self.catalog.get_asset(self.repository.name, tag_path)
            if current is not None and current.blob_sha256 != sha256:
                raise RegistryError("DENIED", f"Repository does not allow updating assets: {self.repository.name} "
                                    f"(tag {name}:{reference} exists; writePolicy ALLOW_ONCE)", status=403)
        attributes = {"mediaType": parsed.media_type, "subject": parsed.subject,
                      "artifactType": parsed.artifact_type, "annotations": parsed.annotations,
                      "digest": digest, "uploader": self.request.user.user_id if self.request.user else None}
        blob = self.repository.blob_store.store(io.BytesIO(body), length=len(body), extra_digests=("sha512",))
        with self.catalog.transaction():
            for needed, asset in blobs:
                self.record_blob(name, needed, BlobInfo(sha256=asset.blob_sha256, size=asset.size))
            digest_asset = manifest_path(name, digest)
            if self.catalog.get_asset(self.repository.name, digest_asset) is None:
                self.repository.record(digest_asset, blob, content_type=parsed.media_type, attributes=attributes,
                                       server_managed=True)
            if tag_path:
                self.repository.record(tag_path, blob, content_type=parsed.media_type, kind=AssetKind.METADATA,
                                       attributes=attributes, server_managed=True,
                                       component=Component(repository=self.repository.name, format="docker",
                                                           name=name, version=reference))
        self.resp.status = falcon.HTTP_201
        self.resp.set_header("Location", self.target.url(name, f"manifests/{digest}"))
        self.resp.set_header("Docker-Content-Digest", digest)
        if parsed.subject:
            self.resp.set_header("OCI-Subject", parsed.subject)
        self.resp.content_length = 0

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
        if self.repository.type is RepositoryType.GROUP:
            raise unsupported(f"repository {self.repository.name} is a group; delete from its members")
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

    # -- tags, catalog, referrers --------------------------------------------------------------------------
    def tags_get(self, name: str) -> None:
        found: set[str] = set()
        known = False
        failures: list[StowageError] = []
        for leaf in self.name_leaves(name):
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
        self.send_page({"name": self.target.name_prefix + name}, "tags", sorted(found),
                       self.target.path(name, "tags/list"))

    tags_head = tags_get

    def send_page(self, document: dict[str, Any], key: str, items: list[str], link_path: str) -> None:
        last = self.req.get_param("last")
        if last:
            items = [item for item in items if item > last]
        n = self.req.get_param_as_int("n", min_value=0)
        if n is not None and len(items) > n:
            items = items[:n]
            if items:
                self.resp.set_header("Link", f'<{link_path}?n={n}&last={quote(items[-1], safe="")}>; rel="next"')
        document[key] = items
        self.request.send_bytes(json.dumps(document).encode(), "application/json")

    def referrers_get(self, name: str, digest: str) -> None:
        check_digest(digest)
        wanted = self.req.get_param("artifactType")
        entries: dict[str, dict[str, Any]] = {}
        for leaf in self.leaves():
            if leaf.type is not RepositoryType.HOSTED:
                continue
            for asset in leaf.stowage.catalog.iter_assets(leaf.name, prefix=f"v2/{name}/manifests/sha"):
                attributes = asset.attributes
                if attributes.get("subject") != digest:
                    continue
                if wanted and attributes.get("artifactType") != wanted:
                    continue
                descriptor = {"mediaType": attributes.get("mediaType") or asset.content_type,
                              "digest": attributes.get("digest") or f"sha256:{asset.blob_sha256}",
                              "size": asset.size}
                if attributes.get("artifactType"):
                    descriptor["artifactType"] = attributes["artifactType"]
                if attributes.get("annotations"):
                    descriptor["annotations"] = attributes["annotations"]
                entries.setdefault(descriptor["digest"], descriptor)
        if wanted:
            self.resp.set_header("OCI-Filters-Applied", "artifactType")
        body = {"schemaVersion": 2, "mediaType": manifests.OCI_INDEX, "manifests": list(entries.values())}
        self.request.send_bytes(json.dumps(body).encode(), manifests.OCI_INDEX)


# -- catalog queries ---------------------------------------------------------------------------------------
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
        from stowage_docker.upstream import fetch

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
        from stowage_docker.upstream import fetch

        return fetch(repository, path, AssetKind.CONTENT if is_digest else AssetKind.METADATA,
                     reference if is_digest else None)
    return repository.stowage.catalog.get_asset(repository.name, path)


def list_tags(repository: Repository, name: str) -> list[str] | None:
    """The repository's tags of ``name``; None when it does not know the image."""
    if repository.type is RepositoryType.PROXY:
        from stowage_docker.upstream import remote_tags

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
