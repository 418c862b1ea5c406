"""The yum format: hosted RPM repositories with server-generated repodata, proxies of any yum
repository, and groups that merge their members' repodata.

Requests:

- hosted: ``PUT <path>/<name>-<ver>-<rel>.<arch>.rpm`` (validated: a real RPM whose header agrees with the
  file name), ``DELETE``, ``GET``; ``repodata/`` is generated in the background
  (see :mod:`stowage_yum.regeneration`).
- proxy: core's engine; ``repomd.xml`` is metadata (``metadataMaxAge``), checksum-named repodata files
  and RPMs are immutable content.
- group: ``repodata/`` merged (see :mod:`stowage_yum.group`); everything else from the first member.
"""

from __future__ import annotations

import posixpath
import re

import falcon

from stowage.plugin import (App, Asset, AssetKind, BackgroundJob, BadRequest, Component, Format, FormatHandler,
                            NotFound, RepoRequest, Repository, RepositoryType, StagedBlob, Task, TaskContext,
                            TaskProperty, UploadField, UploadSpec, User, WritePolicy, clean_path, hookimpl)

from stowage_yum import hosted, regeneration, signing
from stowage_yum.group import group_file
from stowage_yum.settings import (YumSettings, YumSigningSettings, is_repodata_path, root_of, signing_settings,
                                  yum_settings)
from stowage_yum.state import RPM_CONTENT_TYPE, is_rpm, request_regeneration

_REPODATA = re.compile(r"^(?P<root>(?:[^/]+/)*)repodata/(?P<name>[^/]+)$")
_RPM_FILENAME = re.compile(r"(?P<name>.+)-[^-/]+-[^-/]+\.[^./]+\.d?rpm")
_CHECKSUM_NAMED = re.compile(r"^[0-9a-f]{32,128}-[^/]+$")


class YumHandler(FormatHandler):
    methods = ("GET", "HEAD", "PUT", "DELETE")

    # -- reads --------------------------------------------------------------------------------------------
    def on_get(self, request: RepoRequest) -> None:
        repository = request.repository
        match = _REPODATA.match(request.path)
        if match is not None and repository.type is not RepositoryType.PROXY:
            root, name = match.group("root"), match.group("name")
            if name == "repomd.xml.key":
                self._send_public_key(request)
                return
            if repository.type is RepositoryType.GROUP:
                found = group_file(repository, root, name)
                if found is None:
                    raise NotFound(f"{request.path} not found in {repository.name}")
                request.send_bytes(found[0], found[1])
                return
            if name == "repomd.xml":
                # The hot path is one asset lookup; only a root never generated (a new or empty
                # repository) pays for the regenerator's check, on the 404 it would otherwise get.
                try:
                    asset = repository.resolve(request.path, AssetKind.METADATA)
                except NotFound:
                    regeneration.ensure(repository, root)
                else:
                    request.send_asset(asset)
                    return
        asset = repository.resolve(request.path, self.classify(request.path), stream=True)  # a proxy miss streams
        content_type = None
        if asset.path.endswith(".rpm"):
            content_type = RPM_CONTENT_TYPE
        request.send_asset(asset, content_type=content_type)

    def _send_public_key(self, request: RepoRequest) -> None:
        settings = signing_settings(request.repository)
        if settings is None:
            raise NotFound(f"repository {request.repository.name} does not sign its repodata")
        request.send_bytes(signing.public_key(self.stowage, settings), "application/pgp-keys")

    # -- writes -------------------------------------------------------------------------------------------
    def on_put(self, request: RepoRequest) -> None:
        body, length = request.require_body()
        hosted.store_upload(request.repository, request.path, body, length, request.user)
        request.resp.status = falcon.HTTP_201

    def on_delete(self, request: RepoRequest) -> None:
        if request.repository.type is not RepositoryType.HOSTED:
            self._not_allowed(request)
        hosted.delete_path(request.repository, request.path)
        request.resp.status = falcon.HTTP_204

    def upload_component(self, repository: Repository, fields: dict[str, str], files: list[StagedBlob],
                         user: User | None) -> list[Asset]:
        """``POST /service/rest/v1/components``: ``yum.directory``, ``yum.asset``, ``yum.asset.filename``."""
        uploads = [f for f in files if f.field == "yum.asset"]
        if len(uploads) != 1 or len(files) != 1:
            raise BadRequest("send exactly one file part named yum.asset (with yum.asset.filename)")
        upload = uploads[0]
        filename = fields.get("yum.asset.filename") or upload.filename
        if not filename or "/" in filename:
            raise BadRequest("yum.asset.filename must be a file name (put directories in yum.directory)")
        directory = fields.get("yum.directory", "").strip("/")
        path = clean_path(f"{directory}/{filename}" if directory else filename, allow_trailing_slash=False)
        return [hosted.store_staged(repository, path, upload, user)]

    def delete_asset(self, repository: Repository, asset: Asset) -> None:
        hosted.delete_path(repository, asset.path)

    def delete_component(self, repository: Repository, component: Component) -> None:
        for asset in list(self.stowage.catalog.iter_assets(repository.name, component_id=component.id)):
            hosted.delete_path(repository, asset.path)

    def version_key(self, component: Component) -> object:
        """rpm's order of (epoch, version, release); every release string is a release."""
        from stowage_yum.vercmp import evr_key

        version, _, release = component.version.rpartition("-")
        return evr_key((str(component.attributes.get("epoch") or 0), version, release))

    def rebuild_index(self, repository: Repository) -> None:
        if repository.type is RepositoryType.HOSTED:
            regeneration.rebuild(repository)

    # -- proxy engine ---------------------------------------------------------------------------------------
    def classify(self, path: str) -> AssetKind:
        """RPMs and checksum-named repodata files never change; ``repomd.xml`` and the rest age."""
        name = posixpath.basename(path)
        if name.endswith((".rpm", ".drpm")):
            return AssetKind.CONTENT
        if is_repodata_path(path) and _CHECKSUM_NAMED.match(name):
            return AssetKind.CONTENT
        return AssetKind.METADATA

    def expected_digests(self, repository: Repository, path: str) -> dict[str, str]:
        """The sha256/sha512 the cached upstream primary.xml lists for an RPM (see :mod:`stowage_yum.proxy`)."""
        from stowage_yum.proxy import expected_digests

        return expected_digests(repository, path)

    def artifact_name(self, path: str) -> str:
        return posixpath.basename(path)

    def package_name(self, path: str) -> str | None:
        """The rpm name of a ``<name>-<version>-<release>.<arch>.rpm`` path (core's group guard); a
        group's merged repodata hides the same names."""
        match = _RPM_FILENAME.fullmatch(posixpath.basename(path))
        return match.group("name") if match else None


def _dirty_root_for(repository: Repository, asset: Asset) -> str | None:
    if repository.format_name != "yum" or repository.type is not RepositoryType.HOSTED:
        return None
    if not is_rpm(asset.path):
        return None
    return root_of(asset.path, yum_settings(repository).repodata_depth)


@hookimpl
def stowage_register_formats() -> list[Format]:
    return [Format(name="yum", handler=YumHandler, settings={"yum": YumSettings, "yumSigning": YumSigningSettings},
                   default_write_policy=WritePolicy.ALLOW_ONCE,
                   secret_settings=("yumSigning.keypair", "yumSigning.passphrase"),
                   answer_sections={"hosted": ("yum",)}, required_sections={"hosted": ("yum",)},
                   upload_spec=UploadSpec(
                       component_fields=(UploadField("directory", description="Destination directory "
                                                     "(e.g. el9/x86_64/)", optional=True),),
                       asset_fields=(UploadField("filename", description="Filename", optional=True),)),
                   description="yum/RPM: hosted with generated repodata, proxy, and merged groups.")]


def rebuild_all(stowage: App, context: TaskContext) -> str:
    """The ``yum.rebuild-metadata`` task: ``rebuild-index`` of one (``repositoryName``) or every hosted yum
    repository."""
    wanted = context.properties.get("repositoryName")
    rebuilt: list[str] = []
    for repository in stowage.repositories():
        if repository.format_name == "yum" and repository.type is RepositoryType.HOSTED and \
                wanted in (None, "*", repository.name):
            context.check_stopped()
            context.progress(f"rebuilt {len(rebuilt)} repositories; now {repository.name}")
            regeneration.rebuild(repository)
            rebuilt.append(repository.name)
    return f"rebuilt yum metadata of {len(rebuilt)} repositories: {', '.join(rebuilt) or 'none'}"


@hookimpl
def stowage_register_tasks() -> list[Task]:
    return [Task(type="yum.rebuild-metadata", name="Rebuild yum metadata", run=rebuild_all,
                 properties=[TaskProperty("repositoryName", "Repository (empty or *: every hosted yum repository)",
                                          type="repository")])]


@hookimpl
def stowage_register_background_jobs() -> list[BackgroundJob]:
    return [regeneration.background_job()]


@hookimpl
def stowage_app_started(stowage: App) -> None:
    regeneration.adopt_old_markers(stowage)


@hookimpl
def stowage_asset_deleted(repository: Repository, asset: Asset) -> None:
    """A backstop: an RPM removed by any path (cleanup tasks, other APIs) still updates the repodata."""
    root = _dirty_root_for(repository, asset)
    if root is not None:
        request_regeneration(repository, root, asset.path)


@hookimpl
def stowage_register_metadata_checks() -> list:
    from stowage_yum.verify import metadata_checks

    return metadata_checks()
