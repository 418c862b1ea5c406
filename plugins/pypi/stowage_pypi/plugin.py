"""The pypi format: twine uploads, the simple repository API (PEP 503/691/592/658/700/714), proxy and group.

Repository layout (hosted and proxy alike, so a group finds a file at one path in any member)::

    simple/                                       root index (metadata)
    simple/<normalized project>/                  project page (metadata)
    packages/<project>/<version>/<filename>       distribution files (content)
    packages/<project>/<version>/<filename>.metadata   PEP 658 core metadata of a wheel (content)
"""

from __future__ import annotations

import re
from typing import IO, Any

import falcon
from attrs import frozen
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from stowage.plugin import (Accepted, Asset, AssetKind, BadRequest, BlobInfo, Component, DigestMismatch, Format,
                            FormatHandler, InvalidContent, MethodNotAllowed, NotFound, RepoRequest, Repository,
                            RepositoryType, Route, StagedBlob, StowageError, UpstreamError, UpstreamRequest, UploadSpec,
                            User, WritePolicy, hookimpl, receive_multipart)

from stowage_pypi import index
from stowage_pypi.distributions import (METADATA_SUFFIX, SDIST, WHEEL, CoreMetadata, DistFilename, parse_filename,
                                        read_core_metadata, split_file_path)
from stowage_pypi.pipconfig import expand_remote_url
from stowage_pypi.simple import TEXT_HTML, UPSTREAM_ACCEPT, DistFile, RootIndex, negotiate, rendered

_PROJECT = re.compile(r"simple/(?P<project>[^/]+)/?")
_UPLOAD_PATHS = ("", "legacy", "legacy/")


class NotAcceptable(StowageError):
    code, status = "NOT_ACCEPTABLE", 406


def index_root(repository: Repository) -> str:
    """The remote's simple index URL, ending in ``/``.

    ``proxy.remoteUrl`` may name the index itself (what ``pip --index-url`` takes: a URL whose last
    segment is ``simple`` or ``+simple``) or, as in Nexus, the server above it (``https://pypi.org/``),
    in which case ``simple/`` is appended.
    """
    url = repository.config.proxy.remote_url.rstrip("/")
    if url.rsplit("/", 1)[-1] in ("simple", "+simple"):
        return url + "/"
    return url + "/simple/"


def _content_type(filename: str) -> str:
    if filename.endswith(METADATA_SUFFIX):
        return "text/plain; charset=utf-8"
    if filename.endswith((".whl", ".zip")):
        return "application/zip"
    if filename.endswith(".tar.gz"):
        return "application/gzip"
    return "application/octet-stream"


class PypiHandler(FormatHandler):
    methods = ("GET", "HEAD", "POST")

    # -- retention: PEP 440 ------------------------------------------------------------------------------
    def is_prerelease(self, component: Component) -> bool:
        """PEP 440 pre-releases and development releases (``1.0a1``, ``1.0rc1``, ``1.0.dev3``)."""
        try:
            return Version(component.version).is_prerelease
        except InvalidVersion:
            return False

    def version_key(self, component: Component) -> object:
        try:
            return (1, Version(component.version), component.created)
        except InvalidVersion:  # legacy versions sort before every valid one, by publication
            return (0, component.created, component.version)

    # -- reading ---------------------------------------------------------------------------------------
    def on_get(self, request: RepoRequest) -> None:
        path = request.path
        if path in ("", "simple"):
            raise falcon.HTTPMovedPermanently(f"{request.repository_url}/simple/")
        if path == index.ROOT_PATH:
            document = request.repository.metadata(path)
            if request.content_access is not None:  # content selectors: list only the projects they match
                document = RootIndex(projects=tuple(name for name in document.projects
                                                    if request.permits(f"/{index.project_path(name)}")))
                self._send_document(request, document, shared=False)
                return
            self._send_document(request, document)
            return
        match = _PROJECT.fullmatch(path)
        if match:
            project = canonicalize_name(match.group("project"))
            if path != index.project_path(project):  # PEP 503: redirect to the normalised URL
                raise falcon.HTTPMovedPermanently(f"{request.repository_url}/{index.project_path(project)}")
            self._send_document(request, request.repository.metadata(path))
            return
        if split_file_path(path) is None:
            raise NotFound(f"{path} not found in {request.repository.name}")
        # A proxy miss streams to the client while it downloads; the engine checks the sha256 the page
        # lists (expected_digests) before it caches. A copy cached earlier is checked against the page now.
        asset = request.repository.resolve(path, self.classify(path), stream=True)
        if isinstance(asset, Asset):
            self._verify_proxied(request.repository, asset)
        request.send_asset(asset, content_type=_content_type(path))

    def content_path(self, request: RepoRequest) -> str | None:
        """The root index lists every project: it is filtered, not refused (see ``on_get``); an upload's
        path is in its body (checked in ``on_post``); any other path is Nexus's (``/simple/<project>/``,
        ``/packages/<project>/<version>/<file>``)."""
        if request.path == index.ROOT_PATH or (request.method == "POST" and request.path in _UPLOAD_PATHS):
            return None
        return "/" + request.path

    def _send_document(self, request: RepoRequest, document: object, *, shared: bool = True) -> None:
        """:param shared: the document is the repository's cached one (False: built for this request, so
            compressing it would cost every request)."""
        request.resp.set_header("Vary", "Accept, Accept-Encoding")
        content_type = negotiate(request.accept)
        if content_type is None:
            raise NotAcceptable("acceptable types: application/vnd.pypi.simple.v1+json, "
                                "application/vnd.pypi.simple.v1+html, text/html",
                                headers={"Vary": "Accept"})
        # pip, uv and browsers send "Accept-Encoding: gzip": a page of a thousand files is about ten times
        # smaller on the wire, and compressed once per document like its rendering.
        gzipped = shared and "gzip" in (request.header("Accept-Encoding") or "")
        body, etag = rendered(document, content_type, gzipped=gzipped)  # type: ignore[arg-type]
        if gzipped:
            request.resp.set_header("Content-Encoding", "gzip")
        request.send_bytes(body, "text/html; charset=utf-8" if content_type == TEXT_HTML else content_type,
                           etag=etag)

    def _verify_proxied(self, repository: Repository, asset: Asset) -> None:
        """A file a proxy cached must have the sha256 its upstream page lists now; otherwise it is dropped."""
        owner = repository if asset.repository == repository.name else repository.stowage.repository(asset.repository)
        if owner.type is not RepositoryType.PROXY:
            return
        expected = self.expected_digests(owner, asset.path).get("sha256")
        if expected and expected != asset.blob_sha256:
            filename = asset.path.rsplit("/", 1)[-1]
            owner.delete(asset.path)
            raise UpstreamError(f"{filename} from the remote of {owner.name} has sha256 {asset.blob_sha256}, "
                                f"but its index lists {expected}; the copy was discarded")

    # -- proxy engine ----------------------------------------------------------------------------------
    def _listed(self, repository: Repository, path: str) -> tuple[DistFile, bool]:
        """(the remote page's entry for the file at ``path``, whether ``path`` is its PEP 658 metadata);
        NotFound when the page does not list it. Reads the project page once."""
        split = split_file_path(path)
        if split is None:
            raise NotFound(f"{path} is not a pypi path")
        project, filename = split
        is_metadata = filename.endswith(METADATA_SUFFIX)
        page = repository.metadata(index.project_path(project))
        listed = page.file(filename[:-len(METADATA_SUFFIX)] if is_metadata else filename)
        if listed is None or not listed.upstream_url:
            raise NotFound(f"{filename} is not listed by the remote of {repository.name} for {project}")
        return listed, is_metadata

    def expected_digests(self, repository: Repository, path: str) -> dict[str, str]:
        """The sha256 the remote's project page lists for a file (or for its PEP 658 metadata)."""
        try:
            listed, is_metadata = self._listed(repository, path)
        except StowageError:
            return {}  # no page to check against (remote down and never cached)
        return _digests(listed, is_metadata)

    def classify(self, path: str) -> AssetKind:
        return AssetKind.METADATA if path.startswith("simple/") else AssetKind.CONTENT

    def upstream_request(self, repository: Repository, path: str, kind: AssetKind) -> UpstreamRequest:
        """One answer per miss: a simple page from the index root (JSON preferred); a file from the URL
        the remote's own page lists, with the sha256 it lists. A request path never becomes a URL."""
        if path.startswith("simple/"):
            return UpstreamRequest(url=index_root(repository) + path[len("simple/"):],
                                   headers={"Accept": UPSTREAM_ACCEPT})
        listed, is_metadata = self._listed(repository, path)
        if not is_metadata:
            return UpstreamRequest(url=listed.upstream_url, expected_digests=_digests(listed, False))
        if not listed.core_metadata:
            raise NotFound(f"the remote of {repository.name} offers no core metadata for {listed.filename}")
        return UpstreamRequest(url=listed.upstream_url + METADATA_SUFFIX, expected_digests=_digests(listed, True))

    def artifact_name(self, path: str) -> str:
        split = split_file_path(path)
        return split[0] if split else path

    def package_name(self, path: str) -> str | None:
        """The PEP 503 name of a ``packages/<project>/<version>/<file>`` path (core's group guard)."""
        split = split_file_path(path)
        return split[0] if split else None

    # -- uploads ---------------------------------------------------------------------------------------
    def on_post(self, request: RepoRequest) -> None:
        """The legacy upload API twine uses: multipart with ``:action=file_upload`` and a ``content`` file."""
        try:
            if request.path not in _UPLOAD_PATHS:
                raise MethodNotAllowed(f"uploads go to {request.repository_url}/ (POST)", allowed=["GET", "HEAD"])
            repository = request.repository
            if repository.type is not RepositoryType.HOSTED:
                raise MethodNotAllowed(f"repository {repository.name} is a {repository.type.value} repository; "
                                       f"upload to a hosted repository", allowed=["GET", "HEAD"])
            with receive_multipart(request.req, repository) as (fields, files):
                action = fields.get(":action")
                if action != "file_upload":
                    raise BadRequest(f"unsupported :action {action!r}; only file_upload is supported")
                content = next((f for f in files if f.field == "content"), None)
                if content is None:
                    raise BadRequest("the upload has no 'content' file part")
                request.require_content("/" + parse_filename(content.filename).path)
                self.publish(repository, content, user=request.user, name=fields.get("name"),
                             version=fields.get("version"), sha256=fields.get("sha256_digest"),
                             filetype=fields.get("filetype"))
        except StowageError as error:
            self._upload_error(request, error)
            return
        request.resp.status = falcon.HTTP_200
        request.resp.content_type = "text/plain; charset=utf-8"
        request.resp.text = "OK\n"

    @staticmethod
    def _upload_error(request: RepoRequest, error: StowageError) -> None:
        # twine shows the status line's reason phrase; PyPI puts the message there too.
        reason = "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in error.message)[:300]
        request.resp.status = f"{error.status} {reason}"
        request.resp.content_type = "text/plain; charset=utf-8"
        request.resp.text = f"{error.message}\n"
        for name, value in error.headers.items():
            request.resp.set_header(name, value)

    def upload_component(self, repository: Repository, fields: dict[str, str], files: list[StagedBlob],
                         user: User | None) -> list[Asset]:
        """``POST /service/rest/v1/components?repository=...`` with a ``pypi.asset`` file part."""
        uploads = [f for f in files if f.field == "pypi.asset"]
        if not uploads or len(uploads) != len(files):
            raise BadRequest("send one file part named pypi.asset")
        return [self.publish(repository, upload, user=user) for upload in uploads]

    def publish(self, repository: Repository, upload: StagedBlob, *, user: User | None,
                name: str | None = None, version: str | None = None, sha256: str | None = None,
                filetype: str | None = None) -> Asset:
        """Validate an uploaded distribution before it becomes a blob, then record it with its metadata;
        a refused upload leaves nothing behind."""
        dist = self._check_upload(repository, upload.filename, upload.sha256, sha256=sha256, filetype=filetype)
        with upload.open() as stream:
            metadata = self._read_metadata(dist, stream, name=name, version=version)
        return self._record(repository, dist, upload, metadata, self._store_metadata(repository, dist, metadata),
                            user)

    @staticmethod
    def _store_metadata(repository: Repository, dist: DistFilename, metadata: CoreMetadata) -> BlobInfo | None:
        """The PEP 658 ``.metadata`` blob of a wheel (None for an sdist)."""
        if dist.filetype != WHEEL:
            return None
        with repository.blob_store.writer() as writer:
            writer.write(metadata.raw)
            return writer.commit()

    @staticmethod
    def _check_upload(repository: Repository, filename: str, blob_sha256: str, *, sha256: str | None,
                      filetype: str | None) -> DistFilename:
        dist = parse_filename(filename)
        if sha256 and sha256.strip().lower() != blob_sha256:
            raise DigestMismatch(f"sha256_digest {sha256} does not match the uploaded {dist.filename} "
                                 f"(sha256 {blob_sha256})")
        if filetype and filetype != dist.filetype:
            raise InvalidContent(f"filetype {filetype!r} does not match {dist.filename} (a {dist.filetype})")
        repository.check_writable(dist.path, artifact_name=dist.project)
        return dist

    @staticmethod
    def _read_metadata(dist: DistFilename, stream: IO[bytes], *, name: str | None,
                       version: str | None) -> CoreMetadata:
        """The archive's core metadata, checked against its filename and the upload's form fields."""
        metadata = read_core_metadata(stream, dist)
        source = "METADATA" if dist.filetype == WHEEL else "PKG-INFO"
        if canonicalize_name(metadata.name) != dist.project:
            raise InvalidContent(f"the filename {dist.filename} names project {dist.project!r} but its {source} "
                                 f"says Name: {metadata.name}")
        if metadata.version != dist.version:
            raise InvalidContent(f"the filename {dist.filename} names version {dist.version} but its {source} "
                                 f"says Version: {metadata.version}")
        if name is not None and canonicalize_name(name) != canonicalize_name(metadata.name):
            raise InvalidContent(f"the upload's name {name!r} does not match the name {metadata.name!r} in "
                                 f"{dist.filename}'s {source}")
        if version is not None:
            try:
                matches = Version(version) == metadata.version
            except InvalidVersion:
                matches = False
            if not matches:
                raise InvalidContent(f"the upload's version {version!r} does not match the version "
                                     f"{str(metadata.version)!r} in {dist.filename}'s {source}")
        return metadata

    @staticmethod
    def _record(repository: Repository, dist: DistFilename, upload: StagedBlob, metadata: CoreMetadata,
                metadata_blob: BlobInfo | None, user: User | None) -> Asset:
        """The distribution and its ``.metadata`` file, in one catalog transaction."""
        component = Component(repository=repository.name, format="pypi", name=dist.project,
                              version=str(metadata.version), attributes={"display_name": metadata.name})
        attributes = {"uploader": user.user_id if user else None,
                      "pypi": {"project": metadata.name, "version": str(metadata.version),
                               "filetype": dist.filetype, "requires_python": metadata.requires_python,
                               "core_metadata_sha256": metadata_blob.sha256 if metadata_blob else None,
                               "yanked": False}}

        def record_metadata(asset: Asset) -> None:
            if metadata_blob is not None:
                repository.record(dist.path + METADATA_SUFFIX, metadata_blob, content_type=_content_type(
                    METADATA_SUFFIX), component=component, attributes={"pypi": {"metadata_of": dist.filename}},
                    server_managed=True)

        return repository.commit(upload, Accepted(path=dist.path, content_type=_content_type(dist.filename),
                                                  component=component, attributes=attributes,
                                                  artifact_name=dist.project, then=record_metadata))

    def delete_asset(self, repository: Repository, asset: Asset) -> None:
        """Deleting a distribution also deletes its ``.metadata`` file; the index changes at once."""
        with repository.stowage.catalog.transaction():
            repository.delete(asset.path)
            if not asset.path.endswith(METADATA_SUFFIX):
                try:
                    repository.delete(asset.path + METADATA_SUFFIX)
                except NotFound:
                    pass


@frozen
class PypiSettings:
    """Nexus's ``pypi`` section of proxy repositories: stored and returned so Nexus JSON round-trips
    (Stowage has no quarantine; ``indexPath`` is Nexus Pro's)."""

    remove_quarantined: bool = False
    index_path: str | None = None


@hookimpl
def stowage_register_formats() -> list[Format]:
    return [Format(name="pypi", handler=PypiHandler, default_write_policy=WritePolicy.ALLOW_ONCE,
                   settings={"pypi": PypiSettings}, answer_sections={"proxy": ("pypi",)},
                   upload_spec=UploadSpec(),
                   expand_remote_url=expand_remote_url,
                   description="Python packages: twine upload, pip/uv install; hosted, proxy and group.")]


@hookimpl
def stowage_register_metadata_builders() -> list:
    return index.metadata_builders()


@hookimpl
def stowage_register_routes() -> list[Route]:
    from stowage_pypi.yank import routes

    return routes()


@hookimpl
def stowage_register_metadata_checks() -> list:
    from stowage_pypi.verify import metadata_checks

    return metadata_checks()


__all__ = ["PypiHandler", "SDIST", "WHEEL", "index_root"]


def _digests(listed: DistFile, is_metadata: bool) -> dict[str, str]:
    expected = (listed.core_metadata if isinstance(listed.core_metadata, str) else None) if is_metadata \
        else listed.sha256
    return {"sha256": expected.lower()} if expected else {}
