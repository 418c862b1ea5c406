"""The raw format: hosted PUT/GET/HEAD/DELETE of any path, proxy and group through core's engine."""

from __future__ import annotations

import enum
import functools
import mimetypes
import posixpath
from urllib.parse import quote

import falcon
from attrs import frozen

from stowage.plugin import (Accepted, App, Asset, AssetKind, BadRequest, Component, Format, FormatHandler,
                            RepoRequest, Repository, RepositoryType, StagedBlob, Task, UploadField, UploadSpec, User,
                            WritePolicy, clean_path, hookimpl)


class ContentDisposition(enum.Enum):
    ATTACHMENT = "ATTACHMENT"
    INLINE = "INLINE"


@frozen
class RawSettings:
    content_disposition: ContentDisposition = ContentDisposition.ATTACHMENT


def content_disposition(disposition: str, filename: str) -> str:
    """``attachment; filename="..."``, plus RFC 6266 ``filename*`` when the name is not plain ASCII.

    HTTP header values are Latin-1 on the wire (WSGI refuses anything else): a UTF-8 name in ``filename``
    made every download of such a file a 500.
    """
    if filename.isascii() and filename.isprintable() and '"' not in filename and "\\" not in filename:
        return f'{disposition}; filename="{filename}"'
    fallback = "".join(ch if " " <= ch < "\x7f" and ch not in '"\\' else "_" for ch in filename)
    value = f'{disposition}; filename="{fallback}"'
    if fallback != filename:
        value += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return value


def raw_component(path: str) -> Component:
    """Nexus's raw component of a file: group = its directory (``/`` for the root), name = its full path,
    no version."""
    directory = posixpath.dirname(path)
    return Component(repository="", format="raw", group=f"/{directory}", name=path)


def guess_content_type(path: str) -> str:
    """The type a raw file is served as, from its name alone (an uploader's ``Content-Type`` is ignored:
    the server chooses what a browser may render)."""
    name = path.rpartition("/")[2]
    _, dot, suffixes = name.partition(".")
    # Only the suffixes decide the type: cached on them (a GET of a raw file runs this every time).
    return _type_of_suffixes(suffixes) if dot else "application/octet-stream"


@functools.lru_cache(maxsize=1024)
def _type_of_suffixes(suffixes: str) -> str:
    return mimetypes.guess_type("file." + suffixes, strict=False)[0] or "application/octet-stream"


#: what ``contentDisposition = INLINE`` shows in the browser, always under core's sandboxing content
#: headers (an SVG's scripts never run). HTML, XML and everything else stay attachments: documents that
#: could phish in the server's origin even without scripts.
INLINE_TYPES = frozenset({"text/plain", "text/csv", "text/markdown", "application/pdf", "application/json",
                          "image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "image/bmp",
                          "image/svg+xml",
                          "image/x-icon", "image/vnd.microsoft.icon", "video/mp4", "video/webm",
                          "audio/mpeg", "audio/ogg", "audio/wav"})


def disposition_for(settings: RawSettings, content_type: str) -> str:
    inline = settings.content_disposition is ContentDisposition.INLINE and content_type in INLINE_TYPES
    return "inline" if inline else "attachment"


class RawHandler(FormatHandler):
    methods = ("GET", "HEAD", "PUT", "DELETE")

    def on_get(self, request: RepoRequest) -> None:
        if request.path in ("", "/") or request.path.endswith("/"):
            raise falcon.HTTPFound(f"/service/rest/repository/browse/{request.repository.name}/{request.path.lstrip('/')}")
        asset = request.repository.resolve(request.path, AssetKind.CONTENT, stream=True)
        settings = request.repository.config.section("raw") or RawSettings()
        content_type = guess_content_type(asset.path)
        request.resp.set_header("Content-Disposition", content_disposition(
            disposition_for(settings, content_type), posixpath.basename(asset.path)))
        request.send_asset(asset, content_type=content_type)

    def on_put(self, request: RepoRequest) -> None:
        if not request.path or request.path.endswith("/"):
            raise BadRequest("PUT needs a file path, not a directory")
        body, length = request.require_body()
        request.repository.store(request.path, body, length=length, content_type=guess_content_type(request.path),
                                 component=raw_component(request.path),
                                 attributes={"uploader": request.user.user_id if request.user else None})
        request.resp.status = falcon.HTTP_201

    def on_delete(self, request: RepoRequest) -> None:
        request.repository.delete(request.path)
        request.resp.status = falcon.HTTP_204

    def upload_component(self, repository: Repository, fields: dict[str, str], files: list[StagedBlob],
                         user: User | None) -> list[Asset]:
        """``POST /service/rest/v1/components``: ``raw.directory``, ``raw.assetN``, ``raw.assetN.filename``."""
        directory = fields.get("raw.directory", "").strip("/")
        if not files:
            raise BadRequest("no file parts: send raw.asset1 (and raw.asset1.filename)")
        planned = []
        for upload in files:
            if not upload.field.startswith("raw.asset"):
                raise BadRequest(f"unexpected file field {upload.field!r}; use raw.assetN")
            filename = fields.get(f"{upload.field}.filename") or upload.filename
            if not filename:
                raise BadRequest(f"{upload.field}.filename is required")
            path = clean_path(f"{directory}/{filename}" if directory else filename, allow_trailing_slash=False)
            repository.check_writable(path)
            planned.append((path, upload))
        return [repository.commit(upload, Accepted(path=path, content_type=guess_content_type(path),
                                                   component=raw_component(path),
                                                   attributes={"uploader": user.user_id if user else None}))
                for path, upload in planned]


def add_missing_components(stowage: App) -> str:
    """The ``raw.components`` task: give raw files stored before raw components existed their component."""
    import attrs

    added = 0
    for repository in stowage.repositories():
        if repository.format_name != "raw" or repository.type is not RepositoryType.HOSTED:
            continue
        for asset in list(stowage.catalog.iter_assets(repository.name)):
            if asset.component_id is not None:
                continue
            with stowage.catalog.transaction():
                component = stowage.catalog.ensure_component(
                    attrs.evolve(raw_component(asset.path), repository=repository.name))
                stowage.catalog.update_asset(attrs.evolve(asset, component_id=component.id))
            added += 1
    return f"components added for {added} raw file(s)"


def raw_usage(repository: Repository, base_url: str) -> str:
    """The web UI's "how to use" text: curl downloads, and uploads for hosted repositories."""
    url = f"{base_url}/repository/{repository.name}"
    lines = ["# download", f"curl -fLO {url}/<directory>/<file>"]
    if repository.type is RepositoryType.HOSTED:
        lines += ["", "# upload (HTTP basic credentials; PUT creates the directories)",
                  f"curl -fu <user> --upload-file <file> {url}/<directory>/<file>",
                  "", "# or several files in one request through the components API",
                  "curl -fu <user> -F raw.directory=<directory> -F raw.asset1=@<file> \\",
                  "     -F raw.asset1.filename=<file> \\",
                  f"     '{base_url}/service/rest/v1/components?repository={repository.name}'",
                  "", "# delete", f"curl -fu <user> -X DELETE {url}/<directory>/<file>"]
    return "\n".join(lines)


@hookimpl
def stowage_register_tasks() -> list[Task]:
    return [Task(type="raw.components", name="Add Nexus-style components to raw files stored without one",
                 run=add_missing_components)]


@hookimpl
def stowage_register_formats() -> list[Format]:
    return [Format(name="raw", handler=RawHandler, settings={"raw": RawSettings},
                   default_write_policy=WritePolicy.ALLOW_ONCE,
                   answer_sections={"hosted": ("raw",), "proxy": ("raw",), "group": ("raw",)},
                   upload_spec=UploadSpec(
                       component_fields=(UploadField("directory", description="Destination for uploaded files "
                                                     "(e.g. /path/to/files/)"),),
                       asset_fields=(UploadField("filename", description="Filename"),), multiple_upload=True),
                   # a raw component's name is already the file's full path (its group is the directory)
                   component_name=lambda component: component.name,
                   description="Any file at any path; hosted, proxy and group.", usage=raw_usage)]
