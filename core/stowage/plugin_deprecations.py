"""The names retired from ``stowage.plugin``: where each still lives and what replaces it, and which
retired names a loaded plugin still uses.

``stowage.plugin`` serves these (with a ``DeprecationWarning``) until the next ``API_VERSION``;
``docs/plugin-api.md`` ends with the same table (``tests/test_docs.py`` compares them), and
``/-/plugins.json`` lists each plugin's uses (``deprecatedNames``).
"""

from __future__ import annotations

import importlib
import sys

#: name -> (where its value lives, "module:attribute"; what to use instead). Importable until the next
#: ``API_VERSION``.
DEPRECATED: dict[str, tuple[str, str]] = {
    # retired by the validate-before-commit write API (StagedBlob is what an UploadedFile part now is)
    "UploadedFile": ("stowage.staging:StagedBlob", "StagedBlob (its .blob still commits unchecked)"),
    "PendingFile": ("stowage.staging:StagedBlob", "StagedBlob"),
    "multipart_writers": ("stowage.rest.components:receive_multipart",
                          "receive_multipart; part.open() / repository.commit(part, Accepted(...))"),
    "read_multipart": ("stowage.rest.components:read_multipart", "receive_multipart"),
    # retired by the curated API (issue #15)
    "Stowage": ("stowage.stowage", "App (the members a format may use of the app object)"),
    "Catalog": ("stowage.catalog", "CatalogAccess; a catalog implementation subclasses stowage.backends.Catalog"),
    "BlobStore": ("stowage.blobstore", "Repository.blob_store; an implementation subclasses stowage.backends.BlobStore"),
    "BlobStoreConfig": ("stowage.blobstore", "stowage.backends.BlobStoreConfig"),
    "BlobWriter": ("stowage.blobstore", "Repository.blob_store.writer(); implementations: stowage.backends"),
    "ResumableUpload": ("stowage.blobstore", "stowage.backends.ResumableUpload"),
    "Resolver": ("stowage.resolver", "Repository.resolve / Repository.metadata"),
    "proxy_name_allowed": ("stowage.resolver", "NameGuard, guard_names or group_guard"),
    "send_content": ("stowage.http.content", "RepoRequest.send_asset / RepoRequest.send_bytes"),
    "default_error_body": ("stowage.formats", "FormatHandler.render_error (call super())"),
    "NPM_TOKEN_REALM": ("stowage.realms", "nothing: core's token store owns the npm token realm"),
    "NamePolicyViolation": ("stowage.errors", "nothing: core checks name policies; catch StowageError"),
    "RepositoryOffline": ("stowage.errors", "nothing: core answers for offline repositories; catch StowageError"),
    "TooManyRequests": ("stowage.errors", "nothing: sign_in throttles; catch StowageError"),
    "RangeNotSatisfiable": ("stowage.errors", "nothing: core's send handles Range; catch StowageError"),
    "InsufficientStorage": ("stowage.errors", "nothing: core raises it for a full disk; catch StowageError"),
}


def retired_value(name: str) -> object:
    """What the retired ``name`` still is (imported on first use: some live in heavy modules)."""
    module, _, attribute = DEPRECATED[name][0].partition(":")
    return getattr(importlib.import_module(module), attribute or name)


def deprecated_names_in(plugin: object) -> list[str]:
    """The retired names the modules of ``plugin``'s package hold as imported from here (a module-level
    ``from stowage.plugin import Stowage``), each with its replacement: what breaks with the next
    ``API_VERSION``. Read from the loaded modules, so it is the same however often the app is built
    (the import-time warning fires only once per process). ``/-/plugins.json`` reports it."""
    package = (plugin.__name__ if isinstance(plugin, type(sys)) else type(plugin).__module__).partition(".")[0]
    if package == "stowage":
        return []  # core's built-in plugins are core: they use its modules directly
    found = set()
    for module_name, module in list(sys.modules.items()):
        if module_name != package and not module_name.startswith(package + "."):
            continue
        held = vars(module)
        found |= {name for name in DEPRECATED if name in held and held[name] is retired_value(name)}
    return [f"{name}: use {DEPRECATED[name][1]}" for name in sorted(found)]
