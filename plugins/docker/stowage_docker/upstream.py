"""Proxying a remote registry through core's proxy engine.

The engine caches and single-flights; this module tells it how registries differ from plain HTTP:
Docker Hub's ``library/`` prefix (``dockerProxy.indexType=HUB``), the ``Accept`` list for manifests, the
remote's bearer-token challenge (followed anonymously or with ``httpClient.authentication``), and the
revalidation of tags with a ``HEAD`` that compares ``Docker-Content-Digest`` (it costs no pull quota).
Digests fetched from the remote are checked against the bytes before they are served.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time


from stowage.plugin import (Asset, AssetKind, BlobInfo, InFlightAsset, NotFound, Repository, UpstreamError,
                            request_remote)
from stowage_docker import manifests

#: seconds a remote token is reused when the remote does not say (its own default is 60).
DEFAULT_TOKEN_SECONDS = 60
_PATH = re.compile(r"^v2/(?P<name>.+?)/(?P<rest>(?:manifests|blobs|tags)/.+)$")


def upstream_name(repository: Repository, name: str) -> str:
    settings = repository.config.section("dockerProxy")
    if settings is not None and settings.index_type.value == "HUB" and "/" not in name:
        return f"library/{name}"
    return name


def remote_path(repository: Repository, path: str) -> str:
    match = _PATH.match(path)
    if match is None:
        return path
    return f"v2/{upstream_name(repository, match.group('name'))}/{match.group('rest')}"


def fetch(repository: Repository, path: str, kind: AssetKind, digest: str | None, *,
          remote: bool = True, stream: bool = False) -> Asset | InFlightAsset | None:
    """The asset at ``path`` through the proxy engine (cached, or fetched), checked against ``digest``.

    With ``stream`` a miss comes back at once as an :class:`InFlightAsset` for ``send_asset``; the engine
    checks its digest (:func:`expected_digests`) before it caches anything.
    """
    path = remote_path(repository, path)
    try:
        asset = repository.resolver.resolve(path, kind, remote=remote, stream=stream)
    except NotFound:
        return None
    if asset is None or isinstance(asset, InFlightAsset):
        return asset
    catalog = repository.stowage.catalog
    if digest is not None and digest.startswith("sha256:") and asset.blob_sha256 != digest[7:]:
        catalog.delete_asset(repository.name, path)
        raise UpstreamError(f"{repository.name}: the remote sent content whose sha256 is {asset.blob_sha256} "
                            f"for {digest}; discarded")
    if kind is AssetKind.METADATA and "/manifests/" in path:
        # Keep the manifest under its digest too: pulls by digest then work while the remote is down.
        by_digest = path.rsplit("/", 1)[0] + f"/sha256:{asset.blob_sha256}"
        if catalog.get_asset(repository.name, by_digest) is None:
            repository.record(by_digest, BlobInfo(sha256=asset.blob_sha256, size=asset.size),
                              content_type=asset.content_type, kind=AssetKind.CONTENT, fetched_at=time.time())
    return asset


def remote_tags(repository: Repository, name: str) -> list[str] | None:
    asset = fetch(repository, f"v2/{name}/tags/list", AssetKind.METADATA, None)
    if asset is None:
        return None
    with repository.open(asset) as stream:
        try:
            tags = json.loads(stream.read()).get("tags") or []
        except (ValueError, AttributeError):
            raise UpstreamError(f"{repository.name}: the remote's tag list for {name} is not valid JSON") from None
    return [tag for tag in tags if isinstance(tag, str)]


# -- the engine's hooks (called through DockerHandler) ----------------------------------------------------
class UpstreamAuth:
    """Remote bearer tokens, per repository and scope, reused until they expire (per-process cache)."""

    def __init__(self) -> None:
        self.tokens: dict[tuple[str, str], tuple[str, float]] = {}
        self.lock = threading.Lock()

    def cached(self, repository: Repository, scope: str) -> str | None:
        with self.lock:
            found = self.tokens.get((repository.name, scope))
        if found and found[1] > time.time():
            return found[0]
        return None

    def basic(self, repository: Repository) -> str | None:
        client = repository.config.http_client
        auth = client.authentication if client else None
        if auth is None:
            return None
        if auth.type == "bearerToken" and auth.bearer_token:
            return f"Bearer {auth.bearer_token}"
        if auth.username:
            pair = f"{auth.username}:{auth.password or ''}".encode()
            return "Basic " + base64.b64encode(pair).decode()
        return None

    def authorize(self, repository: Repository, challenge: str) -> dict[str, str] | None:
        scheme, _, params = challenge.partition(" ")
        if scheme.lower() == "basic":
            credentials = self.basic(repository)
            return {"Authorization": credentials} if credentials else None
        if scheme.lower() != "bearer":
            return None
        values = dict(re.findall(r'(\w+)="([^"]*)"', params))
        realm = values.get("realm")
        if not realm:
            return None
        scope = values.get("scope", "")
        fields = {k: v for k, v in (("service", values.get("service")), ("scope", scope)) if v}
        headers = {}
        credentials = self.basic(repository)
        if credentials and credentials.startswith("Basic "):
            headers["Authorization"] = credentials
        # the repository's httpClient rules (timeout, connection.retries) hold for its token service too
        try:
            response = request_remote(repository, "GET", realm, fields=fields, headers=headers, timeout=30)
        except UpstreamError as error:
            raise UpstreamError(f"{repository.name}: token service {realm} failed: {error.message}") from error
        if response.status != 200:
            raise UpstreamError(f"{repository.name}: token service {realm} answered {response.status}")
        try:
            data = json.loads(response.data)
            token = data.get("token") or data["access_token"]
        except (ValueError, KeyError, AttributeError):
            raise UpstreamError(f"{repository.name}: token service {realm} sent no token") from None
        lifetime = int(data.get("expires_in") or DEFAULT_TOKEN_SECONDS)
        with self.lock:
            if len(self.tokens) > 10_000:
                self.tokens.clear()
            self.tokens[(repository.name, scope)] = (token, time.time() + max(lifetime - 10, 5))
            self.tokens[(repository.name, "")] = (token, time.time() + max(lifetime - 10, 5))
        return {"Authorization": f"Bearer {token}"}


def auth_of(repository: Repository) -> UpstreamAuth:
    return repository.stowage.extension("docker-upstream-auth", UpstreamAuth)


def scope_of(path: str) -> str:
    match = _PATH.match(path)
    return f"repository:{match.group('name')}:pull" if match else ""


def request_headers(repository: Repository, path: str, kind: AssetKind) -> dict[str, str]:
    headers = {}
    if "/manifests/" in path:
        headers["Accept"] = manifests.ACCEPT
    token = auth_of(repository).cached(repository, scope_of(path))
    if token:
        headers["Authorization"] = f"Bearer {token}"
    else:
        credentials = auth_of(repository).basic(repository)
        if credentials and credentials.startswith("Basic "):
            headers["Authorization"] = credentials
    return headers


def revalidate(repository: Repository, asset: Asset) -> bool | None:
    """A tag's cached manifest is stale: ask the remote with HEAD whether its digest moved."""
    if "/manifests/" not in asset.path:
        return None
    url = repository.config.proxy.remote_url.rstrip("/") + "/" + asset.path  # type: ignore[union-attr]
    auth = auth_of(repository)
    headers = request_headers(repository, asset.path, AssetKind.METADATA)
    response = request_remote(repository, "HEAD", url, headers=headers, timeout=30)
    if response.status == 401:
        retry = auth.authorize(repository, response.headers.get("WWW-Authenticate", ""))
        if retry:
            response = request_remote(repository, "HEAD", url, headers={**headers, **retry}, timeout=30)
    if response.status in (404, 410):
        return False
    if response.status != 200:
        raise UpstreamError(f"{repository.name}: HEAD {url} answered {response.status}")
    remote_digest = response.headers.get("Docker-Content-Digest")
    if not remote_digest:
        return False
    return remote_digest == f"sha256:{asset.blob_sha256}"


def expected_digests(path: str) -> dict[str, str]:
    """A blob or a manifest by digest must hash to that digest: the engine refuses to cache anything else."""
    match = _PATH.match(path)
    if match is None:
        return {}
    kind, _, reference = match.group("rest").partition("/")
    if kind not in ("blobs", "manifests") or not manifests.is_digest(reference):
        return {}
    algorithm, _, value = reference.partition(":")
    return {algorithm: value}


def classify(path: str) -> AssetKind:
    if path.endswith("/tags/list"):
        return AssetKind.METADATA
    if "/manifests/" in path and not manifests.is_digest(path.rsplit("/", 1)[1]):
        return AssetKind.METADATA
    return AssetKind.CONTENT


