"""``/service/rest/v1/blobstores``: list, create/read/update file stores (S3: blobstores_s3), delete, quota
status. Admin only.

Counts come from the catalog (blobs it records per store: one copy per digest), free space from the
store itself. A soft quota (``spaceRemainingQuota``: at least ``limit`` bytes free; ``spaceUsedQuota``:
at most ``limit`` bytes of blobs) is reported by ``quota-status``; like Nexus, it never refuses writes.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import falcon

from stowage.blobstore import BlobStoreConfig
from stowage.errors import BadRequest, NotFound
from stowage.rest import V1
from stowage.rest.access import json_object, require_admin

if TYPE_CHECKING:
    from stowage.stowage import Stowage

QUOTA_TYPES = ("spaceRemainingQuota", "spaceUsedQuota")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


def _soft_quota(config: BlobStoreConfig) -> dict[str, Any] | None:
    quota = config.attributes.get("softQuota")
    return dict(quota) if quota else None


def _type_name(config: BlobStoreConfig) -> str:
    return "File" if config.type.lower() == "file" else config.type


def _find(stowage: "Stowage", name: str) -> BlobStoreConfig:
    try:
        return stowage.blob_store_config(name)
    except Exception:
        raise NotFound(f"blob store {name} not found") from None


def blob_store_json(stowage: "Stowage", name: str) -> dict[str, Any]:
    """Nexus's ``GenericBlobStoreApiResponse``."""
    config = stowage.blob_store_config(name)
    count, size = stowage.catalog.blob_store_usage(name)
    try:
        available = stowage.blob_store(name).usage().get("availableSpaceInBytes", 0)
        unavailable = False
    except OSError:
        available, unavailable = 0, True
    return {"name": name, "type": _type_name(config), "softQuota": _soft_quota(config), "unavailable": unavailable,
            "blobCount": count, "totalSizeInBytes": size, "availableSpaceInBytes": available}


def quota_status(stowage: "Stowage", name: str) -> dict[str, Any]:
    """Nexus's ``BlobStoreQuotaResultXO``: ``isViolation``, ``message``, ``blobStoreName``."""
    info = blob_store_json(stowage, name)
    quota = info["softQuota"]
    if not quota:
        return {"isViolation": False, "message": f"Blob store {name} has no quota", "blobStoreName": name}
    limit = int(quota["limit"])
    if quota["type"] == "spaceRemainingQuota":
        violation = info["availableSpaceInBytes"] < limit
        message = (f"Blob store {name} has {info['availableSpaceInBytes']} bytes available and a limit of "
                   f"{limit} bytes remaining")
    else:
        violation = info["totalSizeInBytes"] > limit
        message = f"Blob store {name} is using {info['totalSizeInBytes']} bytes and has a limit of {limit} bytes"
    return {"isViolation": violation, "message": message, "blobStoreName": name}


def new_store_name(body: dict[str, Any]) -> str:
    """The ``name`` of a blob store a POST creates; a 400 unless it is a valid one."""
    name = body.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise BadRequest("name is required: letters, digits, '.', '_', '-'")
    return name


def _parse_quota(body: dict[str, Any]) -> dict[str, Any] | None:
    quota = body.get("softQuota")
    if quota in (None, {}):
        return None
    if not isinstance(quota, dict) or quota.get("type") not in QUOTA_TYPES:
        raise BadRequest(f"softQuota.type must be one of {', '.join(QUOTA_TYPES)}")
    limit = quota.get("limit")
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
        raise BadRequest("softQuota.limit must be a non-negative number of bytes")
    return {"type": quota["type"], "limit": limit}



class BlobStoresResource:
    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_admin(req, self.stowage)
        resp.media = [blob_store_json(self.stowage, name) for name in sorted(self.stowage.blob_stores())]


class FileBlobStoresResource:
    """``POST /blobstores/file`` creates; ``GET|PUT /blobstores/file/{name}`` reads or changes the quota."""

    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_admin(req, self.stowage)
        body = json_object(req)
        name = new_store_name(body)
        path = body.get("path") or name
        if not isinstance(path, str) or "\0" in path:
            raise BadRequest("path must be a string")
        quota = _parse_quota(body)
        config = BlobStoreConfig(name=name, type="File", path=path,
                                 attributes={"softQuota": quota} if quota else {})
        self.stowage.create_blob_store(config)
        resp.status = falcon.HTTP_204

    def _store_path(self, config: BlobStoreConfig) -> str:
        return str(getattr(self.stowage.blob_store(config.name), "root", config.path))

    def on_get_one(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        require_admin(req, self.stowage)
        config = _find(self.stowage, name)
        if config.type.lower() != "file":
            raise NotFound(f"blob store {name} is not a file blob store")
        resp.media = {"path": self._store_path(config), "softQuota": _soft_quota(config)}

    def on_put_one(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        require_admin(req, self.stowage)
        config = _find(self.stowage, name)
        body = json_object(req)
        path = body.get("path")
        if path not in (None, config.path, self._store_path(config)):
            raise BadRequest(f"blob store {name}: the path cannot change")
        quota = _parse_quota(body)
        attributes = {k: v for k, v in config.attributes.items() if k != "softQuota"}
        if quota:
            attributes["softQuota"] = quota
        self.stowage.update_blob_store(BlobStoreConfig(name=name, type=config.type, path=config.path,
                                                       attributes=attributes))
        resp.status = falcon.HTTP_204


class BlobStoreResource:
    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def on_delete(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        require_admin(req, self.stowage)
        _find(self.stowage, name)
        self.stowage.delete_blob_store(name)
        resp.status = falcon.HTTP_204


class QuotaStatusResource:
    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        require_admin(req, self.stowage)
        _find(self.stowage, name)
        resp.media = quota_status(self.stowage, name)


def register(app: falcon.App, stowage: "Stowage") -> None:
    files = FileBlobStoresResource(stowage)
    app.add_route(f"{V1}/blobstores", BlobStoresResource(stowage))
    app.add_route(f"{V1}/blobstores/file", files)
    app.add_route(f"{V1}/blobstores/file/{{name}}", files, suffix="one")
    from stowage.rest.blobstores_s3 import S3BlobStoresResource

    s3 = S3BlobStoresResource(stowage)
    app.add_route(f"{V1}/blobstores/s3", s3)
    app.add_route(f"{V1}/blobstores/s3/{{name}}", s3, suffix="one")
    app.add_route(f"{V1}/blobstores/{{name}}", BlobStoreResource(stowage))
    app.add_route(f"{V1}/blobstores/{{name}}/quota-status", QuotaStatusResource(stowage))
