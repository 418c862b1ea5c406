"""Value objects: repository configuration (in Nexus's field names once serialised), assets, components.

Configuration classes are frozen; ``stowage.serialization`` turns them into and from Nexus-shaped JSON
(camelCase keys) and TOML.
"""

from __future__ import annotations

import enum
import re
from typing import Any, Mapping

import attrs
from attrs import field, frozen

REPOSITORY_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,199}$")


class RepositoryType(enum.Enum):
    HOSTED = "hosted"
    PROXY = "proxy"
    GROUP = "group"


class WritePolicy(enum.Enum):
    ALLOW = "ALLOW"
    ALLOW_ONCE = "ALLOW_ONCE"
    DENY = "DENY"


class AssetKind(enum.Enum):
    """How the proxy engine treats a path: content never changes once cached, metadata ages."""

    CONTENT = "content"
    METADATA = "metadata"


def _check_name(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    if not REPOSITORY_NAME.match(value):
        raise ValueError(
            f"invalid {attribute.name} {value!r}: use letters, digits, '.', '-' and '_' (not starting with '.' or '-')"
        )


@frozen
class StorageSettings:
    blob_store_name: str = "default"
    strict_content_type_validation: bool = True
    #: hosted only; None means the format's default (ALLOW_ONCE, or ALLOW for docker as in Nexus).
    write_policy: WritePolicy | None = None


@frozen
class CleanupSettings:
    policy_names: tuple[str, ...] = ()


@frozen
class ProxySettings:
    remote_url: str
    #: minutes a cached content file is trusted before revalidation; -1 means forever.
    content_max_age: int = 1440
    #: minutes a cached metadata document is trusted before revalidation; -1 means forever.
    metadata_max_age: int = 1440


@frozen
class NegativeCacheSettings:
    enabled: bool = True
    #: minutes a 404 from the remote is remembered.
    time_to_live: int = 1440


@frozen
class ConnectionSettings:
    #: seconds to wait for the remote to connect or send data.
    timeout: int = 60
    retries: int = 0


@frozen
class AuthenticationSettings:
    """Credentials Stowage sends to the remote. Secrets are never returned by the REST API."""

    type: str = "username"  # "username" (basic) or "bearerToken"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    bearer_token: str | None = field(default=None, repr=False)


@frozen
class HttpClientSettings:
    blocked: bool = False
    auto_block: bool = True
    connection: ConnectionSettings = ConnectionSettings()
    authentication: AuthenticationSettings | None = None


@frozen
class GroupSettings:
    member_names: tuple[str, ...] = ()
    #: Names (globs) that proxy members may extend even though a hosted member has them. The
    #: dependency-confusion guard hides proxy versions of every other name a hosted member holds.
    allow_proxy_names: tuple[str, ...] = ()


@frozen
class NamePolicy:
    """Artifact names a hosted repository accepts. Patterns are globs, or regexes prefixed ``re:``."""

    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()


@frozen
class RepositoryConfig:
    name: str = field(validator=_check_name)
    format: str
    type: RepositoryType
    online: bool = True
    storage: StorageSettings = StorageSettings()
    cleanup: CleanupSettings | None = None
    proxy: ProxySettings | None = None
    negative_cache: NegativeCacheSettings | None = None
    http_client: HttpClientSettings | None = None
    group: GroupSettings | None = None
    name_policy: NamePolicy | None = None
    #: Format-specific sections keyed by their Nexus name (``raw``, ``docker``, ``yum``...), each an
    #: instance of the class the format declared in ``Format.settings``.
    format_settings: Mapping[str, Any] = field(factory=dict)

    def __attrs_post_init__(self) -> None:
        if self.type is RepositoryType.PROXY and self.proxy is None:
            raise ValueError("a proxy repository needs proxy.remoteUrl")
        if self.type is RepositoryType.GROUP and self.group is None:
            raise ValueError("a group repository needs group.memberNames")

    def section(self, name: str) -> Any:
        """The format-specific settings section ``name`` (e.g. ``"raw"``), or None."""
        return self.format_settings.get(name)


@frozen
class Component:
    """A versioned thing (a package release, an image tag's repository...) grouping assets."""

    repository: str
    format: str
    name: str
    version: str = ""
    group: str = ""
    id: int | None = None
    created: float = 0.0
    attributes: Mapping[str, Any] = field(factory=dict)


@frozen
class Asset:
    """One path in a repository, backed by one blob."""

    repository: str
    path: str
    blob_sha256: str
    size: int
    content_type: str = "application/octet-stream"
    kind: AssetKind = AssetKind.CONTENT
    component_id: int | None = None
    created: float = 0.0
    last_updated: float = 0.0
    attributes: Mapping[str, Any] = field(factory=dict)
    #: proxy cache bookkeeping: when the copy was last confirmed fresh, and the remote's validators.
    fetched_at: float | None = None
    upstream_etag: str | None = None
    upstream_last_modified: str | None = None
    #: set by invalidate-cache: revalidate on next use regardless of age.
    invalidated: bool = False
    id: int | None = None
    #: when the asset was last downloaded (None: never); recorded in batches, at most once per
    #: ``lastDownloadedIntervalSeconds``, so it may lag by that much.
    last_downloaded: float | None = None
    #: how a proxy answered this request (``hit``, ``miss``, ``revalidated``, ``stale``); never stored.
    #: ``send_asset`` turns it into ``X-Stowage-Cache`` (and a ``Warning`` header when stale).
    cache_status: str | None = field(default=None, eq=False)

    @property
    def etag(self) -> str:
        return self.blob_sha256


@frozen
class BlobInfo:
    """A committed blob: its sha256 (the store's key), size and any extra digests asked for."""

    sha256: str
    size: int
    digests: Mapping[str, str] = field(factory=dict)
