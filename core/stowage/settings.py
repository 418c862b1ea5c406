"""Server settings and the TOML configuration file (server, blob stores, repositories).

The file is applied at start-up: repositories it names are created or updated; an unknown key anywhere
is an error that names the key.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Mapping

import cattrs
from attrs import evolve, field, frozen

from stowage.blobstore import BlobStoreConfig
from stowage.errors import ConfigurationError
from stowage.models import RepositoryConfig
from stowage.serialization import structure

DEFAULT_DATA_DIR = "./stowage-data"


@frozen
class CatalogSettings:
    """Which catalog implementation to use (``sqlite`` and ``postgresql`` built in) and its location or DSN.

    ``[server] catalog`` is this table, or a string: a ``postgresql://`` URL or a SQLite file's path.
    """

    type: str = "sqlite"
    path: str = ""
    url: str = ""
    #: PostgreSQL: connections each process keeps at most (request threads + background workers).
    pool_size: int = 20

    @classmethod
    def parse(cls, value: str) -> "CatalogSettings":
        if value.startswith(("postgresql://", "postgres://")):
            return cls(type="postgresql", url=value)
        return cls(type="sqlite", path=value)


@frozen
class SecuritySettings:
    """The ``[security]`` table of the configuration file."""

    #: seconds a successful LDAP sign-in is reused in a process before the directory is asked again.
    ldap_auth_cache_seconds: float = 300.0

    def __attrs_post_init__(self) -> None:
        if not 0 <= self.ldap_auth_cache_seconds <= 86400:
            raise ValueError("ldapAuthCacheSeconds must be between 0 and 86400")


@frozen
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8081
    data_dir: str = DEFAULT_DATA_DIR
    #: waitress threads per process. 4, not 16: a small GET does real Python work (SQLite, permission checks,
    #: metrics), so more threads only queue on the interpreter lock (docs/performance.md, "Defaults").
    threads: int = 4
    anonymous_access: bool = True
    #: waitress refuses bodies above this; container layers reach several GiB.
    max_request_body_size: int = 64 * 1024**3
    #: the URL clients use to reach this server, when a reverse proxy does not send X-Forwarded-*.
    base_url: str = ""
    #: signs Docker bearer tokens and similar; else ``STOWAGE_SECRET_KEY``, else generated once into
    #: ``<dataDir>/secret.key`` (mode 0600). Never stored in the catalog.
    secret_key: str = field(default="", repr=False)
    #: days a token issued by ``npm login`` stays valid (a password change, disable or delete of its
    #: user revokes it sooner).
    npm_token_days: int = 90
    #: seconds a Docker bearer token stays valid (clients ask for a new one when it runs out).
    docker_token_seconds: int = 300
    #: how this node is named on the System page and in ``/status/nodes``; empty: the host name (containers
    #: often get random ones).
    node_name: str = ""
    catalog: CatalogSettings = CatalogSettings()
    #: the file's top-level ``[security]`` table (kept here so every worker process gets it).
    security: SecuritySettings = SecuritySettings()
    #: the reverse proxy whose ``X-Forwarded-*`` headers are believed (an address, or ``*``); empty: none.
    trusted_proxy: str = "127.0.0.1"
    trusted_proxy_headers: tuple[str, ...] = ("x-forwarded-proto", "x-forwarded-host", "x-forwarded-for")
    #: load failures of plugins abort start-up instead of being reported.
    strict_plugins: bool = False
    #: the request log (NCSA combined + duration) of ``stowage serve``: a path (relative: under the data
    #: directory), ``-`` for standard output, or ``off``.
    request_log: str = "log/request.log"
    #: the ``security.audit-purge`` task (daily) deletes audit events older than this; 0 keeps them all.
    audit_retention_days: float = 365.0
    #: the blobstore.compact task deletes a blob only after no asset has referenced it for this long.
    blob_gc_grace_seconds: float = 3600.0
    #: a web UI session ends after this many seconds without a request (Nexus's default: 30 minutes).
    session_idle_timeout: float = 1800.0
    #: and at the latest this many seconds after sign-in, however active.
    session_max_age: float = 43200.0
    #: how often each process looks for scheduled tasks that are due (a catalog lease runs each once).
    scheduler_interval_seconds: float = 10.0
    #: a running task renews its catalog lease every third of this; a run whose process died is marked
    #: FAILED (and the task can run again) once its lease is this old.
    task_lease_seconds: float = 60.0
    #: an asset's ``lastDownloaded`` is written at most once per this many seconds (Nexus: 12 hours).
    last_downloaded_interval_seconds: float = 12 * 3600.0
    #: downloads are recorded in batches, at most this many seconds after they happen.
    last_downloaded_flush_seconds: float = 5.0

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser().resolve()


@frozen
class ConfigFile:
    server: ServerSettings = ServerSettings()
    blob_stores: tuple[BlobStoreConfig, ...] = ()
    repositories: tuple[Mapping[str, Any], ...] = ()
    #: ``[[cleanupPolicies]]`` entries (Nexus field names), checked once plugins have said which formats exist.
    cleanup_policies: tuple[Mapping[str, Any], ...] = ()


def load_config_file(path: Path | str | None, converter: cattrs.Converter, *,
                     overrides: Mapping[str, Any] | None = None) -> ConfigFile:
    """Read the TOML file (if any), apply environment and command-line overrides.

    Repositories stay raw mappings here; they are checked once plugins have said which formats exist.
    """
    data: dict[str, Any] = {}
    if path is not None:
        try:
            with open(path, "rb") as handle:
                data = tomllib.load(handle)
        except FileNotFoundError:
            raise ConfigurationError(f"configuration file {path} does not exist") from None
        except tomllib.TOMLDecodeError as error:
            raise ConfigurationError(f"{path}: {error}") from None
    unknown = set(data) - {"server", "security", "blobStores", "repositories", "cleanupPolicies"}
    if unknown:
        raise ConfigurationError(f"{path}: unknown top-level key(s) {', '.join(sorted(unknown))}; "
                                 f"expected server, security, blobStores, cleanupPolicies, repositories")
    server_data = dict(data.get("server", {}))
    if isinstance(server_data.get("catalog"), str):
        server_data["catalog"] = converter.unstructure(CatalogSettings.parse(server_data["catalog"]))
    server = structure(converter, server_data, ServerSettings, "server")
    if "security" in data:
        server = evolve(server, security=structure(converter, data["security"], SecuritySettings, "security"))
    blob_stores = tuple(structure(converter, blob_store_entry(entry), BlobStoreConfig, f"blobStores[{i}]")
                        for i, entry in enumerate(data.get("blobStores", [])))
    repositories = data.get("repositories", [])
    if not isinstance(repositories, list) or not all(isinstance(r, Mapping) for r in repositories):
        raise ConfigurationError(f"{path}: repositories must be an array of tables ([[repositories]])")
    policies = data.get("cleanupPolicies", [])
    if not isinstance(policies, list) or not all(isinstance(p, Mapping) for p in policies):
        raise ConfigurationError(f"{path}: cleanupPolicies must be an array of tables ([[cleanupPolicies]])")
    if path is not None and not os.path.isabs(server.data_dir) and "server" in data and "dataDir" in data["server"]:
        # A data directory in the file is relative to the file, not to wherever the server was started.
        server = evolve(server, data_dir=str((Path(path).parent / server.data_dir).resolve()))
    changes = {key: value for key, value in (overrides or {}).items() if value is not None}
    if isinstance(changes.get("catalog"), str):
        changes["catalog"] = CatalogSettings.parse(changes["catalog"])
    if changes:
        server = evolve(server, **changes)
    return ConfigFile(server=server, blob_stores=blob_stores, repositories=tuple(repositories),
                      cleanup_policies=tuple(policies))


#: keys of a ``[[blobStores]]`` entry written as in the REST body, kept in ``attributes``.
NEXUS_BLOB_STORE_KEYS = ("bucketConfiguration", "softQuota")


def blob_store_entry(entry: Any) -> Any:
    """A ``[[blobStores]]`` table with the REST body's own fields (``bucketConfiguration``, ``softQuota``)
    moved into ``attributes``, where the store and the REST API keep them."""
    if not isinstance(entry, Mapping) or not any(key in entry for key in NEXUS_BLOB_STORE_KEYS):
        return entry
    entry = dict(entry)
    attributes = dict(entry.get("attributes") or {})
    for key in NEXUS_BLOB_STORE_KEYS:
        if key in entry:
            attributes[key] = entry.pop(key)
    entry["attributes"] = attributes
    return entry


def check_repositories(raw: tuple[Mapping[str, Any], ...], converter: cattrs.Converter) -> list[RepositoryConfig]:
    return [structure(converter, entry, RepositoryConfig, f"repositories[{i}]") for i, entry in enumerate(raw)]
