"""Falcon middleware that writes the audit trail for every change made over HTTP.

One place for every endpoint, core's and plugins', present and future: a REST change is named from its
route (``PUT /service/rest/v1/security/users/{user_id}`` is ``user.update`` of ``<user_id>`` in the
``security`` domain), a content write from what the format says the request does. The event is written
after the response is decided, refused changes included (``denied`` for 401/403, ``failure`` for other
errors). Reads are never recorded; the request log (``stowage.request_log``) has those.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import falcon

from stowage.rest import V1

if TYPE_CHECKING:
    from stowage.stowage import Stowage

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_VERBS = {"POST": "create", "PUT": "update", "PATCH": "update", "DELETE": "delete"}
#: REST path prefixes (below /service/rest/v1/) -> (domain, object); the longest prefix wins.
_OBJECTS = {
    "security/users": ("security", "user"), "security/roles": ("security", "role"),
    "security/privileges": ("security", "privilege"), "security/content-selectors": ("security", "selector"),
    "security/ldap": ("security", "ldap"), "security/realms": ("security", "realm"),
    "security/user-tokens": ("security", "token"), "security/anonymous": ("security", "anonymous"),
    "security": ("security", "security"), "repositories": ("repository", "repository"),
    "blobstores": ("blobstore", "blobstore"), "components": ("content", "component"),
    "assets": ("content", "asset"), "tasks": ("tasks", "task"),
    "cleanup-policies": ("repository", "cleanup-policy"),
}
#: last path segments that name a setting, not an operation (``PUT /security/realms/active``).
_STATE_SEGMENTS = frozenset({"active", "available"})
#: body fields naming what a create makes (passwords and other fields are never read).
_NAME_FIELDS = ("name", "userId", "id")
_BODY_LIMIT = 1024 * 1024


class AuditTrailMiddleware:
    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def process_resource(self, req: falcon.Request, resp: falcon.Response, resource: Any,
                         params: dict[str, Any]) -> None:
        if req.method not in READ_METHODS:
            req.context.audit_params = dict(params)

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: Any,
                         req_succeeded: bool) -> None:
        if req.method in READ_METHODS:
            return
        event = self._describe(req)
        if event is None:
            return
        status = int(str(resp.status).split(" ", 1)[0]) if resp.status else 200
        if status < 400 and getattr(req.context, "audited", False):
            return  # recorded inside the change's transaction (AuditLog.record_change)
        result = "success" if status < 400 else "denied" if status in (401, 403) else "failure"
        domain, action, target, repository = event
        self.stowage.audit.record_request(req, domain, action, target, repository=repository, result=result,
                                          attributes={"method": req.method, "path": req.path, "status": status})

    def _describe(self, req: falcon.Request) -> tuple[str, str, str, str | None] | None:
        path = req.path
        if path.startswith(V1 + "/"):
            return self._rest(req, path[len(V1) + 1:])
        if path.startswith("/repository/"):
            return self._content(req, path)
        if req.method == "PATCH":
            return None  # a chunk of a docker blob upload: the final PUT is the event
        return "content", "content." + ("delete" if req.method == "DELETE" else "upload"), path, None

    def _rest(self, req: falcon.Request, rest: str) -> tuple[str, str, str, str | None]:
        params: dict[str, Any] = getattr(req.context, "audit_params", {})
        template = (req.uri_template or "")[len(V1) + 1:] if req.uri_template else rest
        prefix = max((p for p in _OBJECTS if template == p or template.startswith(p + "/")), key=len, default="")
        domain, noun = _OBJECTS.get(prefix, ("system", template.split("/", 1)[0] or "rest"))
        last = template.rstrip("/").rsplit("/", 1)[-1]
        verb = _VERBS.get(req.method, req.method.lower())
        if last == "user-token" or "/tokens/" in template:  # .../{realm}/user-token, .../tokens/{token_id}
            noun = "token"
        elif last == "change-password":
            verb = "password"
        elif last and not last.startswith("{") and template != prefix and last not in _STATE_SEGMENTS:
            verb = last  # /tasks/{id}/run, /repositories/{name}/rebuild-index, /security/ldap/change-order
        target = self._target(req, params, prefix, rest)
        repository = req.get_param("repository") or (target if domain == "repository" else None)
        return domain, f"{noun}.{verb}", target, repository

    def _target(self, req: falcon.Request, params: dict[str, Any], prefix: str, rest: str) -> str:
        if req.method == "POST":
            named = self._body_name(req)
            if named:
                return named
        if params:  # the route's name or id (not its format, type or realm); else its last parameter
            named = [v for k, v in params.items() if k.lower().endswith(("name", "id"))]
            return str(named[-1] if named else list(params.values())[-1])
        if prefix == "components":
            return req.get_param("repository") or rest
        return rest[len(prefix):].strip("/") or prefix

    def _body_name(self, req: falcon.Request) -> str | None:
        if "json" not in (req.content_type or "") or (req.content_length or 0) > _BODY_LIMIT:
            return None
        try:
            body = req.get_media(default_when_empty=None)
        except falcon.HTTPError:
            return None
        if isinstance(body, dict):
            for key in _NAME_FIELDS:
                if isinstance(body.get(key), str) and body[key]:
                    return body[key]
        return None

    def _content(self, req: falcon.Request, path: str) -> tuple[str, str, str, str | None] | None:
        from stowage.security import Action

        request = getattr(req.context, "repo_request", None)
        if request is not None:
            if request.endpoint is not None:  # declared endpoints: the action core checked
                action = request.action
            else:
                try:
                    action = request.repository.handler.action_for(request)
                except Exception:
                    action = Action.WRITE
            if action is Action.READ:
                return None  # a POST that reads (npm's audit endpoints)
            verb = {Action.WRITE: "upload", Action.DELETE: "delete"}.get(action, req.method.lower())
            return "content", f"content.{verb}", "/" + request.path, request.repository.name
        repository, _, rest = path[len("/repository/"):].partition("/")
        verb = "delete" if req.method == "DELETE" else "upload"
        return "content", f"content.{verb}", "/" + rest, repository or None
