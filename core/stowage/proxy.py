"""The proxy strategy: a cache of a remote repository that survives the remote's outages.

For each request of a path (see ``docs/proxy-and-group.md``):

1. a cached copy younger than its max age (``proxy.contentMaxAge`` for content, ``proxy.metadataMaxAge``
   for metadata, in minutes; -1 never rechecks) is served as it is (``X-Stowage-Cache: hit``);
2. an uncached path the remote recently answered 404/410 for is not found, without asking again
   (``negativeCache``);
3. a blocked remote (``httpClient.blocked``, or auto-blocked after failures) is not contacted: a cached
   copy is served stale, an uncached path fails fast with 503;
4. otherwise one upstream request is made for every concurrent asker, in any process (see
   :mod:`stowage.proxy_flight`): a conditional one (``If-None-Match`` / ``If-Modified-Since``) when a
   stale copy exists (304: the copy is kept and its age reset, ``revalidated``), a plain one otherwise;
   a 200 body streams to the clients while it is written to the blob store and is committed only when
   its length and known digests check out (``miss``);
5. when the remote fails (refused, timeout, 5xx, 401/403/429) a cached copy is served with
   ``Warning: 110`` and ``X-Stowage-Cache: stale``; without one the client gets 502 (504 on timeout).
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
import time
from typing import TYPE_CHECKING, Any

import attrs
import urllib3

from stowage.blobstore.base import CHUNK_SIZE
from stowage.errors import DigestMismatch, InvalidContent, StowageError, UpstreamBlocked, UpstreamError
from stowage.models import Asset, AssetKind, NegativeCacheSettings
from stowage.proxy_flight import Flight, FlightTable, InFlightAsset
from stowage.proxy_upstream import (FAILURE_STATUSES, check_not_blocked, http_client_settings, record_failure,
                                    record_success, request_upstream, upstream_pool)
from stowage.registration import MetadataBuilder
from stowage.resolver import Resolver

if TYPE_CHECKING:
    from stowage.repository import Repository

log = logging.getLogger(__name__)

__all__ = ["ProxyResolver", "upstream_pool"]

#: how often a process waiting for another process's download looks at the catalog.
LEASE_POLL_SECONDS = 0.05


class ProxyResolver(Resolver):
    def __init__(self, repository: "Repository"):
        super().__init__(repository)
        self.settings = repository.config.proxy

    def origin(self) -> str:
        return "proxy"

    # -- freshness ------------------------------------------------------------------------------------
    def max_age_minutes(self, kind: AssetKind) -> int:
        settings = self.settings
        return settings.metadata_max_age if kind is AssetKind.METADATA else settings.content_max_age  # type: ignore[union-attr]

    def is_fresh(self, asset: Asset, kind: AssetKind, now: float | None = None) -> bool:
        """Whether ``asset`` may be served without asking the remote (max age, invalidate-cache)."""
        if asset.invalidated:
            return False
        minutes = self.max_age_minutes(kind)
        if minutes < 0:
            return True
        now = time.time() if now is None else now
        age = now - (asset.fetched_at or asset.last_updated or 0.0)
        return age < minutes * 60.0

    @property
    def negative_cache(self) -> NegativeCacheSettings:
        return self.repository.config.negative_cache or NegativeCacheSettings()

    def _known_missing(self, path: str, now: float) -> bool:
        return self.negative_cache.enabled and self.repository.stowage.catalog.known_missing(
            self.repository.name, path, now)

    def lease_ttl(self) -> float:
        """Seconds a fetch's lease lasts without renewal: longer than one upstream read may block."""
        return max(30.0, 2.0 * max(1, http_client_settings(self.repository).connection.timeout) + 10.0)

    # -- resolving ------------------------------------------------------------------------------------
    def cached(self, path: str, kind: AssetKind = AssetKind.CONTENT) -> Asset | None:
        cached = self.repository.stowage.catalog.get_asset(self.repository.name, path)
        if cached is not None and self.is_fresh(cached, kind):
            return attrs.evolve(cached, cache_status="hit")
        return None

    def resolve(self, path: str, kind: AssetKind = AssetKind.CONTENT, *, remote: bool = True,
                stream: bool = False) -> Asset | InFlightAsset | None:
        catalog = self.repository.stowage.catalog
        cached = catalog.get_asset(self.repository.name, path)
        now = time.time()
        if cached is not None and (not remote or self.is_fresh(cached, kind, now)):
            return attrs.evolve(cached, cache_status="hit")
        if not remote:
            return None
        if cached is None and self._known_missing(path, now):
            return None
        try:
            check_not_blocked(self.repository, now)
        except UpstreamBlocked:
            if cached is not None:
                return _stale(cached)
            raise
        return self._fetch_once(path, kind, cached, stream)

    def _fetch_once(self, path: str, kind: AssetKind, cached: Asset | None,
                    stream: bool) -> Asset | InFlightAsset | None:
        flights: FlightTable = self.repository.stowage.extension("proxy-flights", FlightTable)
        flight, leader = flights.join(f"{self.repository.name}\0{path}")
        if leader:
            try:
                self._lead(flights, flight, path, kind, cached)
            except BaseException as error:
                flight.finish(error=error if isinstance(error, StowageError) else
                              UpstreamError(f"fetching {path} for {self.repository.name} failed: {error}"))
                flights.end(flight)
                raise
        if stream:
            flight.wait_started()
            if flight.can_stream():
                return InFlightAsset(self.repository.name, path, flight.size, flight.content_type, flight)
        flight.wait_done()
        if flight.error is not None:
            if cached is not None:
                log.warning("%s: serving a stale copy of %s: %s", self.repository.name, path, flight.error.message)
                return _stale(cached)
            raise flight.error
        if flight.asset is None:  # a real 404/410 upstream
            # A copy we already hold keeps being served: builds that used it stay reproducible.
            return _stale(cached) if cached is not None else None
        return flight.asset

    def _lead(self, flights: FlightTable, flight: Flight, path: str, kind: AssetKind, cached: Asset | None) -> None:
        """Become the one fetcher of ``path`` across processes, or take another process's outcome."""
        stowage = self.repository.stowage
        catalog = stowage.catalog
        lease = f"proxy-fetch:{self.repository.name}:{path}"
        owner = flight.owner = f"{stowage.node_id}#{secrets.token_hex(4)}"
        while True:
            acquired = catalog.acquire_lease(lease, owner, self.lease_ttl())
            if not acquired:
                while catalog.lease_holder(lease) not in (None, owner):
                    time.sleep(LEASE_POLL_SECONDS)
            # Whoever held the lease may have fetched what we want (also right after we acquired it:
            # another process can commit and release between our first look and the lease).
            current = catalog.get_asset(self.repository.name, path)
            if current is not None and _newer(current, cached) and self.is_fresh(current, kind):
                outcome: Asset | None = attrs.evolve(current, cache_status="hit")
            elif current is None and cached is None and self._known_missing(path, time.time()):
                outcome = None
            elif acquired:
                break
            else:
                try:
                    check_not_blocked(self.repository)
                except UpstreamBlocked as error:
                    flight.finish(error=error)
                    flights.end(flight)
                    return
                continue  # the other process failed: try ourselves
            if acquired:
                catalog.release_lease(lease, owner)
            flight.finish(asset=outcome)
            flights.end(flight)
            return
        thread = threading.Thread(target=self._download, args=(flights, flight, path, kind, cached, lease),
                                  name=f"stowage-proxy-{self.repository.name}", daemon=True)
        thread.start()

    def _download(self, flights: FlightTable, flight: Flight, path: str, kind: AssetKind, cached: Asset | None,
                  lease: str) -> None:
        """Runs in its own thread, holding the lease: the client that started it may go away."""
        stowage = self.repository.stowage
        try:
            self._exchange(flight, path, kind, cached, lease)
        except StowageError as error:
            flight.finish(error=error)
        except Exception as error:  # never leave waiters hanging
            log.exception("%s: fetching %s failed", self.repository.name, path)
            flight.finish(error=UpstreamError(f"fetching {path} for {self.repository.name} failed: {error}"))
        finally:
            if flight.state != "done":
                flight.finish(error=UpstreamError(f"fetching {path} for {self.repository.name} was interrupted"))
            try:
                stowage.catalog.release_lease(lease, flight.owner)
            finally:
                flights.end(flight)

    def _exchange(self, flight: Flight, path: str, kind: AssetKind, cached: Asset | None, lease: str) -> None:
        repository = self.repository
        catalog = repository.stowage.catalog
        if cached is not None:
            # The format may know a cheaper or more exact check (a registry compares digests with HEAD).
            try:
                current = repository.handler.revalidate(repository, cached, kind)
            except UpstreamError as error:
                record_failure(repository, error.message)
                raise
            if current:
                record_success(repository)
                refreshed = catalog.update_asset(attrs.evolve(cached, fetched_at=time.time(), invalidated=False))
                flight.finish(asset=attrs.evolve(refreshed, cache_status="revalidated"))
                return
            if current is False:
                cached = None  # changed: fetch it whole, without a conditional request
        headers = {}
        if cached is not None:
            if cached.upstream_etag:
                headers["If-None-Match"] = cached.upstream_etag
            if cached.upstream_last_modified:
                headers["If-Modified-Since"] = cached.upstream_last_modified
        try:
            # the format is asked once per miss: URL, headers and expected digests together
            upstream = repository.handler.upstream_request(repository, path, kind)
            response = request_upstream(repository, path, headers=headers, kind=kind, upstream=upstream)
        except UpstreamError as error:
            record_failure(repository, error.message)
            raise
        try:
            status = response.status
            if status == 304 and cached is not None:
                record_success(repository)
                refreshed = catalog.update_asset(attrs.evolve(
                    cached, fetched_at=time.time(), invalidated=False,
                    upstream_etag=response.headers.get("ETag") or cached.upstream_etag,
                    upstream_last_modified=response.headers.get("Last-Modified") or cached.upstream_last_modified))
                flight.finish(asset=attrs.evolve(refreshed, cache_status="revalidated"))
                return
            if status in (404, 410):
                record_success(repository)
                negative = self.negative_cache
                if negative.enabled and negative.time_to_live != 0:
                    ttl = negative.time_to_live * 60.0 if negative.time_to_live > 0 else 10 * 365 * 86400.0
                    catalog.remember_missing(repository.name, path, time.time() + ttl)
                flight.finish(asset=None)
                return
            if status != 200:
                message = (f"the remote of {repository.name} answered {status} {response.reason or ''}".rstrip()
                           + f" for {path}")
                if status in FAILURE_STATUSES:
                    record_failure(repository, message)
                raise UpstreamError(message)
            record_success(repository)
            self._receive(flight, response, path, kind, lease, dict(upstream.expected_digests))
        finally:
            if response.status == 304 or (response.status == 200 and flight.committed):
                response.release_conn()  # body fully read: the connection goes back to the pool
            else:
                response.close()
                response.release_conn()

    def _receive(self, flight: Flight, response: urllib3.BaseHTTPResponse, path: str, kind: AssetKind,
                 lease: str, expected: dict[str, str]) -> None:
        repository = self.repository
        stowage = repository.stowage
        length_header = response.headers.get("Content-Length")
        length = int(length_header) if length_header and length_header.isdigit() else None
        content_type = response.headers.get("Content-Type") or "application/octet-stream"
        store = repository.blob_store
        ttl = self.lease_ttl()
        with store.writer([name for name in expected if name != "sha256"]) as writer:
            flight.streaming(length, content_type, writer.open_partial,
                             lambda: store.open(flight.asset.blob_sha256))  # type: ignore[union-attr]
            renewed = time.monotonic()
            try:
                for chunk in response.stream(CHUNK_SIZE, decode_content=False):
                    writer.write(chunk)
                    flight.progress(writer.size)
                    if time.monotonic() - renewed > ttl / 3:
                        stowage.catalog.acquire_lease(lease, flight.owner, ttl)
                        renewed = time.monotonic()
            except (urllib3.exceptions.HTTPError, OSError) as error:
                raise UpstreamError(f"the remote of {repository.name} broke off {path} after {writer.size} "
                                    f"bytes: {error}; nothing was cached") from error
            try:
                blob = writer.commit(expected_size=length, expected=expected)
            except (InvalidContent, DigestMismatch) as error:  # the remote's fault, not the client's: 502
                raise UpstreamError(f"the remote of {repository.name} sent a bad body for {path}: "
                                    f"{error.message}; nothing was cached") from error
        asset = repository.record(path, blob, content_type=content_type, kind=kind, fetched_at=time.time(),
                                  upstream_etag=response.headers.get("ETag"),
                                  upstream_last_modified=response.headers.get("Last-Modified"))
        flight.finish(asset=attrs.evolve(asset, cache_status="miss"))

    # -- metadata documents ---------------------------------------------------------------------------
    def _document_path(self, builder: MetadataBuilder, match: re.Match[str]) -> str:
        return builder.upstream_path(match) if builder.upstream_path else match.group(0)

    def document_key(self, builder: MetadataBuilder, match: re.Match[str]) -> Any:
        """Revalidates the upstream document when it is stale; keys on the bytes it now holds."""
        try:
            asset = self.resolve(self._document_path(builder, match), AssetKind.METADATA)
        except StowageError:
            return object()  # nothing usable now: never reuse a cached document for this
        return None if asset is None else ("blob", asset.blob_sha256)

    def document(self, builder: MetadataBuilder, match: re.Match[str]) -> Any | None:
        """The parsed upstream document. The metadata cache calls :meth:`document_key` first, which
        revalidated the upstream copy, so the stored copy is used as it is here."""
        path = self._document_path(builder, match)
        asset = self.resolve(path, AssetKind.METADATA, remote=False) or self.resolve(path, AssetKind.METADATA)
        if asset is None or builder.parse is None:
            return None
        with self.repository.open(asset) as stream:  # type: ignore[arg-type]
            return builder.parse(self.repository, match, stream)


def _stale(asset: Asset) -> Asset:
    return attrs.evolve(asset, cache_status="stale")


def _newer(current: Asset, cached: Asset | None) -> bool:
    if cached is None:
        return True
    return (current.blob_sha256, current.fetched_at) != (cached.blob_sha256, cached.fetched_at)
