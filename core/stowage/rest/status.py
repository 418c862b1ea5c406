"""``/service/rest/v1/status`` (reads work), ``/status/writable`` (writes can succeed) and ``/status/nodes``
(every serving process sharing this catalog; beyond Nexus)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import falcon

from stowage.cluster import WorkerRegistry
from stowage.rest import V1
from stowage.rest.access import require_admin

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


class NodesResource:
    """``GET /v1/status/nodes`` (admins): the heartbeats of every worker on every node (stowage.cluster)."""

    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_admin(req, self.stowage)
        resp.media = WorkerRegistry.of(self.stowage).workers()


def register(app: falcon.App, stowage: "Stowage") -> None:
    app.add_route(f"{V1}/status", StatusResource(stowage))
    app.add_route(f"{V1}/status/writable", WritableResource(stowage))
    app.add_route(f"{V1}/status/nodes", NodesResource(stowage))
