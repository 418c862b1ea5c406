"""Every extension point of Stowage, in one place.

Hooks run at start-up (registration) or at decisions that have one answer (``firstresult``: "Stops at the
first non-None result"; None means "no opinion"). Per-request work is never a hook broadcast: a request
finds its repository's :class:`~stowage.formats.FormatHandler` and calls it directly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from stowage.blobstore import BlobStore, BlobStoreConfig
    from stowage.catalog import Catalog
    from stowage.models import Asset
    from stowage.registration import BackgroundJob, Format, MetadataBuilder, MetadataCheck, Route, Task
    from stowage.repository import Repository
    from stowage.security import Action, User
    from stowage.settings import ServerSettings
    from stowage.plugin_app import App

PROJECT = "stowage"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# ---------------------------------------------------------------------------------------------------------
# Start-up and registration
# ---------------------------------------------------------------------------------------------------------

@hookspec
def stowage_register_formats() -> list["Format"]:
    """Return the repository formats this plugin provides.

    :return: a list of :class:`~stowage.registration.Format`; names must be unique across plugins.
    """


@hookspec
def stowage_register_routes() -> list["Route"]:
    """Return extra HTTP routes (outside ``/repository/<repo>/``), e.g. the Docker ``/v2/`` API.

    :return: a list of :class:`~stowage.registration.Route`; a path two plugins claim is refused.
    """


@hookspec
def stowage_register_metadata_builders() -> list["MetadataBuilder"]:
    """Return builders of format metadata (simple index, packument, repodata, tag lists).

    :return: a list of :class:`~stowage.registration.MetadataBuilder`, each bound to a format.
    """


@hookspec
def stowage_register_tasks() -> list["Task"]:
    """Return maintenance tasks (garbage collection, metadata rebuilds) for ``/service/rest/v1/tasks``.

    :return: a list of :class:`~stowage.registration.Task`; a ``type`` two plugins claim is refused.
    """


@hookspec
def stowage_register_metadata_checks() -> list["MetadataCheck"]:
    """Return checks that a format's generated metadata agrees with its assets (``stowage verify``).

    :return: a list of :class:`~stowage.registration.MetadataCheck`, each bound to a format.
    """


@hookspec
def stowage_register_background_jobs() -> list["BackgroundJob"]:
    """Return the background work a format does per repository (index rebuilds, repodata regeneration).

    :return: a list of :class:`~stowage.registration.BackgroundJob`; a ``name`` two plugins claim is refused.
    """


@hookspec(firstresult=True)
def stowage_catalog(settings: "ServerSettings") -> "Catalog | None":
    """Build the metadata catalog the server uses. Stops at the first non-None result.

    :param settings: the server settings (data directory, ``catalog`` section).
    :return: a :class:`~stowage.catalog.Catalog`, or None to leave the choice to another plugin.
    """


@hookspec(firstresult=True)
def stowage_blob_store(config: "BlobStoreConfig", settings: "ServerSettings") -> "BlobStore | None":
    """Build the blob store ``config`` describes. Stops at the first non-None result.

    :param config: one ``[[blobStores]]`` entry (name, type, path, attributes).
    :param settings: the server settings, for the data directory.
    :return: a :class:`~stowage.blobstore.BlobStore` if this plugin handles ``config.type``, else None.
    """


@hookspec
def stowage_app_started(stowage: "App") -> None:
    """Called once the app object is wired and repositories are loaded; start background work here.

    :param stowage: the application object (what a plugin may use of it: :class:`~stowage.plugin_app.App`).
    """


# ---------------------------------------------------------------------------------------------------------
# Decisions
# ---------------------------------------------------------------------------------------------------------

@hookspec(firstresult=True)
def stowage_authenticate(stowage: "App", scheme: str, credentials: str) -> "User | None":
    """Identify the caller from an ``Authorization`` header. Stops at the first non-None result.

    :param stowage: the application object (catalog, security realm).
    :param scheme: the header's scheme, lower-cased (``basic``, ``bearer``).
    :param credentials: the rest of the header.
    :return: the :class:`~stowage.security.User`, or None when this plugin does not recognise them. A
        token's user carries ``realm`` (its realm id) and ``audiences`` (where it is good: ``rest`` or
        format names; None for a password); core checks them, and throttles and logs every attempt.
    """


@hookspec(firstresult=True)
def stowage_permission(user: "User | None", repository: "Repository", action: "Action") -> "bool | None":
    """Decide whether ``user`` (None: anonymous) may ``action`` on ``repository``.

    Stops at the first non-None result.

    :param user: the authenticated user, or None.
    :param repository: the repository addressed.
    :param action: ``read``, ``write`` or ``delete``.
    :return: True to allow, False to deny, None for no opinion.
    """


# ---------------------------------------------------------------------------------------------------------
# Events (broadcast; return values ignored). They run in the process that made the change.
# ---------------------------------------------------------------------------------------------------------

@hookspec
def stowage_asset_stored(repository: "Repository", asset: "Asset") -> None:
    """An asset was written (uploaded, or cached by a proxy).

    :param repository: where.
    :param asset: the stored asset (with its id and blob digest).
    """


@hookspec
def stowage_asset_deleted(repository: "Repository", asset: "Asset") -> None:
    """An asset was deleted.

    :param repository: where.
    :param asset: the asset as it was.
    """


@hookspec
def stowage_repository_changed(stowage: "App", name: str, config: Any) -> None:
    """A repository was created or updated (``config`` is its RepositoryConfig) or deleted (None).

    :param stowage: the application object (what a plugin may use of it: :class:`~stowage.plugin_app.App`).
    :param name: the repository name.
    :param config: the new :class:`~stowage.models.RepositoryConfig`, or None when deleted.
    """
