"""``POST /blobstores/s3`` and ``GET|PUT /blobstores/s3/{name}``: Nexus's ``S3BlobStoreApiModel``.

The secrets (``secretAccessKey``, ``sessionToken``) are never returned; an update that leaves them out
keeps them (as long as ``accessKeyId`` stays). The bucket and prefix of a store cannot change: its blobs
are there. A new store's bucket is checked (and created if missing, as Nexus does) before it is saved.
"""

from __future__ import annotations

import tempfile
from typing import TYPE_CHECKING, Any

import falcon

from stowage.blobstore import BlobStoreConfig
from stowage.errors import BadRequest, NotFound
from stowage.rest.access import json_object, require_admin
from stowage.rest.blobstores import _find, _parse_quota, _soft_quota, new_store_name

if TYPE_CHECKING:
    from stowage.stowage import Stowage


def s3_json(config: BlobStoreConfig) -> dict[str, Any]:
    from stowage.blobstore.s3.settings import public_bucket_configuration

    return {"name": config.name, "type": "S3", "softQuota": _soft_quota(config),
            "bucketConfiguration": public_bucket_configuration(config.attributes)}


def _attributes(body: dict[str, Any], bucket_configuration: Any) -> dict[str, Any]:
    quota = _parse_quota(body)
    attributes: dict[str, Any] = {"bucketConfiguration": bucket_configuration}
    if quota:
        attributes["softQuota"] = quota
    return attributes


class S3BlobStoresResource:
    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        from stowage.blobstore.s3 import S3BlobStore

        require_admin(req, self.stowage)
        body = json_object(req)
        name = new_store_name(body)
        config = BlobStoreConfig(name=name, type="S3", attributes=_attributes(body, body.get("bucketConfiguration")))
        with tempfile.TemporaryDirectory() as spool:
            S3BlobStore(config, spool_dir=spool).ensure_bucket()  # 400 when unreachable
        self.stowage.create_blob_store(config)
        resp.status = falcon.HTTP_204

    def _s3_config(self, name: str) -> BlobStoreConfig:
        config = _find(self.stowage, name)
        if config.type.lower() != "s3":
            raise NotFound(f"blob store {name} is not an S3 blob store")
        return config

    def on_get_one(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        require_admin(req, self.stowage)
        resp.media = s3_json(self._s3_config(name))

    def on_put_one(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        from stowage.blobstore.s3.settings import keep_secrets, parse_s3_settings

        require_admin(req, self.stowage)
        config = self._s3_config(name)
        body = json_object(req)
        if body.get("name", name) != name:
            raise BadRequest(f"blob store {name}: the name cannot change")
        new = body.get("bucketConfiguration")
        if not isinstance(new, dict):
            raise BadRequest("bucketConfiguration is required (an object with bucket.name)")
        old = config.attributes.get("bucketConfiguration") or {}
        merged = keep_secrets(new, old)
        before, after = parse_s3_settings(config.attributes), parse_s3_settings({"bucketConfiguration": merged})
        if (before.bucket, before.key_prefix) != (after.bucket, after.key_prefix):
            raise BadRequest(f"blob store {name}: the bucket and prefix cannot change (its blobs are there)")
        self.stowage.update_blob_store(BlobStoreConfig(name=name, type=config.type, path=config.path,
                                                       attributes=_attributes(body, merged)))
        resp.status = falcon.HTTP_204
