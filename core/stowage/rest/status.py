"""``/service/rest/v1/status`` (reads work) and ``/status/writable`` (writes can succeed)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import falcon

from stowage.rest import V1

if TYPE_CHECKING:
    from stowage.stowage import Stowage

#: below this much free space a file blob store is reported unwritable.
MIN_FREE_BYTES = 64 * 1024 * 1024


class StatusResource:
    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        try:
            self.stowage.catalog.list_repositories()
        except Exception as error:  # any failure to read means "not available"
            resp.status = falcon.HTTP_503
            resp.media = {"available": False, "reason": str(error)}
            return
        resp.status = falcon.HTTP_200


class WritableResource:
    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        problems = []
        try:
            with self.stowage.catalog.transaction():
                self.stowage.catalog.put_document("stowage", "writable-probe", {"node": self.stowage.node_id})
        except Exception as error:
            problems.append(f"catalog: {error}")
        for name, store in self.stowage.blob_stores().items():
            free = store.usage().get("availableSpaceInBytes")
            if free is not None and free < MIN_FREE_BYTES:
                problems.append(f"blob store {name}: only {free} bytes free")
        if problems:
            resp.status = falcon.HTTP_503
            resp.media = {"writable": False, "reasons": problems}
        else:
            resp.status = falcon.HTTP_200


def register(app: falcon.App, stowage: "Stowage") -> None:
    app.add_route(f"{V1}/status", StatusResource(stowage))
    app.add_route(f"{V1}/status/writable", WritableResource(stowage))
