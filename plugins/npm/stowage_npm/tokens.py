"""``npm login`` / ``npm adduser`` (CouchDB user documents) and ``npm logout``: bearer tokens bound to a
Stowage user, kept in the catalog by core's security realm (so every process and node accepts them)."""

from __future__ import annotations

from typing import Any

from stowage.plugin import BadRequest, Forbidden, NotFound, RepoRequest, Unauthorized

from stowage_npm.hosted import read_json

TOKEN_REALM = "npm"


def login(request: RepoRequest, user_name: str) -> dict[str, Any]:
    """``PUT -/user/org.couchdb.user:<name>`` with ``{"name", "password"}``: a token for that user.

    Users are managed by Stowage (UI/REST); npm cannot create them, so ``adduser`` of an unknown name
    is refused like a wrong password.
    """
    body = read_json(request, limit=64 * 1024)
    if not isinstance(body, dict):
        raise BadRequest("the login document must be a JSON object")
    name = body.get("name", user_name)
    password = body.get("password")
    if name != user_name or not isinstance(password, str):
        raise BadRequest("the login document needs the user's name (matching the URL) and password")
    security = request.stowage.security
    user = security.check_password(name, password)
    if user is None:
        raise Unauthorized(f"bad username or password for {name} (users are created in Stowage, not by npm)",
                           headers={"WWW-Authenticate": request.repository.handler.challenge(request)})
    token = security.issue_token(user, TOKEN_REALM, prefix="npm_")
    return {"ok": True, "id": f"org.couchdb.user:{name}", "rev": "_we_dont_use_revs_any_more", "token": token}


def logout(request: RepoRequest, token: str) -> dict[str, Any]:
    """``DELETE -/user/token/<token>``: revoke a token of the caller (admins may revoke any)."""
    if request.user is None:
        raise Unauthorized("log in to revoke a token",
                           headers={"WWW-Authenticate": request.repository.handler.challenge(request)})
    security = request.stowage.security
    owner = security.user_for_token(token, TOKEN_REALM)
    if owner is None:
        raise NotFound("no such token")
    if owner.user_id != request.user.user_id and "nx-all" not in security.privileges(request.user.roles):
        raise Forbidden("a token can only be revoked by its user or an administrator")
    security.revoke_token(token)
    return {"ok": True}
