"""Rows of the catalog's tables as models, shared by every SQL catalog."""

from __future__ import annotations

import json
from typing import Any, Sequence

from stowage.models import Asset, AssetKind, Component

ASSET_COLUMNS = ("id, repository, path, blob_sha256, size, content_type, kind, component_id, created, "
                 "last_updated, attributes, fetched_at, upstream_etag, upstream_last_modified, invalidated, "
                 "last_downloaded")
COMPONENT_COLUMNS = "id, repository, format, grp, name, version, created, attributes"


def asset_from_row(row: Sequence[Any]) -> Asset:
    (id_, repository, path, sha, size, ctype, kind, component_id, created, updated, attributes, fetched_at,
     etag, last_modified, invalidated, last_downloaded) = row
    return Asset(repository=repository, path=path, blob_sha256=sha, size=size, content_type=ctype,
                 kind=AssetKind(kind), component_id=component_id, created=created, last_updated=updated,
                 attributes=json.loads(attributes) if attributes != "{}" else {}, fetched_at=fetched_at,
                 upstream_etag=etag, upstream_last_modified=last_modified, invalidated=bool(invalidated), id=id_,
                 last_downloaded=last_downloaded)


def component_from_row(row: Sequence[Any]) -> Component:
    id_, repository, format_, grp, name, version, created, attributes = row
    return Component(repository=repository, format=format_, group=grp, name=name, version=version,
                     created=created, attributes=json.loads(attributes), id=id_)
