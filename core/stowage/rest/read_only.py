"""Read-only mode: ``GET /v1/read-only``, ``POST /v1/read-only/freeze``, ``/release``, ``/force-release``.

Nexus 3.42's shapes (``frozen``, ``summaryReason``, ``systemInitiated``). While frozen every write
(``PUT``/``POST``/``PATCH``/``DELETE`` on repositories, the Docker API and the REST API) answers 503
and reads keep working: what a consistent backup needs. The state is a catalog document, so every worker
process and node sharing the catalog obeys it at once.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import falcon

from stowage.errors import NotFound, StowageError
from stowage.rest import V1
from stowage.rest.access import require_admin

if TYPE_CHECKING:
    from stowage.stowage import Stowage

NAMESPACE, KEY = "stowage", "read-only"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: paths whose writes are refused while frozen (the UI's sign-in is not one: admins must reach release).
_WRITE_PREFIXES = ("/repository/", "/v2/", "/service/rest/")
_ALWAYS_ALLOWED = (f"{V1}/read-only",)


class SystemReadOnly(StowageError):
    code, status = "READ_ONLY", 503


def read_only_state(stowage: "Stowage") -> dict[str, Any] | None:
    """The stored freeze (``frozen``, ``summaryReason``, ``systemInitiated``...), or None when writable."""
    return stowage.catalog.get_document(NAMESPACE, KEY)


class ReadOnlyMiddleware:
    """Refuses writes while the catalog says the system is frozen (one indexed read per write request)."""

    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.method in _SAFE_METHODS or not req.path.startswith(_WRITE_PREFIXES) \
                or req.path.startswith(_ALWAYS_ALLOWED) or req.path.endswith("/v2/token"):
            return
        state = read_only_state(self.stowage)
        if state is not None:
            raise SystemReadOnly(f"the server is in read-only mode ({state.get('summaryReason') or 'frozen'}); "
                                 f"writes are refused until an administrator releases it",
                                 headers={"Retry-After": "60"})


def _answer(state: dict[str, Any] | None) -> dict[str, Any]:
    if state is None:
        return {"frozen": False, "summaryReason": "", "systemInitiated": False}
    return {"frozen": True, "summaryReason": state["summaryReason"], "systemInitiated": state["systemInitiated"]}


class ReadOnlyResource:
    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_admin(req, self.stowage)
        resp.media = _answer(read_only_state(self.stowage))


class ReadOnlyActionResource:
    """``freeze``; ``release`` (only an administrator's freeze); ``force-release`` (any)."""

    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def on_post(self, req: falcon.Request, resp: falcon.Response, action: str) -> None:
        user = require_admin(req, self.stowage)
        catalog = self.stowage.catalog
        with catalog.transaction():
            state = read_only_state(self.stowage)
            if action == "freeze":
                if state is not None:
                    raise NotFound("No change to read-only state")
                now = datetime.fromtimestamp(time.time(), timezone.utc).isoformat(timespec="seconds")
                catalog.put_document(NAMESPACE, KEY, {
                    "summaryReason": f"Activated by an administrator ({user.user_id}) at {now}",
                    "systemInitiated": False, "frozenBy": user.user_id, "frozenAt": now})
            elif action in ("release", "force-release"):
                if state is None or (action == "release" and state.get("systemInitiated")):
                    raise NotFound("No change to read-only state")
                catalog.delete_document(NAMESPACE, KEY)
            else:
                raise NotFound(f"no read-only action {action!r}; use freeze, release or force-release")
        resp.status = falcon.HTTP_204


def register(app: falcon.App, stowage: "Stowage") -> None:
    app.add_route(f"{V1}/read-only", ReadOnlyResource(stowage))
    app.add_route(f"{V1}/read-only/{{action}}", ReadOnlyActionResource(stowage))
