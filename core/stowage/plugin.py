"""The one import surface for format plugins. Anything not listed in ``__all__`` is not part of the plugin
API (``docs/plugin-api.md`` documents every name; storage plugins also use ``stowage.backends``).

Names retired from ``__all__`` stay importable for one ``API_VERSION`` with a ``DeprecationWarning`` that
names their replacement (the table is ``stowage.plugin_deprecations``; the policy is in ``docs/plugin-api.md``).
"""

import warnings

# -- registering: hooks and the typed objects they return ---------------------------------------------
from stowage.hookspecs import hookimpl
from stowage.registration import (API_VERSION, BackgroundJob, Endpoint, Format, Located, MetadataBuilder,
                                  MetadataCheck, MetadataProblem, Route, Task, TaskProperty, UploadField, UploadSpec)
from stowage.background import BackgroundWork, Work
from stowage.tasks import TaskContext, TaskStopped
# -- serving requests ---------------------------------------------------------------------------------
from stowage.formats import FormatHandler, UpstreamRequest
from stowage.http.auth import authenticate, sign_in
from stowage.http.paths import clean_path
from stowage.http.request import RepoRequest, external_base_url
from stowage.realms import DOCKER_TOKEN_REALM
from stowage.rest.access import require_repository
from stowage.security import Action, User
# -- the app, repositories, content and storage -------------------------------------------------------
from stowage.plugin_app import App, CatalogAccess
from stowage.repository import Repository
from stowage.models import (Asset, AssetKind, BlobInfo, Component, RepositoryConfig, RepositoryType,
                            WritePolicy)
from stowage.settings import ServerSettings
from stowage.catalog import Page
from stowage.blobstore import copy_into
from stowage.rest.components import receive_multipart
from stowage.staging import Accepted, StagedBlob
from stowage.lru import LRUCache
# -- proxies and groups -------------------------------------------------------------------------------
from stowage.proxy_flight import InFlightAsset
from stowage.proxy_upstream import request_remote
from stowage.resolver import MemberDocument, NameGuard, group_guard, guard_names, member_leaves
from stowage.plugin_deprecations import DEPRECATED, retired_value
# -- errors -------------------------------------------------------------------------------------------
from stowage.errors import (BadRequest, ConfigurationError, Conflict, DigestMismatch, Forbidden, FormatUnavailable,
                            InvalidContent, InvalidPath, MethodNotAllowed, NotFound, NotSupported, PayloadTooLarge,
                            StowageError, Unauthorized, UpstreamBlocked, UpstreamError, UpstreamTimeout,
                            WritePolicyViolation)

__all__ = [
    # registering
    "API_VERSION", "hookimpl", "Format", "Route", "MetadataBuilder", "MetadataCheck", "MetadataProblem", "Task",
    "TaskProperty", "TaskContext", "TaskStopped", "UploadSpec", "UploadField", "Endpoint", "Located",
    "BackgroundJob", "BackgroundWork", "Work",
    # serving requests
    "FormatHandler", "RepoRequest", "Action", "User", "external_base_url", "clean_path", "authenticate", "sign_in",
    "DOCKER_TOKEN_REALM", "require_repository",
    # the app, repositories, content and storage
    "App", "CatalogAccess", "Repository", "RepositoryConfig", "RepositoryType", "WritePolicy", "ServerSettings",
    "Asset", "AssetKind", "Component", "BlobInfo", "Page", "copy_into", "StagedBlob", "Accepted", "receive_multipart",
    "LRUCache",
    # proxies and groups
    "UpstreamRequest", "InFlightAsset", "request_remote", "MemberDocument", "guard_names", "NameGuard", "group_guard",
    "member_leaves",
    # errors
    "StowageError", "BadRequest", "InvalidPath", "InvalidContent", "DigestMismatch", "WritePolicyViolation",
    "ConfigurationError", "Unauthorized", "Forbidden", "NotFound", "MethodNotAllowed", "Conflict", "PayloadTooLarge",
    "NotSupported", "UpstreamError", "UpstreamBlocked", "UpstreamTimeout", "FormatUnavailable",
]


def __getattr__(name: str) -> object:
    """A retired name still works, with a warning that says what replaces it (PEP 562)."""
    try:
        _, instead = DEPRECATED[name]
    except KeyError:
        raise AttributeError(f"module 'stowage.plugin' has no attribute {name!r}") from None
    warnings.warn(f"stowage.plugin.{name} is deprecated and leaves the plugin API with the next API_VERSION; "
                  f"use {instead}", DeprecationWarning, stacklevel=2)
    return retired_value(name)


def __dir__() -> list[str]:
    return sorted(__all__)
