"""The app object as a format plugin sees it: the few members of ``Stowage`` and its catalog, security
realm, token store and audit log that a format may use, declared as protocols.

Core's :class:`~stowage.stowage.Stowage` has far more (blob store administration, repository CRUD,
sealing secrets, the plugin manager); a plugin that reached for those would break whenever core moved
them. These protocols are the promise instead: ``tests/test_plugin_app.py`` checks that the real objects
satisfy them (same parameters) and that every plugin under ``plugins/`` and ``examples/`` uses nothing
else. Nothing here exists at run time beyond the protocol classes; the objects handed to plugins are
core's own.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Protocol, Sequence, runtime_checkable

if TYPE_CHECKING:
    from stowage.blobstore import BlobStore
    from stowage.catalog import Page
    from stowage.models import Asset, AssetKind, Component
    from stowage.repository import Repository
    from stowage.security import Action, User
    from stowage.settings import ServerSettings


@runtime_checkable
class CatalogAccess(Protocol):
    """The catalog calls a format makes: its assets and components, its own documents (a namespace per
    plugin), leases for work one node at a time, and transactions around several of them."""

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        """A write transaction; nested uses join the outer one."""

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the outermost transaction commits (dropped on rollback)."""

    def revision(self, repository: str) -> int:
        """A number that changes whenever any asset of the repository changes (a cache key)."""

    def bump_revision(self, repository: str) -> int:
        """Change the revision without changing an asset (a format's derived state moved)."""

    def get_asset(self, repository: str, path: str) -> Asset | None: ...

    def update_asset(self, asset: Asset) -> Asset:
        """Rewrite an asset's bookkeeping (attributes, cache validators) without a new blob."""

    def delete_asset(self, repository: str, path: str) -> Asset | None:
        """Remove an asset's record only (``Repository.delete`` is the full delete with its events)."""

    def list_assets(self, repository: str, *, prefix: str = "", kind: AssetKind | None = None,
                    component_id: int | None = None, continuation_token: str | None = None,
                    limit: int | None = None) -> Page: ...

    def iter_assets(self, repository: str, **filters: Any) -> Iterator[Asset]:
        """Every asset matching ``list_assets``' filters, page by page."""

    def search_assets(self, *, repositories: Sequence[str] | None = None, sha256: str | None = None,
                      name: str | None = None, version: str | None = None, group: str | None = None,
                      keyword: str | None = None, continuation_token: str | None = None,
                      limit: int = 50, sort: str | None = None, direction: str = "asc",
                      checksums: Mapping[str, str] | None = None,
                      attributes: Mapping[str, str] | None = None) -> Page: ...

    def ensure_component(self, component: Component) -> Component: ...

    def get_component(self, component_id: int) -> Component | None: ...

    def find_components(self, repository: str, *, name: str | None = None, group: str | None = None,
                        version: str | None = None) -> list[Component]: ...

    def list_components(self, repository: str, *, continuation_token: str | None = None,
                        limit: int | None = None) -> Page: ...

    def get_document(self, namespace: str, key: str) -> Any | None: ...

    def put_document(self, namespace: str, key: str, value: Any) -> None: ...

    def delete_document(self, namespace: str, key: str) -> bool: ...

    def list_documents(self, namespace: str, *, prefix: str = "") -> list[tuple[str, Any]]: ...

    def acquire_lease(self, key: str, owner: str, ttl: float) -> bool:
        """Take ``key`` for ``ttl`` seconds if it is free or expired (or ours: renews it)."""

    def release_lease(self, key: str, owner: str) -> None: ...

    def lease_holder(self, key: str) -> str | None: ...


class RealmStatus(Protocol):
    def is_active(self, realm_id: str) -> bool:
        """Whether an administrator enabled the realm (Security > Realms)."""


@runtime_checkable
class SecurityAccess(Protocol):
    """Who users are, for formats that issue or check their own credentials (npm and Docker tokens)."""

    realms: RealmStatus

    @property
    def anonymous_access(self) -> bool:
        """Whether requests without credentials act as the anonymous user."""

    def get_user(self, user_id: str) -> User | None: ...

    def current_user(self, user_id: str) -> User | None:
        """``get_user`` for a credential check on every request (a token's user): cached until any user
        changes, in every process within the security decision TTL."""

    def find_user(self, user_id: str, source: str | None = None) -> User | None:
        """A user of any active realm (LDAP, ...), or of ``source`` only."""

    def holds_current_credentials(self, user: User | None, identity: str, generation: int) -> User | None:
        """``user`` if its password was not changed since a token recorded ``identity``/``generation``."""

    def is_admin(self, user: User) -> bool: ...

    def content_access(self, user: User | None, format_name: str, repository: str, action: Action) -> Any:
        """What content selector privileges grant ``user`` in ``repository`` (None: nothing)."""


@runtime_checkable
class TokenAccess(Protocol):
    """Core's token store (hashed, shared by every node): a format's own bearer tokens."""

    def issue(self, user: User, kind: str, *, audiences: tuple[str, ...] | None, lifetime: float | None,
              prefix: str = "", created_by: str = "", secret: str | None = None, name_code: str = "",
              user_realm: str = "") -> tuple[str, Any]: ...

    def owner_of(self, secret: str) -> Any: ...

    def revoke_secret(self, secret: str) -> Any: ...


@runtime_checkable
class AuditAccess(Protocol):
    def record(self, domain: str, action: str, target: str, *, user: str | None = None,
               address: str | None = None, repository: str | None = None, result: str = "success",
               attributes: Mapping[str, Any] | None = None) -> None:
        """Append one audit event; inside a catalog transaction it commits with the change."""


@runtime_checkable
class App(Protocol):
    """The application object handed to a format's handler (``FormatHandler.stowage``), to hooks that
    take ``stowage``, and reachable as ``RepoRequest.stowage`` / ``Repository.stowage``."""

    settings: ServerSettings
    #: this process's identity, unique per start: the owner to give ``catalog.acquire_lease``.
    node_id: str
    catalog: CatalogAccess
    security: SecurityAccess
    tokens: TokenAccess
    audit: AuditAccess
    #: the handler object of each format, by format name.
    handlers: Mapping[str, Any]

    def repository(self, name: str) -> Repository:
        """The configured repository ``name``; :class:`~stowage.errors.NotFound` when there is none."""

    def repositories(self) -> list[Repository]: ...

    def blob_store(self, name: str) -> BlobStore:
        """The blob store ``name`` (a repository's own is ``Repository.blob_store``)."""

    def extension(self, key: str, factory: Any) -> Any:
        """The plugin state kept under ``key`` on this app, made by ``factory()`` on first use; one with a
        ``close()`` method is closed with the app."""

    def permits(self, user: User | None, repository: Repository, action: Action) -> bool:
        """Whether the permission hooks let ``user`` (None: anonymous) do ``action`` on the whole of
        ``repository`` (a content-selector grant is ``security.content_access``)."""

    def signing_key(self, purpose: str) -> bytes:
        """A key for signing one ``purpose``'s tokens, derived from the server's secret."""


__all__ = ["App", "AuditAccess", "CatalogAccess", "RealmStatus", "SecurityAccess", "TokenAccess"]
