"""Writes to a hosted npm repository: publish, metadata updates (deprecate, unpublish), dist-tags.

The catalog is the truth: each package is one catalog document (``npm.packages:<repo>`` / name) holding
its manifests, dist-tags and times, changed only inside a catalog transaction together with the tarball
assets it lists, so concurrent publishes from several processes never lose a version and a failed
publish leaves neither a tarball nor a manifest behind.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import tarfile
import zlib
from datetime import datetime, timezone
from typing import IO, Any, Mapping

from stowage.plugin import (Accepted, Action, Asset, BadRequest, Component, Conflict, DigestMismatch, Forbidden,
                            InvalidContent, NotFound, RepoRequest, Repository, StagedBlob, User)

from stowage_npm.names import (check_new_name, check_tag, check_version, scope_of, tarball_path, unscoped)
from stowage_npm.packument import SCOPES_NAMESPACE, namespace
from stowage_npm.publish_body import PublishBody, decode_base64, read_publish_body

#: base64 characters decoded per step (a multiple of 4): the attachment is never decoded whole.
_B64_CHUNK = 4 * 256 * 1024
#: the largest publish document accepted (npm's own registry refuses far smaller bodies).
MAX_PUBLISH_BYTES = 1024 * 1024 * 1024
#: the largest package.json read from a tarball.
_MAX_PACKAGE_JSON = 16 * 1024 * 1024


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def read_json(request: RepoRequest, limit: int = MAX_PUBLISH_BYTES) -> Any:
    body, length = request.require_body()
    if length is not None and length > limit:
        raise BadRequest(f"request body of {length} bytes is larger than the {limit} allowed")
    raw = body.read(limit + 1)
    if len(raw) > limit:
        raise BadRequest(f"request body is larger than the {limit} bytes allowed")
    try:
        return json.loads(raw)
    except ValueError as error:
        raise BadRequest(f"request body is not valid JSON: {error}") from None
    except RecursionError:
        raise BadRequest("request body is not valid JSON: it is nested too deeply") from None


def load(repository: Repository, name: str) -> dict[str, Any] | None:
    return repository.stowage.catalog.get_document(namespace(repository.name), name)


def _save(repository: Repository, stored: dict[str, Any]) -> None:
    """Write a package document (inside the caller's transaction) and make caches see the change."""
    catalog = repository.stowage.catalog
    stored["rev"] = int(stored.get("rev", 0)) + 1
    stored.setdefault("time", {})["modified"] = now_iso()
    catalog.put_document(namespace(repository.name), stored["name"], stored)
    scope = scope_of(stored["name"])
    if scope:
        catalog.put_document(SCOPES_NAMESPACE + repository.name, scope, True)
    catalog.bump_revision(repository.name)


def _drop(repository: Repository, name: str) -> None:
    catalog = repository.stowage.catalog
    catalog.delete_document(namespace(repository.name), name)
    scope = scope_of(name)
    if scope and not catalog.list_documents(namespace(repository.name), prefix=scope + "/"):
        catalog.delete_document(SCOPES_NAMESPACE + repository.name, scope)
    catalog.bump_revision(repository.name)


def _check_rev(stored: Mapping[str, Any], rev: str | None) -> None:
    from stowage_npm.packument import revision_id

    if rev is not None and rev != revision_id(stored):
        raise Conflict(f"document update conflict: {stored['name']} is at revision {revision_id(stored)}, "
                       f"not {rev}; fetch it again")


# -- publish --------------------------------------------------------------------------------------------

def publish(request: RepoRequest, name: str) -> dict[str, Any]:
    """``npm publish``: one new version with its tarball as a base64 attachment."""
    repository = request.repository
    body, length = request.require_body()
    if length is not None and length > MAX_PUBLISH_BYTES:
        raise BadRequest(f"request body of {length} bytes is larger than the {MAX_PUBLISH_BYTES} allowed")
    with read_publish_body(body, MAX_PUBLISH_BYTES, repository.stage) as parsed:
        return _publish(request, name, parsed)


def _publish(request: RepoRequest, name: str, parsed: PublishBody) -> dict[str, Any]:
    repository = request.repository
    document = parsed.document
    if not isinstance(document, dict):
        raise BadRequest("the publish document must be a JSON object")
    attachments = document.get("_attachments")
    if not attachments:
        return update_metadata(request, name, document, rev=None)
    check_new_name(name)
    if document.get("name", name) != name:
        raise BadRequest(f"package name {document.get('name')!r} in the document does not match {name!r} "
                         f"in the URL")
    versions = document.get("versions")
    if not isinstance(versions, dict) or len(versions) != 1 or not isinstance(attachments, dict) \
            or len(attachments) != 1:
        raise BadRequest("a publish must carry exactly one version and one tarball attachment")
    (version, manifest), = versions.items()
    check_version(version)
    if not isinstance(manifest, dict) or manifest.get("name") != name or manifest.get("version") != version:
        raise BadRequest(f"the manifest of {version} must name {name}@{version}")
    _check_new_version(repository, name, version)
    dist = manifest.get("dist") or {}
    (filename, attachment), = attachments.items()
    if not isinstance(attachment, dict) or not isinstance(attachment.get("data"), str):
        raise BadRequest(f"attachment {filename!r} has no base64 data")
    tags = document.get("dist-tags") or {"latest": version}
    if not isinstance(tags, dict) or any(v != version for v in tags.values()):
        raise BadRequest("dist-tags of a publish must point at the published version")
    for tag in tags:
        check_tag(tag)

    if parsed.streamed is not None and (parsed.streamed != filename or attachment["data"] != ""):
        # another attachment, or the same key again (JSON's last-wins would pick the later copy)
        raise BadRequest("a publish must carry exactly one version and one tarball attachment")
    # checked before it becomes a blob: a refusal stores nothing. A large attachment was decoded into its
    # staged blob while the body arrived; a small one is decoded now.
    staged = contextlib.nullcontext(parsed.tarball) if parsed.tarball is not None else repository.stage()
    with staged as tarball:
        if parsed.tarball is None:
            _decode_attachment(attachment["data"], tarball)
        del attachment["data"], document  # the base64 text is not needed any more
        size = _nonempty_size(tarball)
        if attachment.get("length") not in (None, size):
            raise BadRequest(f"attachment {filename!r} is {size} bytes, not the {attachment['length']} declared")
        digests = tarball.digests()
        _check_integrity(dist, digests["sha1"], digests["sha512"], name, version)
        with tarball.open() as stream:
            _check_package_json(stream, name, version)
        _asset, stored = _record_version(repository, request.user, name, version, manifest, tarball, tags)
    return {"ok": True, "id": name, "rev": _rev(stored)}


def publish_tarball(repository: Repository, upload: StagedBlob, user: User | None) -> Asset:
    """``POST /service/rest/v1/components`` with ``npm.asset``: publish the version the tarball's
    ``package/package.json`` names, as ``npm publish`` would (same checks, same packument update,
    ``latest`` moves to it). The tarball is checked before it becomes a blob."""
    with upload.open() as tarball:
        package = _read_package_json(tarball, upload.filename)
    name, version = package.get("name"), package.get("version")
    if not isinstance(name, str) or not isinstance(version, str):
        raise InvalidContent(f"package.json in {upload.filename} must have a string name and version")
    check_new_name(name)
    check_version(version)
    _check_new_version(repository, name, version)
    manifest = {key: value for key, value in package.items() if not key.startswith("_")}
    asset, _stored = _record_version(repository, user, name, version, manifest, upload, {"latest": version})
    return asset


def _check_new_version(repository: Repository, name: str, version: str) -> None:
    """The checks before a tarball is read: the repository takes writes of ``name``, ``version`` is new."""
    repository.check_writable(name + "/package.json", artifact_name=name)  # group/proxy, read-only, name policy
    stored = load(repository, name)
    if stored and version in stored["versions"]:
        raise Forbidden(f"cannot publish over the previously published version {name}@{version}")
    repository.check_writable(tarball_path(name, version), artifact_name=name)


def _record_version(repository: Repository, user: User | None, name: str, version: str,
                    manifest: Mapping[str, Any], tarball: StagedBlob,
                    tags: Mapping[str, str]) -> tuple[Asset, dict[str, Any]]:
    """Commit a checked tarball and add its version to the package document, in one catalog transaction."""
    digests = tarball.digests()
    sha1, sha512 = digests["sha1"], digests["sha512"]
    path = tarball_path(name, version)
    dist = manifest.get("dist") or {}
    manifest = dict(manifest)
    manifest["_id"] = f"{name}@{version}"
    manifest["dist"] = {**dist, "tarball": path, "shasum": sha1,
                        "integrity": "sha512-" + base64.b64encode(bytes.fromhex(sha512)).decode()}
    if user is not None:
        manifest["_npmUser"] = {"name": user.user_id, "email": user.email_address}
    readme = {key: manifest.pop(key) for key in ("readme", "readmeFilename") if key in manifest}
    for key in ("_attachments", "access"):  # the readme lives once, at the top level (as npmjs keeps it)
        manifest.pop(key, None)
    saved: dict[str, Any] = {}

    def add_version(asset: Asset) -> None:
        stored = load(repository, name)  # again, under the write lock: another process may have published
        if stored and version in stored["versions"]:
            raise Forbidden(f"cannot publish over the previously published version {name}@{version}")
        timestamp = now_iso()
        if stored is None:
            stored = {"name": name, "versions": {}, "dist-tags": {}, "time": {"created": timestamp}, "extra": {},
                      "rev": 0}
        stored["versions"][version] = manifest
        stored["time"][version] = timestamp
        stored["dist-tags"].update(tags)
        extra = dict(stored.get("extra") or {})
        for key in ("description", "license", "keywords", "homepage", "repository", "bugs", "author"):
            if key in manifest:
                extra[key] = manifest[key]
        extra.update(readme)
        if user is not None:
            maintainers = [m for m in extra.get("maintainers", []) if m.get("name") != user.user_id]
            extra["maintainers"] = maintainers + [{"name": user.user_id,
                                                   "email": user.email_address}]
        stored["extra"] = extra
        _save(repository, stored)
        saved["stored"] = stored

    asset = repository.commit(tarball, Accepted(
        path=path, artifact_name=name, then=add_version,
        component=Component(repository=repository.name, format="npm", name=unscoped(name),
                            group=scope_of(name).lstrip("@"), version=version),
        attributes={"npm": {"name": name, "version": version}, "uploader": user.user_id if user else None}))
    return asset, saved["stored"]


def _rev(stored: Mapping[str, Any]) -> str:
    from stowage_npm.packument import revision_id

    return revision_id(stored)


def _decode_attachment(data: str, out: StagedBlob) -> None:
    """Decode a small base64 tarball into ``out`` a piece at a time (it hashes as it receives)."""
    for start in range(0, len(data), _B64_CHUNK):
        decode_base64(data[start:start + _B64_CHUNK], out)


def _nonempty_size(tarball: StagedBlob) -> int:
    if tarball.size == 0:
        raise InvalidContent("the tarball attachment is empty")
    return tarball.size


def _check_integrity(dist: Mapping[str, Any], sha1: str, sha512: str, name: str, version: str) -> None:
    integrity = dist.get("integrity")
    if integrity:
        wanted = [entry.split("?")[0][len("sha512-"):] for entry in str(integrity).split()
                  if entry.startswith("sha512-")]
        actual = base64.b64encode(bytes.fromhex(sha512)).decode()
        if wanted and actual not in wanted:
            raise DigestMismatch(f"integrity check failed for {name}@{version}: the tarball's sha512 is "
                                 f"sha512-{actual}, the document says {integrity}")
    shasum = dist.get("shasum")
    if shasum and str(shasum).lower() != sha1:
        raise DigestMismatch(f"shasum check failed for {name}@{version}: the tarball's sha1 is {sha1}, "
                             f"the document says {shasum}")


def _check_package_json(tarball: IO[bytes], name: str, version: str) -> None:
    package = _read_package_json(tarball, f"the tarball of {name}@{version}")
    if package.get("name") != name or package.get("version") != version:
        raise InvalidContent(f"package.json in the tarball says {package.get('name')}@{package.get('version')}, "
                             f"the publish document says {name}@{version}")


def _read_package_json(tarball: IO[bytes], label: str) -> dict[str, Any]:
    """``package/package.json`` (any top directory) of a gzip'd tarball, as a JSON object.

    The whole archive is read, as ``npm install`` will: every member, then the gzip stream to its end (its
    CRC and length are checked there), so a tarball with its last bytes cut is refused, not published.
    """
    package: Any = None
    found = False
    try:
        compressed = gzip.GzipFile(fileobj=tarball, mode="rb")
        with tarfile.open(fileobj=compressed, mode="r|") as archive:
            for member in archive:
                if not member.isfile():
                    continue
                handle = archive.extractfile(member)
                parts = member.name.lstrip("./").split("/")
                if not found and len(parts) == 2 and parts[1] == "package.json":
                    if member.size > _MAX_PACKAGE_JSON:
                        raise InvalidContent(f"package.json in {label} is larger than {_MAX_PACKAGE_JSON} bytes")
                    package, found = json.loads(handle.read()) if handle else None, True
                    continue
                while handle and handle.read(1024 * 1024):
                    pass
        while compressed.read(1024 * 1024):
            pass
    except InvalidContent:
        raise
    except RecursionError:
        raise InvalidContent(f"package.json in {label} is nested too deeply") from None
    except (tarfile.TarError, OSError, EOFError, ValueError, zlib.error) as error:
        raise InvalidContent(f"{label} is not a valid gzip'd tar (truncated or corrupt: {error})") from None
    if not found:
        raise InvalidContent(f"{label} has no package/package.json")
    if not isinstance(package, dict):
        raise InvalidContent(f"package.json in {label} is not a JSON object")
    return package


# -- metadata updates: deprecate, unpublish one version -------------------------------------------------

def update_metadata(request: RepoRequest, name: str, document: Mapping[str, Any], *, rev: str | None) -> dict:
    """PUT of a packument without attachments: deprecations, dist-tags and removed versions are applied."""
    repository = request.repository
    repository.check_writable(name + "/package.json", artifact_name=name)
    incoming = document.get("versions")
    if not isinstance(incoming, dict):
        raise BadRequest("the document has no versions")
    catalog = repository.stowage.catalog
    with catalog.transaction():
        stored = load(repository, name)
        if stored is None:
            raise NotFound(f"package {name} not found in {repository.name}")
        _check_rev(stored, rev)
        added = set(incoming) - set(stored["versions"])
        if added:
            raise BadRequest(f"versions {', '.join(sorted(added))} are not published; publish them with a tarball")
        removed = set(stored["versions"]) - set(incoming)
        if removed:
            request.require(Action.DELETE)
        for version, manifest in incoming.items():
            message = manifest.get("deprecated") if isinstance(manifest, dict) else None
            if message:
                stored["versions"][version]["deprecated"] = str(message)
            else:
                stored["versions"][version].pop("deprecated", None)
        for version in removed:
            _remove_version(repository, stored, version)
        tags = document.get("dist-tags")
        if isinstance(tags, dict):
            stored["dist-tags"] = {t: v for t, v in tags.items() if v in stored["versions"]}
        if not stored["versions"]:
            _drop(repository, name)
            return {"ok": True, "id": name}
        _ensure_latest(stored)
        _save(repository, stored)
    return {"ok": True, "id": name, "rev": _rev(stored)}


def _remove_version(repository: Repository, stored: dict[str, Any], version: str) -> None:
    manifest = stored["versions"].pop(version)
    stored["time"].pop(version, None)
    stored["dist-tags"] = {t: v for t, v in stored["dist-tags"].items() if v != version}
    path = (manifest.get("dist") or {}).get("tarball") or tarball_path(stored["name"], version)
    if repository.stowage.catalog.get_asset(repository.name, path) is not None:
        repository.delete(path)


def _ensure_latest(stored: dict[str, Any]) -> None:
    if stored["versions"] and stored["dist-tags"].get("latest") not in stored["versions"]:
        stored["dist-tags"]["latest"] = max(stored["versions"], key=lambda v: stored["time"].get(v, ""))


def unpublish_package(request: RepoRequest, name: str, rev: str) -> dict:
    repository = request.repository
    repository.check_writable(name + "/package.json", artifact_name=name)
    with repository.stowage.catalog.transaction():
        stored = load(repository, name)
        if stored is None:
            raise NotFound(f"package {name} not found in {repository.name}")
        _check_rev(stored, rev)
        for version in list(stored["versions"]):
            _remove_version(repository, stored, version)
        _drop(repository, name)
    return {"ok": True, "id": name}


def delete_tarball(request: RepoRequest, name: str, path: str, rev: str | None) -> dict:
    """``DELETE <tarball>/-rev/<rev>``: the last step of ``npm unpublish pkg@ver`` (its version is gone)."""
    request.repository.check_writable(path, artifact_name=name, overwrite=True)
    if not remove_tarball(request.repository, name, path):
        raise NotFound(f"{path} not found in {request.repository.name}")
    return {"ok": True}


def remove_tarball(repository: Repository, name: str, path: str) -> bool:
    """Delete a tarball and the version that lists it (the index and the downloads must agree)."""
    with repository.stowage.catalog.transaction():
        stored = load(repository, name)
        listed = []
        if stored is not None:
            listed = [v for v, m in stored["versions"].items() if (m.get("dist") or {}).get("tarball") == path]
            for version in listed:
                _remove_version(repository, stored, version)
            if listed:
                if stored["versions"]:
                    _ensure_latest(stored)
                    _save(repository, stored)
                else:
                    _drop(repository, name)
        if repository.stowage.catalog.get_asset(repository.name, path) is not None:
            repository.delete(path)
            return True
        return bool(listed)


# -- dist-tags ------------------------------------------------------------------------------------------

def set_dist_tag(request: RepoRequest, name: str, tag: str) -> dict:
    repository = request.repository
    check_tag(tag)
    version = read_json(request, limit=1024)
    if not isinstance(version, str):
        raise BadRequest('the body must be the version as a JSON string, e.g. "1.0.0"')
    repository.check_writable(name + "/package.json", artifact_name=name)
    with repository.stowage.catalog.transaction():
        stored = load(repository, name)
        if stored is None:
            raise NotFound(f"package {name} not found in {repository.name}")
        if version not in stored["versions"]:
            raise NotFound(f"version {version} of {name} not found in {repository.name}")
        stored["dist-tags"][tag] = version
        _save(repository, stored)
    return {"ok": True, "id": name, "dist-tags": stored["dist-tags"]}


def remove_dist_tag(request: RepoRequest, name: str, tag: str) -> dict:
    repository = request.repository
    if tag == "latest":
        raise BadRequest("the latest dist-tag cannot be removed; point it at another version instead")
    repository.check_writable(name + "/package.json", artifact_name=name)
    with repository.stowage.catalog.transaction():
        stored = load(repository, name)
        if stored is None or tag not in stored["dist-tags"]:
            raise NotFound(f"dist-tag {tag} of {name} not found in {repository.name}")
        del stored["dist-tags"][tag]
        _save(repository, stored)
    return {"ok": True, "id": name, "dist-tags": stored["dist-tags"]}


