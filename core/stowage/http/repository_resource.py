"""``/repository/<repo>/<path>``: find the repository, check access, call its format handler."""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, Any, Callable

import falcon

from stowage.errors import MethodNotAllowed, NotFound, RepositoryNotFound, Unauthorized
from stowage.http.auth import BASIC_CHALLENGE, admit, authenticate
from stowage.http.content import protect_content
from stowage.http.early_auth import EARLY_REFUSED
from stowage.http.endpoints import caller, check_endpoint
from stowage.http.paths import clean_path
from stowage.http.request import RepoRequest
from stowage.routing import routing_allows

if TYPE_CHECKING:
    from stowage.repository import Repository
    from stowage.security import User
    from stowage.stowage import Stowage

PREFIX = re.compile(r"^/repository/(?P<repo>[^/]+)(?:/(?P<rest>.*))?$")


def raw_path(req: falcon.Request) -> str:
    """The request path as the client sent it (still percent-encoded), without the query."""
    raw = req.env.get("REQUEST_URI") or req.env.get("RAW_URI")
    if raw:
        raw = raw.split("?", 1)[0]
        if "://" in raw:  # absolute-form request target
            raw = "/" + raw.split("://", 1)[1].partition("/")[2]
        return raw
    from urllib.parse import quote

    return quote(req.path, safe="/@:+$,;=&~!*'()")


class RepositorySink:
    def __init__(self, stowage: "Stowage"):
        self.stowage = stowage

    def __call__(self, req: falcon.Request, resp: falcon.Response, **_: str) -> None:
        request, responder = self.authorize(req, resp)
        if req.env.get(EARLY_REFUSED):
            # The server refused this request's body on its head alone (stowage.http.early_auth) and the
            # body was never read; if access changed in between, the client still has to send it again.
            raise Unauthorized("authentication required",
                               headers={"WWW-Authenticate": request.repository.handler.challenge(request)})
        responder(request)

    def authorize(self, req: falcon.Request, resp: falcon.Response) -> tuple[RepoRequest, Callable[[RepoRequest], Any]]:
        """Everything before the format's responder runs: the repository, the caller and the permission
        check (401/403/404 raised here). Reads no request body, so the server can ask it before the body
        arrives (``Expect: 100-continue``)."""
        # Every answer here may carry repository bytes (formats that set a body themselves included).
        protect_content(resp)
        match = PREFIX.match(raw_path(req))
        if match is None:
            raise falcon.HTTPNotFound()
        # Who is calling is known before the repository (one 401 whether it exists or not); whether the
        # credentials are good here depends on its format (an npm token only for npm), checked next.
        user = authenticate(req, self.stowage, audience=None)
        repository = find_repository(self.stowage, match.group("repo"), user)
        if user is not None:
            admit(self.stowage, user, repository.format_name)
        path = clean_path(match.group("rest") or "")
        handler = repository.handler
        req.context.error_renderer = handler.render_error
        req.context.error_translator = handler.translate_error
        request = RepoRequest(req=req, resp=resp, stowage=self.stowage, repository=repository, path=path,
                              user=caller(user))
        req.context.repo_request = request
        method = req.method.upper()
        responder = getattr(handler, f"on_{method.lower()}", None)
        if responder is None:
            raise MethodNotAllowed(f"{method} is not supported", allowed=list(handler.methods))
        if handler.endpoints:
            check_endpoint(request)
        else:
            action = handler.action_for(request)
            if action is not None:
                request.require(action)
        # after the permission check: a caller who may not read learns nothing about the rule
        if not routing_allows(repository, path):
            raise NotFound(f"{path} is blocked by routing rule {repository.config.routing_rule} of "
                           f"repository {repository.name}")
        return request, responder


def find_repository(stowage: "Stowage", name: str, user: "User | None", *,
                    challenge: str = BASIC_CHALLENGE) -> "Repository":
    """The repository ``name``; with anonymous access off, an anonymous caller gets the same 401 whether
    it exists or not (a 404 would tell strangers which repositories exist)."""
    try:
        return stowage.repository(_repository_name(name))
    except RepositoryNotFound:
        if user is None and not stowage.security.anonymous_access:
            raise Unauthorized("authentication required", headers={"WWW-Authenticate": challenge}) from None
        raise


@functools.lru_cache(maxsize=1024)
def _repository_name(raw: str) -> str:
    """A repository name from the URL, validated like any path (cached: a few names take every request;
    an invalid one raises, which is not cached)."""
    return clean_path(raw, allow_trailing_slash=False)
