"""Packuments: the per-package documents npm reads, built for each repository type and rendered.

The model keeps manifests with repository-relative tarball paths (``<name>/-/<file>.tgz``); rendering
turns them into absolute URLs of the repository the client reached, so one cached document serves every
host name and proxy prefix. Each :class:`Packument` carries a ``key`` that identifies its content
(hosted: the package revision; proxy: the upstream body's sha256; group: its members' keys): rendered
bytes and merged documents are cached on it.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
from typing import IO, Any, Callable, Iterable, Mapping

from attrs import field, frozen

from stowage.plugin import LRUCache, MemberDocument, Repository, RepositoryType, group_guard

from stowage_npm.names import scope_of, unscoped

#: catalog document namespace of a hosted repository's packages (key: the package name).
PACKAGES_NAMESPACE = "npm.packages:"
#: catalog document namespace of the scopes a hosted repository holds (for the dependency-confusion guard).
SCOPES_NAMESPACE = "npm.scopes:"

#: the fields of a version an installer needs (npm's "corgi" abbreviated metadata).
CORGI_FIELDS = ("name", "version", "deprecated", "dependencies", "optionalDependencies", "devDependencies",
                "bundleDependencies", "bundledDependencies", "peerDependencies", "peerDependenciesMeta", "bin",
                "directories", "dist", "engines", "os", "cpu", "libc", "_hasShrinkwrap", "hasInstallScript",
                "funding", "acceptDependencies", "license")
#: top-level fields of a full packument kept besides versions, dist-tags and time.
EXTRA_FIELDS = ("description", "readme", "readmeFilename", "maintainers", "author", "contributors", "license",
                "keywords", "homepage", "repository", "bugs", "users")

CORGI_TYPE = "application/vnd.npm.install-v1+json"


def namespace(repository_name: str) -> str:
    return PACKAGES_NAMESPACE + repository_name


def holds_package(repository: Repository, name: str) -> bool:
    """Whether hosted ``repository`` has published ``name`` or claims its scope (a scope published to
    a hosted repository is private as a whole: proxies may not add packages to it)."""
    catalog = repository.stowage.catalog
    if catalog.get_document(namespace(repository.name), name) is not None:
        return True
    scope = scope_of(name)
    return bool(scope) and bool(catalog.get_document(SCOPES_NAMESPACE + repository.name, scope))


@frozen
class Packument:
    name: str
    #: version -> manifest; ``dist.tarball`` is a path relative to the repository serving the document.
    versions: Mapping[str, Mapping[str, Any]]
    dist_tags: Mapping[str, str]
    time: Mapping[str, str]
    extra: Mapping[str, Any]
    #: True when the versions hold only :data:`CORGI_FIELDS` (an upstream's abbreviated document).
    abbreviated: bool
    key: tuple
    rev: str = ""
    #: group documents: tarball path -> the member that serves it (downloads agree with the index).
    tarballs: Mapping[str, str] = field(factory=dict)

    @property
    def modified(self) -> str:
        return self.time.get("modified") or max(self.time.values(), default="")


# -- hosted ---------------------------------------------------------------------------------------------

def from_stored(repository_name: str, stored: Mapping[str, Any]) -> Packument:
    return Packument(name=stored["name"], versions=stored["versions"], dist_tags=stored.get("dist-tags", {}),
                     time=stored.get("time", {}), extra=stored.get("extra", {}), abbreviated=False,
                     key=("hosted", repository_name, stored["name"], stored["rev"]), rev=revision_id(stored))


def revision_id(stored: Mapping[str, Any]) -> str:
    """A CouchDB-style ``_rev`` (``<n>-<hash>``) for the stored document, as npm's unpublish expects."""
    digest = hashlib.sha1(f"{stored['name']}\0{stored['rev']}".encode()).hexdigest()[:16]
    return f"{stored['rev']}-{digest}"


def build_hosted(repository: Repository, match: re.Match[str]) -> Packument | None:
    stored = repository.stowage.catalog.get_document(namespace(repository.name), match.group("name"))
    return from_stored(repository.name, stored) if stored else None


# -- proxy ----------------------------------------------------------------------------------------------

class _HashingReader:
    def __init__(self, stream: IO[bytes]):
        self.stream = stream
        self.sha256 = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.sha256.update(data)
        return data


def parse_upstream(repository: Repository, match: re.Match[str], stream: IO[bytes]) -> Packument | None:
    """An upstream packument, parsed once per upstream body (cached on its sha256) with tarballs relative."""
    caches = caches_of(repository)
    cached_asset = repository.stowage.catalog.get_asset(repository.name, match.group(0))
    if cached_asset is not None:
        hit = caches.parsed.get(cached_asset.blob_sha256)
        if hit is not None:
            return hit
    reader = _HashingReader(stream)
    raw = b"".join(iter(lambda: reader.read(1024 * 1024), b""))
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    size = len(raw)
    del raw
    sha = reader.sha256.hexdigest()
    if not isinstance(data, dict) or not isinstance(data.get("versions"), dict):
        return None
    name = match.group("name")
    remote = repository.config.proxy.remote_url.rstrip("/") + "/"  # type: ignore[union-attr]
    abbreviated = match.group(0).startswith("-/corgi/")
    versions = {}
    for version, manifest in data["versions"].items():
        if not isinstance(manifest, dict):
            continue
        dist = dict(manifest.get("dist") or {})
        dist["tarball"] = relative_tarball(dist.get("tarball", ""), remote, name, version)
        manifest["dist"] = dist
        versions[version] = manifest
    time = data.get("time") or {}
    if abbreviated and data.get("modified"):
        time = {**time, "modified": data["modified"]}
    document = Packument(name=name, versions=versions, dist_tags=data.get("dist-tags") or {}, time=time,
                         extra={k: data[k] for k in EXTRA_FIELDS if k in data}, abbreviated=abbreviated,
                         key=("proxy", repository.name, sha))
    caches.parsed.put(sha, document, weight=size)
    return document


#: SRI algorithms npm writes in ``dist.integrity``, strongest first (hashlib names).
_SRI_ALGORITHMS = ("sha512", "sha384", "sha256")
_SHA1_HEX = re.compile(r"[0-9a-f]{40}")


def tarball_digests(document: Packument, path: str) -> dict[str, str]:
    """The digest the packument lists for the tarball at ``path``: the strongest ``dist.integrity`` entry
    (SRI, base64 -> hex) or else ``dist.shasum`` (sha1); {} when no version lists that tarball."""
    for manifest in document.versions.values():
        dist = manifest.get("dist") if isinstance(manifest, Mapping) else None
        if not isinstance(dist, Mapping) or dist.get("tarball") != path:
            continue
        found = _sri_digests(dist.get("integrity"))
        for algorithm in _SRI_ALGORITHMS:
            if algorithm in found:
                return {algorithm: found[algorithm]}
        shasum = dist.get("shasum")
        if isinstance(shasum, str) and _SHA1_HEX.fullmatch(shasum.lower()):
            return {"sha1": shasum.lower()}
        return {}
    return {}


def _sri_digests(integrity: object) -> dict[str, str]:
    """``sha512-<base64> sha1-<base64>`` -> {"sha512": hex, "sha1": hex}; malformed entries are skipped."""
    if not isinstance(integrity, str):
        return {}
    found: dict[str, str] = {}
    for entry in integrity.split():
        algorithm, _, value = entry.partition("-")
        value = value.partition("?")[0]  # SRI options
        size = hashlib.new(algorithm).digest_size if algorithm in (*_SRI_ALGORITHMS, "sha1") else 0
        try:
            raw = base64.b64decode(value, validate=True)
        except ValueError:
            continue
        if size and len(raw) == size:
            found.setdefault(algorithm, raw.hex())
    return found


def relative_tarball(url: str, remote: str, name: str, version: str) -> str:
    """The tarball's path below the remote (downloads go through Stowage under the same path)."""
    if url.startswith(remote):
        return url[len(remote):]
    without_scheme = re.sub(r"^https?://", "", url)
    if without_scheme.startswith(re.sub(r"^https?://", "", remote)):  # http vs https of the same registry
        return without_scheme[len(re.sub(r"^https?://", "", remote)):]
    filename = url.rpartition("/")[2] or f"{unscoped(name)}-{version}.tgz"
    return f"{name}/-/{filename}"


# -- group ----------------------------------------------------------------------------------------------

def merge_members(repository: Repository, match: re.Match[str], members: list[MemberDocument]) -> Packument | None:
    """Versions: first member wins; dist-tags: first member with the tag; the dependency-confusion guard."""
    name = match.group("name")
    # core's dependency-confusion guard, the same decision the group's tarball downloads take
    guard = not group_guard(repository).allows_proxy(name)
    if guard:
        members = [m for m in members if m.origin == "hosted"]
    if not members:
        return None
    key = ("group", repository.name, tuple(m.document.key for m in members), guard)
    caches = caches_of(repository)
    hit = caches.merged.get(key)
    if hit is not None:
        return hit
    versions: dict[str, Any] = {}
    time: dict[str, str] = {}
    tarballs: dict[str, str] = {}
    dist_tags: dict[str, str] = {}
    for member in members:
        document: Packument = member.document
        for version, manifest in document.versions.items():
            if version in versions:
                continue
            versions[version] = manifest
            tarball = (manifest.get("dist") or {}).get("tarball")
            if tarball:
                tarballs[tarball] = member.repository.name
            if version in document.time:
                time[version] = document.time[version]
        for tag, version in document.dist_tags.items():
            if tag not in dist_tags and version in versions:
                dist_tags[tag] = version
    stamps = [m.document.time for m in members]
    created = [t["created"] for t in stamps if t.get("created")]
    modified = [t["modified"] for t in stamps if t.get("modified")]
    if created:
        time["created"] = min(created)
    if modified:
        time["modified"] = max(modified)
    first: Packument = members[0].document
    merged = Packument(name=name, versions=versions, dist_tags=dist_tags, time=time, extra=first.extra,
                       abbreviated=any(m.document.abbreviated for m in members), key=key, tarballs=tarballs)
    caches.merged.put(key, merged, weight=1)
    return merged


# -- rendering -------------------------------------------------------------------------------------------

def render(document: Packument, repository_url: str, *, abbreviated: bool) -> bytes:
    base = repository_url.rstrip("/") + "/"
    versions = {}
    for version, manifest in document.versions.items():
        if abbreviated:
            out = {k: manifest[k] for k in CORGI_FIELDS if k in manifest}
        else:
            out = dict(manifest)
        dist = dict(manifest.get("dist") or {})
        if dist.get("tarball"):
            dist["tarball"] = base + dist["tarball"]
        out["dist"] = dist
        versions[version] = out
    if abbreviated:
        body: dict[str, Any] = {"name": document.name, "modified": document.modified,
                                "dist-tags": dict(document.dist_tags), "versions": versions}
    else:
        body = {"_id": document.name, "name": document.name}
        if document.rev:
            body["_rev"] = document.rev
        body.update(document.extra)
        body.update({"dist-tags": dict(document.dist_tags), "versions": versions, "time": dict(document.time)})
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def render_manifest(document: Packument, version: str, repository_url: str) -> bytes:
    manifest = dict(document.versions[version])
    dist = dict(manifest.get("dist") or {})
    if dist.get("tarball"):
        dist["tarball"] = repository_url.rstrip("/") + "/" + dist["tarball"]
    manifest["dist"] = dist
    return json.dumps(manifest, separators=(",", ":"), ensure_ascii=False).encode()


# -- caches ----------------------------------------------------------------------------------------------

@frozen
class NpmCaches:
    #: upstream sha256 -> parsed Packument (weight: upstream body size).
    parsed: LRUCache = field(factory=lambda: LRUCache(256 * 1024 * 1024))
    #: merged group documents (weight 1 each).
    merged: LRUCache = field(factory=lambda: LRUCache(2048))
    #: (document key, repository url, abbreviated, gzip) -> response bytes.
    rendered: LRUCache = field(factory=lambda: LRUCache(256 * 1024 * 1024))


def caches_of(repository: Repository) -> NpmCaches:
    return repository.stowage.extension("npm-caches", NpmCaches)


def rendered_bytes(repository: Repository, document: Packument, repository_url: str, *, abbreviated: bool,
                   compress: bool) -> tuple[bytes, str]:
    """The response body (gzip'd when asked) and its ETag, rendered once per document and URL."""
    caches = caches_of(repository)

    def make_plain() -> tuple[tuple[bytes, str], int]:
        body = render(document, repository_url, abbreviated=abbreviated)
        return (body, hashlib.sha256(body).hexdigest()[:40]), len(body)

    def make() -> tuple[tuple[bytes, str], int]:
        plain, etag = caches.rendered.get_or_make((document.key, repository_url, abbreviated, False), make_plain)
        if not compress:
            return (plain, etag), len(plain)
        packed = gzip.compress(plain, compresslevel=9, mtime=0)
        return (packed, etag + "-gz"), len(packed)

    return caches.rendered.get_or_make((document.key, repository_url, abbreviated, compress), make)
