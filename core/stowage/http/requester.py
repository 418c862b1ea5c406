"""Who sent the request being served, for the ``uploader`` and ``uploaderIp`` fields of stored assets.

Set once per request by :class:`RequesterMiddleware`; read by ``Repository.record`` so that every format
records the same fields without passing them through each upload path. A ``ContextVar`` is per request
(per thread under waitress), not shared state.
"""

from __future__ import annotations

import contextvars
from typing import Any

import falcon

_CURRENT: contextvars.ContextVar[falcon.Request | None] = contextvars.ContextVar("stowage_request", default=None)


def uploader_attributes() -> dict[str, Any]:
    """``uploader`` (the authenticated user id, or None) and ``uploaderIp`` of the current request; empty
    outside a request (tasks, start-up)."""
    req = _CURRENT.get()
    if req is None:
        return {}
    user = getattr(req.context, "user", None)
    return {"uploader": getattr(user, "user_id", None), "uploaderIp": req.remote_addr}


#: what handlers put on ``req.context`` that refers back to the request (a ``RepoRequest`` holds ``req``, the
#: UI's error page holds ``req``): left there, every request would be a reference cycle that only the
#: cyclic garbage collector frees, with all it holds.
_SELF_REFERENCES = ("repo_request", "error_renderer")


class RequesterMiddleware:
    """The first middleware, so its ``process_response`` is the last thing falcon runs for a request."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.requester_token = _CURRENT.set(req)

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: Any,
                         req_succeeded: bool) -> None:
        token = getattr(req.context, "requester_token", None)
        if token is not None:
            _CURRENT.reset(token)
        # Error handlers and the audit trail have run; the request's objects can now be freed by
        # reference counting the moment the server drops them, instead of piling up for the collector
        # (a hot GET spent ~8 us in collections; issue 16, docs/performance.md "small requests").
        context = req.context
        for name in _SELF_REFERENCES:
            context.pop(name, None)
