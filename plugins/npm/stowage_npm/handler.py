"""The npm registry API over one repository of any type (hosted, proxy, group)."""

from __future__ import annotations

import json
from typing import Any

import falcon
import semver

from stowage.plugin import (Action, Asset, AssetKind, Component, BadRequest, FormatHandler, NotFound,
                            RepoRequest, Repository, RepositoryType, StowageError, Unauthorized, StagedBlob,
                            UpstreamError, User)

from stowage_npm import hosted
from stowage_npm.names import (CORGI_PATH, CORGI_PREFIX, DIST_TAGS_PATH, PACKUMENT_PATH, REV_PATH,
                               TARBALL_PATH, TARBALL_REV_PATH, VERSION_PATH, escaped)
from stowage_npm.packument import CORGI_TYPE, holds_package, Packument, render_manifest, rendered_bytes, tarball_digests
from stowage_npm.upstream import forward, proxy_leaves

LOGIN_PREFIX = "-/user/org.couchdb.user:"
TOKEN_PREFIX = "-/user/token/"
AUDIT_PATHS = ("-/npm/v1/security/advisories/bulk", "-/npm/v1/security/audits/quick")
#: endpoints that authenticate by themselves (or need no permission at all).
_SELF_AUTHENTICATED = ("-/ping", "-/whoami", "-/v1/login")


class NpmHandler(FormatHandler):
    methods = ("GET", "HEAD", "PUT", "POST", "DELETE")

    # -- retention: SemVer -------------------------------------------------------------------------------
    def is_prerelease(self, component: Component) -> bool:
        """A SemVer prerelease (``2.0.0-beta.1``); build metadata (``+sha``) does not make one."""
        parsed = _semver(component.version)
        return bool(parsed.prerelease) if parsed is not None else False

    def version_key(self, component: Component) -> object:
        parsed = _semver(component.version)
        if parsed is None:  # not SemVer: before every valid version, by publication
            return (0, None, component.created)
        return (1, parsed, component.created)

    # -- permissions ------------------------------------------------------------------------------------
    def action_for(self, request: RepoRequest) -> Action | None:
        path = request.path
        if path.startswith((LOGIN_PREFIX, TOKEN_PREFIX)) or path in _SELF_AUTHENTICATED:
            return None
        if path in AUDIT_PATHS:
            return Action.READ
        if request.method == "DELETE" and DIST_TAGS_PATH.fullmatch(path):
            return Action.WRITE
        return super().action_for(request)

    def content_path(self, request: RepoRequest) -> str | None:
        """Nexus's path of the package a request addresses (``/@scope/name``, or the tarball's
        ``/@scope/name/-/name-1.0.0.tgz``); None for the registry root, search and audits, which list
        several packages (search results are filtered with ``request.permits``)."""
        path = request.path
        if path in ("", "-/v1/search", *AUDIT_PATHS, *_SELF_AUTHENTICATED):
            return None
        for pattern, group in ((DIST_TAGS_PATH, "name"), (TARBALL_REV_PATH, "tarball"), (TARBALL_PATH, None),
                               (REV_PATH, "name"), (PACKUMENT_PATH, "name"), (VERSION_PATH, "name")):
            match = pattern.fullmatch(path)
            if match:
                return "/" + (match.group(group) if group else path)
        return "/" + path

    def render_error(self, request: RepoRequest | None, error: StowageError) -> tuple[str, bytes]:
        return "application/json", json.dumps({"error": error.message, "code": error.code}).encode()

    # -- proxy engine -----------------------------------------------------------------------------------
    def classify(self, path: str) -> AssetKind:
        if TARBALL_PATH.fullmatch(path):
            return AssetKind.CONTENT
        return AssetKind.METADATA

    def upstream_path(self, path: str) -> str:
        corgi = CORGI_PATH.fullmatch(path)
        if corgi:
            return escaped(corgi.group("name"))
        if PACKUMENT_PATH.fullmatch(path):
            return escaped(path)
        return path

    def upstream_headers(self, repository: Repository, path: str, kind: AssetKind) -> dict[str, str]:
        if CORGI_PATH.fullmatch(path):
            return {"Accept": CORGI_TYPE}
        if PACKUMENT_PATH.fullmatch(path):
            return {"Accept": "application/json"}
        return {}

    def expected_digests(self, repository: Repository, path: str) -> dict[str, str]:
        """The digest the remote's packument lists for a tarball (``dist.integrity``, else ``dist.shasum``):
        the engine checks it while the body streams in and caches nothing that differs."""
        match = TARBALL_PATH.fullmatch(path)
        if match is None or repository.type is not RepositoryType.PROXY:
            return {}
        name = match.group("name")
        catalog = repository.stowage.catalog
        # The packument the client read before asking for the tarball (npm reads the abbreviated one);
        # the abbreviated one is fetched only when neither is cached.
        candidates = [p for p in (CORGI_PREFIX + name, name) if catalog.get_asset(repository.name, p) is not None]
        for document_path in candidates or [CORGI_PREFIX + name]:
            try:
                document = repository.metadata(document_path)
            except StowageError:
                continue  # no packument to check against (remote down and never cached)
            digests = tarball_digests(document, path)
            if digests:
                return digests
        return {}

    def artifact_name(self, path: str) -> str:
        for pattern in (TARBALL_PATH, VERSION_PATH, PACKUMENT_PATH):
            match = pattern.fullmatch(path)
            if match:
                return match.group("name")
        return path

    def package_name(self, path: str) -> str | None:
        """The package a tarball path belongs to (core's group guard)."""
        match = TARBALL_PATH.fullmatch(path)
        return match.group("name") if match else None

    def holds_package(self, repository: Repository, name: str) -> bool:
        return holds_package(repository, name)

    # -- reads ------------------------------------------------------------------------------------------
    def on_get(self, request: RepoRequest) -> None:
        path = request.path
        if path == "":
            return _send_json(request, {"db_name": "registry", "repository": request.repository.name})
        if path == "-/ping":
            return _send_json(request, {})
        if path == "-/whoami":
            if request.user is None:
                raise Unauthorized("not logged in", headers={"WWW-Authenticate": self.challenge(request)})
            return _send_json(request, {"username": request.user.user_id})
        if path == "-/v1/search":
            from stowage_npm.search import search

            return _send_json(request, search(request))
        match = DIST_TAGS_PATH.fullmatch(path)
        if match:
            document = _document(request.repository, match.group("name"), abbreviated=True)
            tags = dict(document.dist_tags)
            if match.group("tag"):
                if match.group("tag") not in tags:
                    raise NotFound(f"dist-tag {match.group('tag')} of {document.name} not found")
                return _send_json(request, tags[match.group("tag")])
            return _send_json(request, tags)
        if path.startswith("-/"):
            raise NotFound(f"{path} is not an npm registry endpoint")
        match = TARBALL_PATH.fullmatch(path)
        if match:
            return self._send_tarball(request, match.group("name"))
        match = PACKUMENT_PATH.fullmatch(path)
        if match:
            return self._send_packument(request, match.group("name"))
        match = VERSION_PATH.fullmatch(path)
        if match:
            document = _document(request.repository, match.group("name"), abbreviated=False)
            spec = match.group("spec")
            version = spec if spec in document.versions else document.dist_tags.get(spec)
            if version not in document.versions:
                raise NotFound(f"version or dist-tag {spec} of {document.name} not found")
            return _send_body(request, render_manifest(document, version, request.repository_url),
                              "application/json")
        raise NotFound(f"{path} is not an npm package, version or tarball path")

    def _send_packument(self, request: RepoRequest, name: str) -> None:
        write = request.req.get_param("write") == "true"
        abbreviated = CORGI_TYPE in request.accept and not write
        document = _document(request.repository, name, abbreviated=abbreviated)
        compress = "gzip" in (request.header("Accept-Encoding") or "")
        body, etag = rendered_bytes(request.repository, document, request.repository_url,
                                    abbreviated=abbreviated, compress=compress)
        resp = request.resp
        resp.set_header("Vary", "Accept, Accept-Encoding")
        resp.set_header("Cache-Control", "no-cache")
        if compress:
            resp.set_header("Content-Encoding", "gzip")
        request.send_bytes(body, CORGI_TYPE if abbreviated else "application/json", etag=etag)

    def _send_tarball(self, request: RepoRequest, name: str) -> None:
        repository = request.repository
        if repository.type is RepositoryType.GROUP:
            # Only the member whose version the merged packument lists serves it: the index and the
            # downloads agree, and the dependency-confusion guard holds for tarballs too.
            document = _document(repository, name, abbreviated=True)
            member_name = document.tarballs.get(request.path)
            if member_name is None:
                raise NotFound(f"{request.path} is not listed by {name}'s packument in {repository.name}")
            asset = repository.stowage.repository(member_name).resolve(request.path, AssetKind.CONTENT, stream=True)
        else:
            asset = repository.resolve(request.path, AssetKind.CONTENT, stream=True)  # a proxy miss streams
        request.send_asset(asset, content_type="application/octet-stream")

    # -- writes -----------------------------------------------------------------------------------------
    def on_put(self, request: RepoRequest) -> None:
        path = request.path
        if path.startswith(LOGIN_PREFIX):
            from stowage_npm.tokens import login

            return _send_json(request, login(request, path[len(LOGIN_PREFIX):]), status=falcon.HTTP_201)
        match = DIST_TAGS_PATH.fullmatch(path)
        if match and match.group("tag"):
            return _send_json(request, hosted.set_dist_tag(request, match.group("name"), match.group("tag")),
                              status=falcon.HTTP_201)
        match = REV_PATH.fullmatch(path)
        if match:
            document = hosted.read_json(request)
            if not isinstance(document, dict):
                raise BadRequest("the document must be a JSON object")
            return _send_json(request, hosted.update_metadata(request, match.group("name"), document,
                                                              rev=match.group("rev")), status=falcon.HTTP_201)
        match = PACKUMENT_PATH.fullmatch(path)
        if match:
            return _send_json(request, hosted.publish(request, match.group("name")), status=falcon.HTTP_201)
        raise NotFound(f"PUT {path} is not an npm registry endpoint")

    def on_post(self, request: RepoRequest) -> None:
        path = request.path
        if path == "-/v1/login":
            # npm falls back to the CouchDB login (PUT -/user/org.couchdb.user:<name>) on a 4xx here.
            raise NotFound("web login is not supported; npm falls back to username and password")
        if path in AUDIT_PATHS:
            return _audit(request)
        match = DIST_TAGS_PATH.fullmatch(path)
        if match and match.group("tag"):
            return _send_json(request, hosted.set_dist_tag(request, match.group("name"), match.group("tag")),
                              status=falcon.HTTP_201)
        raise NotFound(f"POST {path} is not an npm registry endpoint")

    def on_delete(self, request: RepoRequest) -> None:
        path = request.path
        if path.startswith(TOKEN_PREFIX):
            from stowage_npm.tokens import logout

            return _send_json(request, logout(request, path[len(TOKEN_PREFIX):]))
        match = DIST_TAGS_PATH.fullmatch(path)
        if match and match.group("tag"):
            return _send_json(request, hosted.remove_dist_tag(request, match.group("name"), match.group("tag")))
        match = TARBALL_REV_PATH.fullmatch(path)
        if match:
            return _send_json(request, hosted.delete_tarball(request, match.group("name"), match.group("tarball"),
                                                             match.group("rev")))
        match = TARBALL_PATH.fullmatch(path)
        if match:
            return _send_json(request, hosted.delete_tarball(request, match.group("name"), path, None))
        match = REV_PATH.fullmatch(path)
        if match:
            return _send_json(request, hosted.unpublish_package(request, match.group("name"), match.group("rev")))
        raise NotFound(f"DELETE {path} is not an npm registry endpoint")


    # -- REST (/service/rest/v1/components and /assets) ----------------------------------------------
    def delete_asset(self, repository: Repository, asset: Asset) -> None:
        match = TARBALL_PATH.fullmatch(asset.path)
        if repository.type is RepositoryType.HOSTED and match:
            hosted.remove_tarball(repository, match.group("name"), asset.path)
        else:
            repository.delete(asset.path)

    def upload_component(self, repository: Repository, fields: dict[str, str], files: list[StagedBlob],
                         user: User | None) -> list[Asset]:
        """``POST /service/rest/v1/components?repository=...`` with one ``npm.asset`` package tarball: its
        ``package.json`` names the version, published as ``npm publish`` would."""
        uploads = [f for f in files if f.field == "npm.asset"]
        if len(uploads) != 1 or len(files) != 1:
            raise BadRequest("send one file part named npm.asset (a package tarball)")
        return [hosted.publish_tarball(repository, uploads[0], user)]

    def delete_component(self, repository: Repository, component: Component) -> None:
        for asset in repository.stowage.catalog.list_assets(repository.name, component_id=component.id).items:
            self.delete_asset(repository, asset)


def _semver(version: str) -> Any:
    try:
        return semver.Version.parse(version.lstrip("v="))
    except (ValueError, TypeError):
        return None


def _document(repository: Repository, name: str, *, abbreviated: bool) -> Packument:
    try:
        document = repository.metadata(CORGI_PREFIX + name if abbreviated else name)
    except UpstreamError:
        if not abbreviated:
            raise
        # The remote is down and only the full document was cached: it holds everything installs need.
        document = repository.metadata(name)
    if not document.versions and repository.type is RepositoryType.HOSTED:
        raise NotFound(f"package {name} not found in {repository.name}")
    return document


def _send_json(request: RepoRequest, value: Any, *, status: str = falcon.HTTP_200) -> None:
    body = json.dumps(value, separators=(",", ":")).encode()
    request.resp.status = status
    request.resp.content_type = "application/json"
    request.resp.data = body


def _send_body(request: RepoRequest, body: bytes, content_type: str) -> None:
    request.send_bytes(body, content_type)


def _audit(request: RepoRequest) -> None:
    """Audit endpoints go to the remotes of the proxies this repository reaches (bulk answers merged)."""
    bulk = request.path.endswith("advisories/bulk")
    body = request.body.read(64 * 1024 * 1024)
    headers = {name: value for name in ("Content-Type", "Content-Encoding")
               if (value := request.header(name))}
    merged: dict[str, Any] = {}
    failures: list[str] = []
    leaves = list(proxy_leaves(request.repository))
    for leaf in leaves:
        try:
            status, content_type, data = forward(leaf, "POST", request.path, body=body, headers=headers)
        except UpstreamError as error:
            failures.append(error.message)
            continue
        if status != 200:
            failures.append(f"{leaf.name}: upstream answered {status}")
            continue
        if not bulk:
            request.resp.content_type = content_type
            request.resp.data = data
            return
        try:
            answer = json.loads(data)
        except ValueError:
            failures.append(f"{leaf.name}: upstream answered with invalid JSON")
            continue
        for name, advisories in (answer.items() if isinstance(answer, dict) else ()):
            known = merged.setdefault(name, [])
            seen = {a.get("id") for a in known if isinstance(a, dict)}
            known.extend(a for a in advisories if not isinstance(a, dict) or a.get("id") not in seen)
    if leaves and len(failures) == len(leaves):
        raise UpstreamError("audit: no upstream answered: " + "; ".join(failures))
    if not bulk:
        raise NotFound("no proxy member answers quick audits; npm uses the bulk advisory endpoint")
    _send_json(request, merged)


