"""The proxy strategy: a cache of a remote repository.

Content paths are immutable once cached (``contentMaxAge`` only bounds revalidation); metadata paths are
revalidated after ``metadataMaxAge``. A miss streams the remote body into the blob store and commits it
only when its length checks out.
"""

from __future__ import annotations

import logging
import re
import time
from typing import TYPE_CHECKING, Any

import attrs
import urllib3

from stowage.errors import NotFound, UpstreamError, UpstreamTimeout
from stowage.models import Asset, AssetKind
from stowage.registration import MetadataBuilder
from stowage.resolver import Resolver

if TYPE_CHECKING:
    from stowage.repository import Repository

log = logging.getLogger(__name__)


def upstream_pool(repository: "Repository") -> urllib3.PoolManager:
    return repository.stowage.extension("upstream-pool", lambda: urllib3.PoolManager(num_pools=64, maxsize=32))


class ProxyResolver(Resolver):
    cacheable_documents = False

    def __init__(self, repository: "Repository"):
        super().__init__(repository)
        self.settings = repository.config.proxy

    def origin(self) -> str:
        return "proxy"

    def _max_age(self, kind: AssetKind) -> int:
        minutes = self.settings.metadata_max_age if kind is AssetKind.METADATA else self.settings.content_max_age
        return minutes

    def _fresh(self, asset: Asset, kind: AssetKind) -> bool:
        if asset.invalidated:
            return False
        minutes = self._max_age(kind)
        if kind is AssetKind.CONTENT or minutes < 0:
            return True
        return (asset.fetched_at or 0) + minutes * 60 > time.time()

    def resolve(self, path: str, kind: AssetKind = AssetKind.CONTENT, *, remote: bool = True) -> Asset | None:
        catalog = self.repository.stowage.catalog
        cached = catalog.get_asset(self.repository.name, path)
        if cached is not None and (not remote or self._fresh(cached, kind)):
            return cached
        if not remote:
            return None
        try:
            if cached is not None:
                current = self.repository.handler.revalidate(self.repository, cached, kind)
                if current:
                    return catalog.update_asset(attrs.evolve(cached, fetched_at=time.time(), invalidated=False))
            return self._fetch(path, kind)
        except NotFound:
            return None
        except UpstreamError:
            if cached is not None:
                return cached
            raise

    def _fetch(self, path: str, kind: AssetKind) -> Asset:
        handler = self.repository.handler
        url = handler.upstream_url(self.repository, path)
        timeout = urllib3.Timeout(connect=10, read=60)
        headers = handler.upstream_headers(self.repository, path, kind)
        try:
            response = upstream_pool(self.repository).request("GET", url, preload_content=False, headers=headers,
                                                              timeout=timeout, redirect=True)
            if response.status == 401:
                retry = handler.upstream_authorization(self.repository, url,
                                                       response.headers.get("WWW-Authenticate", ""))
                if retry:
                    response.drain_conn()
                    response.release_conn()
                    response = upstream_pool(self.repository).request(
                        "GET", url, preload_content=False, headers={**headers, **retry}, timeout=timeout,
                        redirect=True)
        except urllib3.exceptions.TimeoutError as error:
            raise UpstreamTimeout(f"{self.repository.name}: {url} timed out") from error
        except urllib3.exceptions.HTTPError as error:
            raise UpstreamError(f"{self.repository.name}: {url} failed: {error}") from error
        try:
            if response.status in (404, 410):
                raise NotFound(f"{path} not found upstream of {self.repository.name}")
            if response.status != 200:
                raise UpstreamError(f"{self.repository.name}: {url} answered {response.status}")
            length = response.headers.get("Content-Length")
            with self.repository.blob_store.writer() as writer:
                for chunk in response.stream(1024 * 1024):
                    writer.write(chunk)
                blob = writer.commit(expected_size=int(length) if length else None)
        except urllib3.exceptions.HTTPError as error:
            raise UpstreamError(f"{self.repository.name}: {url} failed mid-body: {error}") from error
        finally:
            response.release_conn()
        return self.repository.record(path, blob, content_type=response.headers.get("Content-Type",
                                                                                     "application/octet-stream"),
                                      kind=kind, fetched_at=time.time(), upstream_etag=response.headers.get("ETag"),
                                      upstream_last_modified=response.headers.get("Last-Modified"))

    def document(self, builder: MetadataBuilder, match: re.Match[str]) -> Any | None:
        path = builder.upstream_path(match) if builder.upstream_path else match.group(0)
        asset = self.resolve(path, AssetKind.METADATA)
        if asset is None or builder.parse is None:
            return None
        with self.repository.open(asset) as stream:
            return builder.parse(self.repository, match, stream)
