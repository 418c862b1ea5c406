"""The catalog interface.

Everything several worker processes or nodes must agree on lives here, never in process memory: assets
and the blobs they reference, per-repository revisions (group metadata caches key on them), leases that
give single flight across processes, the remote's auto-block state, users and tokens. The SQLite
implementation serialises writers with ``BEGIN IMMEDIATE``; a PostgreSQL one would use row locks and
``INSERT ... ON CONFLICT``.
"""

from __future__ import annotations

import abc
import base64
import contextlib
from typing import Any, Callable, Iterator, Mapping, Sequence

from attrs import frozen

from stowage.errors import NotSupported
from stowage.models import Asset, AssetKind, BlobInfo, Component


@frozen
class Page:
    """One page of a listing and the token for the next (None at the end), as Nexus pages."""

    items: Sequence[Any]
    continuation_token: str | None


@frozen
class DirectoryEntry:
    """One child of a directory listing: a sub-directory (``asset`` None) or a file (its asset)."""

    name: str
    asset: Asset | None = None

    @property
    def is_directory(self) -> bool:
        return self.asset is None


def encode_resume_key(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def decode_resume_key(token: str) -> str:
    from stowage.errors import BadRequest

    try:
        # validate=True: without it foreign characters are dropped and garbage restarts the listing.
        value = base64.b64decode(token + "=" * (-len(token) % 4), altchars=b"-_", validate=True).decode()
        if not value:
            raise ValueError(token)
        return value
    except (ValueError, UnicodeDecodeError):
        raise BadRequest(f"invalid continuationToken {token!r}") from None


def row_id(value: object) -> int:
    """A row id from a continuation token: an int both catalogs can hold (bool, float, huge ints are refused)."""
    if type(value) is not int or not 0 <= value < 2 ** 63:
        raise ValueError(value)
    return value


def decode_row_id_token(token: str) -> int:
    """The row id a listing's continuation token carries; a clear 400 for anything else."""
    from stowage.errors import BadRequest

    text = decode_resume_key(token)
    try:
        if not text.isascii() or not text.isdigit():
            raise ValueError(text)
        return row_id(int(text))
    except ValueError:
        raise BadRequest(f"invalid continuationToken {token!r}") from None


@frozen
class RemoteStatus:
    """A proxy's view of its remote: consecutive failures and how long it stays auto-blocked."""

    failures: int = 0
    blocked_until: float = 0.0
    last_error: str = ""


class Catalog(abc.ABC):
    # -- transactions -------------------------------------------------------------------------------
    @abc.abstractmethod
    def transaction(self) -> contextlib.AbstractContextManager[None]:
        """A write transaction; nested uses join the outer one. Serialised across processes."""

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the outermost transaction open in this thread commits (dropped if it
        rolls back), or now when none is open. Events (``stowage_asset_stored``...) go through it so
        that a listener never sees a write that a nested transaction's caller may still undo.
        Default: now (a catalog whose transactions nest must override it)."""
        callback()

    # -- repositories -------------------------------------------------------------------------------
    @abc.abstractmethod
    def save_repository(self, name: str, format: str, type: str, config: Mapping[str, Any]) -> None: ...

    @abc.abstractmethod
    def get_repository(self, name: str) -> Mapping[str, Any] | None:
        """The stored config document of ``name`` (Nexus JSON shape), or None."""

    @abc.abstractmethod
    def list_repositories(self) -> list[Mapping[str, Any]]: ...

    @abc.abstractmethod
    def delete_repository(self, name: str) -> None:
        """Remove the repository, its assets, components and cache state (blobs are reclaimed by GC)."""

    @abc.abstractmethod
    def revision(self, repository: str) -> int:
        """A number that changes whenever any asset of the repository changes."""

    @abc.abstractmethod
    def bump_revision(self, repository: str) -> int: ...

    # -- assets -------------------------------------------------------------------------------------
    @abc.abstractmethod
    def get_asset(self, repository: str, path: str) -> Asset | None: ...

    @abc.abstractmethod
    def get_asset_by_id(self, asset_id: int) -> Asset | None: ...

    @abc.abstractmethod
    def put_asset(self, asset: Asset, blob: BlobInfo, blob_store: str, *, overwrite: bool) -> Asset:
        """Record ``blob`` and point ``asset.path`` at it, atomically; bumps the revision.

        Raises :class:`~stowage.errors.Conflict` when the path exists and ``overwrite`` is false.
        """

    @abc.abstractmethod
    def update_asset(self, asset: Asset) -> Asset:
        """Rewrite an existing asset's bookkeeping (cache validators, attributes) without a new blob."""

    @abc.abstractmethod
    def delete_asset(self, repository: str, path: str) -> Asset | None: ...

    @abc.abstractmethod
    def record_downloads(self, downloads: Sequence[tuple[int, float]], older_than: float) -> int:
        """Set ``last_downloaded`` of each (asset id, time) whose stored value is unset or older than
        ``older_than``, in one transaction; returns how many rows changed. Not a content change: the
        repository's revision stays. Gone assets are skipped."""

    @abc.abstractmethod
    def list_assets(self, repository: str, *, prefix: str = "", kind: AssetKind | None = None,
                    component_id: int | None = None, continuation_token: str | None = None,
                    limit: int | None = None) -> Page:
        """Assets ordered by path."""

    @abc.abstractmethod
    def invalidate_assets(self, repository: str, kind: AssetKind | None = AssetKind.METADATA) -> int:
        """Mark cached assets for revalidation on next use; returns how many."""

    # -- components ---------------------------------------------------------------------------------
    @abc.abstractmethod
    def ensure_component(self, component: Component) -> Component:
        """The stored component with the same (repository, group, name, version), created if needed."""

    @abc.abstractmethod
    def update_component(self, component: Component) -> Component: ...

    @abc.abstractmethod
    def get_component(self, component_id: int) -> Component | None: ...

    @abc.abstractmethod
    def find_components(self, repository: str, *, name: str | None = None, group: str | None = None,
                        version: str | None = None) -> list[Component]: ...

    @abc.abstractmethod
    def list_components(self, repository: str, *, continuation_token: str | None = None,
                        limit: int | None = None) -> Page: ...

    @abc.abstractmethod
    def delete_component(self, component_id: int) -> list[Asset]:
        """Delete the component and its assets; returns the assets removed."""

    # -- search -------------------------------------------------------------------------------------
    @abc.abstractmethod
    def search_assets(self, *, repositories: Sequence[str] | None = None, sha256: str | None = None,
                      name: str | None = None, version: str | None = None, group: str | None = None,
                      keyword: str | None = None, continuation_token: str | None = None,
                      limit: int = 50, sort: str | None = None, direction: str = "asc",
                      checksums: Mapping[str, str] | None = None,
                      attributes: Mapping[str, str] | None = None) -> Page:
        """Content assets with their component fields, for ``/service/rest/v1/search/assets``.

        :param repositories: only these repositories (None: all).
        :param checksums: ``{"sha1"|"md5"|"sha512": hex}``: the asset's blob has these checksums.
        :param attributes: ``{"yum.arch": "x86_64"}``: dotted paths into the asset's attributes and the
            string each must equal.
        :param keyword: a substring of the path or the component name (Nexus's ``q``).
        :param sort: ``group``, ``name``, ``version`` or ``repository`` (plain string order; ties by id);
            None orders by id. :class:`~stowage.errors.BadRequest` for anything else.
        :param direction: ``asc`` or ``desc``.
        :param continuation_token: from the previous page; only valid with the same filters and sort.
        """

    @abc.abstractmethod
    def search_components(self, *, repositories: Sequence[str] | None = None, sha256: str | None = None,
                          name: str | None = None, version: str | None = None, group: str | None = None,
                          keyword: str | None = None, continuation_token: str | None = None,
                          limit: int = 50, sort: str | None = None, direction: str = "asc",
                          checksums: Mapping[str, str] | None = None,
                          attributes: Mapping[str, str] | None = None) -> Page:
        """Components matching the filters (``sha256``: one of its assets has it), for ``/v1/search``.

        Parameters as :meth:`search_assets` (``checksums`` and ``attributes``: one of its assets matches);
        ``keyword`` matches the name, group or version.
        """

    # -- proxy cache state --------------------------------------------------------------------------
    @abc.abstractmethod
    def remember_missing(self, repository: str, path: str, until: float) -> None: ...

    @abc.abstractmethod
    def known_missing(self, repository: str, path: str, now: float) -> bool: ...

    @abc.abstractmethod
    def forget_missing(self, repository: str, path: str | None = None) -> None:
        """Forget one negative-cache entry, or all of the repository's when ``path`` is None."""

    @abc.abstractmethod
    def remote_status(self, repository: str) -> RemoteStatus: ...

    @abc.abstractmethod
    def save_remote_status(self, repository: str, status: RemoteStatus) -> None: ...

    # -- coordination -------------------------------------------------------------------------------
    @abc.abstractmethod
    def acquire_lease(self, key: str, owner: str, ttl: float) -> bool:
        """Take ``key`` for ``ttl`` seconds if it is free or expired (or already ours: renews it)."""

    @abc.abstractmethod
    def release_lease(self, key: str, owner: str) -> None: ...

    # -- blob pins: what a running backup or verify still has to read (blob GC respects them) ------------
    def pin_blobs(self, pin_id: str, purpose: str, ttl: float) -> float:
        """Create (or renew) the pin ``pin_id`` for ``ttl`` seconds; returns when the pin started.

        While a pin lives, blob GC keeps every blob that was referenced at or after the pin's start, so
        a backup that takes its catalog snapshot after pinning finds every blob the snapshot references.
        A crashed holder's pin simply expires.
        """
        raise NotSupported(f"{type(self).__name__} cannot pin blobs")

    def unpin_blobs(self, pin_id: str) -> None:
        raise NotSupported(f"{type(self).__name__} cannot pin blobs")

    def oldest_blob_pin(self) -> float | None:
        """The start time of the oldest unexpired pin (None: no pin); blob GC never collects a blob
        whose last reference ended after it."""
        return None

    def recorded_blobs(self) -> Iterator[str]:
        """Every blob digest the catalog has a row for (verify counts store files that are not among them)."""
        raise NotSupported(f"{type(self).__name__} cannot list its blobs")

    def snapshot(self, target: str) -> None:
        """Write a consistent copy of the whole catalog to the file ``target`` without blocking writers."""
        raise NotSupported(f"{type(self).__name__} cannot take a snapshot; back it up with its own tools")

    @abc.abstractmethod
    def lease_holder(self, key: str) -> str | None:
        """The owner of an unexpired lease on ``key``, or None."""

    # -- documents: small JSON state for plugins and core (users, tokens, upload sessions...) -------
    @abc.abstractmethod
    def get_document(self, namespace: str, key: str) -> Any | None: ...

    @abc.abstractmethod
    def put_document(self, namespace: str, key: str, value: Any) -> None: ...

    @abc.abstractmethod
    def delete_document(self, namespace: str, key: str) -> bool: ...

    @abc.abstractmethod
    def list_documents(self, namespace: str, *, prefix: str = "") -> list[tuple[str, Any]]: ...

    # -- blobs ----------------------------------------------------------------------------------------
    @abc.abstractmethod
    def unreferenced_blobs(self, older_than: float) -> list[tuple[str, str]]:
        """(sha256, blob store) of recorded blobs no asset references, untouched since ``older_than``.

        A blob's clock (``blob_created``) restarts whenever an asset starts or stops referencing it.
        """

    @abc.abstractmethod
    def forget_blob(self, sha256: str) -> None: ...

    @abc.abstractmethod
    def blob_referenced(self, sha256: str) -> bool: ...

    @abc.abstractmethod
    def blob_recorded(self, sha256: str) -> bool:
        """Whether the catalog knows the blob at all (referenced or waiting for collection)."""

    @abc.abstractmethod
    def blob_created(self, sha256: str) -> float | None:
        """When the blob was last recorded or re-referenced (the collector's grace clock), or None."""

    @abc.abstractmethod
    def blob_checksums(self, sha256s: Sequence[str]) -> dict[str, dict[str, str]]:
        """Each recorded blob's known checksums (``sha256`` and, once computed, ``md5``, ``sha1``,
        ``sha512``), by sha256. Blobs not recorded are left out."""

    @abc.abstractmethod
    def record_blob_checksums(self, sha256: str, digests: Mapping[str, str]) -> None:
        """Fill in checksums of a blob stored before they were computed at write time (never overwrites)."""

    def blobs_missing_checksums(self, limit: int) -> list[tuple[str, str]]:
        """(sha256, blob store) of up to ``limit`` recorded blobs that lack md5, sha1 or sha512."""
        return []

    @abc.abstractmethod
    def blob_store_usage(self, store: str) -> tuple[int, int]:
        """(number of blobs, total bytes) the catalog records in blob store ``store``."""

    @abc.abstractmethod
    # -- audit trail (stowage.audit) -----------------------------------------------------------------
    def append_audit(self, event: Mapping[str, Any]) -> None:
        """Append one audit event (``timestamp``, ``user``, ``address``, ``domain``, ``action``,
        ``target``, ``repository``, ``result``, ``attributes``); joins the caller's transaction if any."""
        from stowage.errors import NotSupported

        raise NotSupported(f"the {type(self).__name__} catalog keeps no audit trail")

    def prune_audit(self, before: float) -> int:
        """Delete audit events older than ``before`` (epoch seconds); returns how many."""
        from stowage.errors import NotSupported

        raise NotSupported(f"the {type(self).__name__} catalog keeps no audit trail")

    def list_audit(self, *, user: str | None = None, action: str | None = None, repository: str | None = None,
                   since: float | None = None, until: float | None = None, before_id: int | None = None,
                   limit: int = 100) -> list[dict[str, Any]]:
        """Audit events, newest first, with their ``id``; ``action`` ending in ``*`` is a prefix."""
        from stowage.errors import NotSupported

        raise NotSupported(f"the {type(self).__name__} catalog keeps no audit trail")

    def close(self) -> None: ...

    def iter_assets(self, repository: str, **filters: Any) -> Iterator[Asset]:
        """Every asset of the repository, page by page."""
        token = None
        while True:
            page = self.list_assets(repository, continuation_token=token, limit=1000, **filters)
            yield from page.items
            if page.continuation_token is None:
                return
            token = page.continuation_token

    def list_directory(self, repository: str, prefix: str = "", *, continuation_token: str | None = None,
                       limit: int = 500) -> Page:
        """The immediate children of directory ``prefix`` ("" or ending in ``/``), a page of
        :class:`DirectoryEntry` in path order (a sub-directory sorts where its first path does).

        The token resumes after the last entry: a sub-directory's contents are never read again. This
        default scans every asset below ``prefix``; catalogs override it with an index skip-scan.
        """
        resume = decode_resume_key(continuation_token) if continuation_token else prefix
        entries: list[DirectoryEntry] = []
        for asset in self.iter_assets(repository, prefix=prefix):
            if asset.path < resume:
                continue
            child, slash, _ = asset.path[len(prefix):].partition("/")
            if len(entries) == limit:
                return Page(entries, encode_resume_key(resume))
            entries.append(DirectoryEntry(child, None if slash else asset))
            resume = directory_end(prefix, child) if slash else asset.path + "\x00"
        return Page(entries, None)


def directory_end(prefix: str, child: str) -> str:
    """The smallest path after every path below ``prefix + child + "/"`` (``0`` follows ``/``)."""
    return f"{prefix}{child}0"
