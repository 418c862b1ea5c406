"""The application object: the one place that holds state (catalog, blob stores, repositories, plugins).

There is no module-level mutable state anywhere else; tests build as many of these as they like.
"""

from __future__ import annotations

import copy
import logging
import os
import secrets
import threading
import time
from typing import Any, Iterable

import attrs
import cattrs

from stowage.audit import AuditLog
from stowage.blobstore import BlobStore, BlobStoreConfig
from stowage.catalog import Catalog
from stowage.data_permissions import warn_if_open
from stowage.errors import ConfigurationError, NotFound, RepositoryNotFound, SecretUnreadable, StowageError
from stowage.ldap.realm import LDAP_REALM, LdapRealm
from stowage.ldap.servers import SECRETS as LDAP_SECRETS, SERVERS as LDAP_SERVERS
from stowage.metadata_cache import MetadataCache
from stowage.models import RepositoryConfig, RepositoryType
from stowage.pluginmanager import PluginManager
from stowage.registration import MetadataBuilder
from stowage.repository import Repository
from stowage.sealed import Sealer, SealError, is_sealed, transform_paths
from stowage.secret_key import derive_key, load_secret_key
from stowage.security import Action, SecurityRealm, User
from stowage.signin import SignInGuard
from stowage.serialization import make_converter, structure
from stowage.settings import ServerSettings
from stowage.tokens import TokenStore

log = logging.getLogger(__name__)

CONFIG_GENERATION = ("stowage", "config-generation")
#: blob stores created at run time (``POST /service/rest/v1/blobstores/file``): one document per store.
BLOB_STORES = "blobstores"
#: secrets of a repository document, sealed in the catalog (plus each format's ``secret_settings``).
REPOSITORY_SECRETS = ("httpClient.authentication.password", "httpClient.authentication.bearerToken")
#: secrets of a run-time blob store's document (an S3 store's credentials).
BLOB_STORE_SECRETS = tuple(f"attributes.bucketConfiguration.bucketSecurity.{key}"
                           for key in ("secretAccessKey", "sessionToken"))
DEFAULT_BLOB_STORE = BlobStoreConfig(name="default", type="File", path="default")


class Stowage:
    #: seconds a process trusts its copy of the repository configurations before re-reading the catalog
    #: generation (other nodes' changes are seen within this delay).
    CONFIG_RECHECK_SECONDS = 1.0

    def __init__(self, settings: ServerSettings, plugins: PluginManager, *,
                 blob_stores: Iterable[BlobStoreConfig] = ()):
        self.settings = settings
        self.plugins = plugins
        self.converter: cattrs.Converter = make_converter(plugins.formats)
        self.node_id = f"{os.uname().nodename}:{os.getpid()}:{secrets.token_hex(4)}"
        settings.data_path.mkdir(mode=0o700, parents=True, exist_ok=True)
        warn_if_open(settings.data_path)
        catalog = plugins.hook.stowage_catalog(settings=settings)
        if catalog is None:
            raise ConfigurationError(f"no plugin provides a catalog of type {settings.catalog.type!r}")
        self.catalog: Catalog = catalog
        #: loaded before anything can serve a request, so no worker ever lacks it (see stowage.secret_key).
        self._secret_key = load_secret_key(settings.secret_key, settings.data_path)
        #: seals the secrets the catalog keeps (see stowage.sealed): a catalog copy does not reveal them.
        self.sealer = Sealer(self._secret_key)
        if settings.catalog.type != "sqlite" and not (settings.secret_key or os.environ.get("STOWAGE_SECRET_KEY")):
            # A shared catalog means other nodes: each would sign with its own generated key.
            log.warning("the %s catalog is shared by every node: give them all the same [server] secretKey "
                        "(or STOWAGE_SECRET_KEY), or tokens signed on one node fail on the others",
                        settings.catalog.type)
        self.security = SecurityRealm(self.catalog, anonymous_access=settings.anonymous_access)
        self.security.password_realms[LDAP_REALM] = LdapRealm(
            self.catalog, settings.security.ldap_auth_cache_seconds, sealer=self.sealer)
        self.tokens = TokenStore(self.catalog, self.security)
        self.signins = SignInGuard(self.catalog)
        #: the audit trail (``stowage.audit.record(...)``): see :mod:`stowage.audit`.
        self.audit = AuditLog(self.catalog)
        self.metadata_cache = MetadataCache()
        self.handlers = {name: fmt.handler(self) for name, fmt in plugins.formats.items()}
        self._blob_lock = threading.RLock()
        self._blob_store_configs: dict[str, BlobStoreConfig] = {}
        self._blob_stores: dict[str, BlobStore] = {}
        #: run-time stores the catalog holds but this process cannot open, and why (answered for them).
        self._unopenable_blob_stores: dict[str, StowageError] = {}
        for config in (DEFAULT_BLOB_STORE, *blob_stores):
            self.add_blob_store(config)
        #: stores from the configuration file (and ``default``): not deletable at run time.
        self.configured_blob_stores = frozenset(self._blob_store_configs)
        self.seal_stored_secrets()
        self._sync_blob_stores()
        self._repositories: dict[str, Repository] = {}
        self._generation: Any = None
        self._checked_at = 0.0
        self._lock = threading.RLock()
        self._extensions: dict[str, Any] = {}

    # -- blob stores ------------------------------------------------------------------------------------
    def add_blob_store(self, config: BlobStoreConfig) -> BlobStore:
        store = self.plugins.hook.stowage_blob_store(config=config, settings=self.settings)
        if store is None:
            raise ConfigurationError(f"blob store {config.name!r}: no plugin handles type {config.type!r}")
        self._blob_store_configs[config.name] = config
        self._blob_stores[config.name] = store
        return store

    def blob_store(self, name: str) -> BlobStore:
        try:
            return self._blob_stores[name]
        except KeyError:
            self._sync_blob_stores()  # created on another node since we last looked?
        try:
            return self._blob_stores[name]
        except KeyError:
            if name in self._unopenable_blob_stores:
                raise self._unopenable_blob_stores[name] from None
            raise ConfigurationError(f"blob store {name!r} does not exist") from None

    def blob_stores(self) -> dict[str, BlobStore]:
        self._sync_blob_stores()
        return dict(self._blob_stores)

    def blob_store_config(self, name: str) -> BlobStoreConfig:
        """The store's current settings (re-read from the catalog: another node may have changed them)."""
        self._sync_blob_stores()
        self.blob_store(name)
        return self._blob_store_configs[name]

    def _sync_blob_stores(self) -> None:
        """Open the stores other nodes created through the REST API; drop the ones they deleted."""
        stored = {key: value for key, value in self.catalog.list_documents(BLOB_STORES)}
        with self._blob_lock:
            for name, data in stored.items():
                if name in self.configured_blob_stores:
                    continue
                try:
                    config = structure(self.converter, self._unseal_blob_store(name, data), BlobStoreConfig,
                                       f"blob store {name}")
                    if name not in self._blob_stores:
                        self.add_blob_store(config)
                    elif config != self._blob_store_configs[name]:  # its quota changed on another node
                        self._blob_store_configs[name] = config
                        self._blob_stores[name].config = config
                    self._unopenable_blob_stores.pop(name, None)
                except (ConfigurationError, SecretUnreadable) as error:
                    if name not in self._unopenable_blob_stores:
                        log.error("blob store %s cannot be opened: %s", name, error.message)
                    self._unopenable_blob_stores[name] = error
            for name in set(self._unopenable_blob_stores) - set(stored):
                del self._unopenable_blob_stores[name]
            for name in set(self._blob_stores) - set(stored) - self.configured_blob_stores:
                self._blob_stores.pop(name, None)
                self._blob_store_configs.pop(name, None)

    def create_blob_store(self, config: BlobStoreConfig) -> BlobStore:
        """Create a store at run time; it is kept in the catalog, so it survives restarts on every node."""
        with self.catalog.transaction():
            self._sync_blob_stores()
            if config.name in self._blob_stores:
                raise ConfigurationError(f"blob store {config.name} already exists")
            store = self.add_blob_store(config)
            self.catalog.put_document(BLOB_STORES, config.name, self._sealed_blob_store(config))
        return store

    def update_blob_store(self, config: BlobStoreConfig) -> None:
        """Change a run-time store's settings (its soft quota); its type and path cannot change."""
        with self.catalog.transaction():
            current = self.blob_store_config(config.name)
            if config.name in self.configured_blob_stores:
                raise ConfigurationError(f"blob store {config.name} is declared in the configuration file; "
                                         f"change it there")
            if (current.type.lower(), current.path) != (config.type.lower(), config.path):
                raise ConfigurationError(f"blob store {config.name}: the type and path cannot change")
            self.catalog.put_document(BLOB_STORES, config.name, self._sealed_blob_store(config))
            self._blob_store_configs[config.name] = config
            self._blob_stores[config.name].config = config

    def blob_store_users(self, name: str) -> list[str]:
        """Repositories whose ``storage.blobStoreName`` is ``name``."""
        return [r["name"] for r in self.catalog.list_repositories()
                if r.get("storage", {}).get("blobStoreName", DEFAULT_BLOB_STORE.name) == name]

    def delete_blob_store(self, name: str) -> None:
        """Forget a run-time store that no repository uses. Its files stay on disk (delete them by hand)."""
        with self.catalog.transaction():
            self.blob_store(name)
            if name in self.configured_blob_stores:
                raise ConfigurationError(f"blob store {name} is declared in the configuration file (or is the "
                                         f"default); remove it there")
            users = self.blob_store_users(name)
            if users:
                raise ConfigurationError(f"blob store {name} is used by repository(ies) {', '.join(users)}")
            self.catalog.delete_document(BLOB_STORES, name)
            with self._blob_lock:
                self._blob_stores.pop(name, None)
                self._blob_store_configs.pop(name, None)

    def _sealed_blob_store(self, config: BlobStoreConfig) -> dict[str, Any]:
        document = self.converter.unstructure(config)
        transform_paths(document, BLOB_STORE_SECRETS, self.sealer.seal)
        return document

    def _unseal_blob_store(self, name: str, data: dict[str, Any]) -> dict[str, Any]:
        document = copy.deepcopy(data)
        try:
            transform_paths(document, BLOB_STORE_SECRETS, self.sealer.unseal)
        except SealError as error:
            raise SecretUnreadable(f"blob store {name}: its S3 credentials cannot be read: {error}") from None
        return document

    # -- secrets kept in the catalog ---------------------------------------------------------------------
    def seal(self, value: str) -> str:
        """``value`` sealed for the catalog (see :mod:`stowage.sealed`)."""
        return self.sealer.seal(value)

    def unseal(self, text: str) -> str:
        """The clear value of a sealed ``text`` (a legacy clear value as it is); raises SealError."""
        return self.sealer.unseal(text)

    def _repository_secrets(self, format_name: str) -> tuple[str, ...]:
        fmt = self.plugins.formats.get(format_name)
        return REPOSITORY_SECRETS + (tuple(fmt.secret_settings) if fmt is not None else ())

    def seal_stored_secrets(self) -> int:
        """Seal the secrets still stored in clear (written before they were sealed); returns how many
        documents changed. One catalog transaction: workers starting together each find nothing left to do
        after the first, and a value is never sealed twice (sealing a sealed value keeps it)."""
        changed = 0
        with self.catalog.transaction():
            for data in self.catalog.list_repositories():
                document = copy.deepcopy(dict(data))
                if transform_paths(document, self._repository_secrets(document.get("format", "")),
                                   self.sealer.seal):
                    self.catalog.save_repository(document["name"], document["format"], document["type"], document)
                    changed += 1
            for namespace, paths in ((LDAP_SERVERS, LDAP_SECRETS), (BLOB_STORES, BLOB_STORE_SECRETS)):
                for key, value in self.catalog.list_documents(namespace):
                    if isinstance(value, dict) and transform_paths(value, paths, self.sealer.seal):
                        self.catalog.put_document(namespace, key, value)
                        changed += 1
            if changed:
                self._bump_generation()
        if changed:
            log.info("sealed the clear-text secrets of %d catalog document(s)", changed)
        return changed

    # -- extensions: per-app state a plugin keeps (its caches, background workers) -----------------------
    def extension(self, key: str, factory: Any) -> Any:
        """The plugin object stored under ``key`` on this app, created by ``factory()`` on first use."""
        with self._lock:
            if key not in self._extensions:
                self._extensions[key] = factory()
            return self._extensions[key]

    def permits(self, user: User | None, repository: Repository, action: Action) -> bool:
        """Whether the permission hooks (``stowage_permission``) let ``user`` (None: anonymous) do
        ``action`` on ``repository`` as a whole (content-selector grants are ``security.content_access``)."""
        return bool(self.plugins.hook.stowage_permission(user=user, repository=repository, action=action))

    def signing_key(self, purpose: str) -> bytes:
        """The key that signs and verifies tokens of one ``purpose`` (derived from the server's secret)."""
        return derive_key(self._secret_key, purpose)

    # -- formats and metadata -----------------------------------------------------------------------------
    def metadata_builders(self, format_name: str) -> list[MetadataBuilder]:
        return [b for b in self.plugins.metadata_builders if b.format == format_name]

    # -- repositories -----------------------------------------------------------------------------------
    def _refresh(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._checked_at < self.CONFIG_RECHECK_SECONDS and self._generation is not None:
            return
        generation = self.catalog.get_document(*CONFIG_GENERATION)
        self._checked_at = now
        if generation == self._generation and self._generation is not None:
            return
        repositories = {}
        for data in self.catalog.list_repositories():
            repository = self._build(data)
            repositories[repository.name] = repository
        with self._lock:
            self._repositories = repositories
            self._generation = generation
        self.metadata_cache.clear()

    def _build(self, data: dict) -> Repository:
        fmt = self.plugins.formats.get(data.get("format", ""))
        data = copy.deepcopy(data)
        unreadable = ""
        try:
            transform_paths(data, self._repository_secrets(data.get("format", "")), self.sealer.unseal)
        except SealError as error:
            # Served as a 503 naming the cause; the secret is dropped, never used as garbage.
            unreadable = f"repository {data.get('name', '')}: a stored secret cannot be read: {error}"
            log.error("%s", unreadable)
            transform_paths(data, self._repository_secrets(data.get("format", "")),
                            lambda value: "" if is_sealed(value) else value)
        try:
            config = structure(self.converter, data, RepositoryConfig, data.get("name", ""))
        except ConfigurationError:
            if fmt is not None:
                raise
            # The format's plugin is gone: keep serving a 503 for it with the settings core understands.
            core_only = {k: v for k, v in data.items() if k in _CORE_KEYS}
            config = structure(self.converter, core_only, RepositoryConfig, data.get("name", ""))
        return Repository(self, config, fmt, self.handlers.get(config.format), unreadable=unreadable)

    def repository(self, name: str) -> Repository:
        self._refresh()
        try:
            return self._repositories[name]
        except KeyError:
            pass
        # Not known here: it may have been created a moment ago through another worker or node, and a
        # script that creates a repository then uses it must not get a 404 for a second. Only the
        # generation is re-read (one point lookup); the configuration is rebuilt only if it moved.
        self._refresh(force=True)
        try:
            return self._repositories[name]
        except KeyError:
            raise RepositoryNotFound(f"repository {name} does not exist") from None

    def repositories(self) -> list[Repository]:
        self._refresh()
        return sorted(self._repositories.values(), key=lambda r: r.name)

    def parse_repository(self, data: Any, where: str = "") -> RepositoryConfig:
        fmt = data.get("format") if isinstance(data, dict) else None
        if fmt not in self.plugins.formats:
            known = ", ".join(sorted(self.plugins.formats)) or "none installed"
            raise ConfigurationError(f"{where or 'repository'}: unknown format {fmt!r} (installed: {known})")
        config = structure(self.converter, data, RepositoryConfig, where)
        expand = self.plugins.formats[fmt].expand_remote_url
        if expand is not None and config.proxy is not None:
            remote_url = expand(config.proxy.remote_url)
            if remote_url != config.proxy.remote_url:
                config = attrs.evolve(config, proxy=attrs.evolve(config.proxy, remote_url=remote_url))
        return config

    def save_repository(self, config: RepositoryConfig, *, create: bool | None = None) -> Repository:
        """Create or update a repository after checking it against the others (group members, cycles)."""
        with self.catalog.transaction():
            exists = self.catalog.get_repository(config.name) is not None
            if create is True and exists:
                raise ConfigurationError(f"repository {config.name} already exists")
            if create is False and not exists:
                raise RepositoryNotFound(f"repository {config.name} does not exist")
            if exists:
                current = self.catalog.get_repository(config.name)
                if current["format"] != config.format or current["type"] != config.type.value:
                    raise ConfigurationError(
                        f"repository {config.name} is {current['format']}/{current['type']}; its format and "
                        f"type cannot change")
            self._check(config)
            document = self.converter.unstructure(config)
            transform_paths(document, self._repository_secrets(config.format), self.sealer.seal)
            self.catalog.save_repository(config.name, config.format, config.type.value, document)
            self._bump_generation()
        self._checked_at = 0.0
        repository = self.repository(config.name)
        self.plugins.hook.stowage_repository_changed(stowage=self, name=config.name, config=config)
        return repository

    def delete_repository(self, name: str) -> None:
        with self.catalog.transaction():
            if self.catalog.get_repository(name) is None:
                raise RepositoryNotFound(f"repository {name} does not exist")
            users = [r["name"] for r in self.catalog.list_repositories()
                     if name in r.get("group", {}).get("memberNames", ())]
            if users:
                raise ConfigurationError(f"repository {name} is a member of group(s) {', '.join(users)}; "
                                         f"remove it from them first")
            self.catalog.delete_repository(name)
            self._bump_generation()
        self._checked_at = 0.0
        self.plugins.hook.stowage_repository_changed(stowage=self, name=name, config=None)

    def _bump_generation(self) -> None:
        current = self.catalog.get_document(*CONFIG_GENERATION) or 0
        self.catalog.put_document(*CONFIG_GENERATION, current + 1)

    def _check(self, config: RepositoryConfig) -> None:
        from stowage.cleanup_policies import CleanupPolicies

        if config.format not in self.plugins.formats:
            raise ConfigurationError(f"repository {config.name}: format {config.format!r} is not installed")
        CleanupPolicies.of(self).check_repository(config)
        if config.storage.blob_store_name not in self.blob_stores():
            raise ConfigurationError(f"repository {config.name}: blob store {config.storage.blob_store_name!r} "
                                     f"does not exist")
        fmt = self.plugins.formats[config.format]
        if fmt.port_of is not None:
            port = fmt.port_of(config)
            if port is not None:
                if port == self.settings.port:
                    raise ConfigurationError(f"repository {config.name}: port {port} is the main port")
                for other in self.catalog.list_repositories():
                    if other["name"] != config.name and other["format"] == config.format:
                        other_port = fmt.port_of(self.parse_repository(other))
                        if other_port == port:
                            raise ConfigurationError(
                                f"repository {config.name}: port {port} is already used by {other['name']}")
        if config.type is not RepositoryType.GROUP:
            return
        stored = {r["name"]: r for r in self.catalog.list_repositories()}
        stored[config.name] = self.converter.unstructure(config)
        for member in config.group.member_names:  # type: ignore[union-attr]
            if member not in stored:
                raise ConfigurationError(f"group {config.name}: member {member!r} does not exist")
            if stored[member]["format"] != config.format:
                raise ConfigurationError(f"group {config.name}: member {member!r} is a {stored[member]['format']} "
                                         f"repository, not {config.format}")
        cycle = _find_cycle(config.name, stored)
        if cycle:
            raise ConfigurationError(f"group {config.name}: members form a cycle: {' -> '.join(cycle)}")

    # -- lifecycle --------------------------------------------------------------------------------------
    def close(self) -> None:
        for extension in self._extensions.values():
            close = getattr(extension, "close", None)
            if callable(close):
                close()
        self.catalog.close()


_CORE_KEYS = {"name", "format", "type", "online", "storage", "cleanup", "proxy", "negativeCache", "httpClient",
              "group", "namePolicy"}


def _find_cycle(start: str, repositories: dict[str, dict]) -> list[str] | None:
    def members(name: str) -> list[str]:
        return list(repositories.get(name, {}).get("group", {}).get("memberNames", ()))

    path: list[str] = []

    def visit(name: str) -> list[str] | None:
        if name in path:
            return path[path.index(name):] + [name]
        path.append(name)
        for member in members(name):
            found = visit(member)
            if found:
                return found
        path.pop()
        return None

    return visit(start)


