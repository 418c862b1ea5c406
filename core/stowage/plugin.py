"""The one import surface for plugins. Anything not listed in ``__all__`` is not part of the plugin API."""

from stowage.background import BackgroundWork, Work
from stowage.blobstore import BlobStore, BlobStoreConfig, BlobWriter, ResumableUpload, copy_into
from stowage.catalog import Catalog, Page
from stowage.errors import (BadRequest, ConfigurationError, Conflict, DigestMismatch, Forbidden,
                            FormatUnavailable, InsufficientStorage, InvalidContent, InvalidPath, MethodNotAllowed,
                            NamePolicyViolation, NotFound, NotSupported, PayloadTooLarge,
                            RangeNotSatisfiable, RepositoryOffline, StowageError, TooManyRequests, Unauthorized,
                            UpstreamBlocked, UpstreamError, UpstreamTimeout, WritePolicyViolation)
from stowage.formats import FormatHandler, UpstreamRequest, default_error_body
from stowage.hookspecs import hookimpl
from stowage.http.auth import authenticate, sign_in
from stowage.http.content import send_content
from stowage.lru import LRUCache
from stowage.http.paths import clean_path
from stowage.http.request import RepoRequest, external_base_url
from stowage.models import (Asset, AssetKind, BlobInfo, Component, RepositoryConfig, RepositoryType,
                            WritePolicy)
from stowage.registration import (API_VERSION, BackgroundJob, Endpoint, Format, Located, MetadataBuilder, MetadataCheck, MetadataProblem, Route, Task,
                                  TaskProperty, UploadField, UploadSpec)
from stowage.repository import Repository
from stowage.proxy_flight import InFlightAsset
from stowage.proxy_upstream import request_remote
from stowage.resolver import (MemberDocument, NameGuard, Resolver, group_guard, guard_names, member_leaves,
                              proxy_name_allowed)
from stowage.rest.access import require_repository
from stowage.rest.components import read_multipart as _read_multipart, receive_multipart
from stowage.realms import DOCKER_TOKEN_REALM, NPM_TOKEN_REALM
from stowage.security import Action, User
from stowage.settings import ServerSettings
from stowage.staging import Accepted, StagedBlob
from stowage.stowage import Stowage
from stowage.tasks import TaskContext, TaskStopped

__all__ = [
    "API_VERSION", "Accepted", "Action", "Endpoint", "Located", "member_leaves", "Asset", "AssetKind",
    "BackgroundJob", "BackgroundWork", "BadRequest",
    "BlobInfo", "BlobStore", "BlobStoreConfig",
    "BlobWriter", "Catalog", "Component", "ConfigurationError", "Conflict", "DOCKER_TOKEN_REALM", "DigestMismatch",
    "Forbidden", "Format", "FormatHandler", "FormatUnavailable", "InFlightAsset", "InsufficientStorage",
    "InvalidContent", "InvalidPath", "LRUCache",
    "MemberDocument", "MetadataBuilder", "MetadataCheck", "MetadataProblem", "MethodNotAllowed", "NPM_TOKEN_REALM",
    "NameGuard", "NamePolicyViolation", "NotFound", "NotSupported", "Page", "PayloadTooLarge",
    "RangeNotSatisfiable", "RepoRequest", "Repository", "RepositoryConfig", "RepositoryOffline", "RepositoryType",
    "Resolver", "ResumableUpload", "Route", "ServerSettings", "StagedBlob", "Stowage", "StowageError", "Task", "TaskContext",
    "TaskProperty", "TaskStopped", "TooManyRequests", "Unauthorized", "UploadField", "UploadSpec", "UpstreamBlocked",
    "UpstreamError", "UpstreamRequest", "UpstreamTimeout", "User", "Work", "WritePolicy", "WritePolicyViolation", "authenticate", "clean_path",
    "copy_into", "default_error_body", "external_base_url", "group_guard", "guard_names", "hookimpl",
    "receive_multipart", "request_remote", "require_repository", "proxy_name_allowed", "send_content", "sign_in",
]


#: names retired by the validate-before-commit write API, still importable (with a DeprecationWarning)
#: until the next API_VERSION; docs/plugin-api.md lists their replacements.
_DEPRECATED = {
    "UploadedFile": ("StagedBlob", lambda: StagedBlob),
    "PendingFile": ("StagedBlob", lambda: StagedBlob),
    "multipart_writers": ("receive_multipart", lambda: receive_multipart),
    "read_multipart": ("receive_multipart", lambda: _read_multipart),
}


def __getattr__(name: str) -> object:
    if name in _DEPRECATED:
        import warnings

        replacement, value = _DEPRECATED[name]
        warnings.warn(f"stowage.plugin.{name} is deprecated; use {replacement} (docs/plugin-api.md)",
                      DeprecationWarning, stacklevel=2)
        return value()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
