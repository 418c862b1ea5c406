"""Who may do what, and how the client is told: the address a client used (:class:`Target`), the
challenges, ``GET /v2/`` and the token service.

The per-request permission, write-policy and name-policy checks are core's
(:data:`~stowage_docker.endpoints.ENDPOINTS`, checked before the registry's code runs); this module only
shapes what the client sees.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import parse_qs

import falcon
from attrs import frozen

from stowage.plugin import Action, RepoRequest, Repository, Unauthorized, authenticate, external_base_url, sign_in
from stowage_docker import tokens
from stowage_docker.endpoints import ENDPOINTS
from stowage_docker.errors import RegistryError
from stowage_docker.settings import settings_of

BASIC_CHALLENGE = 'Basic realm="Stowage"'


@frozen
class Target:
    """How the client addresses the registry.

    :param root: the client's URL of ``/v2`` for this repository (absolute), e.g.
        ``http://host:8443/v2``, ``http://host:8081/v2/docker-hosted`` or
        ``http://host:8081/repository/docker-hosted/v2``.
    :param token_url: where the client gets bearer tokens.
    :param name_prefix: what the client puts before image names (``docker-hosted/`` in path routing).
    """

    root: str
    token_url: str
    name_prefix: str = ""

    def url(self, name: str, rest: str) -> str:
        return f"{self.root}/{name}/{rest}"

    def path(self, name: str, rest: str) -> str:
        """The same URL without scheme and host (for ``Link`` headers, as the reference registry sends)."""
        root = self.root.split("://", 1)[-1]
        return "/" + root.partition("/")[2] + f"/{name}/{rest}"


def target_of(req: falcon.Request, stowage: Any) -> Target:
    """How this request reached the registry: ``/repository/<repo>/v2`` (core's repository path), a
    repository's own port (``/v2/<image>``), or path routing on the main port (``/v2/<repo>/<image>``)."""
    base = external_base_url(req, stowage)
    if req.path.startswith("/repository/"):
        root = base + "/repository/" + req.path.split("/")[2] + "/v2"
        return Target(root=root, token_url=f"{root}/token")
    if getattr(req.context, "port_repository", None):
        return Target(root=f"{base}/v2", token_url=f"{base}/v2/token")
    parts = req.path.split("/")
    repo_name = parts[2] if len(parts) > 3 else ""
    if not repo_name:  # /v2/, /v2/token, /v2/_catalog: the registry as a whole
        return Target(root=f"{base}/v2", token_url=f"{base}/v2/token", name_prefix="-")
    return Target(root=f"{base}/v2/{repo_name}", token_url=f"{base}/v2/token", name_prefix=f"{repo_name}/")


def challenge(repository: Repository | None, target: Target, name: str | None = None,
              action: Action | None = None) -> str:
    """The ``WWW-Authenticate`` value: Basic when the repository forces it, else a Bearer challenge
    naming the token service and, for an image, the scope the client must ask for."""
    if repository is not None and settings_of(repository).force_basic_auth:
        return BASIC_CHALLENGE
    value = f'Bearer realm="{target.token_url}",service="{tokens.SERVICE}"'
    if name is not None:
        actions = "pull" if action in (None, Action.READ) else "pull,push"
        value += f',scope="repository:{target.name_prefix}{name}:{actions}"'
    return value


def request_challenge(request: RepoRequest) -> str:
    """The challenge for a 401 core sends after matching the request's endpoint. Under
    ``/repository/<repo>/`` it is core's Basic challenge, the one a repository that does not exist gets
    there too (core cannot tell a docker path from another before it knows the repository), so strangers
    learn no names; docker clients reach the registry through its port or ``/v2/`` anyway, and bearer
    tokens are still accepted there."""
    if request.req.path.startswith("/repository/"):
        return BASIC_CHALLENGE
    return challenge(request.repository, target_of(request.req, request.stowage), request.params.get("name"),
                     request.action)


def challenge_before_lookup(req: falcon.Request, stowage: Any, path: str) -> str:
    """The challenge for a 401 sent before the repository is known: what an existing repository with
    default settings would send, so strangers learn no names."""
    name = None
    for endpoint in ENDPOINTS:
        match = endpoint.match(path)
        if match is not None:
            name = match.groupdict().get("name")
            action = endpoint.actions.get(req.method.upper())
            break
    else:
        action = None
    return challenge(None, target_of(req, stowage), name, action)


def serve_base(user: Any, resp: falcon.Response, challenge_value: str) -> None:
    """``GET /v2/``: 200 for an authenticated caller, 401 with the challenge otherwise (clients send their
    credentials only after a challenge, so even anonymous-readable registries challenge here). An
    anonymous token counts as authenticated: the client has done the token dance."""
    if user is None:
        raise RegistryError("UNAUTHORIZED", "authentication required", status=401,
                            headers={"WWW-Authenticate": challenge_value})
    resp.content_type = "application/json"
    resp.data = b"{}"


def serve_token(req: falcon.Request, resp: falcon.Response, stowage: Any) -> None:
    """The token service: basic credentials (or a password grant) -> a token for that user; no
    credentials -> an anonymous token when anonymous access is on."""
    user = None
    if req.method == "POST":
        form = parse_qs(req.bounded_stream.read(64 * 1024).decode("utf-8", "replace"))
        grant = (form.get("grant_type") or [""])[0]
        if grant == "password":
            try:
                user = sign_in(req, stowage, (form.get("username") or [""])[0], (form.get("password") or [""])[0],
                               audience=tokens.AUDIENCE)
            except Unauthorized as error:
                raise RegistryError("UNAUTHORIZED", error.message, status=401) from None
        elif grant == "refresh_token":
            user = tokens.verify(stowage, (form.get("refresh_token") or [""])[0], use=tokens.REFRESH)
            if user is None:
                raise RegistryError("UNAUTHORIZED", "invalid or expired refresh token", status=401)
    if user is None:
        try:
            user = authenticate(req, stowage, audience=tokens.AUDIENCE)
        except Unauthorized:
            raise RegistryError("UNAUTHORIZED", "invalid credentials", status=401,
                                headers={"WWW-Authenticate": BASIC_CHALLENGE}) from None
    if user is None or tokens.is_anonymous(user):
        if not stowage.security.anonymous_access:
            raise RegistryError("UNAUTHORIZED", "authentication required", status=401,
                                headers={"WWW-Authenticate": BASIC_CHALLENGE})
        user = None
    token, ttl = tokens.issue(stowage, user)
    body: dict[str, Any] = {"token": token, "access_token": token, "expires_in": ttl,
                            "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if user is not None and req.get_param("offline_token") == "true":
        body["refresh_token"] = tokens.issue(stowage, user, use=tokens.REFRESH)[0]
    resp.content_type = "application/json"
    resp.data = json.dumps(body).encode()
