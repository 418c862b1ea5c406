"""``/service/rest/v1/components`` and ``/assets``: list, read, delete, and multipart upload.

Uploaded file parts are streamed into uncommitted blobs as they arrive (never held in memory); the
format's handler checks them and turns the fields and files into assets with ``upload_component``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, Sequence

import falcon

from stowage.checksums import asset_checksums
from stowage.errors import BadRequest, Forbidden, NotFound
from stowage.http.request import external_base_url
from stowage.models import Asset, Component
from stowage.rest import V1
from stowage.rest.access import repository_access, require_repository, visible_items
from stowage.security import Action
from stowage.serialization import iso_time
from stowage.staging import StagedBlob

if TYPE_CHECKING:
    from stowage.repository import Repository
    from stowage.stowage import Stowage


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


def asset_json(req: falcon.Request, stowage: "Stowage", asset: Asset, format_name: str,
               checksums: Mapping[str, Mapping[str, str]] | None = None) -> dict[str, Any]:
    """Nexus's ``AssetXO``. Pass ``checksums`` (from :func:`asset_checksums`) when answering many assets."""
    if checksums is None:
        checksums = asset_checksums(stowage, [asset])
    checksum = dict(checksums.get(asset.blob_sha256, {"sha256": asset.blob_sha256}))
    checksum.update(asset.attributes.get("checksum", {}))
    try:
        blob_store_name = stowage.repository(asset.repository).config.storage.blob_store_name
    except NotFound:
        blob_store_name = None
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
        "blobStoreName": blob_store_name,
        "fileSize": asset.size,
        "uploader": asset.attributes.get("uploader"),
        "uploaderIp": asset.attributes.get("uploaderIp"),
    }


def assets_json(req: falcon.Request, stowage: "Stowage", assets: Sequence[Asset],
                formats: Mapping[str, str]) -> list[dict[str, Any]]:
    """Several assets (``formats``: repository -> format), their checksums read in one query."""
    checksums = asset_checksums(stowage, assets)
    return [asset_json(req, stowage, asset, formats[asset.repository], checksums) for asset in assets]


def component_json(req: falcon.Request, stowage: "Stowage", component: Component) -> dict[str, Any]:
    assets = stowage.catalog.list_assets(component.repository, component_id=component.id).items
    return {
        "id": encode_id(component.repository, "component", component.id or 0),
        "repository": component.repository,
        "format": component.format,
        "group": component.group or None,
        "name": component.name,
        "version": component.version or None,
        "assets": assets_json(req, stowage, assets, {component.repository: component.format}),
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
        with receive_multipart(req, repository) as (fields, files):
            repository.handler.upload_component(repository, fields, files, user)
        resp.status = falcon.HTTP_204


@contextlib.contextmanager
def receive_multipart(req: falcon.Request, repository: "Repository", *, extra_digests: Iterable[str] = ()
                      ) -> Iterator[tuple[dict[str, str], list[StagedBlob]]]:
    """The text fields and the file parts of a ``multipart/form-data`` body. Each file part is streamed
    into an uncommitted blob (:class:`~stowage.staging.StagedBlob` with ``field``, ``filename``,
    ``content_type``) for the format to check and :meth:`~stowage.repository.Repository.commit`; whatever
    the block leaves uncommitted is discarded when it ends, so a refused upload leaves nothing."""
    if not (req.content_type or "").startswith("multipart/form-data"):
        raise BadRequest("a multipart/form-data body is required")
    repository.check_takes_writes()  # before a byte is read: the parts' paths are the format's to tell
    fields: dict[str, str] = {}
    with contextlib.ExitStack() as parts:
        files: list[StagedBlob] = []
        try:
            for part in req.get_media():
                if part.filename is None:
                    fields[part.name] = part.get_text()
                    continue
                staged = parts.enter_context(repository.stage(extra_digests))
                staged.field, staged.filename = part.name, part.filename
                staged.content_type = part.content_type or "application/octet-stream"
                staged.receive(part.stream)
                files.append(staged)
        except falcon.MediaMalformedError as error:
            raise BadRequest(f"malformed multipart body: {error.description}") from None
        except UnicodeDecodeError:
            raise BadRequest("malformed multipart body: part headers (field names, filenames) and form fields "
                             "must be UTF-8") from None
        yield fields, files


def read_multipart(req: falcon.Request, repository: "Repository") -> tuple[dict[str, str], list[StagedBlob]]:
    """Deprecated (commits every file part unchecked): use :func:`receive_multipart`."""
    with receive_multipart(req, repository) as (fields, files):
        for part in files:
            part.commit()
    return fields, files


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
        resp.media = {"items": visible_items(req, assets_json(req, self.stowage, page.items,
                                                              {repository.name: repository.format_name})),
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
