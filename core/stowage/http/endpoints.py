"""Checking a request against its format's declared endpoints, once, before the format's code runs.

Two ways lead here: ``/repository/<repo>/<path>`` (:class:`~stowage.http.repository_resource.RepositorySink`)
and a plugin's own routes that locate a repository (:class:`~stowage.registration.Route` with ``locate``,
docker's ``/v2/<repo>/...`` and repository ports), wrapped by :func:`located_route`. Both end in
:func:`check_endpoint`: the endpoint's action, the caller's permission for it, then for a write the write
and name policies (:meth:`Repository.check_writable`) and for a delete what a delete needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import quote

import falcon

from stowage.errors import FormatUnavailable, MethodNotAllowed, NotFound, RepositoryNotFound, Unauthorized
from stowage.http.auth import admit, authenticate
from stowage.http.content import protect_content
from stowage.http.paths import clean_path
from stowage.http.request import RepoRequest
from stowage.routing import routing_allows
from stowage.security import Action, User

if TYPE_CHECKING:
    from stowage.formats import FormatHandler
    from stowage.registration import Located, Route
    from stowage.stowage import Stowage


def check_endpoint(request: RepoRequest) -> None:
    """Match ``request.path`` to one of its format's endpoints and check the request for it.

    Sets ``request.endpoint``, ``request.params`` and ``request.action``. Raises 404 for a path no
    endpoint matches, 405 for a method the endpoint does not list, 401/403 from the permission check,
    and the write policy's and name policy's refusals for a write; nothing is read from the body.
    """
    repository = request.repository
    for endpoint in repository.handler.endpoints:
        match = endpoint.match(request.path)
        if match is not None:
            break
    else:
        raise NotFound(f"no {repository.format_name} endpoint at {request.path} in repository {repository.name}")
    method = request.method.upper()
    if method not in endpoint.actions:
        raise MethodNotAllowed(f"{method} is not supported on {repository.format_name} {endpoint.name} endpoints",
                               allowed=sorted(endpoint.actions))
    action: Action | None = endpoint.actions[method]
    request.endpoint = endpoint.name
    request.params = {key: value for key, value in match.groupdict().items() if value is not None}
    request.action = action
    if action is None:
        return  # the endpoint checks its callers itself (a token service, a login)
    request.require(action)
    if action is Action.WRITE:
        artifact = request.params.get(endpoint.artifact) if endpoint.artifact else None
        repository.check_writable(request.path, artifact_name=artifact, overwrite=not endpoint.once)
    elif action is Action.DELETE:
        repository.check_deletable()


def caller(user: User | None) -> User | None:
    """The user a repository request acts for: None for credentials that stand for no one."""
    return None if user is None or user.anonymous else user


def located_route(stowage: "Stowage", route: "Route", resource: object) -> object:
    """``resource`` with each responder preceded by core's checks for the requests ``route.locate``
    places in a repository (see :class:`~stowage.registration.Route`)."""
    return _LocatedResource(stowage, route, resource)


class _LocatedResource:
    def __init__(self, stowage: "Stowage", route: "Route", resource: object):
        self.stowage = stowage
        self.route = route
        for name in dir(resource):
            if name.startswith("on_") and callable(getattr(resource, name)):
                setattr(self, name, self._checked(getattr(resource, name)))

    def _checked(self, responder: Callable[..., Any]) -> Callable[..., Any]:
        def respond(req: falcon.Request, resp: falcon.Response, **params: Any) -> None:
            located = self.route.locate(req, params)  # type: ignore[misc]
            if located is not None:
                self.authorize(req, resp, located)
            responder(req, resp, **params)

        return respond

    def authorize(self, req: falcon.Request, resp: falcon.Response, located: "Located") -> RepoRequest:
        """What :meth:`RepositorySink.authorize` does under ``/repository/``, for a located request."""
        stowage = self.stowage
        handler: "FormatHandler | None" = stowage.handlers.get(self.route.format)  # type: ignore[arg-type]
        if handler is None:  # the format's registration failed and was reported; its routes answer 503
            raise FormatUnavailable(f"format {self.route.format} is not available")
        protect_content(resp)
        req.context.error_renderer = handler.render_error
        req.context.error_translator = handler.translate_error
        # The route's parameter is decoded already; encode it again so the one path check sees what a
        # client could have sent.
        path = clean_path(quote(located.path, safe="/@:+$,;=&~!*'()"))
        try:
            user = authenticate(req, stowage, audience=None)
            repository = self.find(located.repository, user)
            if user is not None:
                admit(stowage, user, repository.format_name)
        except Unauthorized as refusal:
            # The format's challenge is worked out only for a 401 (for docker it matches the path against
            # every endpoint and builds the client's URL: half of a hot request's set-up otherwise).
            refusal.headers["WWW-Authenticate"] = handler.challenge_before_lookup(req, path)
            raise
        request = RepoRequest(req=req, resp=resp, stowage=stowage, repository=repository, path=path,
                              user=caller(user))
        req.context.repo_request = request
        check_endpoint(request)
        if not routing_allows(repository, path):
            raise NotFound(f"{path} is blocked by routing rule {repository.config.routing_rule} of "
                           f"repository {repository.name}")
        return request

    def find(self, name: str, user: User | None) -> Any:
        """The repository ``name`` of the route's format; a repository of another format is unknown here,
        and an anonymous caller gets the same 401 for a missing one as for one that exists (the caller
        puts the format's challenge on it)."""
        try:
            repository = self.stowage.repository(clean_path(name, allow_trailing_slash=False))
            if repository.format_name != self.route.format:
                raise RepositoryNotFound(f"no {self.route.format} repository {name}")
            return repository
        except RepositoryNotFound:
            if caller(user) is None and not self.stowage.security.anonymous_access:
                raise Unauthorized("authentication required") from None
            raise

