"""``/service/rest/v1/components`` and ``/assets``: list, read, delete, and multipart upload.

Uploaded file parts are streamed into the blob store as they arrive (never held in memory), then the
format's handler turns the fields and files into assets with ``upload_component``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
from typing import TYPE_CHECKING, Any, Iterator

import falcon
from attrs import frozen

from stowage.blobstore import BlobWriter, copy_into
from stowage.errors import BadRequest, Forbidden, NotFound
from stowage.http.request import external_base_url
from stowage.models import Asset, BlobInfo, Component
from stowage.rest import V1
from stowage.rest.access import repository_access, require_repository, visible_items
from stowage.security import Action
from stowage.serialization import iso_time

if TYPE_CHECKING:
    from stowage.repository import Repository
    from stowage.stowage import Stowage


@frozen
class UploadedFile:
    """One file part of a component upload, already committed to the repository's blob store."""

    field: str
    filename: str
    content_type: str
    blob: BlobInfo


def encode_id(repository: str, kind: str, number: int) -> str:
    return base64.urlsafe_b64encode(f"{repository}:{kind}:{number}".encode()).decode().rstrip("=")


def decode_id(value: str, kind: str) -> tuple[str, int]:
    try:
        repository, found_kind, number = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode().rsplit(":", 2)
        if found_kind != kind or not number.isascii() or not number.isdigit() or int(number) >= 2 ** 63:
            raise ValueError(kind)  # a row id SQLite can hold, or the id names nothing
        return repository, int(number)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise NotFound(f"{kind} {value} not found") from None


def asset_json(req: falcon.Request, stowage: "Stowage", asset: Asset, format_name: str) -> dict[str, Any]:
    checksum = {"sha256": asset.blob_sha256}
    checksum.update(asset.attributes.get("checksum", {}))
    return {
        "downloadUrl": f"{external_base_url(req, stowage)}/repository/{asset.repository}/{asset.path}",
        "path": asset.path,
        "id": encode_id(asset.repository, "asset", asset.id or 0),
        "repository": asset.repository,
        "format": format_name,
        "checksum": checksum,
        "contentType": asset.content_type,
        "lastModified": iso_time(asset.last_updated),
        "blobCreated": iso_time(asset.created),
        "lastDownloaded": iso_time(asset.last_downloaded),
        "fileSize": asset.size,
        "uploader": asset.attributes.get("uploader"),
    }


def component_json(req: falcon.Request, stowage: "Stowage", component: Component) -> dict[str, Any]:
    assets = stowage.catalog.list_assets(component.repository, component_id=component.id).items
    return {
        "id": encode_id(component.repository, "component", component.id or 0),
        "repository": component.repository,
        "format": component.format,
        "group": component.group or None,
        "name": component.name,
        "version": component.version or None,
        "assets": [asset_json(req, stowage, a, component.format) for a in assets],
    }


def _repository_param(req: falcon.Request, stowage: "Stowage") -> "Repository":
    name = req.get_param("repository")
    if not name:
        raise BadRequest("the repository query parameter is required")
    return stowage.repository(name)


class ComponentsResource:
    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        repository = _repository_param(req, self.stowage)
        repository_access(req, self.stowage, repository, Action.READ)
        page = self.stowage.catalog.list_components(repository.name, continuation_token=req.get_param(
            "continuationToken"), limit=100)
        resp.media = {"items": visible_items(req, [component_json(req, self.stowage, c) for c in page.items]),
                      "continuationToken": page.continuation_token}

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        repository = _repository_param(req, self.stowage)
        user = require_repository(req, self.stowage, repository, Action.WRITE)
        if not repository.handler.supports("upload_component"):
            raise BadRequest(f"the {repository.format_name} format does not support component uploads")
        fields, files = read_multipart(req, repository)
        repository.handler.upload_component(repository, fields, files, user)
        resp.status = falcon.HTTP_204


@frozen
class PendingFile:
    """One file part of a multipart upload, written to a blob writer that is not committed yet.

    Validate it through ``writer.open_partial()``, then commit it (``writer.commit()``).
    """

    field: str
    filename: str
    content_type: str
    writer: BlobWriter


def read_multipart(req: falcon.Request, repository: "Repository") -> tuple[dict[str, str], list[UploadedFile]]:
    """The form fields and the file parts of a multipart body, each file committed as a blob."""
    with multipart_writers(req, repository) as (fields, pending):
        files = [UploadedFile(field=part.field, filename=part.filename, content_type=part.content_type,
                              blob=part.writer.commit()) for part in pending]
    return fields, files


@contextlib.contextmanager
def multipart_writers(req: falcon.Request, repository: "Repository"
                      ) -> Iterator[tuple[dict[str, str], list[PendingFile]]]:
    """As :func:`read_multipart`, but file parts stay uncommitted (:class:`PendingFile`) inside the block;
    whatever the block does not commit is discarded when it ends, so a refused upload leaves nothing."""
    if not (req.content_type or "").startswith("multipart/form-data"):
        raise BadRequest("a multipart/form-data body is required")
    fields: dict[str, str] = {}
    with contextlib.ExitStack() as writers:
        files: list[PendingFile] = []
        try:
            form = req.get_media()
            for part in form:
                if part.filename is None:
                    fields[part.name] = part.get_text()
                    continue
                writer = writers.enter_context(repository.blob_store.writer())
                copy_into(part.stream, writer)
                files.append(PendingFile(field=part.name, filename=part.filename,
                                         content_type=part.content_type or "application/octet-stream",
                                         writer=writer))
        except falcon.MediaMalformedError as error:
            raise BadRequest(f"malformed multipart body: {error.description}") from None
        except UnicodeDecodeError:
            raise BadRequest("malformed multipart body: part headers (field names, filenames) and form fields "
                             "must be UTF-8") from None
        yield fields, files


class ComponentResource:
    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def _find(self, component_id: str) -> tuple["Repository", Component]:
        name, number = decode_id(component_id, "component")
        component = self.stowage.catalog.get_component(number)
        if component is None or component.repository != name:
            raise NotFound(f"component {component_id} not found")
        return self.stowage.repository(name), component

    def on_get(self, req: falcon.Request, resp: falcon.Response, component_id: str) -> None:
        repository, component = self._find(component_id)
        repository_access(req, self.stowage, repository, Action.READ)
        shown = visible_items(req, [component_json(req, self.stowage, component)])
        if not shown:
            raise NotFound(f"component {component_id} not found")
        resp.media = shown[0]

    def on_delete(self, req: falcon.Request, resp: falcon.Response, component_id: str) -> None:
        repository, component = self._find(component_id)
        access = repository_access(req, self.stowage, repository, Action.DELETE)
        if access is not None and not all(access.permits(a.path) for a in self.stowage.catalog.list_assets(
                repository.name, component_id=component.id).items):
            raise Forbidden(f"the content selectors of your privileges do not cover every asset of "
                            f"component {component_id}")
        repository.handler.delete_component(repository, component)
        resp.status = falcon.HTTP_204


class AssetsResource:
    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        repository = _repository_param(req, self.stowage)
        repository_access(req, self.stowage, repository, Action.READ)
        page = self.stowage.catalog.list_assets(repository.name, continuation_token=req.get_param(
            "continuationToken"), limit=100)
        resp.media = {"items": visible_items(req, [asset_json(req, self.stowage, a, repository.format_name)
                                                   for a in page.items]),
                      "continuationToken": page.continuation_token}


class AssetResource:
    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def _find(self, asset_id: str) -> tuple["Repository", Asset]:
        name, number = decode_id(asset_id, "asset")
        asset = self.stowage.catalog.get_asset_by_id(number)
        if asset is None or asset.repository != name:
            raise NotFound(f"asset {asset_id} not found")
        return self.stowage.repository(name), asset

    def on_get(self, req: falcon.Request, resp: falcon.Response, asset_id: str) -> None:
        repository, asset = self._find(asset_id)
        access = repository_access(req, self.stowage, repository, Action.READ)
        if access is not None and not access.permits(asset.path):
            raise NotFound(f"asset {asset_id} not found")
        resp.media = asset_json(req, self.stowage, asset, repository.format_name)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, asset_id: str) -> None:
        repository, asset = self._find(asset_id)
        access = repository_access(req, self.stowage, repository, Action.DELETE)
        if access is not None and not access.permits(asset.path):
            raise Forbidden(f"the content selectors of your privileges do not cover {asset.path}")
        repository.handler.delete_asset(repository, asset)
        resp.status = falcon.HTTP_204


def register(app: falcon.App, stowage: "Stowage") -> None:
    app.add_route(f"{V1}/components", ComponentsResource(stowage))
    app.add_route(f"{V1}/components/{{component_id}}", ComponentResource(stowage))
    app.add_route(f"{V1}/assets", AssetsResource(stowage))
    app.add_route(f"{V1}/assets/{{asset_id}}", AssetResource(stowage))
