"""``GET /service/rest/v1/audit``: the audit trail, newest first, for holders of ``nx-audit-read`` (or nx-all).

Parameters: ``user``, ``action`` (exact, or a prefix ending in ``*``: ``user.*``), ``repository``,
``since`` and ``until`` (ISO-8601 or epoch seconds; ``until`` is exclusive), ``continuationToken``.
The answer is Nexus's page shape, ``{"items": [...], "continuationToken": ...}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import falcon

from stowage.audit import iso_timestamp, parse_timestamp
from stowage.catalog.base import decode_resume_key, encode_resume_key
from stowage.errors import BadRequest
from stowage.rest import V1
from stowage.rest.access import require_permission

if TYPE_CHECKING:
    from stowage.stowage import Stowage

PAGE_SIZE = 100


def event_json(event: dict[str, Any]) -> dict[str, Any]:
    return {"timestamp": iso_timestamp(event["timestamp"]), "user": event["user"], "address": event["address"],
            "domain": event["domain"], "action": event["action"], "target": event["target"],
            "repository": event["repository"], "result": event["result"], "attributes": event["attributes"]}


class AuditResource:
    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_permission(req, self.stowage, "audit", "read")
        bounds = {}
        for key in ("since", "until"):
            text = req.get_param(key)
            if text:
                try:
                    bounds[key] = parse_timestamp(text)
                except ValueError:
                    raise BadRequest(f"{key} must be an ISO-8601 date-time or seconds since the epoch") from None
        before_id = None
        token = req.get_param("continuationToken")
        if token:
            try:
                before_id = int(decode_resume_key(token))
            except (ValueError, BadRequest):
                raise BadRequest(f"invalid continuationToken {token!r}") from None
        events = self.stowage.audit.query(user=req.get_param("user"), action=req.get_param("action"),
                                          repository=req.get_param("repository"), before_id=before_id,
                                          limit=PAGE_SIZE, **bounds)
        more = len(events) == PAGE_SIZE
        resp.media = {"items": [event_json(e) for e in events],
                      "continuationToken": encode_resume_key(str(events[-1]["id"])) if more else None}


def register(app: falcon.App, stowage: "Stowage") -> None:
    app.add_route(f"{V1}/audit", AuditResource(stowage))
