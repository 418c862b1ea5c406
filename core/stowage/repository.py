"""A configured repository: its settings, its format's handler, and the resolver of its type."""

from __future__ import annotations

import contextlib
import fnmatch
import re
from typing import IO, TYPE_CHECKING, Any, Callable, ContextManager, Iterable, Iterator, Mapping

import attrs

from stowage.blobstore.base import DEFERRABLE_DIGESTS
from stowage.checksums import ChecksumFiller
from stowage.errors import (Conflict, FormatUnavailable, SecretUnreadable, MethodNotAllowed, NamePolicyViolation, NotFound,
                            RepositoryOffline, WritePolicyViolation)
from stowage.http.requester import uploader_attributes
from stowage.models import Asset, AssetKind, Component, RepositoryConfig, RepositoryType, WritePolicy
from stowage.registration import Format, MetadataBuilder
from stowage.staging import Accepted, StagedBlob, staged_blob

if TYPE_CHECKING:
    from stowage.blobstore import BlobStore
    from stowage.formats import FormatHandler
    from stowage.resolver import Resolver
    from stowage.stowage import Stowage


class Repository:
    def __init__(self, stowage: "Stowage", config: RepositoryConfig, format: Format | None,
                 handler: "FormatHandler | None", *, unreadable: str = ""):
        from stowage.resolver import resolver_for

        self.stowage = stowage
        self.config = config
        self.format = format
        self._handler = handler
        #: why a stored secret of this repository cannot be opened here (every request is then a 503).
        self.unreadable = unreadable
        self.resolver: "Resolver" = resolver_for(self)

    def __repr__(self) -> str:
        return f"<Repository {self.name} {self.format_name}/{self.type.value}>"

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def type(self) -> RepositoryType:
        return self.config.type

    @property
    def format_name(self) -> str:
        return self.config.format

    @property
    def handler(self) -> "FormatHandler":
        if self.unreadable:
            raise SecretUnreadable(self.unreadable)
        if self._handler is None:
            raise FormatUnavailable(f"repository {self.name} needs the {self.format_name!r} format plugin, "
                                    f"which is not installed or failed to load; its content is kept")
        return self._handler

    @property
    def blob_store(self) -> "BlobStore":
        return self.stowage.blob_store(self.config.storage.blob_store_name)

    @property
    def write_policy(self) -> WritePolicy:
        policy = self.config.storage.write_policy
        if policy is not None:
            return policy
        return self.format.default_write_policy if self.format else WritePolicy.ALLOW_ONCE

    # -- reading ----------------------------------------------------------------------------------------
    def resolve(self, path: str, kind: AssetKind = AssetKind.CONTENT, *, stream: bool = False) -> Asset:
        """The asset at ``path`` (fetched through a proxy, or from a group's members); NotFound if none.

        :param stream: pass True when the asset is only handed to ``RepoRequest.send_asset``: a proxy
            miss then returns at once an :class:`~stowage.proxy_flight.InFlightAsset` that streams the
            body while it downloads (it has no digest yet). Otherwise a miss returns after the commit.
        """
        if not self.config.online:
            raise RepositoryOffline(f"repository {self.name} is offline")
        asset = self.resolver.resolve(path, kind, stream=stream)
        if asset is None:
            raise NotFound(f"{path} not found in {self.name}")
        return asset

    def open(self, asset: Asset) -> IO[bytes]:
        """The bytes of ``asset`` (which may belong to a member repository with another blob store)."""
        from stowage.proxy_flight import InFlightAsset

        if isinstance(asset, InFlightAsset):
            return asset.open()  # type: ignore[return-value]
        owner = self if asset.repository == self.name else self.stowage.repository(asset.repository)
        return owner.blob_store.open(asset.blob_sha256)

    def download_url(self, asset: Asset, *, content_type: str) -> str | None:
        """A URL the client may download ``asset`` from directly (its blob store's presigned URL), or None."""
        from stowage.proxy_flight import InFlightAsset

        if isinstance(asset, InFlightAsset) or not asset.blob_sha256:
            return None
        owner = self if asset.repository == self.name else self.stowage.repository(asset.repository)
        return owner.blob_store.download_url(asset.blob_sha256, content_type=content_type)

    def metadata_builder(self, path: str) -> tuple[MetadataBuilder, re.Match[str]] | None:
        for builder in self.stowage.metadata_builders(self.format_name):
            match = builder.pattern.fullmatch(path)
            if match:
                return builder, match
        return None

    def metadata(self, path: str) -> Any:
        """The format's metadata document at ``path`` for this repository (cached per revision)."""
        if not self.config.online:
            raise RepositoryOffline(f"repository {self.name} is offline")
        found = self.metadata_builder(path)
        if found is None:
            raise NotFound(f"{path} is not a metadata path of the {self.format_name} format")
        document = self.metadata_for(*found)
        if document is None:
            raise NotFound(f"{path} not found in {self.name}")
        return document

    def metadata_for(self, builder: MetadataBuilder, match: re.Match[str]) -> Any | None:
        return self.stowage.metadata_cache.get_or_build(self, builder, match)

    # -- writing ----------------------------------------------------------------------------------------
    def check_writable(self, path: str, *, artifact_name: str | None = None, overwrite: bool = False) -> None:
        """Refuse writes to groups and proxies, offline or read-only repositories, and policy violations."""
        self.check_takes_writes()
        self.check_name_policy(artifact_name if artifact_name is not None else self.handler.artifact_name(path))
        if (not overwrite and self.write_policy is WritePolicy.ALLOW_ONCE
                and self.stowage.catalog.get_asset(self.name, path) is not None):
            raise WritePolicyViolation(f"Repository does not allow updating assets: {self.name} ({path})")

    def check_takes_writes(self) -> None:
        """What :meth:`check_writable` refuses whatever the path: a group or proxy, an offline or read-only
        repository. Uploads whose path only a check can tell are refused by it before a byte is read."""
        if self.type is not RepositoryType.HOSTED:
            raise MethodNotAllowed(f"repository {self.name} is a {self.type.value} repository and cannot "
                                   f"be written to; write to a hosted repository", allowed=["GET", "HEAD"])
        if not self.config.online:
            raise RepositoryOffline(f"repository {self.name} is offline")
        if self.write_policy is WritePolicy.DENY:
            raise WritePolicyViolation(f"Repository is read only: {self.name}")

    def check_name_policy(self, name: str) -> None:
        policy = self.config.name_policy
        if policy is None:
            return
        for pattern in policy.deny:
            if _name_matches(pattern, name):
                raise NamePolicyViolation(f"name {name!r} is refused by the name policy of repository "
                                          f"{self.name}: it matches the denied pattern {pattern!r}")
        if policy.allow and not any(_name_matches(pattern, name) for pattern in policy.allow):
            raise NamePolicyViolation(f"name {name!r} is refused by the name policy of repository {self.name}: "
                                      f"allowed names match {', '.join(repr(p) for p in policy.allow)}")

    def store(self, path: str, stream: IO[bytes], *, length: int | None = None,
              content_type: str = "application/octet-stream", kind: AssetKind = AssetKind.CONTENT,
              component: Component | None = None, attributes: Mapping[str, Any] | None = None,
              expected: Mapping[str, str] | None = None, extra_digests: Iterable[str] = (),
              artifact_name: str | None = None, server_managed: bool = False) -> Asset:
        """Write ``stream`` to ``path`` under the repository's policies: :meth:`write` with no check.

        The policies are checked before the body is read (a refused 1 GiB PUT reads nothing) and again
        at commit; a failure at any point leaves no visible asset.

        :param server_managed: the server itself maintains this path (generated metadata): no write or
            name policy applies, and it is replaced freely.
        """
        if not server_managed:
            self.check_writable(path, artifact_name=artifact_name)
        accepted = Accepted(path=path, content_type=content_type, kind=kind, component=component,
                            attributes=attributes or {}, artifact_name=artifact_name,
                            server_managed=server_managed)
        with self.stage(extra_digests, reread=False) as staged:
            staged.receive(stream, length)
            return self._commit(staged, accepted, expected=expected)

    # -- validate before commit (stowage.staging) --------------------------------------------------------
    def stage(self, extra_digests: Iterable[str] = (), *, reread: bool = True) -> ContextManager[StagedBlob]:
        """An empty :class:`~stowage.staging.StagedBlob` to ``write()`` or ``receive()`` into; whatever is
        not committed when the block ends is discarded. ``reread=False``: no check will read it back."""
        return staged_blob(self.blob_store.writer(extra_digests), self.stowage.settings.data_path / "tmp",
                           reread=reread)

    @contextlib.contextmanager
    def receive(self, stream: IO[bytes], length: int | None = None, *, extra_digests: Iterable[str] = (),
                max_bytes: int | None = None) -> Iterator[StagedBlob]:
        """A request body (``length`` bytes or until EOF, at most ``max_bytes``) staged for a check."""
        with self.stage(extra_digests) as staged:
            staged.receive(stream, length, max_bytes=max_bytes)
            yield staged

    def commit(self, staged: StagedBlob, accepted: Accepted) -> Asset:
        """Store checked bytes as ``accepted`` says: the write and name policy are checked for its path,
        the blob is committed, then the asset (and ``accepted.then``) recorded in one transaction, which
        re-checks ALLOW_ONCE against concurrent writers."""
        if not accepted.server_managed:
            self.check_writable(accepted.path, artifact_name=accepted.artifact_name, overwrite=accepted.replace)
        return self._commit(staged, accepted)

    def _commit(self, staged: StagedBlob, accepted: Accepted, *,
                expected: Mapping[str, str] | None = None) -> Asset:
        blob = staged.commit(expected=expected)
        with self.stowage.catalog.transaction():
            asset = self.record(accepted.path, blob, content_type=accepted.content_type, kind=accepted.kind,
                                component=accepted.component, attributes=accepted.attributes,
                                server_managed=accepted.server_managed, replace=accepted.replace)
            if accepted.then is not None:
                accepted.then(asset)
        return asset

    def write(self, stream: IO[bytes], check: Callable[[StagedBlob], Accepted], *, length: int | None = None,
              extra_digests: Iterable[str] = (), max_bytes: int | None = None) -> Asset:
        """Receive a body, let ``check`` read it (raise to refuse: nothing is stored) and say where it
        goes, then :meth:`commit` it: the whole validate-before-commit write in one call. A repository that
        takes no writes at all (:meth:`check_takes_writes`) refuses before the body is read."""
        self.check_takes_writes()
        with self.receive(stream, length, extra_digests=extra_digests, max_bytes=max_bytes) as staged:
            return self.commit(staged, check(staged))

    def record(self, path: str, blob: Any, *, content_type: str = "application/octet-stream",
               kind: AssetKind = AssetKind.CONTENT, component: Component | None = None,
               attributes: Mapping[str, Any] | None = None, server_managed: bool = False,
               replace: bool = False, **cache_fields: Any) -> Asset:
        """Point ``path`` at an already committed blob (and create its component), atomically.

        Under ``ALLOW_ONCE`` a path that exists is refused (:class:`WritePolicyViolation`) in the write's
        own transaction, so of two concurrent writes exactly one wins.

        :param replace: the format has decided this write is no update of what ``path`` holds (the same
            content pushed again; docker's ``latest`` under ``storage.latestPolicy``), so ``ALLOW_ONCE``
            lets it replace the asset. Unlike ``server_managed`` it is still a client's write, with its
            uploader recorded.
        """
        overwrite = (server_managed or replace or self.write_policy is WritePolicy.ALLOW
                     or self.type is not RepositoryType.HOSTED)
        catalog = self.stowage.catalog
        attributes = dict(attributes or {})
        if not server_managed and self.type is RepositoryType.HOSTED:
            for key, value in uploader_attributes().items():
                if attributes.get(key) is None:
                    attributes[key] = value
        asset = Asset(repository=self.name, path=path, blob_sha256=blob.sha256, size=blob.size,
                      content_type=content_type, kind=kind, attributes=attributes, **cache_fields)
        try:
            with catalog.transaction():
                if component is not None:
                    component = catalog.ensure_component(attrs.evolve(component, repository=self.name))
                    asset = attrs.evolve(asset, component_id=component.id)
                stored = catalog.put_asset(asset, blob, self.blob_store.name, overwrite=overwrite)
        except Conflict:
            raise WritePolicyViolation(f"Repository does not allow updating assets: {self.name} ({path})") from None
        # after the outermost commit: a caller's enclosing transaction may still roll this write back
        catalog.after_commit(lambda: self.stowage.plugins.hook.stowage_asset_stored(repository=self, asset=stored))
        if not DEFERRABLE_DIGESTS.issubset(getattr(blob, "digests", None) or {}):
            # a large blob is committed with sha256 only: its other checksums are computed now, off the request
            filler, store = ChecksumFiller.of(self.stowage), self.blob_store
            catalog.after_commit(lambda: filler.submit(store, blob.sha256))
        return stored

    def check_deletable(self) -> None:
        """Refuse deletes from groups (delete from a member) and from read-only hosted repositories."""
        if self.type is not RepositoryType.HOSTED and self.type is not RepositoryType.PROXY:
            raise MethodNotAllowed(f"repository {self.name} is a group; delete from its members",
                                   allowed=["GET", "HEAD"])
        if self.type is RepositoryType.HOSTED and self.write_policy is WritePolicy.DENY:
            raise WritePolicyViolation(f"Repository is read only: {self.name}")

    def delete(self, path: str) -> Asset:
        self.check_deletable()
        asset = self.stowage.catalog.delete_asset(self.name, path)
        if asset is None:
            raise NotFound(f"{path} not found in {self.name}")
        self.stowage.catalog.after_commit(
            lambda: self.stowage.plugins.hook.stowage_asset_deleted(repository=self, asset=asset))
        return asset


def _name_matches(pattern: str, name: str) -> bool:
    if pattern.startswith("re:"):
        return re.fullmatch(pattern[3:], name) is not None
    return fnmatch.fnmatchcase(name, pattern)
